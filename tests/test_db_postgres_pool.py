"""The PostgreSQL connection pool (habitreward.db.PostgresqlDatabase): a connection given
back moments ago is handed out again without a liveness round trip; an older one is still
checked, and a connection the server dropped costs at most one failed operation."""

from __future__ import annotations

import threading
import time

import peewee
import psycopg2
import pytest

from habitreward import db as db_module
from habitreward.db import open_database
from habitreward.models import Habit
from habitreward.testing.engines import make_engine

pytestmark = pytest.mark.postgres_only


def backend_pid(database: peewee.Database) -> int:
    with database.connection_context():
        return database.execute_sql("SELECT pg_backend_pid()").fetchone()[0]


def terminate(url: str, pid: int) -> None:
    """End the server side of connection ``pid``, and wait until it is gone."""
    admin = psycopg2.connect(url)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            cur.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,))
            if cur.fetchone()[0] == 0:
                break
            time.sleep(0.01)
    admin.close()


@pytest.fixture
def pool(db_url):
    database = open_database(db_url, bind=False)
    yield database
    database.close_all()


def test_a_connection_given_back_moments_ago_is_reused_without_a_ping(pool, monkeypatch):
    pings = []
    real = pool._adapter.is_connection_closed
    monkeypatch.setattr(pool._adapter, "is_connection_closed", lambda conn: pings.append(conn) or real(conn))
    first = backend_pid(pool)
    assert [backend_pid(pool) for _ in range(5)] == [first] * 5  # one pooled connection, reused
    assert pings == []

    monkeypatch.setattr(db_module, "PG_RECHECK_AFTER_IDLE_SECONDS", 0.0)
    assert backend_pid(pool) == first
    assert len(pings) == 1  # idle "too long": peewee's SELECT 1 check, as before


def test_a_connection_dropped_by_the_server_fails_one_operation_then_the_pool_recovers(pool, db_url):
    terminate(db_url, backend_pid(pool))
    with pytest.raises(peewee.OperationalError):  # checked locally only: the loss shows on use
        backend_pid(pool)
    assert backend_pid(pool) > 0  # the broken connection was discarded, a new one works


def test_an_idle_connection_dropped_by_the_server_is_replaced_before_use(pool, db_url, monkeypatch):
    monkeypatch.setattr(db_module, "PG_RECHECK_AFTER_IDLE_SECONDS", 0.0)
    old = backend_pid(pool)
    terminate(db_url, old)
    assert backend_pid(pool) not in (old, 0)  # no failure: the check found it dead


class CountingCursor(psycopg2.extensions.cursor):
    """Notes every statement sent to the server (one execute = one round trip)."""

    sent: list[str] = []

    def execute(self, sql, params=None):
        CountingCursor.sent.append(sql if isinstance(sql, str) else sql.decode())
        return super().execute(sql, params)


@pytest.fixture
def counted(db_url):
    database = open_database(db_url, bind=False)
    database.connect_params["cursor_factory"] = CountingCursor
    with database.connection_context():
        database.execute_sql("CREATE TABLE t (v INTEGER CHECK (v > 0))")
    CountingCursor.sent = []
    yield database
    with database.connection_context():
        database.execute_sql("DROP TABLE t")
    database.close_all()


def values(database: peewee.Database) -> list[int]:
    return [v for (v,) in database.execute_sql("SELECT v FROM t ORDER BY v").fetchall()]


def test_a_transaction_sends_its_begin_with_its_first_statement(counted):
    with counted.connection_context():
        with counted.atomic():
            counted.execute_sql("INSERT INTO t VALUES (1)")
            counted.execute_sql("INSERT INTO t VALUES (2)")
        assert CountingCursor.sent == ["BEGIN; INSERT INTO t VALUES (1)", "INSERT INTO t VALUES (2)", "COMMIT"]
        with counted.atomic():
            pass  # nothing to do: nothing sent
        assert len(CountingCursor.sent) == 3
        assert values(counted) == [1, 2]


