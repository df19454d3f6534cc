"""Drive the real bot from plain (synchronous) tests: type a message, press a button, read the answer.

    with BotApiStandIn() as api, BotDriver(engine, api) as bot:
        answer = bot.send(42, "/start")
        assert "Welcome" in answer[-1]["text"]
        bot.press(42, "Running")

The Application is the one ``build_application`` makes (persistence in the
database included); it runs on its own asyncio loop in a background thread and
every update is processed to the end before ``send``/``press`` return.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from telegram import Update
from telegram.error import BadRequest, TelegramError

from habitreward.testing.botapi import BotApiStandIn
from habitreward.testing.builders import callback_update, message_update

if TYPE_CHECKING:
    from telegram.ext import Application

    from habitreward.engine import Engine

TEST_TOKEN = "123456:TEST"

#: Telegram refusals that mean the bot sent something broken: the test should fail.
#: (403 blocked, 429 flood control, "message is not modified" are facts of life instead.)
BUG_REFUSALS = ("can't parse entities", "message is too long", "caption is too long", "message text is empty",
                "reply markup is too long", "button_data_invalid", "text buttons are unallowed")


def is_bug(error: BaseException) -> bool:
    """A handler's exception, or Telegram refusing a malformed message."""
    if not isinstance(error, TelegramError):
        return True
    return isinstance(error, BadRequest) and any(p in error.message.lower() for p in BUG_REFUSALS)


class Reply(list):
    """The messages the bot sent or edited while handling one update (dicts as in
    ``BotApiStandIn.sent()``), plus shortcuts for the common assertions.

    ``answers`` holds the answerCallbackQuery calls made meanwhile (the toast or alert
    a button press showed: ``reply.answers[0]["text"]``).
    """

    answers: list[dict[str, Any]]

    def __init__(self, messages: Any = (), answers: list[dict[str, Any]] | None = None):
        super().__init__(messages)
        self.answers = answers or []

    @property
    def alert(self) -> str | None:
        """Text of the last toast/alert shown for a button press, if any."""
        texts = [a.get("text") for a in self.answers if a.get("text")]
        return texts[-1] if texts else None

    @property
    def texts(self) -> list[str]:
        return [m["text"] or "" for m in self]

    @property
    def text(self) -> str:
        """Text of the last message (or "" when the bot said nothing)."""
        return self[-1]["text"] or "" if self else ""

    @property
    def buttons(self) -> list[list[tuple[str, str | None]]]:
        """Keyboard of the last message."""
        return self[-1]["buttons"] if self else []

    @property
    def button_texts(self) -> list[str]:
        return [text for row in self.buttons for text, _ in row]


class BotError(AssertionError):
    """A handler raised while the driver processed an update (the test should see it)."""


