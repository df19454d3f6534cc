"""The Telegram bot: python-telegram-bot handlers over the engine. No SQL here.

``run_engine(engine, function, *args)`` is how a handler (a plugin's too) calls the engine:
on PostgreSQL on a worker thread, so the event loop never waits for a round trip.
``await translator(update, context)`` is the user's :class:`~habitreward.bot.i18n.Translator`
(the language the bot speaks to them).

They are looked up on first use: the built-in plugin ``habitreward.bot.state`` lives in this
package and is loaded by every command, which must not import python-telegram-bot for that.
"""

from typing import Any

__all__ = ["run_engine", "translator"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from habitreward.bot.handlers import common

        return getattr(common, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
