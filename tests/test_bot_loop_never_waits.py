"""On PostgreSQL the bot's event loop never waits for the database: every screen, button and
dialog step runs its statements on a worker thread (``Screen.run``), so one user's round
trips (or a slow query, or an exhausted pool) never hold up everyone else's updates.
On SQLite the same work runs on the loop on purpose (local calls; see ``run_engine``)."""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterator

import pytest

from bot_support import ADMIN, ANN, crawl, crawl_setup, drivers, user

LOOP_THREAD = "BotDriver"  # the thread BotDriver runs python-telegram-bot's event loop on

pytestmark = pytest.mark.postgres_only  # on SQLite these are local calls, made on the loop on purpose


@pytest.fixture
def tg(db_url, clock, botapi) -> Iterator:
    yield from drivers(db_url, clock, botapi)


class StatementThreads:
    """Which thread asked the database for a cursor (every statement, BEGIN and COMMIT do),
    labelled with what the test was doing."""

    def __init__(self, database, monkeypatch):
        self.doing = ""
        self.on_loop: collections.Counter = collections.Counter()
        self.elsewhere = 0
        cursor = database.cursor

        def spy(*args, **kwargs):
            if threading.current_thread().name == LOOP_THREAD:
                self.on_loop[self.doing] += 1
            else:
                self.elsewhere += 1
            return cursor(*args, **kwargs)

        monkeypatch.setattr(database, "cursor", spy)


def test_no_button_makes_the_loop_wait_for_the_database(tg, clock, monkeypatch):
    bot = tg()
    crawl_setup(bot, clock)
    spy = StatementThreads(bot.engine.db, monkeypatch)

    def label(data: str, message: dict) -> None:
        spy.doing = data  # statements of the next press are counted under its data

    seen = crawl(bot, ADMIN, check=label)
    assert {data.split(":")[0] for data in seen} >= {"d", "u", "clx", "o", "hax", "hrx", "rrx", "lang", "tz"}
    assert spy.elsewhere > 0  # the spy sees the statements (they ran on worker threads)
    assert not spy.on_loop, f"statements on the event loop, by button: {dict(spy.on_loop)}"


def test_no_dialog_step_or_newcomer_makes_the_loop_wait_for_the_database(tg, monkeypatch):
    bot = tg(registration="approval")
    user(bot, ADMIN, admin=True)
    ann = user(bot, ANN)
    habit = bot.engine.add_habit("Running", owner=ann)
    spy = StatementThreads(bot.engine.db, monkeypatch)

    steps = [
        (ANN, "send", "/add_habit"), (ANN, "send", "Running"), (ANN, "send", "Swimming"), (ANN, "send", "500"),
        (ANN, "send", "20"),
        (ANN, "send", "/add_reward"), (ANN, "send", "Cinema"), (ANN, "press", "🎁 Real"), (ANN, "send", "4"),
        (ANN, "send", "2"),
        (ANN, "send", "/edit_habit"), (ANN, "press", "Swimming"), (ANN, "press", "Weight"), (ANN, "send", "x"),
        (ANN, "send", "30"),
        (ANN, "send", "/edit_habit"), (ANN, "press", "Running"), (ANN, "press", "🏷 Aliases"),
        (ANN, "press", "➕ Add an alias"), (ANN, "send", "jog"),
        (ANN, "send", "/timezone"), (ANN, "send", "Mars/Base"), (ANN, "send", "UTC+5"),
        (ANN, "send", "/add_habit"), (ANN, "send", "/cancel"),
        (ANN, "send", "jog"), (ANN, "send", "/habit_done"), (ANN, "send", "/claim_reward"),
        (ADMIN, "send", "/add_habit"), (ADMIN, "send", "Water"), (ADMIN, "press", "10"),
        (ADMIN, "press", "👥 Everyone"),
        (7, "send", "/start"), (7, "send", "hello"), (ADMIN, "press", "✅ Approve"),
    ]
    for tid, action, text in steps:
        spy.doing = f"{tid} {action} {text}"
        (bot.send if action == "send" else bot.press)(tid, text)

    # The steps did what they say (so the statements counted are theirs).
    assert bot.engine.find_habit(ann, "Swimming").weight == 30
    assert bot.engine.find_reward(ann, "Cinema").pieces_required == 4
    assert bot.engine.aliases_for([habit])[habit.id] == ["jog"]
    assert bot.engine.find_user(ANN).timezone == "Etc/GMT-5"
    assert len(bot.engine.history(ann, 10)) == 1  # "jog" logged Running
    assert bot.engine.find_habit(None, "Water").is_shared
    assert bot.engine.find_user(7).active
    assert spy.elsewhere > 0
    assert not spy.on_loop, f"statements on the event loop, by step: {dict(spy.on_loop)}"
