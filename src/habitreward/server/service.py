"""``habitreward serve``: wiring the inbox, the bot loop and the webhook server or the poller.

Start: secrets out of the logs, pending migrations, the bot loop, then every
update a previous run left unprocessed, then the listener. Stop (SIGTERM or
SIGINT): stop listening, let running requests answer, finish the updates in
flight, stop the bot, close the database.

``--workers N`` (webhook, N > 1): this process becomes a small supervisor
(:class:`_Supervisor`): it binds the listening socket, takes the SQLite server
lock and applies the migrations, once, then runs N worker processes (the same
command with ``--worker``, started by ``subprocess``: no fork of a process with
threads) that each serve the webhook on the inherited socket. It forwards
SIGTERM/SIGINT to them, restarts one that dies, and stops them when it stops.
"""

from __future__ import annotations

import logging
import os
import selectors
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from habitreward.db import sqlite_file
from habitreward.errors import ConfigError
from habitreward.redaction import RedactSecrets, hide_url_credentials
from habitreward.server import applied
from habitreward.server.affinity import OFF, CpuChoice, candidate_cores, pin_process
from habitreward.server.inbox import Inbox, WorkerLock
from habitreward.server.logging_filters import install_redaction, limit_queue_warnings
from habitreward.server.runner import BotRunner
from habitreward.server.secrets import secrets_of, webhook_secret
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
    #: Webhook worker processes; more than 1 makes this process their supervisor.
    workers: int = 1
    #: The command that starts one worker (the supervisor adds ``--worker N:LISTEN_FD:CONTROL_FD``).
    worker_command: list[str] = field(default_factory=list)
    #: Set in a worker process: its number, the inherited listening socket and its line to the supervisor.
    worker: tuple[int, int, int] | None = None
    #: The CPU core each serving process binds itself to (see ``server.affinity``). ``serve``'s
    #: default is ``auto``; a program embedding the service binds its own process only if it asks.
    pin_cpu: CpuChoice = OFF


def build_bot(engine: Any, *, rate_limit: bool = True) -> Any:
    """The bot's Application, without PTB's own updater (the server feeds it)."""
    from habitreward.bot.app import build_application

    return build_application(engine, updater=False, rate_limiter=rate_limit)


