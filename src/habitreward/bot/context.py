"""The context every handler receives: PTB's CallbackContext plus the engine."""

from __future__ import annotations

import contextvars
import datetime as dt
from typing import TYPE_CHECKING, Any

from telegram.ext import CallbackContext, ExtBot

if TYPE_CHECKING:
    from habitreward.engine import Engine

#: When the update being handled reached the server (aware UTC): set by ``habitreward serve``,
#: which stores each update before handling it, maybe much later (a backlog, a restart). None
#: where an update is handled as it arrives (``habitreward chat``, tests without the server).
update_received_at: contextvars.ContextVar[dt.datetime | None] = contextvars.ContextVar(
    "habitreward_update_received_at", default=None
)


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
