"""Domain errors. Each one carries a message meant for the person who caused it."""

from __future__ import annotations


class HabitRewardError(Exception):
    """Base class: every error the engine raises on purpose."""


class ConfigError(HabitRewardError):
    """A setting is missing or malformed; the message names the variable."""


class ValidationError(HabitRewardError):
    """Input that breaks a rule (a weight out of range, an empty name, ...)."""


class NotFound(HabitRewardError):
    """A user, habit, reward or log that does not exist (or is not visible)."""


class Conflict(HabitRewardError):
    """The request clashes with existing data (a duplicate name, ...)."""


class PermissionDenied(HabitRewardError):
    """The user may not do this (edit a shared habit without being an admin, ...)."""


class NothingToUndo(HabitRewardError):
    """Undo was asked for a habit that has no completion left to revert."""


class NotClaimable(HabitRewardError):
    """Claim was asked for a reward whose pieces are not all earned yet."""


class PluginError(HabitRewardError):
    """A plugin's hook answered what its contract does not allow; the message names the hook.
    Raised inside the operation's transaction, so nothing of it is kept."""
