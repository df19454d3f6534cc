"""The Telegram bot: python-telegram-bot handlers over the engine. No SQL here.

``run_engine(engine, function, *args)`` is how a handler (a plugin's too) calls the engine:
on PostgreSQL on a worker thread, so the event loop never waits for a round trip.
"""

from habitreward.bot.handlers.common import run_engine

__all__ = ["run_engine"]
