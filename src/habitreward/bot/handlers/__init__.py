"""All of the bot's own handlers. ``register(application)`` adds them to an Application."""

from __future__ import annotations

from typing import Any


def register(application: Any) -> None:
    """Add every built-in handler to ``application`` (placeholder until the flows land)."""
