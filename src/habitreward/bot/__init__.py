"""The Telegram bot: python-telegram-bot handlers over the engine. No SQL here.

``run_engine(engine, function, *args)`` is how a handler (a plugin's too) calls the engine:
on PostgreSQL on a worker thread, so the event loop never waits for a round trip.

It is looked up on first use: the built-in plugin ``habitreward.bot.state`` lives in this
package and is loaded by every command, which must not import python-telegram-bot for that.
"""

from typing import Any

__all__ = ["run_engine"]


def __getattr__(name: str) -> Any:
    if name == "run_engine":
        from habitreward.bot.handlers.common import run_engine

        return run_engine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