class _StopSignal:
    """SIGTERM/SIGINT set a flag (and wake the waiter); the main thread does the stopping."""

    def __init__(self, on_signal: Callable[[], None] | None = None, who: str = ""):
        self.who = who  # "worker 2: " in a worker: with --workers every process logs its stop
        self.event = threading.Event()
        self.on_signal = on_signal
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        if self._previous:
            return  # installed already
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        self.trigger(f"{signal.Signals(signum).name} received")

    def trigger(self, reason: str, *, quiet: bool = False) -> None:
        if self.event.is_set():
            return  # stopping already: a repeated signal changes nothing (the server it would wake is gone)
        if not quiet:
            logger.warning("%s%s: stopping after the updates in flight", self.who, reason)
        self.event.set()
        if self.on_signal is not None:
            self.on_signal()

    def ignore(self) -> None:
        """From now on SIGTERM and SIGINT do nothing (SIG_IGN: Python's own exit puts a handler
        back to the default, which kills, but leaves an ignored signal ignored)."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)
        self._previous.clear()

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


def is_sqlite_url(database_url: str) -> bool:
    return urlparse(database_url).scheme in ("sqlite", "")


class _SqliteServerLock:
    """One ``serve`` per SQLite file: restarts recover unfinished updates safely only then.

    Several processes on one file run as the workers of one ``serve --webhook --workers N``
    (which holds this lock); independent processes need PostgreSQL (advisory locks).
    """

    def __init__(self, database_url: str):
        self.path: Path | None = None
        self._file: Any = None
        self._database = sqlite_file(database_url)
        if self._database is not None:  # bot.db.serve-lock: bot.db and bot.sqlite have one each
            self.path = self._database.with_name(self._database.name + ".serve-lock")

    def acquire(self) -> None:
        if self.path is None:
            return
        try:
            import fcntl
        except ImportError:  # Windows: no advisory file locks; run one server there.
            return
        try:
            self._file = open(self.path, "a+")
        except OSError as exc:
            raise ConfigError(f"cannot use the SQLite database {self._database}: {exc.strerror or exc} ({self.path});"
                              " its directory must exist and be writable") from None
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._file.close()
            self._file = None
            raise ConfigError(
                f"another `habitreward serve` is running on this SQLite database ({self._database});"
                " for several processes on SQLite run one `serve --webhook --workers N`"
            ) from None

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class Service:
    """One ``habitreward serve`` process."""

    def __init__(self, engine: Any, options: ServeOptions, *, application_factory: Callable[[Any], Any] | None = None,
                 announce: Callable[[str], None] = print, on_ready: Callable[[], None] | None = None):
        self.engine = engine
        #: Run once the webhook listens and the bot runs (all workers, with --workers), after the line
        #: saying where it listens: what must not happen for a start that is refused (``--set-webhook``
        #: tells Telegram where to post, and Telegram posts at once).
        self.on_ready = on_ready
        self.settings = engine.settings
        self.options = options
        self.application_factory = application_factory or (lambda e: build_bot(e, rate_limit=options.rate_limit))
        # The start line names the webhook path, which some set up with the token in it.
        redactor = RedactSecrets(secrets_of(self.settings))
        self.announce: Callable[[str], None] = lambda text: announce(redactor.redact(text))
        self.secret = webhook_secret(self.settings) if self.settings.telegram_webhook_secret or \
            self.settings.telegram_bot_token else None
        self.inbox: Inbox | None = None
        self.runner: BotRunner | None = None
        self.core: int | None = None  # the CPU core this process is bound to (--pin-cpu)
        candidate_cores(options.pin_cpu)  # a bad --pin-cpu: one error before anything starts (or per worker)
        self._sqlite_lock = _SqliteServerLock(self.settings.database_url)
        self._worker_lock: WorkerLock | None = None
        self._refused = False  # on_ready failed: the start is refused, its error the one line

    # --- start and stop ----------------------------------------------------------------

    def _start_bot(self) -> BotRunner:
        self.settings.require("telegram_bot_token")
        # Before the bot's threads start (they inherit it; the ones running already are bound too).
        self.core = pin_process(self.options.pin_cpu, self.options.worker[0] if self.options.worker else None)
        install_redaction(secrets_of(self.settings))
        if self.options.worker is None:
            self._sqlite_lock.acquire()
            self._wait_for_old_workers()
            self._upgrade_schema()
            self._say_requests_waiting()
        else:  # the supervisor holds the server lock and applied the migrations
            database = sqlite_file(self.settings.database_url)
            if database is not None:
                self._worker_lock = WorkerLock(worker_lock_directory(database)).acquire()
                logger.info("worker %d: token %s", self.options.worker[0], self._worker_lock.token)
        if self.settings.llm_model:  # not on the first message that needs it (it takes seconds)
            from habitreward.nlp.llm import import_in_background

            import_in_background()
        applied.register(self.engine.pm)
        application = self.application_factory(self.engine)
        self.inbox = Inbox(self.engine, owner=self._worker_lock)
        self.runner = BotRunner(application, self.inbox, concurrency=self.options.concurrency,
                                sweep_interval=self.options.sweep_interval)
        try:
            self.runner.start()
        except Exception as exc:
            # A bot that cannot start (getMe failing) refuses the start: its error is the one line,
            # without a "stopped" line before it for a server that never served.
            self._refused = True
            refusal = _bot_start_refusal(exc, self.settings.telegram_api_url)
            if refusal is None:
                raise
            raise ConfigError(refusal) from None
        recovered = self.runner.submit_pending()
        if recovered and self.options.worker is None:
            logger.warning("processing %d update(s) left unprocessed by the previous run", recovered)
        elif recovered:
            logger.warning("worker %d: looking at %d update(s) left unprocessed (a live worker's stay its own)",
                           self.options.worker[0], recovered)
        return self.runner

    def _who(self) -> str:
        """How a log line of this process names it: "worker N: " in a worker of --workers."""
        return f"worker {self.options.worker[0]}: " if self.options.worker else ""

    def _name(self) -> str:
        """How the start line names this process: ``habitreward`` and the core it is bound to."""
        return "habitreward" if self.core is None else f"habitreward (CPU {self.core})"

    def _wait_for_old_workers(self) -> None:
        """On SQLite, after taking the server lock: workers of a ``serve --workers`` whose
        supervisor was killed may still be finishing their updates; they own those rows."""
        database = sqlite_file(self.settings.database_url)
        if database is None or os.name != "posix":
            return
        directory = worker_lock_directory(database)
        deadline = time.monotonic() + self.options.shutdown_timeout + 15.0
        while live := WorkerLock.live_tokens(directory):
            if time.monotonic() > deadline:
                raise ConfigError(f"{len(live)} worker process(es) of an earlier `habitreward serve --workers` still"
                                  f" run on this SQLite database ({', '.join(live)}); stop them first")
            logger.warning("waiting for %d worker process(es) of an earlier serve to finish", len(live))
            time.sleep(0.5)

    def _upgrade_schema(self) -> None:
        applied_migrations = self.engine.upgrade_schema()
        if applied_migrations:
            logger.warning("applied %d migration(s): %s", len(applied_migrations), ", ".join(applied_migrations))

    def _say_requests_waiting(self) -> None:
        """Requests to use the bot that no admin has (asked while there was none, or "sending" for
        longer than SENDING_LEASE: the process sending them stopped) go out only at
        their person's next message (docs/bot.md): at the start, with an admin there now, the
        operator hears how many wait so. One query, once; nothing on the path of each update."""
        if self.settings.registration != "approval":  # not sent at all then: nothing to say will happen
            return
        from habitreward.bot.state import admin_ids, unsent_requests

        count, _ = unsent_requests(self.engine, shown=0)
        if count and admin_ids(self.engine):
            logger.warning("%d request(s) to use the bot wait with no admin having them (asked while no admin"
                           " could get them, or left half-sent by a process that stopped): each goes to the admins"
                           " at that person's next message; to see who waits: habitreward users list --waiting",
                           count)

    def _ready(self) -> None:
        """``on_ready``, once serving. When it fails (``--set-webhook``: Telegram refused setWebhook)
        the start is refused: its error is what the operator reads, not a "stopped" line before it."""
        if self.on_ready is None:
            return
        try:
            self.on_ready()
        except Exception:
            self._refused = True
            raise

    def _stop_bot(self) -> None:
        # A refused start closes quietly: its error is the one line.
        started = self.runner is not None and not self._refused
        try:
            if self.runner is not None and self.runner.loop is not None:
                self.runner.stop(self.options.shutdown_timeout)
        finally:
            if self.inbox is not None:
                self.inbox.close()
            self.engine.close()
            self._sqlite_lock.release()
            if self._worker_lock is not None:  # last: its rows become claimable by other workers
                self._worker_lock.release()
        if started:
            logger.warning("%sstopped; database closed", self._who())

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
            if self.options.worker is not None:
                details["worker"], details["pid"] = self.options.worker[0], os.getpid()
            return details["database"] == "ok" and details["bot"] == "ok", details

        return WebhookApp(path=webhook_path(self.settings), secret=self.secret, receive=runner.receive,
                          bot=runner.application.bot,
                          health=health)

    def serve_webhook(self) -> None:
        if self.options.workers > 1 and self.options.worker is None:
            _Supervisor(self).run()
            return
        from habitreward.server.http import make_http_server

        stop = _StopSignal(who=self._who())
        control: socket.socket | None = None
        own: socket.socket | None = None
        try:
            if self.options.worker is not None:
                _, listen_fd, control_fd = self.options.worker
                control = socket.socket(fileno=control_fd)
                listening = socket.socket(fileno=listen_fd)
                where: dict[str, Any] = {"sockets": [listening]}
                stop.install()  # a stop during the start: serve nothing, stop gracefully
            else:  # bound before the bot starts: a port in use or a bad host is a one-line error
                webhook_path(self.settings)  # and so is a TELEGRAM_WEBHOOK_URL nothing could reach
                own = _listening_socket(self.options.host, self.options.port)
                where = {"sockets": [own]}
            try:
                runner = self._start_bot()
            except ConfigError as exc:
                if control is not None and self._refused and _tell_supervisor_refused(control, str(exc)):
                    raise SystemExit(1) from None  # the supervisor says it, once for all the workers
                raise
            wsgi_app = self.make_wsgi_app(runner)
            server = make_http_server(
                wsgi_app,
                **where,
                threads=self.options.threads,
                max_request_body_size=MAX_BODY_BYTES,
                ident="habitreward",
                clear_untrusted_proxy_headers=True,
            )
            limit_queue_warnings(server.task_dispatcher)
            stop.on_signal = server.pull_trigger  # wake the network loop at once
            stop.install()
            port = server.effective_port  # type: ignore[union-attr]
            if control is not None:
                _watch_supervisor(control, stop, self)
                control.sendall(b"ready\n")  # the supervisor logs it
            else:
                url = f"{_base_url(self.options.host, port)}{wsgi_app.path}"
                self.announce(f"{self._name()}: webhook listening on {url}")
                # Bound, locked, the bot running: a request now waits only for this call (in the
                # socket's backlog), and is then served.
                self._ready()
            _run_until_stopped(server, wsgi_app, stop.event)
        finally:
            try:
                self._stop_bot()  # a second SIGTERM meanwhile must not kill it mid-way: handlers stay
            finally:
                if self.options.worker is None:
                    stop.restore()
                else:  # Ctrl+C or systemd's stop signal every process of the group: the supervisor's
                    stop.ignore()  # SIGTERM may come once this worker has stopped, as it exits
            if control is not None:
                control.close()
            if own is not None:  # waitress closes it too; not when the start failed before it ran
                own.close()

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
            self.announce(f"{self._name()}: polling Telegram for updates (Ctrl+C stops)")
            stop.event.wait()
            poller.stop()
            if poller.error is not None:
                raise ConfigError(str(poller.error))
        finally:
            try:
                self._stop_bot()
            finally:
                stop.restore()


#: The Bot API ``serve`` talks to when TELEGRAM_API_URL is unset (PTB's ``base_url``, the token follows).
DEFAULT_API_URL = "https://api.telegram.org/bot"


def _bot_start_refusal(exc: Exception, api_url: str | None) -> str | None:
    """The one line for a bot whose start failed (``exc``, from getMe), naming the Bot API it
    asked (the URL without the token or credentials): None for a failure that is not Telegram's."""
    from telegram.error import InvalidToken, NetworkError, TelegramError

    # Credentials of the URL (a proxy's user:password) hidden whatever their length: the
    # redaction of messages only knows those of 8 characters or more.
    api = hide_url_credentials(api_url) if api_url else DEFAULT_API_URL
    if isinstance(exc, InvalidToken):
        # (PTB's text repeats the token, redacted: nothing the operator needs)
        return f"the Bot API at {api} refused TELEGRAM_BOT_TOKEN (invalid token); check the token"
    if isinstance(exc, NetworkError):
        return f"the Bot API at {api} could not be reached ({exc}); check the network or TELEGRAM_API_URL"
    if isinstance(exc, TelegramError):
        return f"the Bot API at {api} refused to start the bot: {exc}"
    return None


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



