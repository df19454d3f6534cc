"""Building the python-telegram-bot Application from the engine, its settings and plugins."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from typing import TYPE_CHECKING, Any

from telegram import Update
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter
from telegram.ext import (
    Application,
    ApplicationBuilder,
    BaseHandler,
    BaseRateLimiter,
    CommandHandler,
    ContextTypes,
    ConversationHandler,
)

from habitreward.bot.context import BotContext
from habitreward.bot.handlers.common import end_handling, handling, offer_gate_user, read_gate_user
from habitreward.bot.persistence import DatabasePersistence
from habitreward.bot.request import client_bug, make_bot_request
from habitreward.bot.state import BOT_DATA, BOT_DATA_KEY, CHAT_DATA, USER_DATA
from habitreward.db import is_postgres
from habitreward.errors import UpdateAppliedElsewhere

if TYPE_CHECKING:
    from habitreward.engine import Engine

logger = logging.getLogger(__name__)

#: How often a request that Telegram answered with 429 (flood control) is retried,
#: after waiting the retry_after it named (ChatRateLimiter, when aiolimiter is installed).
RATE_LIMIT_RETRIES = 2

#: The log record's attribute holding the PluginFailure of an error a plugin raised
#: (``habitreward chat`` shows those as one line of its own, the traceback with -vv).
PLUGIN_FAILURE_LOG_FIELD = "habitreward_plugin_failure"


class HabitRewardApplication(Application):
    """PTB's Application plus the engine, with database-fresh state around every update.

    ``context.engine`` reaches :attr:`engine` (see ``BotContext``). With persistence,
    :meth:`process_update` reloads the update's conversation states before handling it
    and writes every change right after, so processes sharing a database agree.
    """

    def __init__(self, *, engine: Engine, **kwargs: Any):
        super().__init__(**kwargs)
        self.engine = engine
        #: (command, description) pairs plugins asked to show in Telegram's command menu.
        self.plugin_commands: list[tuple[str, str]] = []
        self._conversations_found: tuple[tuple, list[ConversationHandler]] = ((), [])
        self._reads_wait_on_network = is_postgres(engine.db)
        #: Read each update's user row together with its bot state (set when the gate is
        #: installed: it reads the row of every update; see ``handlers.common.take_gate_user``).
        self.read_gate_user_early = False
        #: PTB flushes under way (an earlier update's writes may still be on a worker thread).
        self._flushes_running = 0

    async def update_persistence(self) -> None:
        self._flushes_running += 1
        try:
            await super().update_persistence()
        finally:
            self._flushes_running -= 1

    async def process_update(self, update: object) -> None:
        persistent = isinstance(self.persistence, DatabasePersistence) and isinstance(update, Update)
        token = await self._refresh_state(update) if persistent else None  # type: ignore[arg-type]
        handled = handling(update.update_id if isinstance(update, Update) else None,
                           getattr(self.bot, "rate_limiter", None) is not None)
        try:
            await super().process_update(update)
        finally:
            end_handling(handled)
            offer_gate_user(None)  # a row the gate did not take must not serve a later update
            if token is not None:
                self.persistence.end_update(token)  # type: ignore[union-attr]
                try:
                    if not self._nothing_to_persist():
                        await self.update_persistence()
                except Exception as exc:  # e.g. user_data that is not JSON
                    await self.process_error(update=update, error=exc)

    def _nothing_to_persist(self) -> bool:
        """Whether :meth:`update_persistence` would write nothing now; if so, it is done.

        The usual update (a habit completion) moves no conversation and leaves the bot's,
        its chat's and its user's data empty. PTB's flush would still deep-copy each
        document and run a task per document (two more turns of the event loop) to find
        that out: a twentieth of a completion's CPU. What it would have done is forget the
        chats and users marked for the flush, which this does too. Runs on the loop
        without awaiting, so no update changes anything meanwhile. It reads PTB's private
        bookkeeping (pinned by the tests of the installed release); where a release keeps it
        elsewhere, the flush runs as PTB's own.
        """
        if self._flushes_running:
            # An earlier update's flush may be writing what this one has just undone (a key it
            # set, popped here); what is stored is not known yet. PTB's flush waits for it.
            return False
        try:
            persistence: DatabasePersistence = self.persistence  # type: ignore[assignment]
            store = persistence.store_data
            if store.callback_data and getattr(self.bot, "callback_data_cache", None) is not None:
                return False
            if self._chat_ids_to_be_deleted_in_persistence or self._user_ids_to_be_deleted_in_persistence:
                return False
            # PTB keeps each persistent conversation's states in a TrackingDict noting written keys.
            if any(states._write_access_keys for states in self._conversation_handler_conversations.values()):  # noqa: SLF001
                return False
            if store.bot_data and not persistence.empty_as_stored(BOT_DATA, BOT_DATA_KEY, self.bot_data):
                return False

            def all_empty(namespace: str, documents: Any, ids: set[int]) -> bool:
                return all(persistence.empty_as_stored(namespace, str(i), documents.get(i, {})) for i in ids)

            chats, users = self._chat_ids_to_be_updated_in_persistence, self._user_ids_to_be_updated_in_persistence
            if store.chat_data and not all_empty(CHAT_DATA, self.chat_data, chats):
                return False
            if store.user_data and not all_empty(USER_DATA, self.user_data, users):
                return False
            if store.chat_data:
                chats.clear()
            if store.user_data:
                users.clear()
            return True
        except AttributeError:  # PTB internals read above moved in another release: flush as PTB does
            return False

    async def _refresh_state(self, update: Update) -> contextvars.Token:
        """Load this update's state of every persistent ConversationHandler from the database.

        PTB keeps conversation states in memory after start-up; another process may
        have moved the conversation on since, so the stored state wins. The user's,
        chat's and bot's data are read in the same query (PTB asks for them through
        refresh_* right after). On PostgreSQL the read runs on a worker thread, so the
        loop serves other users meanwhile; on SQLite it is quicker than the hand-over.
        """
        wanted: list[tuple[ConversationHandler, tuple]] = []
        for handler in self._persistent_conversations():
            try:
                key = handler._get_key(update)  # noqa: SLF001 (PTB has no public way to get it)
            except RuntimeError:
                continue  # this update has no chat/user for this conversation's key
            wanted.append((handler, key))
        persistence: DatabasePersistence = self.persistence  # type: ignore[assignment]
        user, chat = update.effective_user, update.effective_chat
        args = (user.id if user else None, chat.id if chat else None, [(h.name, key) for h, key in wanted])
        if self._reads_wait_on_network:
            # One worker-thread hop for every read the update needs before its handlers run.
            user_id = args[0] if self.read_gate_user_early else None
            states, rows, user_row = await asyncio.to_thread(self._read_state, persistence, args, user_id)
            if user_row is not None:
                offer_gate_user(user_row)
        else:
            states, rows = persistence.begin_update(*args)
        for handler, key in wanted:
            conversations = handler._conversations  # noqa: SLF001
            state = states.get((handler.name, key))
            if state is None:
                conversations.data.pop(key, None)  # without marking it as a write
            else:
                conversations.update_no_track({key: state})
        return persistence.use_update_rows(rows)

    def _read_state(self, persistence: DatabasePersistence, args: tuple, user_id: int | None) -> tuple:
        with self.engine.session():  # one check-out of the pool for both reads
            states, rows = persistence.begin_update(*args)
            return states, rows, read_gate_user(self.engine, user_id) if user_id is not None else None

    def _persistent_conversations(self) -> list[ConversationHandler]:
        """The persistent ConversationHandlers, nested ones included; looked for again only
        when handlers were added or removed (every update asks)."""
        signature = tuple((group, id(handlers), len(handlers)) for group, handlers in self.handlers.items())
        if self._conversations_found[0] != signature:
            self._conversations_found = (signature, _persistent_conversations(self.handlers.values()))
        return self._conversations_found[1]


def _persistent_conversations(groups: Any) -> list[ConversationHandler]:
    found: list[ConversationHandler] = []
    seen: set[int] = set()

    def visit(handler: BaseHandler) -> None:
        if not isinstance(handler, ConversationHandler) or id(handler) in seen:
            return
        seen.add(id(handler))
        if handler.persistent and handler.name:
            found.append(handler)
        for child in handler.entry_points + handler.fallbacks + [h for hs in handler.states.values() for h in hs]:
            visit(child)

    for handlers in groups:
        for handler in handlers:
            visit(handler)
    return found


def reply_lost(error: BaseException | None) -> bool:
    """Whether a handler failed because a Bot API call did not get through (a timeout, a cut or
    refused connection, Telegram's 5xx), as opposed to a bug: Telegram's 400 (``BadRequest``,
    a ``NetworkError`` too in PTB) is the bot asking for something wrong, and an exception the
    HTTP client raised that is no network failure (:func:`~habitreward.bot.request.client_bug`,
    handed on by PTB as a ``NetworkError``) is one of ours."""
    return isinstance(error, NetworkError) and not isinstance(error, BadRequest) and client_bug(error) is None


async def log_error(update: object, context: BotContext) -> None:
    """Telegram's refusals are facts of life, not crashes: log them and carry on.

    A user who blocked the bot (403), flood control (429, already retried by the
    rate limiter), a "message is not modified" (400) or a network failure (one
    WARNING line naming the update and the chat) must not stop the bot; handlers
    write to the database before they answer, so nothing the user did is lost.
    Anything else is a bug: one ERROR record, ``update 123 (user 42): a handler failed: ...``
    (naming the plugin whose code raised it, if one did), with its traceback. ``serve``'s runner
    logs nothing more of it (it keeps the error in the update's inbox row).
    """
    error = context.error
    who = ""
    if isinstance(update, Update) and update.effective_user:
        who = f" (user {update.effective_user.id})"
    which = f"update {update.update_id}" if isinstance(update, Update) else "an update"
    if reply_lost(error):
        # One line, no traceback: an outage would otherwise fill the log with the client's stack.
        chat = update.effective_chat if isinstance(update, Update) else None
        logger.warning("%s: the reply%s may not have reached Telegram (%s: %s); what the user did is saved",
                       which, f" to chat {chat.id}" if chat is not None else "", type(error).__name__, error)
    elif isinstance(error, Forbidden):
        logger.info("Telegram refused to deliver%s: %s", who, error.message)
    elif isinstance(error, RetryAfter):
        logger.warning("Telegram flood control%s: %s", who, error.message)  # says how long to wait
    elif isinstance(error, BadRequest) and "not modified" in error.message.lower():
        logger.debug("Message not modified%s", who)
    elif isinstance(error, UpdateAppliedElsewhere):
        pass  # not a bug: serve's runner says so, in one line naming the update
    else:
        # Which update (to find it in the inbox and the webhook's log) and, when a plugin's code
        # raised it, which plugin: several may be installed, and the traceback alone may not say.
        failure = context.engine.hooks.blame(error) if error is not None else None
        what = failure.describe(error) if failure is not None else f"{type(error).__name__}: {error}"
        extra = {PLUGIN_FAILURE_LOG_FIELD: failure} if failure is not None else None
        if update is None:  # a job's or a persistence flush's error: no update to name
            logger.error("bot error: %s", what, exc_info=error, extra=extra)
        else:
            logger.error("%s%s: a handler failed: %s", which, who, what, exc_info=error, extra=extra)


def make_rate_limiter(*, throttle: bool = True) -> Any:
    """PTB's AIORateLimiter as :class:`~habitreward.bot.ratelimit.ChatRateLimiter` (if aiolimiter
    is installed): retries a request Telegram answered with 429 after the retry_after it named,
    holding only that chat's requests meanwhile (every request's for a 429 without a chat), and
    (``throttle``) keeps under Telegram's limits of 30 messages per second overall and 20 per
    minute per group, so 429s are rare. ``throttle=False`` only retries (tests, where the limits
    would just slow things down).
    """
    from habitreward.bot.ratelimit import ChatRateLimiter

    try:
        if throttle:
            return ChatRateLimiter(max_retries=RATE_LIMIT_RETRIES)
        return ChatRateLimiter(overall_max_rate=0, group_max_rate=0, max_retries=RATE_LIMIT_RETRIES)
    except RuntimeError:  # aiolimiter missing: pip install 'python-telegram-bot[rate-limiter]'
        logger.debug("aiolimiter is not installed: no rate limiting, 429s reach the error handler")
        return None


def _file_url_for(base_url: str) -> str | None:
    """``http://host/bot`` -> ``http://host/file/bot`` (the layout of Telegram and of telegram-bot-api)."""
    if base_url.endswith("/bot"):
        return base_url[: -len("/bot")] + "/file/bot"
    return None


