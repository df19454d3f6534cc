"""The update inbox in-process, on both backends: who may process an update, and when."""

from __future__ import annotations

import datetime as dt
import threading
import time

import peewee
import pytest

from habitreward.models import ProcessedUpdate, utcnow
from habitreward.server.applied import consume_mark, mark_current_update_applied
from habitreward.server.inbox import Accepted, Inbox, _GroupCommit, _worth_trying_alone, processing


@pytest.fixture
def inbox(engine):
    box = Inbox(engine)
    yield box
    box.close()


def row(update_id: int) -> ProcessedUpdate:
    return ProcessedUpdate.get_by_id(update_id)


def test_new_update_is_stored_and_claimed_a_duplicate_is_not(inbox):
    assert inbox.accept(1, '{"update_id": 1}') is Accepted.NEW_CLAIMED
    assert row(1).attempts == 1 and row(1).processed_at is None
    assert inbox.accept(1, '{"update_id": 1}') is Accepted.DUPLICATE  # still in flight
    inbox.finish(1)
    assert row(1).processed_at is not None
    assert inbox.accept(1, '{"update_id": 1}') is Accepted.DUPLICATE  # done
    assert inbox.claim(1) is None


def test_a_losing_duplicate_never_frees_the_winners_claim(inbox):
    assert inbox.accept(5, "{}") is Accepted.NEW_CLAIMED
    assert inbox.accept(5, "{}") is Accepted.DUPLICATE
    assert inbox.claim(5) is None  # the winner still holds it
    assert inbox.in_flight() == 1


def test_crashed_rows_are_claimed_once_and_given_up_after_max_attempts(engine, inbox):
    ProcessedUpdate.create(update_id=7, payload="{}", attempts=1)  # claimed by a process that died
    assert [p.update_id for p in inbox.unprocessed()] == [7]
    assert inbox.claim(7) == "{}"
    assert inbox.claim(7) is None  # in flight here
    inbox.release(7)
    ProcessedUpdate.update(attempts=inbox.max_attempts).where(ProcessedUpdate.update_id == 7).execute()
    assert inbox.claim(7) is None
    assert row(7).processed_at is not None and "given up" in row(7).error


