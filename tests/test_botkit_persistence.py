"""Bot state in the database: a conversation continues after a restart (clean or a crash)
and across processes sharing the database; user data follows the user."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from telegram import Update
from telegram.ext import CommandHandler, ConversationHandler, MessageHandler, filters

from habitreward import hookimpl
from habitreward.bot.app import build_application
from habitreward.bot.context import BotContext
from habitreward.engine import Engine
from habitreward.models import KeyValue
from habitreward.plugins import make_plugin_manager
from habitreward.testing.driver import BotDriver

NAME, WEIGHT = range(2)


class AddHabitConversation:
    """A two-step "add habit" conversation, kept by the database persistence."""

    @hookimpl
    def habitreward_register_handlers(self, register, settings):
        async def start(update: Update, context: BotContext) -> int:
            await update.message.reply_text("Name of the habit?")
            return NAME

        async def got_name(update: Update, context: BotContext) -> int:
            context.user_data["name"] = update.message.text
            await update.message.reply_text(f"Weight of {update.message.text}?")
            return WEIGHT

        async def got_weight(update: Update, context: BotContext) -> int:
            name = context.user_data.pop("name")
            habit = context.engine.add_habit(name, weight=int(update.message.text))
            await update.message.reply_text(f"Added {habit.name} ({habit.weight})")
            return ConversationHandler.END

        async def cancel(update: Update, context: BotContext) -> int:
            await update.message.reply_text("Cancelled")
            return ConversationHandler.END

        async def remember(update: Update, context: BotContext) -> None:
            context.user_data["colour"] = context.args[0]
            await update.message.reply_text("Remembered")

        async def recall(update: Update, context: BotContext) -> None:
            await update.message.reply_text(f"Colour: {context.user_data.get('colour', '?')}")

        async def motd(update: Update, context: BotContext) -> None:
            await update.message.reply_text(f"MOTD: {context.bot_data.get('motd', '-')}")

        async def store_junk(update: Update, context: BotContext) -> None:
            context.user_data["when"] = object()
            await update.message.reply_text("Stored")

        register(ConversationHandler(
            entry_points=[CommandHandler("add", start)],
            states={NAME: [MessageHandler(filters.TEXT & ~filters.COMMAND, got_name)],
                    WEIGHT: [MessageHandler(filters.Regex(r"^\d+$"), got_weight)]},
            fallbacks=[CommandHandler("cancel", cancel)],
            name="add_habit", persistent=True,
        ))
        register(CommandHandler("remember", remember))
        register(CommandHandler("recall", recall))
        register(CommandHandler("junk", store_junk))
        register(CommandHandler("motd", motd))


def with_plugin(engine):
    engine.pm.register(AddHabitConversation(), name="add-habit-conversation")
    return engine


def another_engine(engine, clock):
    """A second Engine and plugin manager for a second Application in this process.

    It shares the first one's Database object: models are bound to one global
    proxy, so two Database objects in one process would fight over it. Separate
    processes are tested for real below.
    """
    return with_plugin(Engine(engine.settings, database=engine.db, clock=clock, rng=random.Random(2),
                              plugin_manager=make_plugin_manager(load_entry_points=False)))


@pytest.fixture
def bot(engine, botapi):
    """Only this module's handlers: the platform is under test here, not the bot's flows."""
    with BotDriver(engine, botapi, build=platform_only) as driver:
        yield driver


def platform_only(engine, **kwargs):
    return build_application(engine, builtin_handlers=False, **kwargs)


@pytest.fixture
def engine(engine):
    return with_plugin(engine)


def conversation_rows() -> list[tuple[str, str]]:
    return list(KeyValue.select(KeyValue.key, KeyValue.value)
                .where(KeyValue.namespace == "bot.conversations").tuples())


@pytest.mark.parametrize("crash", [False, True], ids=["clean-restart", "crash"])
def test_a_restart_continues_the_conversation(bot, engine, crash):
    bot.send(42, "/add")
    assert bot.send(42, "Running").text == "Weight of Running?"

    bot.restart(crash=crash)  # a new Application on the same database

    assert bot.send(42, "25").text == "Added Running (25)"
    assert [(h.name, h.weight) for h in engine.all_habits()] == [("Running", 25)]
    assert conversation_rows() == []  # the finished conversation left nothing behind


def test_a_restarted_bot_does_not_continue_a_cancelled_conversation(bot):
    bot.send(42, "/add")
    bot.send(42, "/cancel")
    bot.restart(crash=True)
    assert bot.send(42, "25").texts == []  # no conversation: nobody answers a bare number


def test_two_applications_share_one_conversation(engine, clock, botapi):
    """Two Applications on one database take turns, as two webhook workers behind a balancer."""
    with BotDriver(engine, botapi, build=platform_only) as a, \
            BotDriver(another_engine(engine, clock), botapi, build=platform_only) as b:
        # both started before the conversation began: each holds its own in-memory copy
        assert a.send(7, "/add").text == "Name of the habit?"
        assert b.send(7, "Reading").text == "Weight of Reading?"
        assert a.send(7, "15").text == "Added Reading (15)"
        # and the end of it is seen by the other one too
        assert b.send(7, "15").texts == []
        assert [(h.name, h.weight) for h in engine.all_habits()] == [("Reading", 15)]


def test_user_data_survives_a_restart_and_follows_the_user_across_applications(bot, engine, botapi, clock):
    bot.send(3, "/remember teal")
    bot.restart(crash=True)
    assert bot.send(3, "/recall").text == "Colour: teal"

    with BotDriver(another_engine(engine, clock), botapi, build=platform_only) as elsewhere:
        assert elsewhere.send(3, "/recall").text == "Colour: teal"
        elsewhere.send(3, "/remember plum")
    assert bot.send(3, "/recall").text == "Colour: plum"  # the first Application sees the change
    stored = KeyValue.get((KeyValue.namespace == "bot.user_data") & (KeyValue.key == "3"))
    assert json.loads(stored.value) == {"colour": "plum"}


def test_data_that_is_not_json_is_a_clear_error(bot):
    with pytest.raises(AssertionError, match="user_data of user 5 cannot be stored: it must be JSON"):
        bot.send(5, "/junk")


def test_a_separate_process_continues_the_conversation(bot, engine, db_url, tmp_path):
    """A real second process (its own interpreter and Application) takes over mid-conversation."""
    bot.send(11, "/add")
    bot.send(11, "Swimming")
    script = textwrap.dedent(f"""
        import json, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_botkit_persistence import with_plugin
        from habitreward.testing.botapi import BotApiStandIn
        from habitreward.testing.driver import BotDriver
        from habitreward.testing.engines import make_engine
        from test_botkit_persistence import platform_only
        engine = with_plugin(make_engine({db_url!r}, load_entry_points=False))
        with BotApiStandIn() as api, BotDriver(engine, api, build=platform_only) as bot:
            print(json.dumps(bot.send(11, "30").texts))
        engine.close()
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == ["Added Swimming (30)"]
    assert [(h.name, h.weight) for h in engine.all_habits()] == [("Swimming", 30)]