def build_application(
    engine: Engine,
    *,
    token: str | None = None,
    base_url: str | None = None,
    base_file_url: str | None = None,
    updater: bool = True,
    persistence: bool = True,
    rate_limiter: bool | BaseRateLimiter = True,
    builtin_handlers: bool = True,
) -> Application:
    """The bot: a PTB Application with the built-in handlers and those of plugins.

    ``token`` defaults to TELEGRAM_BOT_TOKEN, ``base_url`` to TELEGRAM_API_URL (a Bot
    API base such as ``http://127.0.0.1:8081/bot``; PTB appends the token).
    ``updater=False`` for webhooks and tests that feed updates directly;
    ``persistence=False`` keeps bot state in memory only. ``rate_limiter``: True for
    :func:`make_rate_limiter`, False for none, or a PTB rate limiter. ``builtin_handlers=False``
    leaves out the bot's own flows (only plugins' handlers), for testing a platform
    feature or a plugin in isolation.
    """
    from habitreward.bot import handlers

    settings = engine.settings
    token = token or settings.require("telegram_bot_token")
    base_url = base_url or settings.telegram_api_url
    builder = (
        ApplicationBuilder()
        .application_class(HabitRewardApplication, kwargs={"engine": engine})
        .token(token)
        .context_types(ContextTypes(context=BotContext))
        .concurrent_updates(False)
    )
    if base_url:
        builder = builder.base_url(base_url)
        base_file_url = base_file_url or _file_url_for(base_url)
    if base_file_url:
        builder = builder.base_file_url(base_file_url)
    if not updater:
        builder = builder.updater(None)
    if persistence:
        builder = builder.persistence(DatabasePersistence(engine))
    request = make_bot_request(settings)
    if request is not None:  # None: TELEGRAM_HTTP_CLIENT=httpx, no aiohttp, or a proxy in the environment
        # The getUpdates request too, even without an Updater: serve's own poller uses it.
        builder = builder.request(request).get_updates_request(make_bot_request(settings, for_updates=True))
    limiter = make_rate_limiter() if rate_limiter is True else (rate_limiter or None)
    if limiter is not None:
        builder = builder.rate_limiter(limiter)
    application = builder.build()
    application.add_error_handler(log_error)

    if builtin_handlers:
        handlers.register(application)

    def register(handler: BaseHandler, group: int = 0, *, description: str | None = None) -> None:
        """Add a plugin's handler; a CommandHandler with ``description`` also goes into the
        command menu (``application.plugin_commands``, for setMyCommands)."""
        application.add_handler(handler, group=group)
        if description and isinstance(handler, CommandHandler):
            application.plugin_commands.extend((name, description) for name in sorted(handler.commands))

    engine.hooks.register_handlers(register, settings)
    return application