# --- several worker processes (serve --webhook --workers N) ----------------------------------


def worker_lock_directory(database: Path) -> Path:
    """Where the workers on one SQLite file keep their lock files: ``<database file>.workers``."""
    return database.with_name(database.name + ".workers")


#: Supervisor to worker: its start was refused after the workers started (``--set-webhook``): stop
#: without a word, the supervisor's error says it all.
_START_REFUSED = b"start refused\n"


#: Worker to supervisor: its bot could not start (the Bot API unreachable, the token refused);
#: the rest of the line is the error, which the supervisor gives as its own.
_REFUSED = b"refused "


def _tell_supervisor_refused(control: socket.socket, error: str) -> bool:
    """In a worker whose bot could not start: hand the error to the supervisor (False: it is gone)."""
    try:
        control.sendall(_REFUSED + error.replace("\n", " ").encode() + b"\n")
    except OSError:
        return False
    return True


def _watch_supervisor(control: socket.socket, stop: _StopSignal, service: Service) -> None:
    """In a worker: stop gracefully when the supervisor is gone (its end of the line closes), and
    quietly when it says its start was refused."""

    def watch() -> None:
        try:
            while data := control.recv(64):
                if _START_REFUSED in data:
                    service._refused = True
                    stop.trigger("start refused", quiet=True)
                    return
        except OSError:
            pass
        if not stop.event.is_set():
            stop.trigger("the supervisor is gone")

    threading.Thread(target=watch, name="habitreward-supervisor-watch", daemon=True).start()