def test_forgetting_a_user_removes_only_their_bot_state(bot, engine):
    from habitreward.bot.persistence import forget_user

    bot.send(21, "/remember red")
    bot.send(21, "/add")
    bot.send(22, "/remember blue")
    bot.send(22, "/add")

    assert forget_user(engine, 21) == 2  # user_data and the conversation (empty chat_data is never stored)

    remaining = sorted((kv.namespace, kv.key) for kv in KeyValue.select())
    assert ("bot.user_data", "21") not in remaining
    assert ("bot.conversations", "add_habit:[21,21]") not in remaining
    assert ("bot.user_data", "22") in remaining and ("bot.conversations", "add_habit:[22,22]") in remaining
    bot.restart()
    assert bot.send(21, "/recall").text == "Colour: ?"
    assert bot.send(22, "/recall").text == "Colour: blue"


def test_updates_of_different_users_processed_at_once_keep_their_own_state(bot, botapi):
    """`habitreward serve` runs different users' updates concurrently on one loop."""
    from habitreward.testing.builders import message_update

    users = [31, 32, 33, 34]
    bot.process_concurrently([message_update(u, f"/remember c{u}") for u in users])
    bot.process_concurrently([message_update(u, "/add") for u in users])
    bot.process_concurrently([message_update(u, f"H{u}") for u in users])
    bot.process_concurrently([message_update(u, str(u)) for u in users])
    bot.process_concurrently([message_update(u, "/recall") for u in users])

    for u in users:
        texts = [m["text"] for m in botapi.sent(u)]
        assert texts[-2:] == [f"Added H{u} ({u})", f"Colour: c{u}"]


