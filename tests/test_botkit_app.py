"""The bot platform: build_application, BotContext, the Bot API stand-in and the driver,
exercised with small handlers a plugin registers (the real flows are tested elsewhere)."""

from __future__ import annotations

import json
import logging

import httpx
import pytest
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, ReplyKeyboardMarkup, Update
from telegram.error import Forbidden
from telegram.ext import CallbackQueryHandler, CommandHandler, MessageHandler, filters

from habitreward import hookimpl
from habitreward.bot.app import build_application
from habitreward.bot.context import BotContext
from habitreward.errors import ConfigError
from habitreward.testing.builders import callback_update, message_update
from habitreward.testing.driver import BotDriver


class TinyPlugin:
    """/ping answers with the number of users the engine knows; /menu shows buttons."""

    @hookimpl
    def habitreward_register_handlers(self, register, settings):
        async def ping(update: Update, context: BotContext) -> None:
            user, _ = context.engine.register(update.effective_user.id, update.effective_user.first_name)
            await update.message.reply_text(f"pong, {user.name}: {len(context.engine.list_users())} user(s)")

        async def menu(update: Update, context: BotContext) -> None:
            await update.message.reply_text("Pick <b>one</b>", reply_markup=menu_keyboard(), parse_mode="HTML")

        def menu_keyboard() -> InlineKeyboardMarkup:
            return InlineKeyboardMarkup([[InlineKeyboardButton("Running", callback_data="pick:run"),
                                          InlineKeyboardButton("Reading", callback_data="pick:read")],
                                         [InlineKeyboardButton("Refresh", callback_data="refresh"),
                                          InlineKeyboardButton("Docs", url="https://example.org/docs")]])

        async def refresh(update: Update, context: BotContext) -> None:
            await update.callback_query.answer()
            await update.callback_query.edit_message_text("Pick <b>one</b>", reply_markup=menu_keyboard(),
                                                          parse_mode="HTML")

        async def picked(update: Update, context: BotContext) -> None:
            query = update.callback_query
            await query.answer("Noted")
            await query.edit_message_text(f"You picked {query.data.split(':')[1]}")

        async def keyboard(update: Update, context: BotContext) -> None:
            await update.message.reply_text("Choose", reply_markup=ReplyKeyboardMarkup([["Yes", "No"]]))

        async def echo(update: Update, context: BotContext) -> None:
            await update.message.reply_text(f"You said: {update.message.text}")

        async def boom(update: Update, context: BotContext) -> None:
            raise ValueError("handler bug")

        register(CommandHandler("ping", ping), description="Check that the bot answers")
        register(CommandHandler("menu", menu))
        register(CommandHandler("keyboard", keyboard))
        register(CommandHandler("boom", boom))
        register(CallbackQueryHandler(picked, pattern=r"^pick:"))
        register(CallbackQueryHandler(refresh, pattern=r"^refresh$"))
        register(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))


@pytest.fixture
def bot(engine, botapi):
    """Only this module's handlers: the platform is under test here, not the bot's flows."""
    with BotDriver(engine, botapi, build=platform_only) as driver:
        yield driver


def platform_only(engine, **kwargs):
    return build_application(engine, builtin_handlers=False, **kwargs)


@pytest.fixture
def engine(engine):
    engine.pm.register(TinyPlugin(), name="tiny")
    return engine


def test_handlers_reach_the_engine_through_the_context(bot, engine, botapi):
    reply = bot.send(42, "/ping", first_name="Ann")

    assert reply.texts == ["pong, Ann: 1 user(s)"]
    assert reply[0]["chat_id"] == 42
    assert engine.get_user(42).name == "Ann"
    assert botapi.last_text(42) == "pong, Ann: 1 user(s)"


def test_buttons_are_pressed_by_their_text_and_edits_are_seen(bot, botapi):
    shown = bot.send(7, "/menu")
    assert shown.buttons == [[("Running", "pick:run"), ("Reading", "pick:read")],
                             [("Refresh", "refresh"), ("Docs", None)]]
    with pytest.raises(AssertionError, match="'Docs' sends nothing to the bot .it opens https://example.org/docs"):
        bot.press(7, "Docs")
    assert shown[0]["parse_mode"] == "HTML"

    edited = bot.press(7, "Reading")

    assert edited.text == "You picked read"
    assert edited[0]["method"] == "editMessageText"
    assert edited[0]["message_id"] == shown[0]["message_id"]
    assert edited.buttons == []  # the edit removed the keyboard
    assert [a["text"] for a in botapi.answers()] == ["Noted"]
    with pytest.raises(AssertionError, match="No button 'Running'"):
        bot.press(7, "Running")  # that keyboard is gone