def _listening_socket(host: str, port: int) -> socket.socket:
    """Bind HOST:PORT once, for every worker (what waitress would do for one process)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(1024)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def _base_url(host: str, port: int) -> str:
    """``http://HOST:PORT`` as a URL writes it: an IPv6 address in brackets (``http://[::1]:8080``),
    so the start line can be pasted into curl or a proxy's configuration."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


@dataclass
class _Worker:
    number: int
    proc: subprocess.Popen | None = None
    control: socket.socket | None = None
    started: float = 0.0
    ready: bool = False
    ever_ready: bool = False
    failures: int = 0  # deaths in a row before being ready or soon after starting
    restart_at: float | None = None
    heard: bytearray = field(default_factory=bytearray)  # what it said on its control line

    def refusal(self) -> str | None:
        """The error a worker whose bot could not start handed over (see _tell_supervisor_refused)."""
        start = self.heard.find(_REFUSED)
        if start < 0:
            return None
        return bytes(self.heard[start + len(_REFUSED):]).split(b"\n", 1)[0].decode(errors="replace")


class _Supervisor:
    """``serve --webhook --workers N``: the parent of N worker processes.

    It has no threads of its own (its children are started with ``subprocess``, which
    execs at once) and no database connection while it supervises.
    """

    #: A worker that dies sooner than this after its start counts as failing to start.
    STABLE_AFTER = 10.0
    #: Failures in a row after which the supervisor gives up (and exits non-zero).
    MAX_FAILURES = 5
    START_TIMEOUT = 120.0

    def __init__(self, service: Service):
        self.service = service
        self.options = service.options
        self.workers = [_Worker(number) for number in range(1, self.options.workers + 1)]
        self.selector = selectors.DefaultSelector()
        self.listening: socket.socket | None = None
        self.stop = _StopSignal()

    def run(self) -> None:
        service, options = self.service, self.options
        settings = service.settings
        settings.require("telegram_bot_token")
        install_redaction(secrets_of(settings))
        if not options.worker_command:
            raise ConfigError("--workers needs the command that starts a worker")
        if os.name != "posix":
            raise ConfigError("--workers needs a POSIX system (inherited sockets, file locks)")
        if is_sqlite_url(settings.database_url) and sqlite_file(settings.database_url) is None:
            raise ConfigError("--workers needs a database file (SQLite in memory is one process's own)")
        webhook_path(settings)  # a TELEGRAM_WEBHOOK_URL nothing could reach: refused as one process does
        self.stop.install()
        try:
            try:
                # First, as one process does: a port in use is the one thing said, before migrations.
                self.listening = _listening_socket(options.host, options.port)
                service._sqlite_lock.acquire()
                service._wait_for_old_workers()
                service._upgrade_schema()
                service._say_requests_waiting()
                service.engine.close()  # each worker opens its own connections
                self._start_all()
                if not self.stop.event.is_set():
                    self.announce(self.listening.getsockname()[1])
                    service._ready()  # every worker serves: said after the line saying so
                    self._supervise()
            except BaseException:
                self._stop_all(check=False, quietly=service._refused)
                raise
            self._stop_all(check=True)
        finally:
            self.stop.restore()
            if self.listening is not None:
                self.listening.close()
            self.selector.close()
            service._sqlite_lock.release()
        logger.warning("stopped; all %d workers exited", len(self.workers))

    def announce(self, port: int) -> None:
        path = webhook_path(self.service.settings)
        self.service.announce(f"habitreward: {len(self.workers)} worker processes;"
                              f" webhook listening on {_base_url(self.options.host, port)}{path}")

    # --- starting -------------------------------------------------------------------------

    def _spawn(self, worker: _Worker) -> None:
        assert self.listening is not None
        ours, theirs = socket.socketpair()
        command = [*self.options.worker_command, "--worker",
                   f"{worker.number}:{self.listening.fileno()}:{theirs.fileno()}"]
        try:
            worker.proc = subprocess.Popen(command, pass_fds=(self.listening.fileno(), theirs.fileno()),
                                           stdin=subprocess.DEVNULL)
        except OSError as exc:
            ours.close()
            raise ConfigError(f"cannot start worker {worker.number}: {exc}") from None
        finally:
            theirs.close()
        ours.setblocking(False)
        worker.control = ours
        worker.started = time.monotonic()
        worker.ready = False
        worker.restart_at = None
        worker.heard.clear()
        self.selector.register(ours, selectors.EVENT_READ, worker)
        logger.info("worker %d started (pid %d)", worker.number, worker.proc.pid)

    def _start_all(self) -> None:
        for worker in self.workers:
            self._spawn(worker)
        deadline = time.monotonic() + self.START_TIMEOUT
        while not all(w.ready for w in self.workers):
            if self.stop.event.is_set():
                return
            self._read_controls(0.1)
            for worker in self.workers:
                assert worker.proc is not None
                code = worker.proc.poll()
                if code is not None and not worker.ready:
                    refusal = self._refusal(worker)
                    if refusal is not None:  # the error one process gives; the others stop quietly
                        self.service._refused = True
                        raise ConfigError(refusal)
                    raise ConfigError(f"worker {worker.number} could not start ({_describe_exit(code)});"
                                      " see its log above")
            if time.monotonic() > deadline:
                raise ConfigError(f"the workers did not start within {self.START_TIMEOUT:.0f} s")

    def _read_controls(self, timeout: float) -> None:
        for key, _ in self.selector.select(timeout):
            worker: _Worker = key.data
            try:
                data = key.fileobj.recv(64)  # type: ignore[union-attr]
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if data:
                worker.heard += data
                if worker.heard.startswith(b"ready") and not worker.ready:  # its first word, not in an error
                    worker.ready = worker.ever_ready = True
                    logger.info("worker %d (pid %d) is serving", worker.number, worker.proc.pid if worker.proc else 0)
            else:  # the worker is exiting
                self._forget_control(worker)

    def _refusal(self, worker: _Worker) -> str | None:
        """Of a worker that exited: the error its bot's start was refused with, if it said one
        (what it wrote before exiting is still to read on its line)."""
        while worker.control is not None:
            try:
                data = worker.control.recv(4096)
            except BlockingIOError:
                break
            except OSError:
                data = b""
            if not data:
                self._forget_control(worker)
                break
            worker.heard += data
        return worker.refusal()

    def _forget_control(self, worker: _Worker) -> None:
        if worker.control is not None:
            self.selector.unregister(worker.control)
            worker.control.close()
            worker.control = None

    # --- running --------------------------------------------------------------------------

    def _supervise(self) -> None:
        while not self.stop.event.is_set():
            self._read_controls(0.2)
            now = time.monotonic()
            for worker in self.workers:
                if worker.proc is not None and worker.proc.poll() is not None and not self.stop.event.is_set():
                    self._died(worker, now)
                if worker.proc is None and worker.restart_at is not None and worker.restart_at <= now \
                        and not self.stop.event.is_set():
                    self._spawn(worker)

    def _died(self, worker: _Worker, now: float) -> None:
        assert worker.proc is not None
        code = worker.proc.returncode
        lived = now - worker.started
        refusal = self._refusal(worker)
        why = f": {refusal}" if refusal else ""
        self._forget_control(worker)
        worker.proc = None
        if worker.ready and lived >= self.STABLE_AFTER:
            worker.failures = 0
        else:
            worker.failures += 1
        if worker.failures >= self.MAX_FAILURES:
            raise ConfigError(f"worker {worker.number} keeps dying ({_describe_exit(code)},"
                              f" {worker.failures} times in a row); giving up{why}")
        delay = 0.0 if worker.failures == 0 else min(30.0, 0.5 * 2 ** (worker.failures - 1))
        worker.restart_at = now + delay
        logger.error("worker %d died (%s) after %.1f s; restarting it%s%s", worker.number, _describe_exit(code),
                     lived, f" in {delay:.1f} s" if delay else "", why)

    # --- stopping -------------------------------------------------------------------------

    def _stop_all(self, *, check: bool, quietly: bool = False) -> None:
        """Forward the stop to every worker and wait for them (graceful: they finish their updates);
        ``check``: raise when a serving worker did not exit cleanly; ``quietly``: the start was
        refused, the workers stop without a line each (told on their control line, not by SIGTERM)."""
        if self.listening is not None:
            self.listening.close()  # the workers' copies close as they stop: then connections are refused
        running = [w for w in self.workers if w.proc is not None and w.proc.poll() is None]
        for worker in running:
            assert worker.proc is not None
            if quietly and worker.control is not None:
                try:
                    worker.control.sendall(_START_REFUSED)
                    continue
                except OSError:
                    pass  # its line is gone: SIGTERM then
            try:
                worker.proc.send_signal(signal.SIGTERM)
            except OSError:
                pass
        deadline = time.monotonic() + self.options.shutdown_timeout + 15.0
        failed: list[str] = []
        for worker in self.workers:
            if worker.proc is None:
                continue
            try:
                code = worker.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.error("worker %d (pid %d) did not stop in time; killing it", worker.number, worker.proc.pid)
                worker.proc.kill()
                code = worker.proc.wait()
            if code != 0 and worker in running and worker.ready:
                failed.append(f"worker {worker.number}: {_describe_exit(code)}")
            self._forget_control(worker)
        if failed and check:
            raise ConfigError("workers did not stop cleanly: " + ", ".join(failed))
