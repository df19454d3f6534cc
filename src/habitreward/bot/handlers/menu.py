"""/start, /help, the main menu, /cancel and the command list registered with Telegram."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from html import escape
from typing import Any

from telegram import BotCommand, Update
from telegram.error import TelegramError
from telegram.ext import CommandHandler, ConversationHandler

from habitreward.bot.handlers.common import (
    NEW_MESSAGE,
    Screen,
    end_handling,
    handling,
    run_engine,
    screen,
    telegram_call,
    translator_for,
)
from habitreward.bot.handlers.router import (
    ButtonHandler,
    LeavingCommandHandler,
    leave_conversation,
    on_callback,
    on_command,
)
from habitreward.bot.i18n import N_, Translator
from habitreward.bot.keyboards import main_menu, markup, menu_row
from habitreward.bot.state import approval_of, can_be_approved, waiting_requests
from habitreward.bot.text import MAX_TEXT, MORE_LINE_ROOM, fitting, shown_units
from habitreward.engine.users import DECLINED, REQUESTED, SENDING, UNSENT
from habitreward.errors import UpdateAppliedElsewhere

log = logging.getLogger(__name__)

#: Every command, in the order of /help and of Telegram's command menu.
COMMANDS: tuple[tuple[str, str], ...] = (
    ("start", N_("Main menu")),
    ("habit_done", N_("Log a habit")),
    ("streaks", N_("Your streaks")),
    ("history", N_("Your latest completions")),
    ("my_rewards", N_("Your reward progress")),
    ("claim_reward", N_("Claim an achieved reward")),
    ("list_rewards", N_("All rewards")),
    ("odds", N_("Your chances of a reward")),
    ("add_habit", N_("Add a habit")),
    ("edit_habit", N_("Change a habit")),
    ("remove_habit", N_("Remove a habit")),
    ("add_reward", N_("Add a reward")),
    ("edit_reward", N_("Change a reward")),
    ("remove_reward", N_("Remove a reward")),
    ("settings", N_("Language and time zone")),
    ("cancel", N_("Stop what you are doing")),
    ("help", N_("How this bot works")),
)


#: Telegram's limit on the command menu.
MAX_MENU_COMMANDS = 100


def bot_commands(t: Translator, extra: Sequence[tuple[str, str]] = ()) -> list[BotCommand]:
    """The built-in commands in ``t``'s language, then ``extra`` (plugins' (command, description),
    the description translated through the plugins' catalogs when they have it; a plugin cannot
    replace a built-in one), within Telegram's 100."""
    commands = [BotCommand(name, t._(description)) for name, description in COMMANDS]
    taken = {name for name, _ in COMMANDS}
    for name, description in extra:
        if name not in taken:
            taken.add(name)
            commands.append(BotCommand(name, t._(description)))
    return commands[:MAX_MENU_COMMANDS]


async def set_commands(bot: Any, settings: Any, extra: Sequence[tuple[str, str]] = ()) -> None:
    """Register the command list with Telegram (setMyCommands), once per supported language.

    The list without a language code (what other languages see) is in DEFAULT_LANGUAGE.
    ``extra`` are plugins' commands (``application.plugin_commands``), added after ours in
    every language. A failure is logged, never fatal: the bot works without Telegram's menu.
    """
    # Before any update: say whether the bot's rate limiter already retries a 429 (as the
    # Application does around an update's handlers).
    handled = handling(None, getattr(bot, "rate_limiter", None) is not None, what="the command menu")
    try:
        await telegram_call(lambda: bot.set_my_commands(
            bot_commands(Translator(settings.default_language), extra)))
        for language in settings.supported_languages:
            commands = bot_commands(Translator(language), extra)
            await telegram_call(lambda commands=commands, language=language: bot.set_my_commands(
                commands, language_code=language))
    except TelegramError as exc:
        log.warning("Could not register the command list with Telegram: %s", exc)
    finally:
        end_handling(handled)


def _request_of(engine: Any, telegram_id: int) -> tuple[str | None, bool]:
    """Where this person's request to use the bot stands, and whether anyone could approve it."""
    return approval_of(engine, telegram_id), can_be_approved(engine, telegram_id)


async def pending_text(s: Screen) -> str:
    """What someone not (yet) let in is told: where their request stands."""
    request, approvable = await s.run(_request_of, s.engine, s.user.telegram_id)
    if request in (REQUESTED, UNSENT, SENDING) and not approvable:  # no admin yet: nobody was asked
        return s.t._("Hello! This bot has no admin yet who could let you in. Please ask whoever runs it.")
    if request == UNSENT and s.settings.registration == "approval":  # Telegram refused it to every admin
        return s.t._("Hello! I could not reach an admin to approve you yet. Write to me again in a few minutes "
                     "and I will try again; you can also ask whoever runs this bot.")
    if request in (REQUESTED, SENDING):  # SENDING: another process is sending it now
        text = s.t._("Hello! An admin has been asked to approve you. I will write as soon as you are in.")
        chat = s.update.effective_chat
        if chat is not None and chat.type != "private":  # Telegram lets a bot write first to no one
            text += "\n" + s.t._("Open a private chat with me (@{bot}) so that I can.",
                                  bot=s.context.bot.username)
        return text
    if request == DECLINED:
        return s.t._("Sorry, your request to use this bot was declined.")
    return s.t._("Hello! This bot is private. Please ask the admin to give you access.")


