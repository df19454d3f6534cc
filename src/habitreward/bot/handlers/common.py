"""What every handler shares: who is asking, in which language, and how to answer safely.

A handler gets a :class:`Screen`: the engine, the current (active) user, a
:class:`~habitreward.bot.i18n.Translator` for them, and ``show``/``send``
methods. ``show`` edits the message whose button was pressed and sends a new
message for a command, so a screen looks the same either way (a completion
message's buttons send a new one too: the completion stays). Database work
goes through ``await s.run(...)``: on PostgreSQL it runs on a worker thread, so
the event loop never waits for a round trip while other users' updates queue.

Telegram errors never lose data: the engine call has already been committed
when a message is sent, "message is not modified" is ignored, a 429 is
retried after ``retry_after``, and a user who blocked the bot is logged. (A call
that could not connect is sent again by the bot's request object, for every
call: see ``habitreward.bot.request``.)
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import heapq
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Update
from telegram.error import BadRequest, Forbidden, RetryAfter
from telegram.ext import filters

from habitreward.bot.api_calls import edit_html, send_html
from habitreward.bot.i18n import Translator, resolve_language
from habitreward.bot.keyboards import Rows, inline_keyboard, menu_row
from habitreward.bot.ratelimit import retry_after_seconds
from habitreward.bot.text import fit
from habitreward.db import is_postgres
from habitreward.models import User

log = logging.getLogger(__name__)

MAX_RETRIES = 3
#: New messages only: an edited message is not a new report, answer or command (re-reading it
#: would log a habit twice, change a dialog answer or open a screen behind the user's back).
#: PTB's CommandHandler accepts edits by default: every command handler of the bot passes this.
NEW_MESSAGE = filters.UpdateType.MESSAGE
#: Typed input: new text messages only.
TEXT_INPUT = filters.TEXT & ~filters.COMMAND & NEW_MESSAGE


def engine_of(context: Any) -> Any:
    return context.engine


#: ``chat_data`` key of a group's {message id: Telegram id of the person the message is for}:
#: in a group anyone can press any button, and a press edits the message it is on.
MESSAGE_OWNERS = "message_owners"
#: How many of a group's latest screens are remembered (older ones: anyone's press counts).
MAX_MESSAGE_OWNERS = 200


def note_owner(context: Any, chat: Any, message: Any, telegram_id: int) -> None:
    """Remember that ``message``, just sent to a group, is ``telegram_id``'s screen (a private
    chat has one person in it: nothing to remember, nothing written)."""
    if chat is None or chat.type == "private" or not isinstance(message, dict) or "message_id" not in message:
        return
    owners = context.chat_data.setdefault(MESSAGE_OWNERS, {})
    owners[str(message["message_id"])] = telegram_id
    excess = len(owners) - MAX_MESSAGE_OWNERS
    if excess > 0:
        # The oldest are the smallest ids, not the first keys: stored as JSON with sorted keys,
        # the map comes back from the database in string order ("10101" before "9703").
        for old in heapq.nsmallest(excess, owners, key=int):
            del owners[old]


def someone_elses(update: Update, context: Any) -> bool:
    """A button pressed in a group on a screen the bot sent for another member."""
    query, chat = update.callback_query, update.effective_chat
    if query is None or chat is None or chat.type == "private" or query.message is None:
        return False
    owner = (context.chat_data or {}).get(MESSAGE_OWNERS, {}).get(str(query.message.message_id))
    return owner is not None and owner != query.from_user.id


#: ``user_data`` key of a person's dialog answers so far, one draft per chat: {chat id (str):
#: answers}. The dialog's state is per (chat, person), so are its answers: a dialog in a group
#: and one in the private chat, open at once, each keep their own (JSON values only).
DRAFTS = "drafts"


def _chat_key(update: Update) -> str:
    """The chat of the update's conversation (without one, as in a private chat: the person's id)."""
    chat = update.effective_chat
    if chat is not None:
        return str(chat.id)
    return str(update.effective_user.id) if update.effective_user is not None else ""


#: Where versions before the per-chat drafts kept a person's one draft.
_LEGACY_DRAFT = "draft"


def get_draft(update: Update, context: Any) -> dict[str, Any]:
    """A copy of the answers so far of this chat's dialog ({} when there are none)."""
    if _LEGACY_DRAFT in context.user_data:  # a dialog open across the upgrade: its answers go on
        legacy = context.user_data.pop(_LEGACY_DRAFT)
        if legacy:
            context.user_data.setdefault(DRAFTS, {}).setdefault(_chat_key(update), legacy)
    drafts = context.user_data.get(DRAFTS) or {}
    return dict(drafts.get(_chat_key(update)) or {})


