"""`habitreward chat`: the real Application against the stand-in, in a terminal."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import ApplicationHandlerStop, CallbackQueryHandler, CommandHandler, MessageHandler, filters

from habitreward import hookimpl
from habitreward.cli import cli
from habitreward.testing.engines import make_engine


@hookimpl
def habitreward_register_handlers(register, settings):
    """A tiny bot in front of the real one (group -10, stopping there), so these tests see
    the chat mechanics, not the flows (registered only via HABITREWARD_EXTRA_PLUGINS)."""

    async def start(update: Update, context) -> None:
        user = context.engine.find_user(update.effective_user.id)
        if user is None:  # a newcomer: the real bot's /start asks an admin
            return
        habits = context.engine.habits_for(user)
        keyboard = [[InlineKeyboardButton(h.name, callback_data=f"t:{h.id}") for h in habits]]
        await update.message.reply_text("Pick <b>a habit</b> &amp; go", parse_mode="HTML",
                                        reply_markup=InlineKeyboardMarkup(keyboard))
        raise ApplicationHandlerStop

    async def done(update: Update, context) -> None:
        user = context.engine.get_user(update.effective_user.id)
        habit = context.engine.get_habit(user, int(update.callback_query.data.split(":")[1]))
        result = context.engine.complete(user, habit, source="test")
        await update.callback_query.answer("Nice")
        await update.callback_query.edit_message_text(f"Logged {habit.name}, streak {result.streak}")
        raise ApplicationHandlerStop

    async def echo(update: Update, context) -> None:
        await update.message.reply_text(f"echo: {update.message.text}")
        raise ApplicationHandlerStop

    async def lang(update: Update, context) -> None:
        await update.message.reply_text(f"lang: {update.effective_user.language_code}")
        raise ApplicationHandlerStop

    register(CommandHandler("lang", lang), group=-10)
    register(CommandHandler("start", start), group=-10)
    register(CallbackQueryHandler(done, pattern=r"^t:"), group=-10)
    register(MessageHandler(filters.TEXT & ~filters.COMMAND, echo), group=-10)


@pytest.fixture
def db_url(tmp_path):
    """`chat` is the newcomer's tool on the default SQLite database (the suite's both-backend
    ``db_url`` adds nothing here: the bot's storage is tested on both elsewhere)."""
    return f"sqlite:///{tmp_path / 'habitreward.db'}"


@pytest.fixture
def chat(db_url, tmp_path, monkeypatch):
    """Run `habitreward chat ARGS` with INPUT typed; returns the click Result."""
    monkeypatch.chdir(tmp_path)

    def run(*args: str, input: str = "/quit\n", tiny_bot: bool = True):
        if tiny_bot:
            monkeypatch.setenv("HABITREWARD_EXTRA_PLUGINS", __name__)
        else:
            monkeypatch.delenv("HABITREWARD_EXTRA_PLUGINS", raising=False)
        return CliRunner().invoke(cli, ["--database-url", db_url, "--env-file", os.devnull,
                                        "chat", *args], input=input, catch_exceptions=False)

    return run


def open_engine(db_url):
    return make_engine(db_url, load_entry_points=False)


def test_a_newcomer_becomes_admin_gets_a_demo_and_presses_numbered_buttons(chat, db_url):
    result = chat("--user", "5", "--name", "Ann", input="1\nhello there\n/quit\n")

    assert result.exit_code == 0, result.output
    out = result.output
    assert "you (Ann, id 5) are an active admin" in out
    assert "Demo set added: Running, Reading, Meditation" in out
    assert "bot> Pick a habit & go" in out  # HTML rendered for the terminal
    assert "  [1] Meditation  [2] Reading  [3] Running" in out
    assert "(pressed Meditation)" in out
    assert "[note] Nice" in out
    assert "bot (edited)> Logged Meditation, streak 1" in out
    assert "bot> echo: hello there" in out
    assert out.rstrip().endswith("Bye.")
    engine = open_engine(db_url)
    try:
        user = engine.get_user(5)
        assert (user.name, user.active, user.is_admin) == ("Ann", True, True)
        assert [entry.habit_name for entry in engine.history(user, 10)] == ["Meditation"]
        assert {r.type for r in engine.all_rewards()} >= {"none", "real"}
    finally:
        engine.close()


