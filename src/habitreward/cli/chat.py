"""``habitreward chat``: talk to the bot in this terminal, with no token and no network."""

from __future__ import annotations

import contextlib
import getpass
import html
import logging
import re
import sys
from collections.abc import Iterator
from typing import Any

import click

from habitreward.cli.app import TRACEBACK_VERBOSITY, AppContext, cli, pass_app, verbosity
from habitreward.cli.output import TELEGRAM_ID
from habitreward.errors import PluginError

#: A token of the right shape; the stand-in accepts any.
CHAT_TOKEN = "100000:LOCAL-CHAT"

#: Per language: (name, weight) of the demo habits and (name, weight, type, pieces_required) of
#: the demo rewards. The "none" entry makes "no reward this time" part of the draw, as in real use.
#: Data, not messages: they are named in the language of whoever starts the chat (one in Russian
#: saw "Meditation" and "No reward this time" on Russian screens); /help's example of free text
#: ("went for a run") logs the first habit in each.
DEMO_SETS = {
    "en": ((("Running", 20), ("Reading", 10), ("Meditation", 10)),
           (("Coffee treat", 40, "real", 1), ("Movie night", 20, "real", 3), ("Gold star", 30, "virtual", 1),
            ("No reward this time", 30, "none", 1))),
    "ru": ((("Пробежка", 20), ("Чтение", 10), ("Медитация", 10)),
           (("Кофе", 40, "real", 1), ("Вечер кино", 20, "real", 3), ("Золотая звезда", 30, "virtual", 1),
            ("В этот раз без награды", 30, "none", 1))),
    "kk": ((("Жүгіру", 20), ("Кітап оқу", 10), ("Медитация", 10)),
           (("Кофе", 40, "real", 1), ("Кино кеші", 20, "real", 3), ("Алтын жұлдыз", 30, "virtual", 1),
            ("Бұл жолы сыйлық жоқ", 30, "none", 1))),
}


@cli.command("chat")
@click.option("--user", "user_id", type=TELEGRAM_ID, default=1, show_default=True, metavar="TELEGRAM_ID",
              help="The Telegram id you chat as (try another one to see what a newcomer sees).")
@click.option("--name", help="Your first name as Telegram would send it [default: your login name].")
@click.option("--language", metavar="CODE",
              help="Your Telegram app's language (language_code), e.g. en, ru, kk [default: DEFAULT_LANGUAGE].")
@click.option("--demo/--no-demo", default=None,
              help="Add demo habits and rewards first [default: when the database has no habits; "
                   "asks first on a terminal].")
@pass_app
def chat(app: AppContext, user_id: int, name: str | None, language: str | None, demo: bool | None) -> None:
    """Talk to your bot here: the same bot, with a stand-in for Telegram underneath.

    No bot token and no network are needed; everything is stored in the
    database as usual (SQLite by default), so what you do here is real data.
    Buttons are shown numbered, under each message that has them: type the number to press one. Anything else
    is sent as a message (commands too, e.g. /help); to send a number that is
    also a button's, start it with a quote ('3). /quit or Ctrl-D leaves.

    On a fresh database you become an active admin, and a small demo set of
    habits and rewards (a "no reward this time" entry included), named in your
    --language (en, ru or kk), is offered, so the first habit you log already
    takes part in a reward draw.

    An update a plugin fails on is answered as in Telegram ("Something went
    wrong") with one line naming the plugin (-vv: its traceback too); the
    chat goes on, and exits with code 1 when you leave.
    """
    from habitreward.testing.botapi import BotApiStandIn
    from habitreward.testing.driver import BotDriver

    engine = app.engine()
    settings = engine.settings
    name = name or _login_name()
    language = language or settings.default_language

    if not engine.has_users():
        # The first person to chat owns the bot: make them an admin who can do everything.
        # Registered as the bot registers anyone who writes: --language (Telegram's
        # language_code) is stored, not chosen, so what the bot sends them unasked (a newcomer's
        # request) is in it too, and /settings can still set one.
        engine.register(user_id, name, language_code=language)
        engine.promote_user(user_id)
        click.echo(f"New database: you ({name}, id {user_id}) are an active admin.")
    if demo is None:
        demo = not engine.has_habits() and _confirm_demo()
    if demo:
        _seed_demo(engine, language)

    click.echo("Chatting with the bot. A number presses that button ('3 sends the text 3); /quit leaves.\n")
    with BotApiStandIn() as api, BotDriver(engine, api, token=CHAT_TOKEN, raise_errors=False) as bot, \
            _plugin_tracebacks_only_when_asked():
        session = ChatSession(bot, user_id, name, language)
        session.say("/start")
        session.loop()
    if session.plugin_failures:
        raise click.ClickException(f"a plugin failed on {session.plugin_failures} update(s) during this chat"
                                   " (see above)")


