"""``habitreward serve --webhook --workers N``: a supervisor and N worker processes on one port,
as real subprocesses, through real HTTP, against the Bot API stand-in, on both backends.

Observed as in test_serve_webhook.py: the counting plugin's rows per *application*, the
replies the stand-in received, and the inbox table.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from habitreward.server.inbox import Accepted, Inbox, WorkerLock
from habitreward.testing.builders import message_update
from test_serve_kit import HABITREWARD_BIN, ServeProcess, applications, counted, inbox, query, wait_until, worker_pids

pytestmark = pytest.mark.slow


def health_of_busy_worker(process: ServeProcess, timeout: float = 10.0) -> dict:
    """/healthz of a worker with updates in flight (each request is a new connection,
    which whichever worker accepts first answers)."""
    def ask() -> dict | None:
        status, body = process.request("GET", "/healthz")
        details = json.loads(body)
        return details if status == 200 and details["in_flight"] > 0 else None

    return wait_until(ask, timeout=timeout, what="a worker with updates in flight")


def deliver_concurrently(deliveries: list, connections: int = 6) -> list[int]:
    statuses: list[int] = []

    def deliver(batch: list) -> None:
        for update, server in batch:
            statuses.append(server.post_update(update))

    threads = [threading.Thread(target=deliver, args=(deliveries[n::connections],)) for n in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def test_two_workers_share_a_stream_with_duplicates(serve, db_url, botapi):
    server = serve("--workers", "2")
    assert "2 worker processes; webhook listening on http://" in "\n".join(server.lines)
    assert len(worker_pids(server)) == 2
    updates = [message_update(2000 + i % 7, "count", update_id=96_000 + i) for i in range(40)]
    # Each update delivered 1-3 times, the copies on different connections at about the same time.
    deliveries = [(u, server) for i, u in enumerate(updates) for _ in range(1 + i % 3)]
    statuses = deliver_concurrently(deliveries)
    assert statuses == [200] * len(deliveries)  # every delivery answered

    ids = {u["update_id"] for u in updates}
    wait_until(lambda: set(counted(botapi)) == ids, what="every update applied")
    time.sleep(0.5)  # a second application would show up by now
    assert applications(db_url) == {i: 1 for i in ids}
    assert counted(botapi) == {i: 1 for i in ids}
    rows = inbox(db_url)
    assert set(rows) == ids and all(processed for processed, _, _ in rows.values())


def test_sigkill_of_a_worker_with_updates_in_flight_restarts_it_and_applies_each_once(serve, db_url, botapi):
    server = serve("--workers", "2", "--sweep-interval", "1")
    updates = [message_update(2100 + i, "count 1.5") for i in range(10)]  # ten users: all in flight at once
    assert deliver_concurrently([(u, server) for u in updates]) == [200] * len(updates)
    busy = health_of_busy_worker(server)
    victim = busy["pid"]
    os.kill(victim, signal.SIGKILL)
    applied_at_kill = len(applications(db_url))
    assert applied_at_kill < len(updates)  # the kill really happened while updates were in flight

    wait_until(lambda: f"worker {busy['worker']} died (signal SIGKILL)" in server.logs(), what="the death noticed")
    wait_until(lambda: worker_pids(server).get(busy["worker"], victim) != victim, what="the worker restarted")
    wait_until(lambda: len(applications(db_url)) == len(updates), timeout=30, what="every update applied")
    time.sleep(0.5)
    assert applications(db_url) == {u["update_id"]: 1 for u in updates}
    assert all(count == 1 for count in counted(botapi).values())  # a reply is never sent twice
    assert all(processed for processed, _, _ in inbox(db_url).values())
    assert server.proc.poll() is None
    status, body = server.request("GET", "/healthz")  # both workers serve again
    assert status == 200


def test_sigterm_to_the_supervisor_stops_every_worker_gracefully(serve, db_url, botapi):
    server = serve("--workers", "2")
    workers = worker_pids(server)
    updates = [message_update(2200 + i, "count 1.5") for i in range(8)]
    assert deliver_concurrently([(u, server) for u in updates]) == [200] * len(updates)
    server.signal(signal.SIGTERM)
    assert applications(db_url) == {}  # all were in flight when the signal came

    def refused() -> bool:
        try:
            server.request("GET", "/healthz")
        except OSError:
            return True
        return False

    wait_until(refused, timeout=10, what="the listener closed")  # while the updates still run
    assert server.wait(30) == 0
    assert applications(db_url) == {u["update_id"]: 1 for u in updates}
    assert counted(botapi) == {u["update_id"]: 1 for u in updates}
    assert all(processed for processed, _, _ in inbox(db_url).values())
    for pid in workers.values():
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    logs = server.logs()
    assert logs.count("database closed") == 2 and "all 2 workers exited" in logs


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_signalled_to_every_process_at_once_exits_cleanly(serve, backend, db_url, botapi, sig):
    """Ctrl+C in a terminal signals the whole process group, systemd's stop (KillMode=control-group,
    the default) every process of the unit: each worker stops on its own signal and then gets the
    supervisor's SIGTERM. A worker done by then died of it, and serve said "workers did not stop
    cleanly: worker 1: signal SIGTERM" with exit code 1 (a failed unit at every systemctl stop)."""
    if backend == "postgres":
        pytest.skip("how the processes take the signals does not depend on the database (seen on SQLite)")
    server = serve("--workers", "2", new_session=True)
    update = message_update(2300, "count")
    assert server.post_update(update) == 200
    wait_until(lambda: counted(botapi) == {update["update_id"]: 1}, what="the update applied")
    server.signal_group(sig)
    assert server.wait(60) == 0, server.logs()[-2000:]
    logs = server.logs()
    assert "did not stop cleanly" not in logs and "died" not in logs
    assert logs.count("database closed") == 2 and "all 2 workers exited" in logs
    # Which process said what: the supervisor's line, then each worker's own.
    name = signal.Signals(sig).name
    assert logs.count(f" habitreward.serve: {name} received: stopping") == 1
    for number in (1, 2):
        assert logs.count(f" habitreward.serve: worker {number}: {name} received: stopping") == 1
        assert logs.count(f" habitreward.serve: worker {number}: stopped; database closed") == 1


