"""The bot loop's runner (habitreward.server.runner): a failed start, updates handed over
from many threads at once, a sweep while the database is away, an update applied elsewhere."""

from __future__ import annotations

import contextlib
import socket

import pytest
from telegram.error import NetworkError

from habitreward.server.inbox import Inbox
from habitreward.server.runner import BotRunner
from habitreward.server.service import build_bot
from habitreward.testing.engines import make_engine


def closed_port() -> int:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_failed_start_leaves_a_closed_loop_and_stop_is_quiet(tmp_path, monkeypatch):
    # Every round: `serve` stops the runner right after start() failed; the loop thread
    # used to close its loop only after start() had returned, so stop() sometimes
    # scheduled on a loop closing under it ("Event loop is closed" instead of the error).
    from habitreward.bot import request

    monkeypatch.setattr(request, "NOT_CONNECTED_PAUSES", (0.01,))  # getMe, refused, is tried twice
    engine = make_engine(f"sqlite:///{tmp_path / 'runner.db'}", load_entry_points=False,
                         telegram_bot_token="123456:RUNNER-TEST", telegram_api_url=f"http://127.0.0.1:{closed_port()}/bot")
    inbox = Inbox(engine)
    try:
        for _ in range(5):
            runner = BotRunner(build_bot(engine, rate_limit=False), inbox, sweep_interval=0)
            with pytest.raises(NetworkError):
                runner.start()
            assert runner.loop is not None and runner.loop.is_closed()
            runner.stop(1)  # nothing to stop, and no error
            assert not runner.alive()
    finally:
        inbox.close()
        engine.close()