class BotDriver:
    """The real Application against a :class:`BotApiStandIn`, with a synchronous API.

    ``raise_errors`` (default on): an exception raised by a handler fails the
    ``send``/``press`` that caused it, with the original exception chained; so does
    Telegram refusing a malformed message (HTML that does not parse, too long, a bad
    keyboard). Other Telegram errors (blocked, flood control, not modified) are what
    the bot must survive: they are only recorded in :attr:`errors`.
    """

    def __init__(
        self,
        engine: Engine,
        standin: BotApiStandIn,
        *,
        token: str = TEST_TOKEN,
        persistence: bool = True,
        raise_errors: bool = True,
        timeout: float = 30.0,
        build: Callable[..., Application] | None = None,
    ):
        self.engine = engine
        self.api = standin
        self.token = token
        self.persistence = persistence
        self.raise_errors = raise_errors
        self.timeout = timeout
        self._build = build
        self.application: Application | None = None
        #: Every exception the Application's error handlers saw, in order.
        self.errors: list[BaseException] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> BotDriver:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self._loop.run_forever, name="BotDriver", daemon=True)
            self._thread.start()
        if self.application is None:
            self.application = self._new_application()
            self._run(self._start_application(self.application))
        return self

    def stop(self) -> None:
        """Stop the Application as a clean shutdown would (persistence flushed)."""
        if self.application is not None:
            app, self.application = self.application, None
            self._run(self._stop_application(app))
        if self._loop is not None:
            self._run(self._cancel_leftovers())
            self._run(self._release_database())
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._thread is not None:
                self._thread.join(timeout=10)
            self._loop.close()
            self._loop = None
            self._thread = None

    def restart(self, *, engine: Engine | None = None, crash: bool = False) -> Application:
        """A new Application on the same database, as after a process restart.

        ``crash=True`` drops the old Application without shutting it down (no final
        flush), so only what was already durable survives. ``engine`` swaps in a new
        Engine (e.g. a new connection to the same database).
        """
        if self.application is not None:
            app, self.application = self.application, None
            if not crash:
                self._run(self._stop_application(app))
        if engine is not None:
            self.engine = engine
        return self.start().application  # type: ignore[return-value]

    def __enter__(self) -> BotDriver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- talking to the bot -------------------------------------------------------------------

    def send(self, user_id: int, text: str, *, date: dt.datetime | None = None, language_code: str | None = "en",
             first_name: str = "Test", chat_id: int | None = None, **extra: Any) -> Reply:
        """``user_id`` types ``text``; returns what the bot sent or edited in answer.

        ``date`` (aware) is when the user wrote; default: the engine's clock.
        """
        chat = user_id if chat_id is None else chat_id
        update = message_update(
            user_id, text, chat_id=chat, language_code=language_code, first_name=first_name,
            date=date or self.engine.now(), message_id=self.api.allocate_message_id(chat), **extra,
        )
        return self.process(update)

    def press(self, user_id: int, button: str, *, chat_id: int | None = None, language_code: str | None = "en",
              first_name: str = "Test", message_id: int | None = None) -> Reply:
        """``user_id`` presses ``button`` (its text, or its callback data) on the newest
        message that shows it (or on message ``message_id``). A reply-keyboard button
        sends its text, as in Telegram."""
        chat = user_id if chat_id is None else chat_id
        message, data = self.find_button(chat, button, message_id=message_id)
        if data is None:
            inline = (message.get("reply_markup") or {}).get("inline_keyboard") or []
            for row in inline:
                for b in row:
                    if button == b.get("text"):
                        # A URL (or other non-callback) button: Telegram sends the bot nothing.
                        target = b.get("url") or ", ".join(k for k in b if k != "text")
                        raise AssertionError(f"Button {button!r} sends nothing to the bot (it opens {target})")
            return self.send(user_id, button, chat_id=chat_id, language_code=language_code, first_name=first_name)
        update = callback_update(
            user_id, data, message_id=message["message_id"], chat_id=chat, language_code=language_code,
            first_name=first_name, message_text=message.get("text") or "",
            reply_markup=message.get("reply_markup"), bot_id=int(self.token.split(":")[0]),
            date=self.engine.now(),
        )
        return self.process(update)

    def find_button(self, chat_id: int, button: str, *, message_id: int | None = None
                    ) -> tuple[dict[str, Any], str | None]:
        """The newest message in the chat with a button whose text or callback data is
        ``button``: (the message as Telegram holds it, callback data or None for a reply keyboard)."""
        for message, rows in self._shown(chat_id):
            if message_id is not None and message["message_id"] != message_id:
                continue
            for text, data in (b for row in rows for b in row):
                if button in (text, data):
                    return message, data
        available = [t for _, rows in self._shown(chat_id)[:3] for row in rows for t, _ in row]
        raise AssertionError(f"No button {button!r} in chat {chat_id}; recent buttons: {available}")

    def shown_buttons(self, chat_id: int) -> tuple[dict[str, Any] | None, list[list[tuple[str, str | None]]]]:
        """The newest message in the chat that still shows buttons, and its rows."""
        shown = self._shown(chat_id)
        return shown[0] if shown else (None, [])

    def _shown(self, chat_id: int) -> list[tuple[dict[str, Any], list[list[tuple[str, str | None]]]]]:
        """Messages still in the chat with their current buttons, newest first."""
        current = {m["message_id"]: m for m in self.api.messages(chat_id)}
        seen: set[int] = set()
        shown = []
        for entry in reversed(self.api.sent(chat_id)):  # the newest entry of a message is its state
            message_id = entry["message_id"]
            if message_id in seen:
                continue
            seen.add(message_id)
            if message_id in current and entry["buttons"]:
                shown.append((current[message_id], entry["buttons"]))
        return shown

    def process(self, update: dict[str, Any]) -> Reply:
        """Feed one Update (Bot API JSON) to the Application and wait until it is handled."""
        app = self._require_app()
        first_error = len(self.errors)
        before, calls_before = self.api.sent_count(), self.api.call_count()
        self._run(app.process_update(Update.de_json(update, app.bot)))
        answers = [p for m, p in self.api.calls_since(calls_before) if m.lower() == "answercallbackquery"]
        reply = Reply(self.api.sent_since(before), answers)
        if self.raise_errors:
            for error in self.errors[first_error:]:
                if is_bug(error):
                    raise BotError(f"The bot failed on {_describe(update)}: {error!r}") from error
        return reply

    def process_concurrently(self, updates: list[dict[str, Any]]) -> None:
        """Feed several Updates at once, interleaved on the loop as ``habitreward serve``
        does for different users; returns when all are handled (read ``api.sent()``)."""
        app = self._require_app()
        first_error = len(self.errors)

        async def all_of() -> None:
            await asyncio.gather(*(app.process_update(Update.de_json(u, app.bot)) for u in updates))

        self._run(all_of())
        if self.raise_errors:
            for error in self.errors[first_error:]:
                if is_bug(error):
                    raise BotError(f"The bot failed: {error!r}") from error

    # --- plumbing ------------------------------------------------------------------------

    def _require_app(self) -> Application:
        if self.application is None:
            raise RuntimeError("BotDriver is not started: use `with BotDriver(...) as bot:` or .start()")
        return self.application

    def _run(self, coroutine: Coroutine) -> Any:
        if self._loop is None:
            raise RuntimeError("BotDriver is not started")
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(self.timeout)

    def _new_application(self) -> Application:
        from habitreward.bot.app import build_application, make_rate_limiter

        # 429s are still waited out and retried; Telegram's 30 messages/s are not
        # enforced, which would only slow tests down.
        build = self._build or build_application
        app = build(self.engine, token=self.token, base_url=self.api.base_url, updater=False,
                    persistence=self.persistence, rate_limiter=make_rate_limiter(throttle=False))

        async def record_error(update: object, context: Any) -> None:
            self.errors.append(context.error)

        app.add_error_handler(record_error)
        return app

    @staticmethod
    async def _start_application(app: Application) -> None:
        # The order of Application.run_polling: initialize, post_init, start.
        await app.initialize()
        if app.post_init:
            await app.post_init(app)
        await app.start()

    @staticmethod
    async def _stop_application(app: Application) -> None:
        if app.running:
            await app.stop()
            if app.post_stop:
                await app.post_stop(app)
        await app.shutdown()
        if app.post_shutdown:
            await app.post_shutdown(app)

    @staticmethod
    async def _cancel_leftovers() -> None:
        """Cancel what crashed (never shut down) Applications left running on the loop."""
        current = asyncio.current_task()
        leftovers = [t for t in asyncio.all_tasks() if t is not current]
        for task in leftovers:
            task.cancel()
        await asyncio.gather(*leftovers, return_exceptions=True)

    async def _release_database(self) -> None:
        # The loop thread's connection would outlive the test otherwise.
        db = self.engine.db
        if not db.is_closed() and not db.in_transaction():
            db.close()


def _describe(update: dict[str, Any]) -> str:
    """A short description of an update for failure messages: who sent what."""
    if "message" in update:
        message = update["message"]
        return f"message {message.get('text')!r} from {message.get('from', {}).get('id')}"
    if "callback_query" in update:
        query = update["callback_query"]
        return f"button {query.get('data')!r} pressed by {query.get('from', {}).get('id')}"
    return f"update {update.get('update_id')}"
