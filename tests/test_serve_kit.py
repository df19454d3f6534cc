"""Shared by the serve/webhook/polling tests (no tests here).

1. A tiny plugin, loaded into the ``habitreward serve`` subprocess through
   ``HABITREWARD_EXTRA_PLUGINS=test_serve_kit``: a message ``count [delay]``
   sleeps ``delay`` seconds, records one row per *application* (so a duplicate
   application is visible, unlike a habit completion, which is idempotent per
   day), marks the update applied in the same transaction, and replies
   ``counted <update_id>``. ``count boom`` writes its row and then raises.
2. :class:`ServeProcess`: starts ``habitreward serve`` as a real subprocess
   against a Bot API stand-in and a test database.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from habitreward import hookimpl

TOKEN = "424242:SERVE-TEST-TOKEN-abcdefghijklmnop"
TESTS_DIR = Path(__file__).parent
HABITREWARD_BIN = str(Path(sys.executable).parent / "habitreward")
APPLIED_NAMESPACE = "serve-test-applied"


# --- the counting plugin (runs inside the server process) ------------------------------


def _record_application(update_id: int) -> None:
    from habitreward.db import database_proxy
    from habitreward.models import KeyValue
    from habitreward.server.applied import mark_current_update_applied

    with database_proxy.connection_context(), database_proxy.atomic():
        KeyValue.create(namespace=APPLIED_NAMESPACE, key=f"{update_id}:{uuid.uuid4().hex}", value="1")
        mark_current_update_applied()


async def _count(update: Any, context: Any) -> None:
    from telegram.ext import ApplicationHandlerStop

    words = update.message.text.split()
    argument = words[1] if len(words) > 1 else ""
    if argument == "boom":
        await asyncio.to_thread(_record_application, update.update_id)
        raise RuntimeError(f"boom in update {update.update_id}")
    if argument:
        await asyncio.sleep(float(argument))
    await asyncio.to_thread(_record_application, update.update_id)
    await context.bot.send_message(update.effective_chat.id, f"counted {update.update_id}")
    raise ApplicationHandlerStop


@hookimpl
def habitreward_register_handlers(register: Callable[..., None], settings: Any) -> None:
    from telegram.ext import MessageHandler, filters

    register(MessageHandler(filters.Regex(r"^count\b"), _count), group=-100)


# --- observing the database from the test ----------------------------------------------


def query(db_url: str, sql: str, params: tuple = ()) -> list[tuple]:
    from habitreward.db import open_database

    database = open_database(db_url, bind=False)
    try:
        if "%s" in sql and not db_url.startswith("postgres"):
            sql = sql.replace("%s", "?")
        return list(database.execute_sql(sql, params).fetchall())
    finally:
        database.close()
        if hasattr(database, "close_all"):
            database.close_all()


def applications(db_url: str) -> dict[int, int]:
    """How many times each update_id was applied by the counting handler."""
    rows = query(db_url, "SELECT key FROM key_values WHERE namespace = %s", (APPLIED_NAMESPACE,))
    counts: dict[int, int] = {}
    for (key,) in rows:
        update_id = int(key.split(":")[0])
        counts[update_id] = counts.get(update_id, 0) + 1
    return counts


def applied_in_order(db_url: str) -> list[int]:
    """The update_ids the counting handler applied, in the order their writes were made."""
    rows = query(db_url, "SELECT key FROM key_values WHERE namespace = %s ORDER BY id", (APPLIED_NAMESPACE,))
    return [int(key.split(":")[0]) for (key,) in rows]


def inbox(db_url: str) -> dict[int, tuple[bool, int, str | None]]:
    """update_id -> (processed, attempts, error)."""
    rows = query(db_url, "SELECT update_id, processed_at, attempts, error FROM processed_updates")
    return {r[0]: (r[1] is not None, r[2], r[3]) for r in rows}


def wait_until(condition: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def assert_one_error_record(logs: str, update_id: int, user_id: int) -> None:
    """The ``count boom`` handler's failure is in ``logs`` once: one ERROR record naming the update,
    the user and the plugin (this module), with the handler's traceback under it, and no other."""
    errors = re.findall(r" ERROR (\S+): (.*)", logs)
    assert [message for _, message in errors] == [
        f"update {update_id} (user {user_id}): a handler failed: plugin 'test_serve_kit' failed in a handler it"
        f" registered: RuntimeError: boom in update {update_id}"
    ], errors
    assert logs.count("Traceback (most recent call last)") == 1
    record = logs.split(" ERROR ", 1)[1]
    assert "\nTraceback (most recent call last)" in record
    assert f"RuntimeError: boom in update {update_id}" in record.split("Traceback", 1)[1]


