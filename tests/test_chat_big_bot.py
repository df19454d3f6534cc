"""`habitreward chat` on a big bot, on both backends: to tell a new database (make the first
person admin, offer the demo set) it looks at one row, not at every user and habit.

The work is measured where the database does it: SQLite's VM instructions, PostgreSQL's rows
read by its scans (pg_stat_user_tables). Not time: the suite runs on shared machines.
"""

from __future__ import annotations

import os

from click.testing import CliRunner

from habitreward.cli import cli
from habitreward.db import SqliteDatabase
from habitreward.models import Habit, User
from habitreward.testing.engines import make_engine
from test_serve_kit import wait_until

ANN = 5


def _add_people(db_url: str, people: int) -> None:
    """Ann (id 5, active, one habit) if she is not there yet, and ``people`` others with 10
    habits each, inserted in bulk (the schema upgraded with the installed plugins, as `chat` wants)."""
    engine = make_engine(db_url)
    try:
        if engine.find_user(ANN) is None:
            engine.add_habit("Running", owner=engine.add_user(ANN, "Ann", active=True))
        with engine.session(), engine.db.atomic():
            first = User.select().count() + 1000
            User.insert_many([{"telegram_id": first + n, "name": f"P{n}", "active": True}
                              for n in range(people)]).execute()
            owners = [user_id for (user_id,) in User.select(User.id).where(User.telegram_id >= first).tuples()]
            rows = [{"name": f"Habit {n}", "owner": owner} for owner in owners for n in range(10)]
            for start in range(0, len(rows), 1000):
                Habit.insert_many(rows[start:start + 1000]).execute()
    finally:
        engine.close()


def _chat(db_url: str, tmp_path) -> None:
    """`chat` as Ann: the real bot, her /start, then /quit."""
    result = CliRunner().invoke(cli, ["--database-url", db_url, "--env-file", os.devnull,
                                      "chat", "--user", str(ANN), "--name", "Ann"], input="/quit\n",
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "Demo set added" not in result.output and "active admin" not in result.output


def _sqlite_steps_of_a_chat(db_url: str, tmp_path, monkeypatch) -> int:
    """SQLite VM instructions (in thousands) that the chat runs, on every connection."""
    count = [0]

    def tick() -> int:
        count[0] += 1
        return 0

    hooks = SqliteDatabase._add_conn_hooks

    def counted(self, conn) -> None:
        hooks(self, conn)
        conn.set_progress_handler(tick, 1000)

    with monkeypatch.context() as patch:
        patch.setattr(SqliteDatabase, "_add_conn_hooks", counted)
        _chat(db_url, tmp_path)
    return count[0]


def _rows_read_on_postgresql(db_url: str) -> int:
    """Rows PostgreSQL's scans have read in this database so far: sequential scans' rows and
    index entries, of every table (pg_stat_user_tables, pg_stat_user_indexes), once every other session has ended (a
    session's counts reach the statistics when it ends at the latest)."""
    import psycopg2

    conn = psycopg2.connect(db_url)
    conn.autocommit = True  # each query its own transaction: fresh statistics, not a cached snapshot
    try:
        with conn.cursor() as cur:
            def alone() -> bool:
                cur.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                            " AND backend_type = 'client backend' AND pid <> pg_backend_pid()")
                return cur.fetchone()[0] == 0

            wait_until(alone, what="the other sessions on the database to end")
            cur.execute("SELECT (SELECT coalesce(sum(seq_tup_read), 0) FROM pg_stat_user_tables)"
                        " + (SELECT coalesce(sum(idx_tup_read), 0) FROM pg_stat_user_indexes)")
            return int(cur.fetchone()[0])
    finally:
        conn.close()


def _work_of_a_chat(backend: str, db_url: str, tmp_path, monkeypatch) -> int:
    if backend == "sqlite":
        return _sqlite_steps_of_a_chat(db_url, tmp_path, monkeypatch)
    before = _rows_read_on_postgresql(db_url)
    _chat(db_url, tmp_path)
    return _rows_read_on_postgresql(db_url) - before


def test_a_chat_on_a_big_bot_does_not_read_every_user_and_habit(backend, db_url, tmp_path, monkeypatch):
    """To tell a new database (make the first person admin, offer the demo) the chat read every
    user and every habit: on a bot of 10,000 users and 45,000 habits, seconds before it began."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HABITREWARD_EXTRA_PLUGINS", raising=False)
    _add_people(db_url, 3)
    small = _work_of_a_chat(backend, db_url, tmp_path, monkeypatch)
    _add_people(db_url, 2000)
    big = _work_of_a_chat(backend, db_url, tmp_path, monkeypatch)

    unit = "thousand SQLite steps" if backend == "sqlite" else "rows read by PostgreSQL"
    assert big <= small + 20, f"the chat cost {big} {unit} among 20,000 habits, {small} among 30"