def test_a_deferred_begin_keeps_rollbacks_savepoints_and_failures_as_they_were(counted):
    with counted.connection_context():
        with pytest.raises(RuntimeError), counted.atomic():
            counted.execute_sql("INSERT INTO t VALUES (3)")
            raise RuntimeError("changed my mind")
        with counted.atomic():
            counted.execute_sql("INSERT INTO t VALUES (4)")
            with pytest.raises(peewee.IntegrityError), counted.atomic():  # a savepoint
                counted.execute_sql("INSERT INTO t VALUES (-5)")
            counted.execute_sql("INSERT INTO t VALUES (6)")
        with pytest.raises(peewee.IntegrityError), counted.atomic():
            counted.execute_sql("INSERT INTO t VALUES (-7)")  # the first statement fails
        with pytest.raises(RuntimeError), counted.atomic():
            raise RuntimeError("before any statement")  # nothing to roll back
        assert values(counted) == [4, 6]
        assert counted.connection().get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_IDLE


def test_a_write_queued_for_the_commit_goes_with_it_and_only_with_it(counted):
    with counted.connection_context():
        with counted.atomic():
            counted.execute_sql("INSERT INTO t VALUES (1)")
            assert counted.write_at_commit("INSERT INTO t VALUES (%s)", (2,))
            assert values(counted) == [1]  # not sent yet
        assert CountingCursor.sent[-1] == "INSERT INTO t VALUES (%s); COMMIT"
        assert values(counted) == [1, 2]

        with counted.atomic():  # the queued write is the transaction's only statement
            counted.write_at_commit("INSERT INTO t VALUES (%s)", (3,))
        assert CountingCursor.sent[-1] == "BEGIN; INSERT INTO t VALUES (%s); COMMIT"

        with pytest.raises(RuntimeError), counted.atomic():  # rolled back: never sent
            counted.execute_sql("INSERT INTO t VALUES (4)")
            counted.write_at_commit("INSERT INTO t VALUES (%s)", (5,))
            raise RuntimeError("changed my mind")
        with pytest.raises(peewee.IntegrityError), counted.atomic():  # a failing queued write fails the commit
            counted.execute_sql("INSERT INTO t VALUES (6)")
            counted.write_at_commit("INSERT INTO t VALUES (%s)", (-7,))
        with counted.atomic():
            assert counted.write_at_commit("INSERT INTO t VALUES (%s)", (9,))
            with counted.atomic():  # a savepoint: its rollback must be able to take the write back
                assert not counted.write_at_commit("INSERT INTO t VALUES (%s)", (8,))
        assert not counted.write_at_commit("INSERT INTO t VALUES (%s)", (10,))  # no transaction
        assert values(counted) == [1, 2, 3, 9]
        assert counted.connection().get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_IDLE


def test_a_lazy_read_outside_the_engine_gives_its_pooled_connection_back(db_url):
    """A program embedding the engine reads a relation the engine did not load
    (``result.log.habit``) after the call, on a thread of its own: peewee connects by itself for
    that read. The connection must go back to the pool, or every such thread keeps one and the
    pool runs dry."""
    engine = make_engine(f"{db_url}?max_connections=2&timeout=1", load_entry_points=False)
    try:
        ann = engine.add_user(1, "Ann", active=True)
        habits = [engine.add_habit(f"Habit {n}") for n in range(3)]
        names = []

        def request(habit):  # one request of a thread-per-request web app
            names.append(engine.complete(ann, habit).log.habit.name)

        for habit in habits:
            thread = threading.Thread(target=request, args=(habit,))
            thread.start()
            thread.join()
        assert sorted(names) == ["Habit 0", "Habit 1", "Habit 2"]
        assert [s.streak for s in engine.streaks(ann)] == [1, 1, 1]  # the pool still has a connection
    finally:
        engine.close()


def test_a_lazy_read_outside_the_engine_survives_the_pool_closing_its_connection(db_url):
    """The pool closes a connection at check-in when it is past its stale_timeout (or no longer
    trusted); a read outside an engine call gives its connection back at once, so its rows must
    already be read by then (psycopg2 refuses a closed connection's cursor)."""
    engine = make_engine(db_url, load_entry_points=False)
    try:
        ann = engine.add_user(1, "Ann", active=True)
        result = engine.complete(ann, engine.add_habit("Running"))
        engine.db._can_reuse = lambda conn: False  # as for a connection past its stale_timeout
        assert result.log.habit.name == "Running"
        assert [h.name for h in Habit.select().where(Habit.active)] == ["Running"]
        assert Habit.update(weight=20).where(Habit.name == "Running").execute() == 1
        assert Habit.get(Habit.name == "Running").weight == 20
        copy = Habit.insert(name="Reading", created_at=result.log.timestamp).execute()  # RETURNING id
        assert Habit.get_by_id(copy).name == "Reading"
    finally:
        engine.close()