def counted(standin: Any) -> dict[int, int]:
    """update_id -> how many ``counted <id>`` replies the stand-in received."""
    replies: dict[int, int] = {}
    for params in standin.calls_of("sendMessage"):
        text = str(params.get("text", ""))
        if text.startswith("counted "):
            update_id = int(text.split()[1])
            replies[update_id] = replies.get(update_id, 0) + 1
    return replies


# --- the server subprocess ----------------------------------------------------------------


class ServeProcess:
    """``habitreward serve [--webhook]`` in a subprocess, logs in a file, URL read from stdout."""

    def __init__(self, db_url: str, standin: Any, workdir: Path, *args: str, env: dict[str, str] | None = None,
                 name: str = "serve", new_session: bool = False):
        self.db_url = db_url
        #: Its own process group (``signal_group``), as a terminal's job or a systemd unit's processes.
        self.new_session = new_session
        self.standin = standin
        self.args = list(args)
        self.workdir = workdir
        self.log_path = workdir / f"{name}-{uuid.uuid4().hex[:6]}.log"
        self.extra_env = env or {}
        self.proc: subprocess.Popen | None = None
        self.url: str | None = None
        self.lines: list[str] = []

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("TELEGRAM_", "HABITREWARD_", "DATABASE_", "LLM_", "REGISTRATION"))}
        env.update(
            TELEGRAM_BOT_TOKEN=TOKEN,
            TELEGRAM_API_URL=self.standin.base_url,
            DATABASE_URL=self.db_url,
            HABITREWARD_LOAD_PLUGINS="",  # only built-ins and the test plugin
            HABITREWARD_EXTRA_PLUGINS="test_serve_kit",
            PYTHONPATH=os.pathsep.join([str(TESTS_DIR), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
            REGISTRATION="open",
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra_env)
        return env

    def start(self, *, wait_for: str = "listening on", timeout: float = 60.0) -> ServeProcess:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [HABITREWARD_BIN, "-vv", "serve", *self.args], cwd=self.workdir, env=self.environment(),
            stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=self.new_session,
        )
        log.close()
        ready = threading.Event()

        def read() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            for line in self.proc.stdout:
                self.lines.append(line.rstrip("\n"))
                if wait_for in line:
                    if "http://" in line:
                        self.url = line.split()[-1]
                    ready.set()
            ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(timeout) or (wait_for not in "\n".join(self.lines)):
            self.kill()
            raise AssertionError(f"serve did not start: {self.lines}\n{self.logs()[-3000:]}")
        return self

    @property
    def address(self) -> tuple[str, int, str]:
        assert self.url is not None
        rest = self.url.split("://", 1)[1]
        hostport, path = rest.split("/", 1)
        host, port = hostport.rsplit(":", 1)
        return host.strip("[]"), int(port), "/" + path  # an IPv6 address: http://[::1]:8080/...

    def request(self, method: str, path: str | None = None, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        host, port, webhook_path = self.address
        conn = http.client.HTTPConnection(host, port, timeout=30)
        try:
            conn.putrequest(method, path or webhook_path)
            all_headers = dict(headers or {})
            if body is not None:
                all_headers.setdefault("Content-Length", str(len(body)))
            for key, value in all_headers.items():
                conn.putheader(key, value)
            conn.endheaders()
            if body:
                try:
                    conn.send(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the server answered early (e.g. 413) and closed; read its answer
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def post_update(self, update: dict[str, Any] | bytes, *, secret: str | None = "default",
                    content_type: str = "application/json") -> int:
        from habitreward.server.secrets import derive_webhook_secret

        headers = {"Content-Type": content_type}
        if secret == "default":
            secret = derive_webhook_secret(TOKEN)
        if secret is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret
        body = update if isinstance(update, bytes) else json.dumps(update).encode()
        return self.request("POST", body=body, headers=headers)[0]

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def signal_group(self, sig: int) -> None:
        """``sig`` to every process of its group at once: Ctrl+C in a terminal, or systemd's stop
        (KillMode=control-group, the default). Needs ``new_session``."""
        assert self.proc is not None and self.new_session
        os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def wait(self, timeout: float = 60.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> ServeProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker_pids(process: ServeProcess) -> dict[int, int]:
    """Worker number -> pid of its latest start, from the supervisor's log."""
    return {int(n): int(pid) for n, pid in re.findall(r"worker (\d+) started \(pid (\d+)\)", process.logs())}