def test_many_threads_delivering_one_update_claim_it_once(inbox):
    results: list[Accepted] = []
    barrier = threading.Barrier(12)

    def deliver() -> None:
        barrier.wait()
        results.append(inbox.accept(42, "{}"))

    threads = [threading.Thread(target=deliver) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Exactly one delivery owns it. A racer may have stored it first (NEW) without the claim;
    # the owner took it over, and the racer's own claim attempt finds it taken.
    assert results.count(Accepted.NEW_CLAIMED) == 1
    assert results.count(Accepted.NEW) <= 1
    assert inbox.claim(42) is None
    assert ProcessedUpdate.select().count() == 1 and row(42).attempts == 1


def queue_writes(commits: _GroupCommit, calls: list) -> tuple[list[threading.Thread], list]:
    """Start each of ``calls`` on a thread of its own, the next once the previous one's write is
    queued in ``commits``, whose lock the caller holds (a commit under way): released, they run
    as one batch. The threads, and what each call returned or raised (once joined)."""
    outcomes: list = [None] * len(calls)

    def run(n: int) -> None:
        try:
            outcomes[n] = calls[n]()
        except Exception as exc:
            outcomes[n] = exc

    threads = []
    for n in range(len(calls)):
        threads.append(threading.Thread(target=run, args=(n,)))
        threads[-1].start()
        deadline = time.monotonic() + 5
        while len(commits._queue) < n + 1:  # noqa: SLF001
            assert time.monotonic() < deadline, "the write was not queued"
            time.sleep(0.001)
    return threads, outcomes


def storing(commits: _GroupCommit, ran: list[int], update_id: int, error: Exception | None = None):
    """A call that stores row ``update_id`` through ``commits`` (noting in ``ran`` each time its
    write runs), or raises ``error`` there before writing anything."""
    def op() -> int:
        ran.append(update_id)
        if error is not None:
            raise error
        ProcessedUpdate.insert(update_id=update_id, payload="{}").execute()
        return update_id
    return lambda: commits.run(op, update_id)


def test_a_batch_of_inbox_writes_runs_in_update_id_order_and_a_bad_write_fails_only_itself(engine):
    commits = _GroupCommit(engine)
    ran: list[int] = []
    calls = [storing(commits, ran, 3), storing(commits, ran, 1), storing(commits, ran, 2, ValueError("a bad write"))]
    with commits._lock:  # noqa: SLF001
        threads, outcomes = queue_writes(commits, calls)
    for thread in threads:
        thread.join()
    assert ran == [1, 2, 1, 2, 3]  # the batch in update_id order, failing at 2; then each alone
    assert outcomes[0] == 3 and outcomes[1] == 1 and isinstance(outcomes[2], ValueError)
    with engine.session():
        assert sorted(r.update_id for r in ProcessedUpdate.select()) == [1, 3]


def test_a_batch_that_finds_the_database_locked_fails_at_once(engine):
    """Tried alone, each write would wait for the lock again, one after the other."""
    commits = _GroupCommit(engine)
    ran: list[int] = []
    calls = [storing(commits, ran, 1), storing(commits, ran, 2, peewee.OperationalError("database is locked"))]
    with commits._lock:  # noqa: SLF001
        threads, outcomes = queue_writes(commits, calls)
    for thread in threads:
        thread.join()
    assert ran == [1, 2]
    assert all(isinstance(o, peewee.OperationalError) for o in outcomes)
    with engine.session():
        assert ProcessedUpdate.select().count() == 0  # the batch rolled back whole


@pytest.mark.postgres_only
def test_two_processes_committing_the_same_updates_in_opposite_orders_do_not_deadlock(engine, caplog):
    """Two processes on one PostgreSQL, each committing a batch of the same two updates. In
    opposite orders each would insert one, then wait for the row the other inserted: a deadlock,
    one batch failed (its updates were answered 503). (SQLite: one writer at a time anyway.)"""
    caplog.set_level("DEBUG", logger="habitreward.server.inbox")
    both_inserted_one = threading.Barrier(2)

    def insert(update_id: int, first_of_batch: bool):
        def op() -> None:
            ProcessedUpdate.insert(update_id=update_id, payload="{}").on_conflict_ignore().execute()
            if first_of_batch:  # let the other process insert its first one too, if it can
                try:
                    both_inserted_one.wait(0.5)
                except threading.BrokenBarrierError:
                    pass  # it waits for this transaction: it inserts the same update first
        return op

    first, second = _GroupCommit(engine), _GroupCommit(engine)  # threads of their own: own connections
    with first._lock, second._lock:  # noqa: SLF001 - both held back, then committed at once
        a = queue_writes(first, [lambda: first.run(insert(12, True), 12), lambda: first.run(insert(11, False), 11)])
        b = queue_writes(second, [lambda: second.run(insert(11, True), 11), lambda: second.run(insert(12, False), 12)])
    for thread in a[0] + b[0]:
        thread.join()
    assert a[1] + b[1] == [None] * 4  # no errors
    assert "tried alone" not in caplog.text  # each batch committed as it was, no deadlock broken
    with engine.session():
        assert sorted(r.update_id for r in ProcessedUpdate.select()) == [11, 12]


@pytest.mark.postgres_only
def test_a_batch_that_lost_a_deadlock_is_worth_trying_write_by_write(engine):
    """Whatever the order: the deadlock PostgreSQL breaks by failing a batch is told apart from
    a database that is away (whose batch fails at once)."""
    both_inserted_one = threading.Barrier(2)
    errors: list[Exception] = []

    def batch(commits: _GroupCommit, first: int, second: int) -> None:
        def insert(update_id: int) -> None:
            ProcessedUpdate.insert(update_id=update_id, payload="{}").on_conflict_ignore().execute()

        def first_write() -> None:
            insert(first)
            both_inserted_one.wait(5)

        items = [_GroupCommit._Item(first_write, None), _GroupCommit._Item(lambda: insert(second), None)]
        try:
            commits._commit(items)  # noqa: SLF001 - in this order, not update_id's
        except Exception as exc:
            errors.append(exc)

    runs = [threading.Thread(target=batch, args=(_GroupCommit(engine), 21, 22)),
            threading.Thread(target=batch, args=(_GroupCommit(engine), 22, 21))]
    for thread in runs:
        thread.start()
    for thread in runs:
        thread.join()
    assert len(errors) == 1 and "deadlock" in str(errors[0])
    assert _worth_trying_alone(errors[0])
    assert not _worth_trying_alone(peewee.OperationalError("server closed the connection unexpectedly"))


@pytest.mark.postgres_only
def test_another_process_cannot_claim_a_row_in_flight(engine, inbox):
    other_process = Inbox(engine)  # its own advisory-lock session, like another server process
    try:
        assert inbox.accept(9, "{}") is Accepted.NEW_CLAIMED
        assert other_process.claim(9) is None  # locked by the live owner
        inbox.release(9)  # the owner "dies" without finishing
        assert other_process.claim(9) == "{}"
        other_process.finish(9)
        assert inbox.claim(9) is None
    finally:
        other_process.close()


@pytest.mark.postgres_only
def test_a_finished_updates_lock_is_released_with_the_next_statement_never_leaked(engine, inbox):
    def advisory_locks() -> int:
        return engine.db.execute_sql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                                     " AND granted AND pid <> pg_backend_pid()"
                                     # this test's database only: other test runs may share the server
                                     " AND database = (SELECT oid FROM pg_database"
                                     " WHERE datname = current_database())").fetchone()[0]

    other_process = Inbox(engine)
    try:
        with engine.session():
            for update_id in range(31, 36):  # a stream: each lock goes out with the next one's
                assert inbox.accept(update_id, "{}") is Accepted.NEW_CLAIMED
                assert advisory_locks() in (1, 2)
                inbox.finish(update_id)
                assert other_process.claim(update_id) is None  # processed: nobody claims it
            assert advisory_locks() == 1  # the last one's, until the next statement or a sweep
            inbox.release_finished()
            assert advisory_locks() == 0
            assert inbox.accept(36, "{}") is Accepted.NEW_CLAIMED
            inbox.release(36)  # given back unprocessed: released at once, for others to claim
            assert advisory_locks() == 0 and other_process.claim(36) == "{}"
    finally:
        other_process.close()