def test_an_existing_database_is_left_as_it_is(chat, db_url):
    chat("--user", "5", "--name", "Ann")
    again = chat("--user", "6", "--name", "Bob", "--demo", input="")  # EOF ends the chat too

    assert again.exit_code == 0, again.output
    assert "ran into an error" not in again.output
    assert "active admin" not in again.output
    assert "Demo set added" not in again.output  # already there: nothing added twice
    assert again.output.rstrip().endswith("Bye.")
    engine = open_engine(db_url)
    try:
        assert len(engine.all_habits()) == 3
        assert not engine.find_user(6) or not engine.find_user(6).is_admin
    finally:
        engine.close()


def test_no_demo_and_a_wrong_number(chat, db_url):
    result = chat("--no-demo", input="/start\n7\n/quit\n")

    assert result.exit_code == 0, result.output
    assert "Demo set added" not in result.output
    assert "echo: 7" in result.output  # no buttons shown: a number is just text


def test_numbers_that_are_no_button_and_quoted_numbers_are_sent_as_text(chat):
    result = chat(input="9\n'2\n2\n/quit\n")
    out = result.output
    assert "bot> echo: 9" in out  # only 3 buttons: 9 is text
    assert "bot> echo: 2" in out  # '2 is the text 2
    assert "(pressed Reading)" in out  # and 2 presses the second button


def test_the_real_bot_answers_in_the_terminal(chat, db_url):
    """The built-in flows, not the tiny bot: /start shows a menu with numbered buttons."""
    result = chat("--user", "8", "--name", "Cy", tiny_bot=False)

    assert result.exit_code == 0, result.output
    assert "bot> " in result.output
    assert "  [1] " in result.output
    assert "ran into an error" not in result.output


def test_language_is_what_the_telegram_app_would_send(chat, db_url):
    result = chat("--language", "ru", "--no-demo", input="/lang\n/quit\n")

    assert "bot> lang: ru" in result.output
    engine = open_engine(db_url)
    try:
        assert not engine.get_user(1).language_chosen  # not a choice: /settings can still set one
    finally:
        engine.close()


def test_the_admin_hears_of_a_newcomer_in_the_language_they_chat_in(chat, db_url):
    """The first person chatting with --language ru is the admin; a newcomer's request reached
    them in English (DEFAULT_LANGUAGE), the one message the bot sends them unasked."""
    first = chat("--language", "ru", "--name", "Аня", "--no-demo", tiny_bot=False)
    assert "Привет, Аня!" in first.output
    newcomer = chat("--user", "7", "--name", "Петя", "--language", "kk", "--no-demo", tiny_bot=False)
    assert "(to chat 1: 🆕 Петя (id 7) хочет пользоваться ботом.)" in newcomer.output
    assert "Сәлеметсіз бе! Әкімшіге сұраныс жіберілді." in newcomer.output


@pytest.mark.parametrize(("language", "typed", "logged", "habits"), [
    ("ru", "сходил на пробежку", "bot> ✅ Выполнено: Пробежка!", ["Медитация", "Пробежка", "Чтение"]),
    ("kk", "жүгіруге бардым", "bot> ✅ Жүгіру орындалды!", ["Жүгіру", "Кітап оқу", "Медитация"]),
])
def test_the_demo_set_is_in_the_language_you_chat_in(chat, db_url, language, typed, logged, habits):
    """In Russian the demo habits were "Running", "Meditation", "No reward this time" ..., and
    /help's own example of free text ("сходил на пробежку") matched none of them."""
    result = chat("--language", language, "--demo", tiny_bot=False, input=f"{typed}\n/quit\n")
    assert logged in result.output
    engine = open_engine(db_url)
    try:
        assert sorted(h.name for h in engine.habits_for(engine.get_user(1))) == habits
        assert all(not r.name.isascii() for r in engine.rewards_for(engine.get_user(1)))
    finally:
        engine.close()


def test_each_message_of_a_reply_shows_its_own_buttons(chat, db_url):
    """Two habits in one message: each completion has its own Undo, and each can be pressed."""
    result = chat("--user", "5", "--name", "Ann", "--demo", tiny_bot=False,
                  input="ran 5k and read 20 pages\n1\n/quit\n")
    assert result.exit_code == 0, result.output
    out = result.output
    first, second = out.index("bot> ✅ Reading done!"), out.index("bot> ✅ Running done!")
    assert out.count("] ↩️ Undo") == 2
    assert "[1] ↩️ Undo" in out[first:second]  # under the first completion, not only the last
    assert "(pressed ↩️ Undo)" in out and "↩️ Undone: Reading on " in out
    engine = open_engine(db_url)
    try:
        assert [entry.habit_name for entry in engine.history(engine.get_user(5), 10)] == ["Running"]
    finally:
        engine.close()
