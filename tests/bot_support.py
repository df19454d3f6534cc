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


def crawl_setup(bot: BotDriver, clock, lang: str = "en"):
    """An admin with a bit of everything to press: two habits with aliases, a reward that is
    achieved and claimable (won yesterday), a "no reward" entry."""
    boss = user(bot, ADMIN, lang=lang, admin=True)
    clock.advance(days=-2)
    habit, _ = coffee_setup(bot, boss, pieces=1)
    reading = bot.engine.add_habit("Reading", owner=boss)
    for h in (habit, reading):  # whichever habit the crawl edits has an alias to remove
        bot.engine.add_alias(h, "my " + h.name, actor=boss)
    bot.engine.add_reward("Nothing", type="none", owner=boss)
    clock.advance(days=1)
    bot.engine.complete(boss, habit)  # yesterday: an achieved, claimable Coffee
    clock.advance(days=1)
    return boss


def crawl(bot: BotDriver, tid: int, lang: str = "en", check=None) -> set[str]:
    """Press every button the bot shows ``tid`` (breadth first from /start; two of a kind are
    enough: time zones, weights, pages ...); ``check(data, message)`` sees every message a
    press produced. Returns the callback data pressed."""
    queue = [data for _, data in (b for row in bot.send(tid, "/start").buttons for b in row)]
    seen: set[str] = set()
    per_prefix: dict[str, int] = {}
    while queue:
        data = queue.pop(0)
        prefix = data.split(":")[0]
        if data in seen or (data.startswith("lang:") and data != f"lang:{lang}") or per_prefix.get(prefix, 0) >= 2:
            continue
        seen.add(data)
        per_prefix[prefix] = per_prefix.get(prefix, 0) + 1
        for message in forge(bot, tid, data, lang):
            if check is not None:
                check(data, message)
            queue += [d for row in message["buttons"] for _, d in row if d not in seen]
    return seen