@pytest.mark.postgres_only
def test_a_lost_lock_connection_is_replaced_and_its_dead_locks_are_not_released_again(engine, inbox):
    def advisory_locks() -> list[int]:
        return [row[0] for row in engine.db.execute_sql(
            "SELECT objid FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())")]

    with engine.session():
        assert inbox.accept(41, "{}") is Accepted.NEW_CLAIMED
        lock_pid = inbox._locks._conn.get_backend_pid()
        engine.db.execute_sql("SELECT pg_terminate_backend(%s)", (lock_pid,))
        for _ in range(200):  # until the server has ended that session
            if not engine.db.execute_sql("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (lock_pid,)).fetchone():
                break
            time.sleep(0.01)
        inbox.finish(41)  # its lock died with the connection: nothing left to release
        assert inbox.accept(42, "{}") is Accepted.NEW_CLAIMED  # on a new connection, without an error
        assert advisory_locks() == [42]
        inbox.finish(42)
        inbox.release_finished()
        assert advisory_locks() == []


def test_engine_writes_mark_their_update_in_their_transaction(engine, inbox):
    from habitreward.server import applied

    applied.register(engine.pm)
    user, _ = engine.register(10, "Ann")
    engine.activate_user(10)
    habit = engine.add_habit("Running")
    assert inbox.accept(11, "{}") is Accepted.NEW_CLAIMED
    with processing(11):
        engine.complete(user, habit)
    assert row(11).processed_at is not None  # committed with the completion
    assert consume_mark(11) and not consume_mark(11)
    inbox.finish(11, already_marked=True)
    assert inbox.in_flight() == 0
    mark_current_update_applied()  # outside processing: nothing to mark, no error


def test_prune_forgets_only_old_processed_rows(inbox):
    old = utcnow() - dt.timedelta(days=10)
    ProcessedUpdate.create(update_id=1, payload="{}", processed_at=old)
    ProcessedUpdate.create(update_id=2, payload="{}", processed_at=utcnow())
    ProcessedUpdate.create(update_id=3, payload="{}", received_at=old)  # never processed: kept
    assert inbox.prune(processed_before=utcnow() - dt.timedelta(days=3)) == 1
    assert sorted(r.update_id for r in ProcessedUpdate.select()) == [2, 3]


def test_a_big_backlog_is_pruned_in_short_transactions_oldest_first(inbox, monkeypatch):
    """One DELETE of 2 million rows held SQLite's write lock, and the server's inbox writes, for
    9 s: the prune goes a batch per transaction, so the bot's writes get in between."""
    from habitreward.server import inbox as inbox_module

    monkeypatch.setattr(inbox_module, "PRUNE_BATCH", 10, raising=False)
    old = utcnow() - dt.timedelta(days=10)
    ProcessedUpdate.insert_many([{"update_id": n, "payload": "{}", "processed_at": old + dt.timedelta(minutes=n)}
                                 for n in range(1, 36)]).execute()
    ProcessedUpdate.create(update_id=100, payload="{}", processed_at=utcnow())
    ProcessedUpdate.create(update_id=101, payload="{}", received_at=old)  # never processed: kept
    committed: list[int] = []  # rows each transaction of the prune deleted
    run = inbox._commits.run

    def counted(op, key=None):
        result = run(op, key)
        committed.append(result)
        return result

    monkeypatch.setattr(inbox._commits, "run", counted)

    assert inbox.prune(processed_before=utcnow() - dt.timedelta(days=3)) == 35

    assert committed == [10, 10, 10, 5]
    assert sorted(r.update_id for r in ProcessedUpdate.select()) == [100, 101]


@pytest.fixture
def sent(engine, monkeypatch):
    """Every statement the engine's PostgreSQL connections send from here on, as sent."""
    import psycopg2.extensions

    statements: list[str] = []

    class Counting(psycopg2.extensions.cursor):
        def execute(self, sql, params=None):
            statements.append(sql if isinstance(sql, str) else sql.decode())
            return super().execute(sql, params)

    engine.db.close_all()  # pooled connections are made again, with the counting cursor
    monkeypatch.setitem(engine.db.connect_params, "cursor_factory", Counting)
    yield statements
    engine.db.close_all()


def as_sql(engine, sent: str) -> str:
    """A statement as sent, with a prepared statement's ``EXECUTE name(...)`` read back as its SQL."""
    if not sent.startswith(("EXECUTE habitreward_", "BEGIN; EXECUTE habitreward_")):
        return sent
    begin, _, execute = sent.rpartition("EXECUTE ")
    name, _, rest = execute.partition("(")
    found = [sql for sql, st in engine.db.statements._statements.items() if st.name == name]  # noqa: SLF001
    tail = rest.partition(")")[2]  # e.g. "; COMMIT"
    return begin + found[0] + tail


@pytest.mark.postgres_only  # on SQLite the transaction is what queues writers (see db._WriteQueue)
def test_on_postgres_an_update_that_arrives_alone_costs_two_round_trips(engine, inbox, sent):
    """Its claim (the advisory lock) and the INSERT, which has nothing to share a commit
    with, so it commits by itself (no BEGIN, no COMMIT)."""
    for warm_up in (19, 20):  # a connection prepares the hot statements it has not yet: once
        assert inbox.accept(warm_up, "{}") is Accepted.NEW_CLAIMED
        inbox.finish(warm_up)
    sent.clear()
    assert inbox.accept(21, '{"update_id": 21}') is Accepted.NEW_CLAIMED
    statements = [" ".join(as_sql(engine, sql).split()[:2]) for sql in sent]
    assert statements == ["SELECT pg_try_advisory_lock(%s,", "INSERT INTO"], sent
    assert row(21).attempts == 1


@pytest.mark.postgres_only  # SQLite has no round trips to save
def test_on_postgres_a_completion_sends_its_inbox_mark_with_its_commit(engine, inbox, sent):
    from habitreward.server import applied

    applied.register(engine.pm)
    user, _ = engine.register(30, "Ann")
    engine.activate_user(30)
    habit = engine.add_habit("Running")
    assert inbox.accept(31, "{}") is Accepted.NEW_CLAIMED
    sent.clear()
    with processing(31):
        engine.complete(user, habit)
    last = as_sql(engine, sent[-1])
    assert last.startswith("WITH marked AS (UPDATE processed_updates") and last.endswith("; COMMIT"), sent
    assert not any(sql == "COMMIT" for sql in sent)  # no COMMIT of its own
    assert row(31).processed_at is not None and consume_mark(31)
    inbox.finish(31, already_marked=True)


def test_a_completion_of_an_update_another_process_applied_is_rolled_back(engine, inbox):
    """Two processes running one update (on PostgreSQL, when the connection holding one's lock on
    it was dropped): the later application's transaction fails at its inbox mark (with its
    COMMIT on PostgreSQL) and keeps nothing: one log, whichever committed first."""
    from habitreward.errors import UpdateAppliedElsewhere
    from habitreward.models import HabitLog
    from habitreward.server import applied

    applied.register(engine.pm)
    user, _ = engine.register(40, "Ann")
    engine.activate_user(40)
    running, reading = engine.add_habit("Running"), engine.add_habit("Reading")
    assert inbox.accept(41, "{}") is Accepted.NEW_CLAIMED
    other = threading.Thread(target=_apply_elsewhere, args=(engine, 41, user, reading))
    other.start()
    other.join(10)
    with processing(41), pytest.raises(UpdateAppliedElsewhere):
        engine.complete(user, running)
    consume_mark(41)
    with engine.session():
        assert [log.habit_id for log in HabitLog.select()] == [reading.id]
    assert row(41).processed_at is not None


def _apply_elsewhere(engine, update_id, user, habit) -> None:
    """Another process's run of the update: its completion and its inbox mark, committed."""
    with processing(update_id):
        engine.complete(user, habit)
    consume_mark(update_id)