@pytest.mark.no_db
@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_webhook_url_that_is_no_url_is_refused_before_anything_starts_also_with_workers(botapi, tmp_path, workers):
    """The supervisor did not look at TELEGRAM_WEBHOOK_URL: it bound the port, applied the
    migrations and started the workers, which failed on something else (or served a path no
    request reaches). Now it is one process's one line, and the database is not even made."""
    database = tmp_path / "serve.db"
    process = ServeProcess(f"sqlite:///{database}", botapi, tmp_path, env={"TELEGRAM_WEBHOOK_URL": "bot.example.org"})
    result = subprocess.run([HABITREWARD_BIN, "serve", "--webhook", "--port", "0", "--workers", workers],
                            cwd=tmp_path, env=process.environment(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and result.stdout == ""
    assert [line for line in result.stderr.splitlines() if line.strip()] == [
        "Error: TELEGRAM_WEBHOOK_URL must be a URL like https://bot.example.org/webhook/telegram,"
        " got 'bot.example.org'"]
    assert not database.exists()


@pytest.mark.no_db
def test_polling_with_several_workers_is_a_one_line_error(botapi, tmp_path):
    process = ServeProcess("sqlite:///" + str(tmp_path / "x.db"), botapi, tmp_path)
    result = subprocess.run([HABITREWARD_BIN, "serve", "--workers", "2"], cwd=tmp_path,
                            env=process.environment(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Error: --workers needs --webhook: Telegram allows one getUpdates consumer per bot"]
    # Not typed: the operator reads where it came from (a .env written for the webhook server).
    result = subprocess.run([HABITREWARD_BIN, "serve"], cwd=tmp_path, env={**process.environment(),
                            "HABITREWARD_WORKERS": "4"}, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == ["Error: --workers needs --webhook (HABITREWARD_WORKERS is set):"
                                                  " Telegram allows one getUpdates consumer per bot"]
    (tmp_path / "webhook.env").write_text("HABITREWARD_WORKERS=4\n")
    result = subprocess.run([HABITREWARD_BIN, "--env-file", "webhook.env", "serve"], cwd=tmp_path,
                            env=process.environment(), capture_output=True, text=True, timeout=60)
    assert "Error: --workers needs --webhook (HABITREWARD_WORKERS is set)" in result.stderr


def test_a_second_serve_on_the_same_sqlite_file_as_a_supervisor_is_refused(serve, backend, db_url, botapi,
                                                                          tmp_path):
    if backend != "sqlite":
        pytest.skip("the server lock is SQLite's")
    serve("--workers", "2")
    second = ServeProcess(db_url, botapi, tmp_path)
    result = subprocess.run([HABITREWARD_BIN, "serve", "--webhook", "--port", "0"], cwd=tmp_path,
                            env=second.environment(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "another `habitreward serve` is running" in result.stderr


def test_a_new_serve_waits_for_the_workers_of_a_killed_supervisor(serve, backend, db_url, botapi):
    """The supervisor dies (SIGKILL); its workers finish their updates and stop. A `serve`
    started meanwhile on the same SQLite file must not take their rows: it waits for them."""
    if backend != "sqlite":
        pytest.skip("on PostgreSQL advisory locks keep processes apart")
    first = serve("--workers", "2", name="first")
    update = message_update(2300, "count 4")
    assert first.post_update(update) == 200
    first.kill()  # the supervisor only
    # On the same port, which the orphans hold until they exit: bound once they are gone.
    second = serve("--port", str(first.address[1]), name="second")
    wait_until(lambda: counted(botapi) == {update["update_id"]: 1}, what="applied by the orphaned worker")
    assert json.loads(second.request("GET", "/healthz")[1])["in_flight"] == 0  # not running it a second time
    time.sleep(0.5)
    assert applications(db_url) == {update["update_id"]: 1}
    assert re.search(r"waiting for \d worker process\(es\) of an earlier serve", second.logs())
    assert second.post_update(message_update(2301, "count")) == 200


# --- the inbox of one worker among several on a SQLite file ------------------------------------

_HOLD_A_LOCK = """
import sys, time
from habitreward.server.inbox import WorkerLock
lock = WorkerLock(sys.argv[1]).acquire()
print(lock.token, flush=True)
time.sleep(600)
"""


def test_a_claim_never_takes_a_row_of_a_live_worker_and_takes_a_dead_ones_once(engine, backend, db_url, tmp_path,
                                                                                caplog):
    if backend != "sqlite":
        pytest.skip("on PostgreSQL advisory locks keep workers apart (test_serve_inbox.py)")
    directory = tmp_path / "habitreward.db.workers"
    mine, other = WorkerLock(directory).acquire(), WorkerLock(directory).acquire()
    first, second = Inbox(engine, owner=mine), Inbox(engine, owner=other)
    try:
        # Stored and claimed by the first worker: the second may not take it while it lives.
        assert first.accept(1, "{}") is Accepted.NEW_CLAIMED
        assert query_row(db_url, 1) == (1, mine.token)
        assert second.accept(1, "{}") is Accepted.DUPLICATE
        assert second.claim(1) is None
        assert [p.update_id for p in second.unprocessed()] == [1]  # visible, still not claimable
        assert second.claim(1) is None
        first.release(1)  # handed back unprocessed, but its worker lives: still the first's
        assert second.claim(1) is None
        assert first.claim(1) == "{}"
        first.finish(1)

        # A row claimed by a worker process that is then killed.
        holder = subprocess.Popen([sys.executable, "-c", _HOLD_A_LOCK, str(directory)], stdout=subprocess.PIPE,
                                  text=True)
        try:
            assert holder.stdout is not None
            token = holder.stdout.readline().strip()
            engine.db.execute_sql(
                "INSERT INTO processed_updates (update_id, payload, received_at, attempts, claimed_by)"
                " VALUES (2, '{\"n\": 2}', '2026-01-01 00:00:00', 1, ?)", (token,))
            assert second.claim(2) is None and first.claim(2) is None  # alive
            assert other.alive(token)
        finally:
            holder.kill()
            holder.wait()
        assert (directory / f"{token}.lock").exists()  # nobody has noticed yet

        # Dead: exactly one of two racing workers takes it over.
        results: list[str | None] = []
        barrier = threading.Barrier(2)

        def take(box: Inbox) -> None:
            barrier.wait()
            results.append(box.claim(2))

        threads = [threading.Thread(target=take, args=(box,)) for box in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert results.count('{"n": 2}') == 1 and results.count(None) == 1
        attempts, claimed_by = query_row(db_url, 2)
        assert attempts == 2 and claimed_by in (mine.token, other.token)
        assert not (directory / f"{token}.lock").exists()  # the dead worker's file was cleaned up

        # Its other rows are taken over too; the log says so once, not once per row.
        for update_id in (3, 4, 5):
            engine.db.execute_sql(
                "INSERT INTO processed_updates (update_id, payload, received_at, attempts, claimed_by)"
                " VALUES (?, '{}', '2026-01-01 00:00:00', 1, ?)", (update_id, token))
        taker = first if claimed_by == mine.token else second
        with caplog.at_level(logging.WARNING, logger="habitreward.server.inbox"):
            caplog.clear()
            assert [taker.claim(update_id) for update_id in (3, 4, 5)] == ["{}"] * 3
        assert [r.message for r in caplog.records if "which is gone" in r.message] == []  # told at update 2
    finally:
        first.close()
        second.close()
        mine.release()
        other.release()
    assert list(directory.glob("*.lock")) == []


def test_a_claim_of_a_live_workers_row_does_not_wait_for_the_write_lock(engine, backend, tmp_path):
    """An update waiting for an earlier one of its chat in another worker's hands tries to claim
    it now and then (in case that worker died). Finding the worker alive is a read: it must not
    queue for the write lock behind the writers (under load thousands of such tries did)."""
    if backend != "sqlite":
        pytest.skip("on PostgreSQL advisory locks keep workers apart (test_serve_inbox.py)")
    directory = tmp_path / "habitreward.db.workers"
    mine, other = WorkerLock(directory).acquire(), WorkerLock(directory).acquire()
    first, second = Inbox(engine, owner=mine), Inbox(engine, owner=other)
    writing, done_writing = threading.Event(), threading.Event()

    def long_write() -> None:
        with engine.session(), engine.db.atomic():
            writing.set()
            done_writing.wait(30)

    writer = threading.Thread(target=long_write)
    try:
        assert first.accept(1, "{}") is Accepted.NEW_CLAIMED
        writer.start()
        assert writing.wait(10)
        answers: list[str | None] = []
        claimer = threading.Thread(target=lambda: answers.append(second.claim(1)))
        claimer.start()
        claimer.join(5)
        assert not claimer.is_alive(), "the claim waited for the write lock"
        assert answers == [None]  # the first worker lives: its row stays its own
    finally:
        done_writing.set()
        writer.join(30)
        first.close()
        second.close()
        mine.release()
        other.release()


def query_row(db_url: str, update_id: int) -> tuple[int, str | None]:
    return query(db_url,
                 "SELECT attempts, claimed_by FROM processed_updates WHERE update_id = %s", (update_id,))[0]
