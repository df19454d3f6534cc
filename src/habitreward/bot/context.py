"""The context every handler receives: PTB's CallbackContext plus the engine."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from telegram.ext import CallbackContext, ExtBot

if TYPE_CHECKING:
    from habitreward.engine import Engine


class BotContext(CallbackContext[ExtBot, dict, dict, dict]):
    """``context.engine`` is the Engine the Application was built with.

    The engine lives on the Application (see ``bot.app.HabitRewardApplication``),
    not in ``bot_data``, so it is never handed to the persistence.
    """

    @property
    def engine(self) -> Engine:
        return self.application.engine  # type: ignore[attr-defined]

    @property
    def settings(self) -> Any:
        return self.application.engine.settings  # type: ignore[attr-defined]