def test_reply_keyboard_buttons_send_their_text(bot):
    bot.send(7, "/keyboard")
    assert bot.press(7, "No").text == "You said: No"


def test_message_ids_increase_per_chat(bot, botapi):
    bot.send(1, "hello")
    bot.send(1, "again")
    bot.send(2, "hello")
    ids_1 = [m["message_id"] for m in botapi.sent(1)]
    assert ids_1 == sorted(ids_1) and len(set(ids_1)) == 2
    assert [m["text"] for m in botapi.sent(2)] == ["You said: hello"]


def test_a_handler_bug_fails_the_test_that_caused_it(bot):
    with pytest.raises(AssertionError, match="handler bug"):
        bot.send(5, "/boom")
    assert bot.send(5, "/ping").text.startswith("pong")  # the bot still works


def test_a_user_who_blocked_the_bot_crashes_nothing(bot, botapi, engine, caplog):
    caplog.set_level(logging.INFO, logger="habitreward.bot.app")
    botapi.fail_next("sendMessage", 403)

    assert bot.send(9, "/ping") == []  # nothing delivered, no exception

    assert any(isinstance(e, Forbidden) for e in bot.errors)
    assert "bot was blocked by the user" in caplog.text
    assert engine.find_user(9) is not None  # what the handler stored before answering stays
    assert bot.send(9, "/ping").text == "pong, Test: 1 user(s)"


def test_flood_control_is_waited_out_and_the_message_delivered(bot, botapi):
    botapi.fail_next("sendMessage", 429, retry_after=1)

    reply = bot.send(9, "/ping")

    assert reply.texts == ["pong, Test: 1 user(s)"]
    assert [m for m, _ in botapi.calls].count("sendMessage") == 2  # refused once, then retried
    assert bot.errors == []


def test_the_token_is_required(db_url, clock):
    from habitreward.testing.engines import make_engine

    engine = make_engine(db_url, clock=clock, load_entry_points=False)
    try:
        with pytest.raises(ConfigError, match="TELEGRAM_BOT_TOKEN"):
            build_application(engine)
    finally:
        engine.close()


@pytest.mark.no_db
def test_the_api_url_comes_from_the_settings(tmp_path, botapi):
    from habitreward.testing.engines import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}", load_entry_points=False,
                         telegram_bot_token="777:SECRET", telegram_api_url=botapi.base_url)
    try:
        with BotDriver(engine, botapi, token="777:SECRET", build=lambda e, **kw: build_application(
                e, updater=False, persistence=False)) as driver:
            assert driver.application.bot.username == "habitreward_test_bot"
            assert driver.application.bot.id == 777
        assert botapi.calls[0][0] == "getMe"
        assert driver.application is None
    finally:
        engine.close()


@pytest.mark.no_db
def test_standin_long_polling_honours_offset(botapi):
    botapi.queue_update(message_update(1, "a", update_id=10))
    botapi.queue_update(message_update(1, "b", update_id=11))
    url = f"{botapi.base_url}1:T/getUpdates"

    first = httpx.post(url, data={"offset": "0", "timeout": "0"}).json()
    confirmed = httpx.post(url, data={"offset": "11", "timeout": "0"}).json()
    empty = httpx.post(url, data={"offset": "12", "timeout": "0"}).json()

    assert [u["update_id"] for u in first["result"]] == [10, 11]
    assert [u["message"]["text"] for u in confirmed["result"]] == ["b"]
    assert empty == {"ok": True, "result": []}