async def show_menu(s: Screen, greeting: bool = False) -> None:
    text = s.t._("Hi, {name}! What would you like to do?", name=s.user.name) if greeting else \
        s.t._("What would you like to do?")
    chat = s.update.effective_chat
    private = chat is None or chat.type == "private"  # as /requests: who waits is not a group's business
    if greeting and private and s.user.active and s.user.is_admin:  # an admin (approval.is_admin)
        waiting, _ = await s.run(waiting_requests, s.engine, 0)
        if waiting:
            text += "\n" + s.t.ngettext("{n} person is waiting to be let in: /requests",
                                        "{n} people are waiting to be let in: /requests", waiting)
    await s.show(text, main_menu(s.t))


@on_command("start", active=False)
async def start(s: Screen, args: list[str]) -> None:
    if not s.user.active:
        await s.show(await pending_text(s))
        return
    await show_menu(s, greeting=True)


@on_command("menu")
@on_callback("m")
async def menu(s: Screen, args: list[str]) -> None:
    await show_menu(s)


def help_text(s: Screen) -> str:
    t = s.t
    lines = [
        t._("<b>How it works</b>"),
        t._("Log a habit every day to grow its streak. Each completion may win a piece of a reward; "
            "the longer the streak, the better the odds. Collect all pieces, then claim the reward."),
        t._("You can also just type what you did, for example \"went for a run\"."),
        "",
    ]
    tail = ["", t._("Your account is not active yet, so only /start and /help work for now.")] \
        if not s.user.active else []
    # Plugins' commands follow ours, as in Telegram's command menu (bot_commands); as many as fit
    # in one message (up to 100 commands of up to 256 characters would not).
    plugin_commands = getattr(s.context.application, "plugin_commands", ())
    commands = [f"/{c.command} — {escape(c.description)}" for c in bot_commands(t, plugin_commands)]
    room = MAX_TEXT - shown_units("\n".join(lines + tail)) - MORE_LINE_ROOM
    shown = fitting(commands, room)
    lines += commands[:shown]
    if shown < len(commands):
        lines.append(t.ngettext("…and {n} more in the command menu", "…and {n} more in the command menu",
                                len(commands) - shown))
    return "\n".join(lines + tail)


@on_command("help", active=False)
@on_callback("help", active=False)
async def help_screen(s: Screen, args: list[str]) -> None:
    await s.show(help_text(s), [menu_row(s.t)] if s.user.active else None)


@on_command("cancel")
async def cancel(s: Screen, args: list[str]) -> None:
    """Outside a conversation there is nothing to stop; say so and offer the menu."""
    await s.show(s.t._("There is nothing to cancel."), [menu_row(s.t)])


@screen()
async def unknown_command(s: Screen) -> None:
    """A command nothing answers (see router.UnknownCommandHandler): say so, point to /help."""
    message = s.update.effective_message
    command = ((message.text or "").split() or ["/"])[0][:40] if message is not None else "/"
    await s.show(s.t._("I don't know the command {command}. /help lists what I can do.", command=command),
                 [menu_row(s.t)])


@screen()
async def _cancel_conversation(s: Screen) -> int:
    s.drop_draft()  # this chat's dialog only: one open in another chat keeps its answers
    await s.show(s.t._("Cancelled. Nothing was changed."), main_menu(s.t))
    return ConversationHandler.END


async def cancel_conversation(update: Update, context: Any) -> int:
    await _cancel_conversation(update, context)
    return ConversationHandler.END


def standard_fallbacks(application: Any) -> list[Any]:
    """/cancel ends a conversation; any other command of this bot (or of a plugin) or button
    ends it and opens that screen. Other bots' commands and typos leave it alone
    (:class:`~habitreward.bot.handlers.router.LeavingCommandHandler`)."""
    return [
        CommandHandler("cancel", cancel_conversation, filters=NEW_MESSAGE),
        LeavingCommandHandler(application),
        ButtonHandler(application, leave_conversation),
    ]


async def on_error(update: object, context: Any) -> None:
    """A bug must not leave the user waiting in silence: say so (the app's error handler logs it)."""
    if not isinstance(update, Update) or update.effective_chat is None \
            or isinstance(context.error, (TelegramError, UpdateAppliedElsewhere)):
        return  # Telegram's refusals are logged; an update applied elsewhere was answered there
    from habitreward.bot.app import reply_lost

    engine = context.engine
    tg_user = update.effective_user
    user = await run_engine(engine, engine.find_user, tg_user.id) if tg_user is not None else None
    t = translator_for(user, update, engine.settings)
    try:
        if update.callback_query is not None:
            await telegram_call(lambda: update.callback_query.answer())
        await telegram_call(lambda: context.bot.send_message(
            update.effective_chat.id, t._("😕 Something went wrong on my side. Please try again."),
            reply_markup=markup([menu_row(t)]) if user is not None and user.active else None,
        ))
    except TelegramError as exc:
        if not reply_lost(exc):
            raise
        # One line: the bug itself is logged already, once, with its traceback (app.log_error).
        log.warning("update %s: the message that something went wrong may not have reached chat %s (%s: %s)",
                    update.update_id, update.effective_chat.id, type(exc).__name__, exc)
