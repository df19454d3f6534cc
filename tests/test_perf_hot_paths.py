"""The hot path of a habit completion stays lean and correct (helper "perf", issue 4 bench):
what the shortcuts skip is still stored right, and one update reads its user once."""

from __future__ import annotations

import logging

import pytest

from habitreward.models import ProgressStatus, RewardProgress
from habitreward.server.logging_filters import limit_queue_warnings


def _stored(user, reward) -> tuple[int, bool, int]:
    row = RewardProgress.get((RewardProgress.user == user.id) & (RewardProgress.reward == reward.id))
    return row.pieces_earned, row.claimed, row.times_claimed


def test_pieces_are_stored_on_first_piece_next_piece_and_after_a_claim(engine, clock):
    user = engine.add_user(1, "Ann", active=True)
    trip = engine.add_reward("Trip", weight=1000, pieces_required=2, max_per_day=0)
    first = engine.complete(user, engine.add_habit("Run"))  # no progress row yet: inserted
    with engine.session():
        assert first.reward.name == "Trip" and _stored(user, trip) == (1, False, 0)
    second = engine.complete(user, engine.add_habit("Read"))  # the row the draw read: updated
    with engine.session():
        assert second.status is ProgressStatus.ACHIEVED and _stored(user, trip) == (2, False, 0)
    engine.claim(user, trip)
    third = engine.complete(user, engine.add_habit("Swim"))  # a claimed reward starts its next cycle
    with engine.session():
        assert (third.progress.pieces_earned, third.status) == (1, ProgressStatus.PENDING)
        assert _stored(user, trip) == (1, False, 1)
    assert third.log.reward_cycle == 1


def test_a_completion_update_reads_its_user_once(bot, engine):
    engine.add_user(7, "Ann", active=True)
    engine.add_habit("Running")
    user_reads: list[str] = []

    class Count(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            sql = record.msg[0] if isinstance(record.msg, tuple) else str(record.msg)
            if sql.startswith("SELECT") and 'FROM "users"' in sql:
                user_reads.append(sql)

    handler, peewee_log = Count(), logging.getLogger("peewee")
    level = peewee_log.level
    peewee_log.addHandler(handler)
    peewee_log.setLevel(logging.DEBUG)
    try:
        reply = bot.send(7, "Running")
    finally:
        peewee_log.removeHandler(handler)
        peewee_log.setLevel(level)
    assert "Running" in reply.text and "done" in reply.text
    assert len(user_reads) == 1, user_reads


def test_queue_depth_warnings_are_limited_and_say_how_many_were_held_back(caplog):
    from waitress.task import ThreadedTaskDispatcher

    now = [100.0]
    dispatcher = ThreadedTaskDispatcher()
    limit_queue_warnings(dispatcher)
    dispatcher.queue_logger.clock = lambda: now[0]
    with caplog.at_level(logging.WARNING, logger="waitress.queue"):
        for _ in range(5):  # no worker threads: every task waits, as under a burst
            dispatcher.add_task(object())
        assert [r.getMessage() for r in caplog.records] == ["Task queue depth is 1"]
        now[0] += 61
        dispatcher.add_task(object())
    assert caplog.records[-1].getMessage() == "Task queue depth is 6 (4 similar warning(s) held back)"


def test_a_completion_update_leaves_the_bot_state_untouched_without_flushing_it(bot, engine, monkeypatch):
    """A completion changes no bot state: PTB's flush (a copy and a task per document) is skipped,
    and the chat and user it marked are forgotten as the flush would have done."""
    from habitreward.bot.persistence import DatabasePersistence

    engine.add_user(7, "Ann", active=True)
    engine.add_habit("Running")
    flushes: list[int] = []

    async def update_user_data(self, user_id: int, data: dict) -> None:
        flushes.append(user_id)

    monkeypatch.setattr(DatabasePersistence, "update_user_data", update_user_data)
    reply = bot.send(7, "Running")
    assert "Running" in reply.text and "done" in reply.text
    assert flushes == []
    app = bot.application
    assert not app._chat_ids_to_be_updated_in_persistence and not app._user_ids_to_be_updated_in_persistence


def test_state_an_update_changes_is_still_stored_at_once(bot, engine):
    """The shortcut above never skips a write: a dialog's answers (user_data) and a group's
    message owners (chat_data) reach the database with the update that made them."""
    import json

    from habitreward.models import KeyValue

    engine.add_user(7, "Ann", active=True)
    bot.send(7, "/add_habit")  # a dialog: its state and its answers so far are stored
    bot.send(7, "Stretching")
    with engine.session():
        stored = {(row.namespace, row.key): json.loads(row.value) for row in KeyValue.select()}
    assert stored[("bot.conversations", "dialog:[7,7]")] == "habit_weight"
    assert stored[("bot.user_data", "7")]["drafts"]["7"]["name"] == "Stretching"


@pytest.mark.postgres_only
def test_state_undone_while_an_earlier_write_is_on_its_way_is_stored_undone(engine, botapi, monkeypatch):
    """Update A sets a key of bot_data; while A's write is still on a worker thread, update B
    (another user) removes it. B must not skip its flush on what was stored before A: the row
    said {"flag": 1} while the bot had {} (the next process to read it, or a crash, kept it)."""
    import asyncio
    import time

    from telegram.ext import CommandHandler

    from habitreward import hookimpl
    from habitreward.bot import persistence
    from habitreward.models import KeyValue
    from habitreward.testing.builders import message_update
    from habitreward.testing.driver import BotDriver

    async def flag_on(update, context):
        context.bot_data["flag"] = 1
        await update.message.reply_text("on")

    async def flag_off(update, context):
        await asyncio.sleep(0.1)  # while the /on flush is still writing
        context.bot_data.pop("flag", None)
        await update.message.reply_text("off")

    class Flag:
        @hookimpl
        def habitreward_register_handlers(self, register, settings):
            register(CommandHandler("on", flag_on))
            register(CommandHandler("off", flag_off))

    store = persistence.DatabasePersistence._store

    def slow_store(self, namespace, key, text):
        if namespace == "bot.bot_data":
            time.sleep(0.5)
        store(self, namespace, key, text)

    monkeypatch.setattr(persistence.DatabasePersistence, "_store", slow_store)
    engine.pm.register(Flag())
    engine.add_user(7, "Ann", active=True)
    engine.add_user(8, "Bob", active=True)
    with BotDriver(engine, botapi) as bot:
        bot.process_concurrently([message_update(7, "/on", chat_id=7, message_id=1, date=engine.now()),
                                  message_update(8, "/off", chat_id=8, message_id=1, date=engine.now())])
        assert dict(bot.application.bot_data) == {}
        time.sleep(0.6)  # every write has landed (none waits for the shutdown's flush)
        with engine.session():
            stored = KeyValue.select(KeyValue.value).where(KeyValue.namespace == "bot.bot_data").scalar()
        assert stored in (None, "{}")
