"""Helpers shared by the bot's flow tests (tests/test_bot_*.py); not a test module itself."""

from __future__ import annotations

import random
from collections.abc import Iterator

from habitreward.testing.builders import callback_update
from habitreward.testing.driver import BotDriver, Reply
from habitreward.testing.engines import make_engine

LANGS = ("en", "ru", "kk")
ADMIN, ANN, BOB = 1, 2, 3


def drivers(db_url: str, clock, botapi) -> Iterator:
    """Body of each file's ``tg`` fixture: ``tg(**settings)`` -> a started BotDriver on a
    fresh engine with those settings (ADMIN_TELEGRAM_IDS=1 unless given)."""
    made: list[BotDriver] = []

    def start(**settings) -> BotDriver:
        settings.setdefault("admin_telegram_ids", str(ADMIN))
        engine = make_engine(db_url, clock=clock, rng=random.Random(7), load_entry_points=False, **settings)
        driver = BotDriver(engine, botapi).start()
        made.append(driver)
        return driver

    yield start
    for driver in made:
        driver.stop()
        driver.engine.close()


def user(bot: BotDriver, tid: int = ANN, lang: str = "en", admin: bool = False):
    """An active user who chose ``lang``."""
    return bot.engine.add_user(tid, f"User{tid}", active=True, admin=admin, language=lang)


def coffee_setup(bot: BotDriver, owner, pieces: int = 3):
    """A habit and a reward that every completion wins (no "none" entry, no daily cap)."""
    habit = bot.engine.add_habit("Running", owner=owner)
    reward = bot.engine.add_reward("Coffee", pieces_required=pieces, max_per_day=0, owner=owner)
    return habit, reward


def buttons(reply: Reply) -> list[str]:
    return reply.button_texts


def forge(bot: BotDriver, tid: int, data: str, lang: str = "en") -> Reply:
    """Press a button with any callback data, as a modified client could."""
    message_id = bot.api.sent(tid)[-1]["message_id"]
    return bot.process(callback_update(tid, data, message_id=message_id, language_code=lang))