def test_concurrent_updates_each_read_their_state_once_and_see_bot_data_another_process_wrote(
        bot, engine, botapi, monkeypatch):
    """Each update reads its rows (bot_data included) in one statement, also when updates of
    several users are in flight on the loop at once; none reads the table a second time."""
    import asyncio

    from habitreward.bot.persistence import DatabasePersistence
    from habitreward.testing.builders import message_update

    assert bot.send(40, "/motd").text == "MOTD: -"
    asyncio.run(DatabasePersistence(engine).update_bot_data({"motd": "rain at noon"}))  # another process

    reads = []
    execute_sql = engine.db.execute_sql

    def counting(sql, *args, **kwargs):
        if "key_values" in sql and sql.lstrip().upper().startswith("SELECT"):
            reads.append(sql)
        return execute_sql(sql, *args, **kwargs)

    monkeypatch.setattr(engine.db, "execute_sql", counting)
    users = [41, 42, 43, 44, 45]
    bot.process_concurrently([message_update(u, "/motd") for u in users])

    assert [botapi.sent(u)[-1]["text"] for u in users] == ["MOTD: rain at noon"] * len(users)
    assert len(reads) == len(users)


@pytest.mark.postgres_only  # on SQLite these are local calls, made on the loop on purpose
def test_on_postgres_a_dialog_step_writes_its_state_off_the_event_loop(bot, engine, monkeypatch):
    """A changed conversation state or user_data is written on a worker thread: on PostgreSQL
    a write is a round trip, and the event loop serves other users meanwhile."""
    import threading

    writes: list[tuple[str, str]] = []
    execute_sql = engine.db.execute_sql

    def spy(sql, *args, **kwargs):
        if "key_values" in sql and not sql.lstrip().upper().startswith("SELECT"):
            writes.append((threading.current_thread().name, sql.split()[0]))
        return execute_sql(sql, *args, **kwargs)

    monkeypatch.setattr(engine.db, "execute_sql", spy)
    assert bot.send(50, "/add").text == "Name of the habit?"
    assert bot.send(50, "Stretching").text == "Weight of Stretching?"
    assert bot.send(50, "2").text == "Added Stretching (2)"
    assert writes, "the dialog wrote its state"
    assert [thread for thread, _ in writes if thread == "BotDriver"] == []
    assert conversation_rows() == []  # ended: its row deleted


def test_callback_data_and_bot_data_round_trip_as_json(engine):
    import asyncio

    from habitreward.bot.persistence import DatabasePersistence

    async def scenario():
        first = DatabasePersistence(engine)
        assert await first.get_callback_data() is None
        await first.update_callback_data(([("uuid-1", 1767614400.5, {"btn": ["habit", 3]})], {"q1": "uuid-1"}))
        await first.update_bot_data({"announcement": "Привет"})
        again = DatabasePersistence(engine)  # another process, or after a restart
        return await again.get_callback_data(), await again.get_bot_data()

    callback_data, bot_data = asyncio.run(scenario())
    assert callback_data == ([("uuid-1", 1767614400.5, {"btn": ["habit", 3]})], {"q1": "uuid-1"})
    assert bot_data == {"announcement": "Привет"}


def test_deleting_a_user_forgets_what_the_running_bot_remembered(bot, engine):
    engine.add_user(21, "Ann", active=True)
    bot.send(21, "/remember red")
    bot.send(21, "/add")

    engine.delete_user(21)  # `habitreward users delete 21`, while the bot runs

    assert [kv for kv in KeyValue.select() if kv.key in ("21",) or "[21," in kv.key] == []
    assert bot.send(21, "/recall").text == "Colour: ?"  # the running bot forgot too
    assert bot.send(21, "25").texts == []  # and the half-done conversation is gone


def test_a_persistent_conversation_added_later_is_refreshed_too(engine):
    """The bot looks for persistent conversations once, and again when handlers change."""
    app = platform_only(engine, token="123456:TEST", base_url="http://127.0.0.1:9/bot")
    assert [h.name for h in app._persistent_conversations()] == ["add_habit"]
    late = ConversationHandler(entry_points=[CommandHandler("late", lambda u, c: None)], states={}, fallbacks=[],
                               name="late", persistent=True)
    app.add_handler(late, group=5)
    assert [h.name for h in app._persistent_conversations()] == ["add_habit", "late"]
    app.remove_handler(late, group=5)
    assert [h.name for h in app._persistent_conversations()] == ["add_habit"]