def test_updates_handed_over_from_many_threads_at_once_are_each_processed_once(tmp_path, botapi):
    """Request threads hand updates to the loop through one queue and one wake-up for all that
    arrive while the loop is busy: none may be lost or run twice."""
    import json
    import threading

    from habitreward.models import ProcessedUpdate
    from habitreward.testing.builders import message_update

    engine = make_engine(f"sqlite:///{tmp_path / 'runner.db'}", load_entry_points=False,
                         telegram_bot_token="123456:RUNNER-TEST", telegram_api_url=botapi.base_url,
                         registration="open")
    inbox = Inbox(engine)
    runner = BotRunner(build_bot(engine, rate_limit=False), inbox, sweep_interval=0)
    runner.start()
    try:
        threads, per_thread = 8, 25
        barrier = threading.Barrier(threads)

        def deliver(first: int) -> None:
            barrier.wait()
            for update_id in range(first, first + per_thread):
                update = message_update(10_000 + update_id, "/help", update_id=update_id)
                runner.receive(update_id, json.dumps(update), update)

        workers = [threading.Thread(target=deliver, args=(1 + t * per_thread,)) for t in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
        assert runner.drain(20)
        total = threads * per_thread
        with engine.session():
            assert ProcessedUpdate.select().where(ProcessedUpdate.processed_at.is_null(False)).count() == total
        assert sorted(m["chat_id"] for m in botapi.sent()) == [10_000 + i for i in range(1, total + 1)]
    finally:
        runner.stop(10)
        inbox.close()
        engine.close()


def test_a_backlog_longer_than_a_page_is_all_queued_at_the_start(tmp_path, botapi):
    """After a crash with more than one page (500) of unprocessed updates, the start queues
    them all: the oldest 500 were asked for again and again before, and the rest waited for
    the sweep, 500 every 30 s."""
    import datetime as dt
    import json

    from habitreward.models import ProcessedUpdate
    from habitreward.testing.builders import message_update

    engine = make_engine(f"sqlite:///{tmp_path / 'runner.db'}", load_entry_points=False,
                         telegram_bot_token="123456:RUNNER-TEST", telegram_api_url=botapi.base_url,
                         registration="open")
    backlog = 1100
    with engine.session(), engine.db.atomic():
        received = dt.datetime(2026, 11, 30, 8, 0)
        ProcessedUpdate.insert_many(
            [{"update_id": i, "payload": json.dumps(message_update(20_000 + i, "/help", update_id=i)),
              "received_at": received, "attempts": 0, "chat_key": 20_000 + i} for i in range(1, backlog + 1)]
        ).execute()
    inbox = Inbox(engine)
    runner = BotRunner(build_bot(engine, rate_limit=False), inbox, sweep_interval=0)
    runner.start()
    try:
        assert runner.submit_pending() == backlog
        assert runner.drain(60)
        with engine.session():
            assert ProcessedUpdate.select().where(ProcessedUpdate.processed_at.is_null()).count() == 0
        assert len({m["chat_id"] for m in botapi.sent()}) == backlog
        assert runner.submit_pending() == 0  # nothing left, nothing queued twice
    finally:
        runner.stop(10)
        inbox.close()
        engine.close()


def _server_closed() -> Exception:
    import peewee

    return peewee.OperationalError("server closed the connection unexpectedly\n\tThis probably means...\n")


def _pool_exhausted() -> Exception:
    from playhouse.pool import MaxConnectionsExceeded

    return MaxConnectionsExceeded("Max connections exceeded, timed out attempting to connect.")


@pytest.mark.parametrize(("away", "line"), [
    (_server_closed, "server closed the connection unexpectedly"),
    (_pool_exhausted, "Max connections exceeded, timed out attempting to connect."),
], ids=["restart", "pool-exhausted"])
def test_a_sweep_that_cannot_reach_the_database_logs_one_line(tmp_path, botapi, caplog, away, line):
    """A database restart (or every pooled connection busy past the pool's timeout) makes the
    periodic sweep fail until it is over: one WARNING line each time, not the driver's
    fifty-line stack as an ERROR."""
    import logging
    import time

    engine = make_engine(f"sqlite:///{tmp_path / 'runner.db'}", load_entry_points=False,
                         telegram_bot_token="123456:RUNNER-TEST", telegram_api_url=botapi.base_url)
    inbox = Inbox(engine)

    def database_away() -> None:
        raise away()

    inbox.release_finished = database_away  # what the sweep does first
    runner = BotRunner(build_bot(engine, rate_limit=False), inbox, sweep_interval=0.05)
    with caplog.at_level(logging.WARNING, logger="habitreward.server.runner"):
        runner.start()
        try:
            deadline = time.monotonic() + 10
            while "inbox sweep failed" not in caplog.text and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            runner.stop(10)
            inbox.close()
            engine.close()
    failed = [r for r in caplog.records if "inbox sweep failed" in r.getMessage()]
    assert failed and all(r.exc_info is None and r.levelname == "WARNING" for r in failed)
    assert failed[0].getMessage() == f"inbox sweep failed (retrying later): {line}"


@pytest.mark.postgres_only  # where a process can lose its lock on an update it still runs
def test_an_update_applied_elsewhere_meanwhile_keeps_nothing_and_says_nothing(engine, db_url, botapi, caplog):
    """Another process applied the update while this one ran it (the connection holding this one's
    lock was dropped): this run's completion is rolled back, the user gets neither its reply
    nor "something went wrong" (the other process answered), and the log says so once."""
    import json
    import logging

    import psycopg2

    from habitreward import hookimpl
    from habitreward.models import HabitLog
    from habitreward.server import applied
    from habitreward.server.inbox import current_update_id
    from habitreward.testing.builders import message_update

    class AppliedElsewhereMeanwhile:
        @hookimpl(tryfirst=True)
        def habitreward_habit_completed(self, engine, event):  # noqa: ANN001
            other = psycopg2.connect(db_url)  # the other process, committing its mark first
            try:
                with other, other.cursor() as cursor:
                    cursor.execute("UPDATE processed_updates SET processed_at = now() WHERE update_id = %s",
                                   (current_update_id.get(),))
            finally:
                other.close()

    served = make_engine(db_url, load_entry_points=False, telegram_bot_token="123456:RUNNER-TEST",
                         telegram_api_url=botapi.base_url, registration="open")
    applied.register(served.pm)
    served.pm.register(AppliedElsewhereMeanwhile())
    served.add_habit("Running")
    inbox = Inbox(served)
    runner = BotRunner(build_bot(served, rate_limit=False), inbox, sweep_interval=0)
    runner.start()
    try:
        update = message_update(700, "Running", update_id=9001)
        with caplog.at_level(logging.INFO):
            runner.receive(9001, json.dumps(update), update)
            assert runner.drain(20)
    finally:
        runner.stop(10)
        inbox.close()
    with served.session():
        assert HabitLog.select().count() == 0
    served.close()
    assert [m["text"] for m in botapi.sent(700)] == []
    # One line for the operator: the bot's error handler used to add an INFO line of its own.
    said = [(r.levelname, r.getMessage()) for r in caplog.records if "by another process" in r.getMessage()]
    assert said == [("WARNING", "update 9001: applied by another process meanwhile; this run's writes rolled back")]


def _served(db_url, botapi, clock):
    """An engine as ``serve`` builds it (on the test's clock), a user in Berlin and a habit."""
    served = make_engine(db_url, clock=clock, load_entry_points=False, telegram_bot_token="123456:RUNNER-TEST",
                         telegram_api_url=botapi.base_url)
    served.add_user(700, "Ann", active=True, timezone="Europe/Berlin", language="en")
    habit = served.add_habit("Running")
    return served, habit


@contextlib.contextmanager
def _habit_keyboard_shown(served, botapi, update_id: int):
    """A running BotRunner on ``served`` that has answered Ann's /habit_done: (runner, keyboard)."""
    import json

    from habitreward.testing.builders import message_update

    inbox = Inbox(served)
    runner = BotRunner(build_bot(served, rate_limit=False), inbox, sweep_interval=0)
    runner.start()
    try:
        update = message_update(700, "/habit_done", update_id=update_id)
        runner.receive(update_id, json.dumps(update), update)
        assert runner.drain(20)
        yield runner, botapi.last_message(700)
    finally:
        runner.stop(10)
        inbox.close()


def test_a_button_pressed_before_midnight_and_run_after_it_logs_that_day(db_url, botapi, clock):
    """A button press is done when the server received it: a press at 23:59:55 that is processed
    after midnight (a restart re-running stored updates, the sweep, a backlog) logs the day it
    was pressed, and the reply names that day."""
    import datetime as dt
    import json

    from habitreward.models import HabitLog, ProcessedUpdate
    from habitreward.testing.builders import callback_update

    clock.set(dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.timezone.utc))
    served, habit = _served(db_url, botapi, clock)
    with _habit_keyboard_shown(served, botapi, 8001) as (runner, keyboard):
        assert (habit.name, f"d:{habit.id}") in [b for row in keyboard["buttons"] for b in row]
        # Pressed at 23:59:55 in Berlin (22:59:55 UTC) and stored; the process stopped before
        # running it, and the next start (or a sweep) runs it at 00:00:30.
        press = callback_update(700, f"d:{habit.id}", message_id=keyboard["message_id"], update_id=8002)
        with served.session():
            ProcessedUpdate.insert(update_id=8002, payload=json.dumps(press), attempts=0, chat_key=700,
                                   received_at=dt.datetime(2026, 1, 5, 22, 59, 55)).execute()
        clock.set(dt.datetime(2026, 1, 5, 23, 0, 30, tzinfo=dt.timezone.utc))
        assert runner.submit_pending() == 1
        assert runner.drain(20)
    with served.session():
        logs = [(log.completed_on, log.timestamp) for log in HabitLog.select()]
    served.close()
    assert logs == [(dt.date(2026, 1, 5), dt.datetime(2026, 1, 5, 22, 59, 55))]
    assert "<b>Running</b> logged for Jan 5, 2026." in botapi.last_text(700)


