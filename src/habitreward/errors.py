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
    """A plugin's hook answered what its contract does not allow; the message names the hook and
    the plugin.
    Raised inside the operation's transaction, so nothing of it is kept."""


class UpdateAppliedElsewhere(HabitRewardError):
    """``habitreward serve``: the update being processed was applied by another process while
    this one ran it too (possible on PostgreSQL when the database dropped the connection holding
    this process's lock on it). Raised at the commit of the second application's transaction,
    so nothing of it is kept; the bot says nothing more (the other process answered)."""

    #: What the inbox mark's guard makes PostgreSQL say (see habitreward.server.applied).
    MARKER = "habitreward: update applied elsewhere"

    @classmethod
    def raise_for(cls, exc: BaseException) -> None:
        """Raise this instead of ``exc`` when ``exc`` is the guard's refusal."""
        if cls.MARKER in str(exc):
            raise cls("the update was applied by another process") from None
