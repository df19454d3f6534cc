"""End-to-end webhook throughput: ``habitreward serve --webhook`` vs python-telegram-bot's own
``run_webhook``, same load, same run.

    pip install -e '.[bench]'          # tornado, for PTB's run_webhook
    python bench/webhook.py                                   # SQLite in a temp dir
    python bench/webhook.py --workers 1,2,3                   # completions with 1, 2 and 3 workers
    python bench/webhook.py --postgres postgresql://postgres@127.0.0.1:5432/test
    python bench/webhook.py --users 300 --clients 24
    python bench/webhook.py --profile /tmp/prof   # + py-spy profiles of each server under the load
    python bench/webhook.py --pin-cpu off         # serve's processes left to the scheduler

Both servers run as subprocesses and talk to the same in-process Bot API
stand-in. The load: USERS x 5 habits text updates ("Running", "Reading", ...)
POSTed by CLIENTS concurrent keep-alive connections (Telegram opens up to 40),
with the secret header. An update's latency runs from the start of its POST
until the stand-in receives the bot's reply (sendMessage) for it.

- habitreward: every update is a real habit completion (free text matched to
  the habit, streak, weighted reward draw, pieces) through the inbox, answered
  with the bot's completion message.
- PTB baseline: ``Application.run_webhook`` (tornado) with one handler that
  echoes the text back; no database at all. PTB has no way to run one bot's
  webhook in several processes; habitreward's completions are measured with one
  process and with ``serve --workers N`` (``--workers``, default 1 and 2).

Reported: updates/s (first POST to last reply), p50/p99 latency, the server
process's CPU time per update (user + system during the measured load, and the
system part; steadier than updates/s on a shared machine), resident memory (VmRSS
after the run and peak VmHWM) of each server process, and the throughput ratio habitreward / PTB
(goal >= 1.0). The servers take turns for ``--rounds`` rounds (each a fresh
process and fresh users), and the median of the rounds' ratios is the result:
a shared machine's speed drifts by a third over minutes, so only servers
measured moments apart compare. A benchmark, not a test: numbers vary by
machine and load; compare the servers from one run.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import queue
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

from habitreward.server.secrets import derive_webhook_secret
from habitreward.testing.botapi import BotApiStandIn
from habitreward.testing.builders import message_update
from habitreward.testing.engines import make_engine

TOKEN = "555000:BENCH-TOKEN-abcdefghijklmnopq"
HABITS = ("Running", "Reading", "Meditation", "Stretching", "Journaling")
HABITREWARD_BIN = str(Path(sys.executable).parent / "habitreward")

PTB_ECHO_BOT = textwrap.dedent(
    """
    import logging, sys
    from telegram.ext import Application, MessageHandler, filters

    token, base_url, port, secret = sys.argv[1:5]
    logging.basicConfig(level=logging.WARNING)

    async def echo(update, context):
        await context.bot.send_message(update.effective_chat.id, update.message.text)

    app = Application.builder().token(token).base_url(base_url).build()
    app.add_handler(MessageHandler(filters.TEXT, echo))
    app.run_webhook(listen="127.0.0.1", port=int(port), url_path="webhook/telegram", secret_token=secret,
                    webhook_url="https://bench.invalid/webhook/telegram")
    """
)


#: The same echo handler inside habitreward (first in line, stops the bot's own handlers), to
#: compare the server layers alone: inbox, exactly-once bookkeeping, loop hand-over.
ECHO_PLUGIN = textwrap.dedent(
    """
    from habitreward import hookimpl

    async def echo(update, context):
        from telegram.ext import ApplicationHandlerStop

        await context.bot.send_message(update.effective_chat.id, update.message.text)
        raise ApplicationHandlerStop

    @hookimpl
    def habitreward_register_handlers(register, settings):
        from telegram.ext import MessageHandler, filters

        register(MessageHandler(filters.TEXT, echo), group=-1000)
    """
)


class TimingStandIn(BotApiStandIn):
    """Notes when each reply arrives, keyed by (chat id, habit named in the text)."""

    def __init__(self) -> None:
        super().__init__()
        self.replies: dict[tuple[int, str], float] = {}
        self.reply_count = 0
        self._pattern = re.compile("|".join(HABITS))

    def handle_call(self, token: str, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        arrived = time.perf_counter()
        if method.lower() == "sendmessage":
            found = self._pattern.search(str(params.get("text", "")))
            if found:
                with self._lock:
                    self.replies.setdefault((int(params["chat_id"]), found.group(0)), arrived)
                    self.reply_count += 1
        status, body = super().handle_call(token, method, params)
        with self._lock:  # keep memory flat over thousands of calls
            self.calls.clear()
            self._sent.clear()
            self._messages.clear()
        return status, body

    @staticmethod
    def _reply(request: Any, status: int, body: dict[str, Any]) -> None:
        # http.server sends headers and body in two writes; without TCP_NODELAY, Nagle's
        # algorithm and delayed ACKs add ~40 ms to every Bot API call, for both servers.
        request.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        BotApiStandIn._reply(request, status, body)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (serve --workers: the supervisor and its workers), Linux."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                todo.extend(int(child) for child in (task / "children").read_text().split())
            except OSError:
                pass
    return found


def memory_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process and its descendants, summed, in KiB (Linux)."""
    rss = hwm = 0
    for member in process_tree(pid):
        try:
            with open(f"/proc/{member}/status") as status:
                for line in status:
                    key, _, rest = line.partition(":")
                    if key == "VmRSS":
                        rss += int(rest.split()[0])
                    elif key == "VmHWM":
                        hwm += int(rest.split()[0])
        except OSError:
            pass
    return rss, hwm


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(user, system) CPU time a process and its descendants have used so far, in seconds (Linux)."""
    user = system = 0
    for member in process_tree(pid):
        try:
            with open(f"/proc/{member}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        user += int(fields[11])
        system += int(fields[12])
    ticks = os.sysconf("SC_CLK_TCK")
    return user / ticks, system / ticks


@contextlib.contextmanager
def profiled(pid: int, profile_dir: Path | None, name: str) -> Iterator[None]:
    """py-spy samples of ``pid`` while the block runs (only the thread holding the GIL: where
    the CPU goes), written as collapsed stacks to ``profile_dir/name.txt``."""
    if profile_dir is None:
        yield
        return
    profile_dir.mkdir(parents=True, exist_ok=True)
    out = profile_dir / f"{name}.txt"
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    py_spy = shutil.which("py-spy", path=search)
    if py_spy is None:
        raise SystemExit("--profile needs py-spy: pip install -e '.[bench]'")
    spy = subprocess.Popen([py_spy, "record", "--gil", "--subprocesses", "--rate", "250", "--format", "raw",
                            "--output", str(out), "--pid", str(pid)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        spy.wait(60)
        print(f"profile of {name}: {out}")


def drive(port: int, path: str, secret: str, updates: list[dict], clients: int, standin: TimingStandIn,
          timeout: float = 300.0) -> dict[str, Any]:
    """POST every update with ``clients`` connections; wait for every reply; the numbers."""
    sent_at: dict[tuple[int, str], float] = {}
    work: queue.Queue = queue.Queue()
    for update in updates:
        work.put(update)
    errors: list[str] = []

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": secret}
        while True:
            try:
                update = work.get_nowait()
            except queue.Empty:
                break
            body = json.dumps(update).encode()
            key = (update["message"]["chat"]["id"], update["message"]["text"])
            sent_at[key] = time.perf_counter()
            try:
                conn.request("POST", path, body, headers)
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    errors.append(f"HTTP {response.status}")
            except (OSError, http.client.HTTPException) as exc:
                errors.append(repr(exc))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.close()

    start = time.perf_counter()
    own_cpu = time.process_time()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wanted = {(u["message"]["chat"]["id"], u["message"]["text"]) for u in updates}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with standin._lock:
            if wanted <= standin.replies.keys():
                break
        time.sleep(0.02)
    with standin._lock:
        arrived = {k: standin.replies[k] for k in wanted if k in standin.replies}
    if len(arrived) < len(wanted):
        errors.append(f"{len(wanted) - len(arrived)} update(s) never answered")
    own_cpu = time.process_time() - own_cpu
    latencies = sorted(arrived[k] - sent_at[k] for k in arrived)
    end = max(arrived.values()) if arrived else time.perf_counter()
    return {
        "updates": len(updates),
        "answered": len(arrived),
        "seconds": end - start,
        "updates_per_s": len(arrived) / (end - start),
        "p50_ms": 1000 * statistics.median(latencies) if latencies else float("nan"),
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] if latencies else float("nan"),
        # This process (clients + stand-in) shares the machine with the server under test.
        "load_cpu_ms": 1000 * own_cpu / max(len(arrived), 1),
        "errors": errors[:5],
        "error_count": len(errors),
    }


def make_updates(first_user: int, users: int) -> list[dict]:
    # Habit-major order: consecutive updates come from different users, as in real traffic.
    return [message_update(first_user + u, habit) for habit in HABITS for u in range(users)]


def seed(database_url: str, users: int) -> None:
    engine = make_engine(database_url, load_entry_points=False, telegram_bot_token=TOKEN)
    try:
        for habit in HABITS:
            engine.add_habit(habit)
        engine.add_reward("Coffee", weight=3, pieces_required=3, max_per_day=0)
        engine.add_reward("Movie night", weight=1, pieces_required=5, max_per_day=0)
        engine.add_reward("Nothing this time", weight=2, type="none", max_per_day=0)
        for telegram_id in range(100_000, 100_000 + users):
            engine.register(telegram_id, f"User {telegram_id}")
            engine.activate_user(telegram_id)
    finally:
        engine.close()


def bench_habitreward(database_url: str, standin: TimingStandIn, warmup: list[dict], load: list[dict],
                      clients: int, threads: int, workdir: Path, *, echo: bool = False,
                      concurrency: int | None = None, profile_dir: Path | None = None,
                      workers: int = 1, pin_cpu: str | None = None) -> dict[str, Any]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "HABITREWARD_", "DATABASE_"))}
    env.update(TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_URL=standin.base_url, DATABASE_URL=database_url,
               HABITREWARD_LOAD_PLUGINS="", REGISTRATION="open",
               # The stand-in has no flood limits and PTB's baseline runs without AIORateLimiter.
               HABITREWARD_RATE_LIMIT="false")
    if echo:
        (workdir / "bench_echo_plugin.py").write_text(ECHO_PLUGIN)
        env.update(HABITREWARD_EXTRA_PLUGINS="bench_echo_plugin",
                   PYTHONPATH=os.pathsep.join(filter(None, [str(workdir), env.get("PYTHONPATH")])))
    name = ("habitreward-echo" if echo else "habitreward-completions") + (f"-{workers}-workers" if workers > 1 else "")
    log = open(workdir / f"{name}.log", "wb")
    command = [HABITREWARD_BIN, "serve", "--webhook", "--port", str(port), "--threads", str(threads)]
    if concurrency:
        command += ["--concurrency", str(concurrency)]
    if workers > 1:
        command += ["--workers", str(workers)]
    if pin_cpu:
        command += ["--pin-cpu", pin_cpu]
    proc = subprocess.Popen(command, cwd=workdir, env=env, stdout=log, stderr=log)
    return measure(proc, log, port, derive_webhook_secret(TOKEN), standin, warmup, load, clients, profile_dir, name)


def bench_ptb(standin: TimingStandIn, warmup: list[dict], load: list[dict], clients: int,
              workdir: Path, profile_dir: Path | None = None) -> dict[str, Any]:
    port = free_port()
    secret = "bench_secret_for_ptb"
    script = workdir / "ptb_echo_bot.py"
    script.write_text(PTB_ECHO_BOT)
    log = open(workdir / "ptb-echo.log", "wb")
    proc = subprocess.Popen([sys.executable, str(script), TOKEN, standin.base_url, str(port), secret],
                            cwd=workdir, stdout=log, stderr=log)
    return measure(proc, log, port, secret, standin, warmup, load, clients, profile_dir, "ptb-echo")


def measure(proc: subprocess.Popen, log: Any, port: int, secret: str, standin: TimingStandIn, warmup: list[dict],
            load: list[dict], clients: int, profile_dir: Path | None, name: str) -> dict[str, Any]:
    """Warm a started server up, drive the load through it, add its CPU and memory; stop it."""
    try:
        wait_for_port(port)
        drive(port, "/webhook/telegram", secret, warmup, clients, standin)
        user_before, system_before = cpu_seconds(proc.pid)
        with profiled(proc.pid, profile_dir, name):
            result = drive(port, "/webhook/telegram", secret, load, clients, standin)
        user, system = cpu_seconds(proc.pid)
        answered = max(result["answered"], 1)
        result["cpu_ms"] = 1000 * (user - user_before + system - system_before) / answered
        result["sys_ms"] = 1000 * (system - system_before) / answered
        result["rss_kib"], result["peak_rss_kib"] = memory_kib(proc.pid)
        return result
    finally:
        proc.terminate()
        proc.wait(60)
        log.close()


def fresh_postgres(admin_url: str) -> tuple[str, Any]:
    """A new database on ``admin_url``'s server; its URL (with ``admin_url``'s query, e.g.
    ``?prepared_statements=false``, which only habitreward reads) and a function dropping it."""
    import psycopg2

    name = f"habitreward_bench_{os.getpid()}"
    conn = psycopg2.connect(urlunparse(urlparse(admin_url)._replace(query="")))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cur.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()

    return urlunparse(urlparse(admin_url)._replace(path=f"/{name}")), drop


def show(name: str, r: dict[str, Any]) -> None:
    print(f"{name:<56} {r['updates_per_s']:>8.1f} upd/s   p50 {r['p50_ms']:>7.1f} ms   p99 {r['p99_ms']:>7.1f} ms"
          f"   CPU {r['cpu_ms']:>5.2f} ms/upd (sys {r['sys_ms']:.2f})"
          f"   RSS {r['rss_kib'] / 1024:>6.1f} MiB (peak {r['peak_rss_kib'] / 1024:.1f})"
          f"   load CPU {r['load_cpu_ms']:.2f} ms/upd"
          f"   {r['answered']}/{r['updates']} answered, {r['error_count']} errors {r['errors'] or ''}")


def worker_counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of numbers: {text!r}") from None
    if not counts or any(n < 1 for n in counts) or len(set(counts)) != len(counts):
        raise argparse.ArgumentTypeError(f"worker counts must be distinct numbers >= 1: {text!r}")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=200, help="users in the load (x5 habits = updates)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent connections posting updates")
    parser.add_argument("--threads", type=int, default=8, help="waitress threads of habitreward serve")
    parser.add_argument("--concurrency", type=int, help="serve --concurrency (default: serve's own)")
    parser.add_argument("--pin-cpu", metavar="auto|off|CPUS", help="serve --pin-cpu (default: serve's own)")
    default_workers = "1,2" if (os.cpu_count() or 1) > 1 else "1"
    parser.add_argument("--workers", type=worker_counts, default=worker_counts(default_workers),
                        metavar="N[,N...]",
                        help="serve --workers: habitreward's worker processes; completions are measured "
                             "for each count given, the echo with the first (CPU and memory are summed "
                             f"over a server's processes; default: {default_workers})")
    parser.add_argument("--rounds", type=int, default=5,
                        help="measure the servers this many times, taking turns (a shared machine's "
                             "speed drifts: each round compares servers measured moments apart)")
    parser.add_argument("--postgres", metavar="URL", help="run habitreward on a fresh database on this server")
    parser.add_argument("--profile", metavar="DIR", type=Path,
                        help="write py-spy profiles (collapsed stacks, GIL holder only) of each server under the "
                             "load of the first round to DIR; the numbers of a profiled round are slower")
    args = parser.parse_args()
    if args.rounds < 1 or args.users < 1 or args.users > 50_000:
        parser.error("--rounds must be at least 1 and --users between 1 and 50000")

    warmup_users = 20
    block = args.users + warmup_users  # the seeded users one round of completions uses up
    names = server_names(args.workers)

    def updates(base: int, round_: int) -> tuple[list[dict], list[dict]]:
        """(warm-up, load) of one round: users no other round or server uses (every reply is
        matched to its update by chat id and habit)."""
        first = base + round_ * block
        return make_updates(first + args.users, warmup_users)[:warmup_users * 2], make_updates(first, args.users)

    rounds: list[dict[str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory() as tmp, TimingStandIn() as standin:
        workdir = Path(tmp)
        drop = None
        if args.postgres:
            database_url, drop = fresh_postgres(args.postgres)
        else:
            database_url = f"sqlite:///{workdir / 'bench.db'}"
        try:
            seed(database_url, block * args.rounds * len(args.workers))
            print(f"{args.users * len(HABITS)} updates per server and round, {args.rounds} round(s), "
                  f"{args.clients} client connections, habitreward on "
                  f"{'PostgreSQL' if args.postgres else 'SQLite'} with "
                  f"{' and '.join(map(str, args.workers))} worker process(es), {os.cpu_count()} CPUs")
            for round_ in range(args.rounds):
                profile = args.profile if round_ == 0 else None
                results = {"ptb": bench_ptb(standin, *updates(1_000_000, round_), args.clients, workdir, profile)}
                results["echo"] = bench_habitreward(
                    database_url, standin, *updates(2_000_000, round_), args.clients, args.threads, workdir,
                    echo=True, concurrency=args.concurrency, profile_dir=profile, workers=args.workers[0],
                    pin_cpu=args.pin_cpu)
                for i, workers in enumerate(args.workers):
                    # Seeded users: each worker count completes habits of users of its own.
                    results[f"ours:{workers}"] = bench_habitreward(
                        database_url, standin, *updates(100_000 + i * block * args.rounds, round_), args.clients,
                        args.threads, workdir, concurrency=args.concurrency, profile_dir=profile, workers=workers,
                        pin_cpu=args.pin_cpu)
                rounds.append(results)
                print(f"round {round_ + 1}:")
                show_round(results, names)
        finally:
            if drop is not None:
                drop()
    if len(rounds) > 1:
        print(f"median of {len(rounds)} rounds:")
        for key, name in names.items():
            speeds = [r[key]["updates_per_s"] for r in rounds]
            print(f"  {name:<54} {statistics.median(speeds):>8.1f} upd/s  ({min(speeds):.1f}-{max(speeds):.1f})"
                  f"   p50 {statistics.median(r[key]['p50_ms'] for r in rounds):7.1f} ms"
                  f"   p99 {statistics.median(r[key]['p99_ms'] for r in rounds):7.1f} ms"
                  f"   CPU {statistics.median(r[key]['cpu_ms'] for r in rounds):5.2f} ms/upd"
                  f" (sys {statistics.median(r[key]['sys_ms'] for r in rounds):.2f})"
                  f"   peak RSS {max(r[key]['peak_rss_kib'] for r in rounds) / 1024:.1f} MiB")
        for label, key in ratio_lines(args.workers):
            ratios = [r[key]["updates_per_s"] / r["ptb"]["updates_per_s"] for r in rounds]
            print(f"  ratio, {label}: {statistics.median(ratios):.2f}"
                  f"   (rounds: {', '.join(f'{x:.2f}' for x in ratios)})")


def server_names(workers: list[int]) -> dict[str, str]:
    names = {"ptb": "PTB run_webhook, echo", "echo": "habitreward serve --webhook, echo"}
    for n in workers:
        names[f"ours:{n}"] = "habitreward serve --webhook, completions" + ("" if n == 1 else f", {n} workers")
    return names


def ratio_lines(workers: list[int]) -> list[tuple[str, str]]:
    """(label, key) of each ratio to PTB's echo: completions per worker count (the goal), then the echo."""
    lines = [(f"completions{'' if n == 1 else f' with {n} workers'} (the goal)", f"ours:{n}") for n in workers]
    return lines + [("echo vs echo (server layers alone)", "echo")]


def show_round(results: dict[str, dict[str, Any]], names: dict[str, str]) -> None:
    for key, name in names.items():
        show("  " + name, results[key])
    ptb = results["ptb"]["updates_per_s"]
    print("  " + "   ".join(f"ratio, {label}: {results[key]['updates_per_s'] / ptb:.2f}"
                           for label, key in ratio_lines(sorted({int(k[5:]) for k in results if k[:5] == 'ours:'}))))


if __name__ == "__main__":
    main()