@pytest.mark.no_db
def test_standin_answers_errors_like_telegram(botapi):
    botapi.fail_next("sendMessage", 400, "Bad Request: chat not found")
    url = f"{botapi.base_url}1:T/sendMessage"

    refused = httpx.post(url, data={"chat_id": "5", "text": "hi"})
    delivered = httpx.post(url, data={"chat_id": "5", "text": "42", "reply_markup": '{"inline_keyboard": []}'})

    assert refused.status_code == 400
    assert refused.json() == {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}
    assert delivered.json()["result"]["text"] == "42"  # a numeric text stays a string
    assert botapi.calls[-1] == ("sendMessage", {"chat_id": 5, "text": "42", "reply_markup": {"inline_keyboard": []}})


@pytest.mark.no_db
def test_standin_misbehaves_as_an_unwell_telegram_on_request(botapi):
    """A slow answer, an answer cut off mid-way, an outage and one chat's flood control: each
    call was done (the message delivered) even when the client never heard of it."""
    url = f"{botapi.base_url}1:T/sendMessage"
    botapi.delay_next("sendMessage", 2.0)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(url, json={"chat_id": 5, "text": "slow"}, timeout=0.3)
    botapi.cut_next("sendMessage")
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(url, json={"chat_id": 5, "text": "cut"})
    botapi.fail_next("sendMessage", 429, retry_after=3, chat_id=6)
    assert httpx.post(url, json={"chat_id": 5, "text": "other chat"}).status_code == 200
    assert httpx.post(url, json={"chat_id": 6, "text": "flooded"}).status_code == 429
    base_url = botapi.base_url
    botapi.go_down()
    with pytest.raises(httpx.ConnectError):
        httpx.post(url, json={"chat_id": 5, "text": "down"})
    botapi.come_back()
    assert botapi.base_url == base_url
    assert httpx.post(url, json={"chat_id": 5, "text": "back"}).status_code == 200

    from test_serve_kit import wait_until

    wait_until(lambda: len(botapi.sent(5)) == 4, what="the slow call done once its delay is over")
    assert sorted(m["text"] for m in botapi.sent(5)) == ["back", "cut", "other chat", "slow"]
    assert botapi.sent(6) == []


@pytest.mark.no_db
def test_builders_make_updates_ptb_understands():
    msg = Update.de_json(message_update(3, "/start@habitreward_test_bot hi", language_code="ru"), None)
    press = Update.de_json(callback_update(3, "x:1", message_id=8), None)

    assert msg.message.text.startswith("/start")
    assert msg.message.entities[0].type == "bot_command"
    assert msg.message.entities[0].length == len("/start@habitreward_test_bot")
    assert msg.effective_user.language_code == "ru"
    assert press.callback_query.data == "x:1"
    assert press.callback_query.message.message_id == 8
    assert press.update_id > msg.update_id


def test_the_driver_starts_the_application_as_run_polling_does(engine, botapi):
    def build(engine, **kwargs):
        app = platform_only(engine, **kwargs)

        async def post_init(application):
            await application.bot.set_my_commands([("ping", "Check the bot answers")], language_code="en")

        app.post_init = post_init
        return app

    with BotDriver(engine, botapi, build=build):
        assert botapi.commands("en") == [{"command": "ping", "description": "Check the bot answers"}]


def test_a_press_reports_the_toast_it_showed(bot):
    bot.send(7, "/menu")
    assert bot.press(7, "pick:run").alert == "Noted"


@pytest.mark.no_db
def test_standin_refuses_edits_as_telegram_does(botapi):
    url = f"{botapi.base_url}1:T/"
    sent = httpx.post(url + "sendMessage", data={"chat_id": "5", "text": "Hi"}).json()["result"]
    edit = {"chat_id": "5", "message_id": str(sent["message_id"]), "text": "Hi"}

    same = httpx.post(url + "editMessageText", data=edit)
    changed = httpx.post(url + "editMessageText", data={**edit, "text": "Hello"})
    missing = httpx.post(url + "editMessageText", data={**edit, "message_id": "999"})

    assert same.status_code == 400 and "message is not modified" in same.json()["description"]
    assert changed.json()["result"]["text"] == "Hello"
    assert missing.json()["description"] == "Bad Request: message to edit not found"
    assert botapi.messages(5)[0]["text"] == "Hello"