def set_draft(update: Update, context: Any, answers: dict[str, Any]) -> None:
    """Replace this chat's dialog answers (written to the database with the conversation)."""
    context.user_data.setdefault(DRAFTS, {})[_chat_key(update)] = answers


def drop_draft(update: Update, context: Any) -> None:
    """Forget this chat's dialog answers; another chat's dialog keeps its own."""
    drafts = context.user_data.get(DRAFTS)
    if drafts is None:
        return
    drafts.pop(_chat_key(update), None)
    if not drafts:
        del context.user_data[DRAFTS]


#: Where the registration gate leaves the user row it read, on the update's context
#: (PTB builds one context per update and hands it to every group's handler).
_GATE_USER = "_habitreward_gate_user"


async def run_engine(engine: Any, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Database work from a handler (``call``: an engine method, or a function making several
    engine calls): on PostgreSQL on a worker thread, on one pooled connection; on SQLite
    right here.

    On PostgreSQL every statement is a round trip, and on the event loop it would stall
    every other user's update meanwhile (a slow query or an exhausted pool: all of them).
    A SQLite write is a local call of microseconds, and on a worker thread the transaction
    would hold the database's single write lock while waiting for the interpreter's lock
    (GIL) between statements: measured under load, 4.4 instead of 1.8 ms per transaction,
    and writers queueing behind it.
    """
    if is_postgres(engine.db):
        return await asyncio.to_thread(_in_session, engine, call, args, kwargs)
    return call(*args, **kwargs)


def _in_session(engine: Any, call: Callable[..., Any], args: tuple, kwargs: dict[str, Any]) -> Any:
    with engine.session():  # one check-out of the pool for all of ``call``'s statements
        return call(*args, **kwargs)


#: The user row of the update handled in this context (an asyncio task), read before the
#: handlers run together with the update's bot state (see ``bot/app.py``): on PostgreSQL the
#: gate then needs no round trip of its own, which would stall the event loop.
_GATE_USER_READ: contextvars.ContextVar[tuple[int, User | None] | None] = contextvars.ContextVar(
    "habitreward_gate_user_read", default=None
)


def read_gate_user(engine: Any, telegram_id: int) -> tuple[int, User | None]:
    """Read the user row for :func:`take_gate_user` (from any thread)."""
    return telegram_id, engine.find_user(telegram_id)


def offer_gate_user(row: tuple[int, User | None] | None) -> None:
    """Offer ``row`` to the gate of the update handled in this context (None: offer nothing)."""
    _GATE_USER_READ.set(row)


async def take_gate_user(engine: Any, telegram_id: int) -> User | None:
    """The gate's user row: the one read with the update's state (taken once), else the database's."""
    early = _GATE_USER_READ.get()
    if early is not None:
        _GATE_USER_READ.set(None)
        if early[0] == telegram_id:
            return early[1]
    return await run_engine(engine, engine.find_user, telegram_id)


def remember_user(context: Any, user: User) -> None:
    """The gate read ``user`` for this update: the screen handling it need not read it again."""
    vars(context)[_GATE_USER] = user


async def user_for(context: Any, telegram_id: int) -> User | None:
    """This update's user row: the one the gate read (taken once, so a later screen of the
    same update reads afresh), else from the database. Saves a query per update."""
    user = vars(context).pop(_GATE_USER, None)
    if user is not None and user.telegram_id == telegram_id:
        return user
    engine = engine_of(context)
    return await run_engine(engine, engine.find_user, telegram_id)


def translator_for(user: User | None, update: Update | None, settings: Any) -> Translator:
    tg_user = update.effective_user if update is not None else None
    return Translator(resolve_language(
        bool(user and user.language_chosen),
        user.language if user else None,
        tg_user.language_code if tg_user else None,
        settings.supported_languages,
        settings.default_language,
    ))


async def translator(update: Update, context: Any) -> Translator:
    """The :class:`Translator` of the language the bot speaks to this update's user (their
    choice in /settings, else Telegram's, else the default), for a plugin's handler:
    ``t = await translator(update, context); await update.message.reply_html(t._("..."))``."""
    tg_user = update.effective_user
    user = await user_for(context, tg_user.id) if tg_user is not None else None
    return translator_for(user, update, engine_of(context).settings)


#: What the calls in this context (an asyncio task) are for (an update, or ``what`` else such as
#: the command menu), and whether the bot's rate limiter has waited out and retried a 429 before
#: it reaches :func:`telegram_call` (set by the Application around each update's handlers, and
#: by callers outside an update).
_HANDLING: contextvars.ContextVar[tuple[int | None, bool, str]] = contextvars.ContextVar(
    "habitreward_handling", default=(None, False, "")
)


def handling(update_id: int | None, limiter_retries: bool, *, what: str = "") -> contextvars.Token:
    """Note the update being handled in this context (see :data:`_HANDLING`); reset with the token."""
    return _HANDLING.set((update_id, limiter_retries, what))


def end_handling(token: contextvars.Token) -> None:
    _HANDLING.reset(token)


async def telegram_call(make: Callable[[], Awaitable[Any]], *, raise_forbidden: bool = False) -> Any:
    """Run one Bot API call; retry on 429, ignore "not modified", log a blocked user.

    Returns the call's result, or None when it could not be delivered. ``raise_forbidden``:
    a 403 (blocked, or a private chat the person never opened) is raised instead, for a caller
    that tells someone else the message did not arrive.

    A 429 is retried here only when the bot has no rate limiter: the limiter (ChatRateLimiter)
    waits it out and retries it itself (holding that chat's calls meanwhile), and retrying its
    refusal again would make each of those waits four.

    A call that could not connect (the Bot API unreachable for a moment) is sent again by the
    bot's request object before its error reaches this (``habitreward.bot.request``); a network
    error is raised: the handler's error handler logs it as a reply lost.
    """
    update_id, limiter_retried, what = _HANDLING.get()
    rate_limited = 0
    while True:
        try:
            return await make()
        except RetryAfter as exc:
            if limiter_retried or rate_limited == MAX_RETRIES:
                if update_id is not None:
                    log.warning("update %s: Telegram kept rate limiting (%s); giving up on this message (what"
                                " the user did is saved)", update_id, exc.message)
                else:
                    log.warning("Telegram kept rate limiting (%s); giving up on %s", exc.message,
                                what or "this call")
                return None
            rate_limited += 1
            await asyncio.sleep(min(retry_after_seconds(exc), 30.0))
        except Forbidden as exc:
            if raise_forbidden:
                raise
            log.info("Telegram refused delivery (%s); the data is saved anyway", exc.message)
            return None
        except BadRequest as exc:
            if "not modified" in exc.message.lower():
                return None
            raise


class Screen:
    """One handler call's view of the world."""

    def __init__(self, update: Update, context: Any, user: User):
        self.update = update
        self.context = context
        self.engine = engine_of(context)
        self.settings = self.engine.settings
        self.user = user
        self.t = translator_for(user, update, self.settings)
        self._answered = False
        #: The pressed message stays as it is: ``show`` sends a new message instead of editing it
        #: (a completion message's buttons, see ``completion.KEEP``).
        self.keep_pressed = False

    def draft(self) -> dict[str, Any]:
        """A copy of this chat's dialog answers so far (see :data:`DRAFTS`)."""
        return get_draft(self.update, self.context)

    def set_draft(self, answers: dict[str, Any]) -> None:
        set_draft(self.update, self.context, answers)

    def drop_draft(self) -> None:
        drop_draft(self.update, self.context)

    async def run(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Database work for this screen, kept off the event loop on PostgreSQL (see
        :func:`run_engine`): ``await s.run(s.engine.streaks, s.user)``. Several engine calls
        that belong together go in one function, one hop."""
        return await run_engine(self.engine, call, *args, **kwargs)

    @property
    def chat_id(self) -> int:
        chat = self.update.effective_chat
        return chat.id if chat is not None else self.user.telegram_id

    @property
    def query(self) -> Any:
        return self.update.callback_query

    async def answer(self, text: str | None = None, alert: bool = False) -> None:
        """Acknowledge a button press (Telegram shows a spinner until then)."""
        if self.query is not None and not self._answered:
            self._answered = True
            try:
                await telegram_call(lambda: self.query.answer(text=text, show_alert=alert))
            except BadRequest as exc:  # a query older than Telegram's limit: nothing to acknowledge
                log.debug("answerCallbackQuery failed: %s", exc.message)

    async def send(self, text: str, rows: Rows | None = None, chat_id: int | None = None) -> Any:
        await self.answer()
        target = chat_id if chat_id is not None else self.chat_id
        sent = await telegram_call(lambda: send_html(self.context.bot, target, fit(text), inline_keyboard(rows)))
        if target == self.chat_id:
            note_owner(self.context, self.update.effective_chat, sent, self.user.telegram_id)
        return sent

    async def show(self, text: str, rows: Rows | None = None) -> Any:
        """Show a screen: edit the pressed message, or send a new one for a command (or when the
        pressed message is to stay: :attr:`keep_pressed`)."""
        if self.query is None or self.query.message is None or self.keep_pressed:
            return await self.send(text, rows)
        await self.answer()
        try:
            message = self.query.message
            return await telegram_call(lambda: edit_html(
                self.context.bot, message.chat.id, message.message_id, fit(text), inline_keyboard(rows)))
        except BadRequest as exc:  # too old to edit, deleted, ...: a new message will do
            log.debug("edit failed (%s); sending a new message", exc.message)
            return await self.send(text, rows)

    async def refuse(self, text: str | None = None) -> None:
        """A polite no for a button that is not (or no longer) valid for this user; nothing changes."""
        message = text or self.t._("Sorry, that button is not valid any more.")
        await self.answer(message)
        await self.send(message, [menu_row(self.t)])


Handler = Callable[..., Awaitable[Any]]


def screen(active: bool = True) -> Callable[[Handler], Callable[[Update, Any], Awaitable[Any]]]:
    """Turn ``async def f(s: Screen, *args)`` into a PTB callback.

    ``active=True`` handlers do nothing for unknown or inactive users (the
    registration gate has already told them why).
    """

    def wrap(func: Handler) -> Callable[[Update, Any], Awaitable[Any]]:
        @functools.wraps(func)
        async def callback(update: Update, context: Any, *args: Any) -> Any:
            tg_user = update.effective_user
            if tg_user is None:
                return None
            user = await user_for(context, tg_user.id)
            if user is None or (active and not user.active):
                return None
            return await func(Screen(update, context, user), *args)

        callback.screen_func = func  # type: ignore[attr-defined]
        return callback

    return wrap


#: The largest id (or page) callback data or a command's argument may name: what a 64-bit
#: integer column (SQLite INTEGER, PostgreSQL BIGINT) holds. A larger number is garbage from a
#: forged button; passed on, SQLite's driver would raise OverflowError instead of finding nothing.
MAX_INT_ARG = 2**63 - 1


def int_args(args: list[str], count: int) -> list[int] | None:
    """``count`` integers from callback data (or command) arguments, or None for garbage.

    Only plain ASCII digits (ids and pages are never negative) up to :data:`MAX_INT_ARG`:
    every id the bot reads from a button goes through here, so a forged one is refused
    in one place, before it reaches the database.
    """
    if len(args) < count:
        return None
    values = []
    for arg in args[:count]:
        if not (arg.isascii() and arg.isdigit() and len(arg) <= 19):
            return None
        value = int(arg)
        if value > MAX_INT_ARG:
            return None
        values.append(value)
    return values