def test_a_button_press_received_by_the_server_is_done_at_its_receipt(db_url, botapi, clock):
    """Handed over as it arrives (webhook, polling), a press is done at the moment the inbox
    stored it too, however late the handlers run."""
    import datetime as dt
    import json
    from zoneinfo import ZoneInfo

    from habitreward.models import HabitLog, ProcessedUpdate, utcnow
    from habitreward.testing.builders import callback_update

    clock.set(dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.timezone.utc))  # the habit is older than any receipt
    served, habit = _served(db_url, botapi, clock)
    with _habit_keyboard_shown(served, botapi, 8101) as (runner, keyboard):
        # The handlers run a day after the server's clock said it received the press.
        clock.set(utcnow().replace(tzinfo=dt.timezone.utc) + dt.timedelta(days=1))
        press = callback_update(700, f"d:{habit.id}", message_id=keyboard["message_id"], update_id=8102)
        runner.receive(8102, json.dumps(press), press)
        assert runner.drain(20)
    with served.session():
        received = ProcessedUpdate.get_by_id(8102).received_at
        logs = [(log.completed_on, log.timestamp) for log in HabitLog.select()]
    served.close()
    pressed_on = received.replace(tzinfo=dt.timezone.utc).astimezone(ZoneInfo("Europe/Berlin")).date()
    assert logs == [(pressed_on, received)]
    assert "<b>Running</b> logged for" in botapi.last_text(700)