def test_pressing_a_button_that_changes_nothing_is_harmless(bot):
    from telegram.error import BadRequest

    bot.send(7, "/menu")
    assert bot.press(7, "Refresh") == []  # Telegram refuses the identical edit; the bot shrugs

    assert [type(e) for e in bot.errors] == [BadRequest]
    assert bot.press(7, "Running").text == "You picked run"


def test_flood_control_that_does_not_end_is_logged_and_the_bot_goes_on(habitreward_engine, botapi, caplog):
    from telegram.error import RetryAfter

    habitreward_engine.pm.register(TinyPlugin(), name="tiny")  # SQLite only: this test waits ~3 s
    botapi.fail_next("sendMessage", 429, retry_after=1, times=3)  # the first try and both retries
    with BotDriver(habitreward_engine, botapi, build=platform_only) as bot:
        assert bot.send(9, "/ping") == []
        assert [type(e) for e in bot.errors] == [RetryAfter]
        assert "flood control" in caplog.text
        assert bot.send(9, "/ping").text == "pong, Test: 1 user(s)"


@pytest.mark.no_db
@pytest.mark.parametrize(("text", "markup", "error"), [
    ("Done: <b>Run</b> <x>", None, 'Unsupported start tag "x" at byte offset 17'),
    ("Your habit <b>&", None, 'Can\'t find end tag corresponding to start tag "b"'),
    ("<b>bold <i>both</b></i>", None, 'Unmatched end tag at byte offset 15, expected "</i>", found "</b>"'),
    ("x" * 4097, None, "message is too long"),
    ("a" + "🏃" * 2048, None, "message is too long"),  # 4097 UTF-16 units: an emoji counts twice
    ("", None, "message text is empty"),
    ("Pick", {"inline_keyboard": [[{"text": str(i), "callback_data": str(i)}] for i in range(101)]},
     "reply markup is too long"),
    ("Pick", {"inline_keyboard": [[{"text": str(i), "callback_data": str(i)} for i in range(9)]]},
     "reply markup is too long"),
    ("Pick", {"inline_keyboard": [[{"text": "A", "callback_data": "x" * 65}]]}, "BUTTON_DATA_INVALID"),
    ("Pick", {"inline_keyboard": [[{"text": "A"}]]}, "text buttons are unallowed in the inline keyboard"),
])
def test_standin_refuses_what_telegram_refuses(botapi, text, markup, error):
    params = {"chat_id": "5", "text": text, "parse_mode": "HTML"}
    if markup:
        params["reply_markup"] = json.dumps(markup)

    answer = httpx.post(f"{botapi.base_url}1:T/sendMessage", data=params)

    assert answer.status_code == 400
    assert error in answer.json()["description"]
    assert botapi.sent() == []


@pytest.mark.no_db
def test_standin_accepts_what_telegram_accepts(botapi):
    text = "<b>" + "&lt;" * 4096 + "</b>"  # 4096 characters once parsed
    markup = {"inline_keyboard": [[{"text": str(i), "callback_data": "d" * 64} for i in range(8)]
                                  for _ in range(12)] + [[{"text": "Menu", "callback_data": "menu"}] * 4]}

    answer = httpx.post(f"{botapi.base_url}1:T/sendMessage",
                        data={"chat_id": "5", "text": text, "parse_mode": "HTML", "reply_markup": json.dumps(markup)})

    assert answer.json()["ok"] is True, answer.json()
    assert len(botapi.last_buttons(5)) == 13


def test_a_malformed_message_fails_the_test_that_sent_it(engine, botapi):
    class Careless:
        @hookimpl
        def habitreward_register_handlers(self, register, settings):
            async def show(update: Update, context: BotContext) -> None:
                await update.message.reply_text(f"Habit <b>{context.args[0]}</b>", parse_mode="HTML")

            register(CommandHandler("show", show))

    engine.pm.register(Careless())
    with BotDriver(engine, botapi, build=platform_only) as bot:
        assert bot.send(5, "/show Run").text == "Habit <b>Run</b>"
        with pytest.raises(AssertionError, match="(?i)message '/show <b>&' from 5: BadRequest.*can't parse entities"):
            bot.send(5, "/show <b>&")  # the name was not escaped


def test_plugins_can_put_their_commands_in_the_menu(bot):
    assert bot.application.plugin_commands == [("ping", "Check that the bot answers")]
