"""The PostgreSQL connection pool (habitreward.db.PostgresqlDatabase): a connection given
back moments ago is handed out again without a liveness round trip; an older one is still
checked, and a connection the server dropped costs at most one failed operation."""

from __future__ import annotations

import time

import peewee
import psycopg2
import pytest

from habitreward import db as db_module
from habitreward.db import open_database

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
