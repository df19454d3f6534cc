"""``habitreward serve``: wiring the inbox, the bot loop and the webhook server or the poller.

Start: secrets out of the logs, pending migrations, the bot loop, then every
update a previous run left unprocessed, then the listener. Stop (SIGTERM or
SIGINT): stop listening, let running requests answer, finish the updates in
flight, stop the bot, close the database.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from habitreward.errors import ConfigError
from habitreward.server import applied
from habitreward.server.inbox import Inbox
from habitreward.server.logging_filters import install_redaction, limit_queue_warnings
from habitreward.server.runner import BotRunner
from habitreward.server.secrets import webhook_secret
from habitreward.server.webhook_admin import webhook_path
from habitreward.server.wsgi import MAX_BODY_BYTES, WebhookApp

logger = logging.getLogger("habitreward.serve")


@dataclass
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8080
    threads: int = 8
    concurrency: int = 16
    shutdown_timeout: float = 30.0
    sweep_interval: float = 30.0
    poll_timeout: int = 30
    rate_limit: bool = True


def build_bot(engine: Any, *, rate_limit: bool = True) -> Any:
    """The bot's Application, without PTB's own updater (the server feeds it)."""
    from habitreward.bot.app import build_application

    return build_application(engine, updater=False, rate_limiter=rate_limit)


class _StopSignal:
    """SIGTERM/SIGINT set a flag (and wake the waiter); the main thread does the stopping."""

    def __init__(self, on_signal: Callable[[], None] | None = None):
        self.event = threading.Event()
        self.on_signal = on_signal
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        if not self.event.is_set():
            logger.warning("%s received: stopping after the updates in flight", signal.Signals(signum).name)
        self.event.set()
        if self.on_signal is not None:
            self.on_signal()

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class _SqliteServerLock:
    """One server process per SQLite file: restarts recover unfinished updates safely only then.

    Several processes need PostgreSQL (their rows are guarded by advisory locks).
    """

    def __init__(self, database_url: str):
        self.path: Path | None = None
        self._file: Any = None
        parts = urlparse(database_url)
        if parts.scheme in ("sqlite", "") and parts.path not in ("", "/:memory:", ":memory:"):
            self.path = Path(parts.path[1:] if parts.path.startswith("/") else parts.path).with_suffix(".serve-lock")

    def acquire(self) -> None:
        if self.path is None:
            return
        try:
            import fcntl
        except ImportError:  # Windows: no advisory file locks; run one server there.
            return
        self._file = open(self.path, "a+")
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._file.close()
            self._file = None
            raise ConfigError(
                f"another `habitreward serve` is running on this SQLite database ({self.path.with_suffix('')});"
                " several server processes need PostgreSQL"
            ) from None

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class Service:
    """One ``habitreward serve`` process."""

    def __init__(self, engine: Any, options: ServeOptions, *, application_factory: Callable[[Any], Any] | None = None,
                 announce: Callable[[str], None] = print):
        self.engine = engine
        self.settings = engine.settings
        self.options = options
        self.application_factory = application_factory or (lambda e: build_bot(e, rate_limit=options.rate_limit))
        self.announce = announce
        self.secret = webhook_secret(self.settings) if self.settings.telegram_webhook_secret or \
            self.settings.telegram_bot_token else None
        self.inbox: Inbox | None = None
        self.runner: BotRunner | None = None
        self._sqlite_lock = _SqliteServerLock(self.settings.database_url)

    # --- start and stop ----------------------------------------------------------------

    def _start_bot(self) -> BotRunner:
        self.settings.require("telegram_bot_token")
        install_redaction([self.settings.telegram_bot_token, self.secret])
        self._sqlite_lock.acquire()
        applied_migrations = self.engine.upgrade_schema()
        if applied_migrations:
            logger.warning("applied %d migration(s): %s", len(applied_migrations), ", ".join(applied_migrations))
        applied.register(self.engine.pm)
        application = self.application_factory(self.engine)
        self.inbox = Inbox(self.engine)
        self.runner = BotRunner(application, self.inbox, concurrency=self.options.concurrency,
                                sweep_interval=self.options.sweep_interval)
        try:
            self.runner.start()
        except Exception as exc:
            from telegram.error import InvalidToken, NetworkError, TelegramError

            if isinstance(exc, InvalidToken):
                raise ConfigError("Telegram refused TELEGRAM_BOT_TOKEN (invalid token)") from None
            if isinstance(exc, NetworkError):
                raise ConfigError(f"cannot reach the Bot API ({exc}); check the network or TELEGRAM_API_URL") from None
            if isinstance(exc, TelegramError):
                raise ConfigError(f"Telegram refused to start the bot: {exc}") from None
            raise
        recovered = self.runner.submit_pending()
        if recovered:
            logger.warning("processing %d update(s) left unprocessed by the previous run", recovered)
        return self.runner

    def _stop_bot(self) -> None:
        try:
            if self.runner is not None and self.runner.loop is not None:
                self.runner.stop(self.options.shutdown_timeout)
        finally:
            if self.inbox is not None:
                self.inbox.close()
            self.engine.close()
            self._sqlite_lock.release()
        logger.warning("stopped; database closed")

    # --- webhook ------------------------------------------------------------------------

    def make_wsgi_app(self, runner: BotRunner) -> WebhookApp:
        assert self.inbox is not None and self.secret is not None
        inbox = self.inbox

        def health() -> tuple[bool, dict[str, Any]]:
            details: dict[str, Any] = {}
            try:
                with self.engine.session():
                    self.engine.db.execute_sql("SELECT 1")
                details["database"] = "ok"
            except Exception as exc:
                details["database"] = f"error: {type(exc).__name__}"
            details["bot"] = "ok" if runner.alive() else "not running"
            details["in_flight"] = inbox.in_flight()
            return details["database"] == "ok" and details["bot"] == "ok", details

        return WebhookApp(path=webhook_path(self.settings), secret=self.secret, receive=runner.receive,
                          bot=runner.application.bot,
                          health=health)

    def serve_webhook(self) -> None:
        from waitress.server import create_server

        stop = _StopSignal()
        limit_queue_warnings()
        try:
            runner = self._start_bot()
            wsgi_app = self.make_wsgi_app(runner)
            server = create_server(
                wsgi_app,
                host=self.options.host,
                port=self.options.port,
                threads=self.options.threads,
                max_request_body_size=MAX_BODY_BYTES,
                ident="habitreward",
                clear_untrusted_proxy_headers=True,
            )
            stop.on_signal = server.pull_trigger  # wake the network loop at once
            stop.install()
            port = server.effective_port  # type: ignore[union-attr]
            self.announce(f"habitreward: webhook listening on http://{self.options.host}:{port}{wsgi_app.path}")
            _run_until_stopped(server, wsgi_app, stop.event)
        finally:
            stop.restore()
            self._stop_bot()

    # --- polling ------------------------------------------------------------------------

    def serve_polling(self) -> None:
        from habitreward.server.polling import Poller

        stop = _StopSignal()
        try:
            runner = self._start_bot()
            assert self.inbox is not None
            poller = Poller(runner, self.inbox, timeout=self.options.poll_timeout)
            polling = poller.start()
            polling.add_done_callback(lambda _f: stop.event.set())
            stop.install()
            self.announce("habitreward: polling Telegram for updates (Ctrl+C stops)")
            stop.event.wait()
            poller.stop()
            if poller.error is not None:
                raise ConfigError(str(poller.error))
        finally:
            stop.restore()
            self._stop_bot()


def _run_until_stopped(server: Any, app: WebhookApp, stopping: threading.Event, grace: float = 10.0) -> None:
    """waitress's network loop, stopped gracefully: no new connections, running requests answered."""
    from waitress import wasyncore

    use_poll = server.adj.asyncore_use_poll
    deadline: float | None = None
    while True:
        wasyncore.loop(timeout=0.2, map=server._map, use_poll=use_poll, count=1)
        if not stopping.is_set():
            continue
        if deadline is None:
            deadline = time.monotonic() + grace
            app.accepting = False  # a request already on an open connection gets 503 and is re-sent
            wasyncore.dispatcher.close(server)  # stop listening
        dispatcher = server.task_dispatcher
        busy = dispatcher.active_count or len(dispatcher.queue)
        unsent = any(getattr(ch, "total_outbufs_len", 0) for ch in list(server._map.values()))
        if (not busy and not unsent) or time.monotonic() > deadline:
            break
    server.task_dispatcher.shutdown(timeout=1)
    wasyncore.close_all(server._map)