@contextlib.contextmanager
def _plugin_tracebacks_only_when_asked() -> Iterator[None]:
    """The chat shows a plugin's failure as one line of its own; the bot's log of it, traceback
    and all, shows with -vv."""
    from habitreward.bot.app import PLUGIN_FAILURE_LOG_FIELD
    if verbosity() >= TRACEBACK_VERBOSITY:
        yield
        return
    bot_logger = logging.getLogger("habitreward.bot.app")

    def not_a_plugins_failure(record: logging.LogRecord) -> bool:
        return not hasattr(record, PLUGIN_FAILURE_LOG_FIELD)

    bot_logger.addFilter(not_a_plugins_failure)
    try:
        yield
    finally:
        bot_logger.removeFilter(not_a_plugins_failure)


def _login_name() -> str:
    try:
        return getpass.getuser().capitalize() or "Me"
    except Exception:  # no login name in some containers
        return "Me"


def _interactive(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _confirm_demo() -> bool:
    if not _interactive(sys.stdin):
        return True  # the documented default, also for scripted input
    return click.confirm("There are no habits yet. Add a demo set (3 habits, 4 rewards)?", default=True)


def _seed_demo(engine: Any, language: str) -> None:
    from habitreward.errors import NotFound

    habits, rewards = DEMO_SETS.get(language.split("-")[0].lower(), DEMO_SETS["en"])
    added = []
    for habit_name, weight in habits:
        try:
            engine.find_habit(None, habit_name)
        except NotFound:
            engine.add_habit(habit_name, weight=weight)
            added.append(habit_name)
    for reward_name, weight, kind, pieces in rewards:
        try:
            engine.find_reward(None, reward_name)
        except NotFound:
            engine.add_reward(reward_name, weight=weight, type=kind, pieces_required=pieces, max_per_day=0)
            added.append(reward_name)
    if added:
        click.echo(f"Demo set added: {', '.join(added)}.")


class ChatSession:
    """One person chatting: prints what the bot shows, maps numbers to buttons."""

    def __init__(self, bot: Any, user_id: int, name: str, language: str):
        self.bot = bot
        self.user_id = user_id
        self.name = name
        self.language = language
        # (message_id, text, callback_data, url): a button without callback data is a reply-keyboard
        # button (pressing sends its text) or, with a url, a link.
        self.numbered: list[tuple[int, str, str | None, str | None]] = []
        self.plugin_failures = 0  # updates a plugin failed on: the chat then exits with 1

    def loop(self) -> None:
        stream = sys.stdin
        interactive = _interactive(stream)
        if interactive:
            try:
                import readline  # noqa: F401  (arrow keys and history for input())
            except ImportError:
                pass
        while True:
            if interactive:
                try:
                    line = input("you> ") + "\n"
                except EOFError:
                    line = ""
            else:
                click.echo("you> ", nl=False)
                line = stream.readline()
            if not line:  # EOF
                click.echo()
                break
            text = line.strip()
            if not interactive:
                click.echo(text)  # a piped or scripted session reads like a transcript
            if not text:
                continue
            if text.lower() in ("/quit", "/exit"):
                break
            if text.isdigit() and 1 <= int(text) <= len(self.numbered):
                self.press(int(text))
            elif text.startswith("'") and len(text) > 1:
                self.say(text[1:])  # '3 sends "3" even when a button [3] is shown
            else:
                self.say(text)
        click.echo("Bye.")

    def say(self, text: str) -> None:
        self.show(self.bot.send(self.user_id, text, first_name=self.name, language_code=self.language))

    def press(self, number: int) -> None:
        message_id, text, data, url = self.numbered[number - 1]
        if url:
            click.echo(f"(opens {url})")
            return
        click.echo(f"(pressed {text})")
        if data is None:  # a reply-keyboard button sends its text
            self.say(text)
            return
        self.show(self.bot.press(self.user_id, data, message_id=message_id, first_name=self.name,
                                 language_code=self.language))

    def show(self, reply: Any) -> None:
        from habitreward.testing.driver import is_bug

        errors = list(self.bot.errors)
        self.bot.errors.clear()
        for answer in reply.answers:
            if answer.get("text"):
                click.echo(f"  [{'alert' if answer.get('show_alert') else 'note'}] {answer['text']}")
        # Each message of the reply with its own buttons ("Reading done!" and "Running done!" each
        # have an Undo), numbered on; without any, the newest buttons still shown in the chat.
        self.numbered = []
        for message in reply:
            if message["chat_id"] != self.user_id:
                click.echo(f"(to chat {message['chat_id']}: {render(message['text'] or '', message['parse_mode'])})")
                continue
            marker = "bot (edited)>" if message["method"].startswith("edit") else "bot>"
            click.echo(f"{marker} {render(message['text'] or '', message['parse_mode'])}")
            if message.get("buttons"):
                self.echo_buttons(message, message["buttons"])
        if not self.numbered:
            self.number_buttons()
        for error in errors:
            # Telegram's refusals (blocked, flood control) are not a plugin's failure.
            failure = self.bot.engine.hooks.blame(error) if is_bug(error) else None
            if failure is not None:
                self.plugin_failures += 1
                hint = "" if verbosity() >= TRACEBACK_VERBOSITY else " (-vv shows the traceback)"
                click.echo(f"(the bot ran into an error: {failure.describe(error)}{hint})", err=True)
            else:
                # A hook's answer its contract does not allow (its message names the plugin) is a
                # plugin's failure too, though no plugin's code raised it.
                self.plugin_failures += isinstance(error, PluginError)
                click.echo(f"(the bot ran into an error: {error})", err=True)

    def number_buttons(self) -> None:
        message, rows = self.bot.shown_buttons(self.user_id)
        self.numbered = []
        if message is not None:
            self.echo_buttons(message, rows)

    def echo_buttons(self, message: dict, rows: list) -> None:
        """Print ``message``'s buttons numbered after those already numbered."""
        inline = (message.get("reply_markup") or {}).get("inline_keyboard") or []
        for r, row in enumerate(rows):
            cells = []
            for c, (text, data) in enumerate(row):
                url = inline[r][c].get("url") if r < len(inline) and c < len(inline[r]) else None
                self.numbered.append((message["message_id"], text, data, url))
                cells.append(f"[{len(self.numbered)}] {text}")
            click.echo("  " + "  ".join(cells))


_TAG = re.compile(r"<(/?)(\w+)[^>]*>")


def render(text: str, parse_mode: str | None) -> str:
    """Telegram-formatted text for a terminal: HTML tags become bold/italic/underline or go."""
    mode = (parse_mode or "").lower()
    if mode == "html":
        styles = {"b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline"}

        def tag(match: re.Match) -> str:
            closing, name = match.group(1), match.group(2).lower()
            if name not in styles:
                return ""
            return click.style("", reset=True) if closing else click.style("", reset=False, **{styles[name]: True})

        return html.unescape(_TAG.sub(tag, text))
    if mode.startswith("markdown"):
        return re.sub(r"\\(.)", r"\1", text).replace("*", "").replace("__", "")
    return text
