"""Fixtures shared by the whole suite.

Every test that uses ``db_url`` (directly or through ``engine``) runs once per
backend in ``HABITREWARD_TEST_BACKENDS`` (default ``sqlite,postgres``), each
time on a fresh database. PostgreSQL tests use a throwaway database created
for this test session on the server at ``HABITREWARD_TEST_POSTGRES_URL``;
without a reachable server they are skipped with the reason, except in CI
(``CI=true``), where that is a failure.
"""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import pytest

from habitreward.testing.engines import FrozenClock, make_engine

POSTGRES_URL = os.environ.get("HABITREWARD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS = [b.strip() for b in os.environ.get("HABITREWARD_TEST_BACKENDS", "sqlite,postgres").split(",") if b.strip()]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# Test modules import litellm themselves (pytest.importorskip) before habitreward.nlp.llm would set
# this: without it, that import fetches litellm's price list from the internet (retries and all).
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        marker = metafunc.definition.get_closest_marker("postgres_only")
        backends = ["postgres"] if marker else BACKENDS
        metafunc.parametrize("backend", backends, scope="function")


class PostgresServer:
    """One throwaway database per test session on the configured server."""

    def __init__(self, admin_url: str):
        self.admin_url = admin_url
        self.database = f"habitreward_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self.url: str | None = None
        self.error: str | None = None
        self.migrated = False
        self.core_tables: set[str] | None = None  # the tables the core and built-in plugins make

    def start(self) -> None:
        try:
            import psycopg2
        except ImportError:
            self.error = "psycopg2 is not installed (pip install 'habitreward[postgres]')"
            return
        try:
            conn = psycopg2.connect(self.admin_url, connect_timeout=3)
        except psycopg2.OperationalError as exc:
            self.error = f"PostgreSQL is not reachable at {self.admin_url}: {str(exc).strip().splitlines()[0]}"
            return
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{self.database}"')
        conn.close()
        parts = urlparse(self.admin_url)
        self.url = urlunparse(parts._replace(path=f"/{self.database}"))

    def stop(self) -> None:
        if self.url is None:
            return
        import psycopg2

        conn = psycopg2.connect(self.admin_url, connect_timeout=3)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        conn.close()

    def reset(self) -> None:
        """Empty every core table (keeping the schema and the core's migration history), and take
        out what an earlier test's plugins added (their tables and history rows), so each test
        starts from the core alone, as on SQLite."""
        import psycopg2

        core = self.core_tables
        conn = psycopg2.connect(self.url)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations'"
            )
            tables = [row[0] for row in cur.fetchall()]
            if core is None:  # the first reset follows the core's migration: these are its tables
                core = self.core_tables = set(tables)
            extra = [t for t in tables if t not in core]
            if extra:
                cur.execute("DROP TABLE " + ", ".join(f'"{t}"' for t in extra) + " CASCADE")
            cur.execute("DELETE FROM schema_migrations WHERE name NOT LIKE 'habitreward:%%'")
            kept = [t for t in tables if t in core]
            if kept:
                cur.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in kept) + " RESTART IDENTITY CASCADE")
        conn.close()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer(POSTGRES_URL)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def db_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """The URL of a fresh, empty (not yet migrated) database of this test's backend."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'habitreward.db'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    if server.url is None:
        if IN_CI:
            pytest.fail(f"CI needs PostgreSQL: {server.error}")
        pytest.skip(f"{server.error}; set HABITREWARD_TEST_POSTGRES_URL to run the PostgreSQL tests")
    if not server.migrated:
        # The first test migrates; later ones only empty the tables.
        server.migrated = True
        make_engine(server.url, load_entry_points=False).close()
    server.reset()
    return server.url


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def engine(db_url: str, clock: FrozenClock) -> Iterator:
    """An engine on a fresh database with only the built-in plugins, a frozen clock and seeded randomness."""
    eng = make_engine(db_url, clock=clock, rng=random.Random(20261125), load_entry_points=False)
    try:
        yield eng
    finally:
        eng.close()


@pytest.fixture
def bot(engine, botapi) -> Iterator:
    """The real bot on this suite's ``engine`` (both backends), talking to the ``botapi`` stand-in
    (the ``botapi`` fixture comes from habitreward's pytest plugin)."""
    from habitreward.testing.driver import BotDriver

    with BotDriver(engine, botapi) as driver:
        yield driver


@pytest.fixture
def serve(db_url, botapi, tmp_path):
    """Start ``serve --webhook`` processes on ephemeral ports (test_serve_kit.ServeProcess); all are
    killed at the end, the workers of ``--workers`` too."""
    import os
    import signal

    from test_serve_kit import ServeProcess, worker_pids

    started: list[ServeProcess] = []

    def start(*args: str, env: dict[str, str] | None = None, name: str = "serve",
              new_session: bool = False) -> ServeProcess:
        process = ServeProcess(db_url, botapi, tmp_path, "--webhook", "--port", "0", *args, env=env, name=name,
                               new_session=new_session)
        started.append(process)
        return process.start()

    yield start
    for process in started:
        pids = worker_pids(process).values()  # {worker number: pid}
        process.kill()
        for pid in pids:  # orphans stop by themselves (their supervisor is gone); make sure
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def run(db_url, engine, monkeypatch):
    """Invoke the CLI against the test database, returning the click Result (the CLI runs on the
    real clock, not the ``engine`` fixture's)."""
    from click.testing import CliRunner

    from habitreward.cli import cli

    monkeypatch.setenv("HABITREWARD_LOAD_PLUGINS", "")
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(cli, ["--env-file", os.devnull, "--database-url", db_url, *args])

    return invoke


@pytest.fixture
def sqlite_limit(backend: str, monkeypatch: pytest.MonkeyPatch):
    """``sqlite_limit(n)``: every SQLite connection opened from now on takes at most ``n`` values
    in one statement, as SQLite builds before 3.32 (999) or since (32,766) do; this machine's
    build may take more (Debian's: 250,000). PostgreSQL tests are skipped: psycopg2 sends the
    values within the statement's text, where PostgreSQL has no such limit."""
    if backend != "sqlite":
        pytest.skip("SQLite's limit on a statement's values")
    import sqlite3

    from habitreward.db import SqliteDatabase

    hooks = SqliteDatabase._add_conn_hooks

    def limit(most: int) -> None:
        def limited(self, conn) -> None:
            hooks(self, conn)
            conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, most)

        monkeypatch.setattr(SqliteDatabase, "_add_conn_hooks", limited)

    return limit
