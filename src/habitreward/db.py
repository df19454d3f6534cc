"""Opening the database named by ``DATABASE_URL``.

Models are bound to :data:`database_proxy`; :func:`open_database` creates the
real connection and points the proxy at it, so the engine, the CLI and tests
all share one code path.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlparse

import peewee
from playhouse import db_url
from playhouse.pool import MaxConnectionsExceeded, PooledPostgresqlDatabase

from habitreward.errors import ConfigError, UpdateAppliedElsewhere
from habitreward.pg_statements import LOST, UNTRUSTED_AFTER, ServerStatements

database_proxy = peewee.DatabaseProxy()

#: Applied on every SQLite connection: WAL lets readers work while one writer
#: commits, foreign keys are off by default in SQLite, and ``synchronous=normal``
#: survives any crash of the process, but not of the machine: after a power cut or an
#: OS crash the commits since the last checkpoint may roll back. ``?synchronous=full``
#: in DATABASE_URL syncs every commit to disk (:data:`SQLITE_SYNCHRONOUS`).
SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "foreign_keys": 1,
    "synchronous": "normal",
    "cache_size": -16 * 1024,
}
SQLITE_BUSY_TIMEOUT_SECONDS = 15
#: What ``?synchronous=`` in a SQLite DATABASE_URL may say (SQLite's own levels that keep data).
SQLITE_SYNCHRONOUS = ("normal", "full", "extra")


def flock_until(fd: int, deadline: float, longest_pause: float = 0.002) -> bool:
    """Take an exclusive ``flock`` on ``fd``, trying until ``deadline`` (``time.monotonic()``)
    with growing pauses of at most ``longest_pause``; False if it was not to be had by then.
    True at once where there is no flock (Windows): callers go ahead without it."""
    try:
        import fcntl
    except ImportError:
        return True

    pause = min(0.00005, longest_pause)
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() > deadline:
                return False
            time.sleep(pause)
            pause = min(pause * 2, longest_pause)


class _WriteQueue:
    """The writers of one SQLite file take turns here rather than in SQLite's busy handler.

    SQLite lets one writer in and makes the others sleep and retry (after 1, 2, 5, 10,
    ... up to 100 ms); under load those sleeps, not the writes, set the pace, and the
    more threads or ``serve --workers`` processes write, the longer they get. Here a
    thread lock queues this process's writers and an ``flock`` on ``<db>.write-lock``
    queues other processes' (waited for in steps of at most 2 ms): whoever is next goes
    in as soon as the lock is free. Held from BEGIN to COMMIT or ROLLBACK of every
    transaction but a DEFERRED one, which is for reading (a write in it would wait in
    SQLite's busy handler instead).
    """

    def __init__(self, path: Path):
        self.path = path
        self._mutex = threading.Lock()
        self._fd: int | None = None
        self._owner = threading.local()

    def _file(self) -> int | None:
        """The lock file, or None where there is none to be had: SQLite's own lock still
        queues the processes then (a read-only directory; Windows, which has no flock)."""
        if self._fd is None:
            try:
                import fcntl  # noqa: F401
            except ImportError:
                self._fd = -1
                return None
            try:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError:
                self._fd = -1
        return self._fd if self._fd >= 0 else None

    def acquire(self, timeout: float = SQLITE_BUSY_TIMEOUT_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        if not self._mutex.acquire(timeout=timeout):
            raise peewee.OperationalError("database is locked (another writer in this process held it too long)")
        try:
            self._lock_file(deadline)
        except BaseException:
            self._mutex.release()
            raise
        self._owner.held = True

    def _lock_file(self, deadline: float) -> None:
        fd = self._file()
        if fd is None:
            return
        if not flock_until(fd, deadline):
            raise peewee.OperationalError("database is locked (another process held it too long)")

    def release(self) -> None:
        """Give the turn to the next writer (only if this thread holds it)."""
        if not getattr(self._owner, "held", False):
            return
        self._owner.held = False
        try:
            fd = self._file()
            if fd is not None:
                import fcntl

                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            self._mutex.release()


_write_queues: dict[str, _WriteQueue] = {}
_write_queues_lock = threading.Lock()


def _write_queue_for(database_path: str) -> _WriteQueue:
    """One queue per database file and process (every Database object on it shares it)."""
    key = os.path.realpath(database_path)
    with _write_queues_lock:
        queue = _write_queues.get(key)
        if queue is None:
            queue = _write_queues[key] = _WriteQueue(Path(key + ".write-lock"))
        return queue


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


class SqliteDatabase(peewee.SqliteDatabase):
    """peewee's SqliteDatabase whose transactions queue on a :class:`_WriteQueue`."""

    def __init__(self, database: str, *args, **kwargs):
        super().__init__(database, *args, **kwargs)
        in_memory = database in ("", ":memory:") or database.startswith("file::memory:")
        self.write_queue = None if in_memory else _write_queue_for(database)
        # SQLite's own LOWER() folds ASCII only: "Ёж" and "ёж" were two names, and finding "Кофе"
        # by name failed. Python's folds every alphabet, as PostgreSQL's does.
        self.register_function(_lower, "lower", 1, deterministic=True)

    def begin(self, lock_type: str | None = None) -> None:
        # A DEFERRED transaction only reads (the export's snapshot): under WAL it never
        # blocks a writer, so it does not queue behind them nor make them wait for it.
        self._state.queued = False
        lock_type = lock_type or self._lock_type
        if self.write_queue is None or str(lock_type).upper() == "DEFERRED":
            return super().begin(lock_type)
        self.write_queue.acquire()
        self._state.queued = True
        try:
            super().begin(lock_type)
        except BaseException:
            self._release_turn()
            raise

    def _release_turn(self) -> None:
        """Give the turn away if this thread's transaction on this database took it (and only then:
        another Database on the same file may hold the shared queue in this thread)."""
        if getattr(self._state, "queued", False):
            self._state.queued = False
            self.write_queue.release()

    def commit(self) -> None:
        super().commit()  # a failed COMMIT is followed by ROLLBACK, which gives the turn away
        self._release_turn()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._release_turn()


#: A pooled PostgreSQL connection given back this recently is handed out again without
#: a round trip to check that it is alive (see :class:`PostgresqlDatabase`).
PG_RECHECK_AFTER_IDLE_SECONDS = 5.0


class _CountedSavepoint(peewee._savepoint):  # noqa: SLF001 - peewee's savepoint, plus a count
    """peewee keeps no count of open savepoints (``transaction_depth`` counts transactions)."""

    def __enter__(self) -> Any:
        state = self.db._state  # noqa: SLF001
        state.savepoints = getattr(state, "savepoints", 0) + 1
        try:
            return super().__enter__()
        except BaseException:
            state.savepoints -= 1
            raise

    def __exit__(self, *exc: Any) -> Any:
        try:
            return super().__exit__(*exc)
        finally:
            self.db._state.savepoints -= 1  # noqa: SLF001


class _ReadCursor:
    """A cursor's whole answer, read while its connection was still checked out."""

    def __init__(self, cursor: Any):
        self.description = cursor.description
        self.rowcount = cursor.rowcount
        self._rows = iter(cursor.fetchall() if cursor.description is not None else ())

    def fetchone(self) -> Any:
        return next(self._rows, None)

    def fetchmany(self, size: int = 1) -> list[Any]:
        return list(itertools.islice(self._rows, size))

    def fetchall(self) -> list[Any]:
        return list(self._rows)

    def __iter__(self) -> Any:
        return self._rows

    def close(self) -> None:
        pass


class PostgresqlDatabase(PooledPostgresqlDatabase):
    """peewee's pooled PostgreSQL database, minus three kinds of round trips.

    * peewee checks each pooled connection with ``SELECT 1`` when it hands it out, and
      holds the pool's lock meanwhile, so every thread of the process waits for that
      round trip; an update borrows a connection five or six times. Here a connection
      given back less than :data:`PG_RECHECK_AFTER_IDLE_SECONDS` ago is checked locally
      (psycopg2's closed flag and transaction status); older ones still get peewee's
      ``SELECT 1``. A connection the server dropped in between fails its next statement
      (the operation fails, nothing is half-written) and psycopg2 marks it closed, so
      the pool discards it at the next check-out.
    * peewee sends ``BEGIN`` on its own; here it goes with the transaction's first
      statement (``BEGIN; <statement>``, one round trip). A statement that fails leaves
      the transaction aborted, as it would after a separate BEGIN, and the rollback
      follows as usual; a transaction with no statement sends nothing at all.
    * a write whose result nobody reads can go with the ``COMMIT``
      (:meth:`write_at_commit`: ``<write>; COMMIT``, one round trip): the inbox mark of
      every completion. If it fails, the COMMIT is not run and the transaction rolls back.

    And the hot path's statements are prepared on the server once per connection, then
    sent as ``EXECUTE`` (``pg_statements``; ``prepared_statements=False`` turns it off).
    """

    def __init__(self, *args: Any, prepared_statements: bool = True, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._given_back: dict[int, float] = {}  # conn_key -> time.monotonic() of its check-in
        self.statements = ServerStatements() if prepared_statements else None
        # Connections whose prepared statements failed them: closed at check-in, not reused.
        self._untrusted: weakref.WeakSet[Any] = weakref.WeakSet()

    # --- statements prepared on the server ---------------------------------------------

    def register_statement(self, sql: str) -> None:
        """``sql`` (fixed SQL, ``%s`` parameters) runs often: prepare it on every connection."""
        if self.statements is not None:
            self.statements.register(sql)

    def _initialize_connection(self, conn: Any) -> None:
        super()._initialize_connection(conn)
        if self.statements is not None:
            self.statements.on_checkout(conn)

    def _can_reuse(self, conn: Any) -> bool:
        return conn not in self._untrusted and super()._can_reuse(conn)

    def _close_raw(self, conn: Any) -> None:
        if self.statements is not None:
            self.statements.forget(conn)
        super()._close_raw(conn)

    # --- BEGIN with the first statement -----------------------------------------------

    def begin(self, isolation_level: Any = None) -> None:
        self._state.at_commit = None  # a new transaction never carries writes of an earlier one
        if isolation_level is not None or self._isolation_level:
            return super().begin(isolation_level)
        # The connection the BEGIN belongs to (peewee's state is per thread): a deferred
        # BEGIN never leaks to a later connection of this thread.
        self._state.deferred_begin = self.connection()

    def _take_deferred_begin(self) -> bool:
        pending = getattr(self._state, "deferred_begin", None)
        if pending is None:
            return False
        self._state.deferred_begin = None
        return pending is self._state.conn

    # --- writes that go with COMMIT ----------------------------------------------------

    def write_at_commit(self, sql: str, params: tuple[Any, ...]) -> bool:
        """Send ``sql`` (a write; its result is not read) with this transaction's COMMIT;
        False, and nothing queued, outside a transaction or inside a savepoint (whose
        rollback must take the write back): the caller runs it at once then."""
        if self.transaction_depth() != 1 or getattr(self._state, "savepoints", 0):
            return False
        pending = getattr(self._state, "at_commit", None)
        if pending is None or pending[0] is not self._state.conn:
            pending = self._state.at_commit = (self._state.conn, [])
        pending[1].append((sql, params))
        return True

    def savepoint(self) -> Any:
        return _CountedSavepoint(self)  # peewee's, counted: write_at_commit must know

    def _take_at_commit(self) -> list[tuple[str, tuple[Any, ...]]]:
        pending = getattr(self._state, "at_commit", None)
        if pending is None:
            return []
        self._state.at_commit = None
        return pending[1] if pending[0] is self._state.conn else []

    def _execute_cursor(self, sql: str, params: Any, **cursor_options: Any) -> Any:
        if not self.is_closed() or cursor_options:
            return self._execute_on_connection(sql, params, **cursor_options)
        # A statement outside any connection (Engine.session, connection_context): peewee would
        # connect by itself and keep the pooled connection for this thread's lifetime; a lazy
        # read of a relation (result.log.habit) on each thread of a web app would run the pool
        # dry. Borrow one for the statement instead (autocommit: its rows are already read).
        self.connect()
        try:
            cursor = self._execute_on_connection(sql, params)
            if self.in_transaction():
                return cursor
            # Read the answer before the connection goes back: the pool closes a connection past
            # its stale_timeout (or one it no longer trusts) at check-in, and psycopg2 then
            # refuses to read a closed connection's cursor.
            return _ReadCursor(cursor)
        finally:
            if not self.in_transaction():
                self.close()

    def _execute_on_connection(self, sql: str, params: Any, **cursor_options: Any) -> Any:
        if self.statements is not None and not cursor_options:
            sql = self.statements.sql_for(self._state.conn, sql)
        if self._take_deferred_begin():
            if cursor_options:  # a named (server-side) cursor wraps its statement: BEGIN goes alone
                super()._execute_cursor("BEGIN", None)
            else:
                sql = "BEGIN; " + sql
        try:
            return super()._execute_cursor(sql, params, **cursor_options)
        except Exception as exc:
            self._distrust_on(exc)
            raise

    def _distrust_on(self, exc: Exception) -> None:
        """After an error that says this connection's prepared statements are gone or stale, the
        connection is not used again (a new one prepares them afresh)."""
        code = sqlstate(exc)
        if self.statements is not None and code in UNTRUSTED_AFTER:
            conn = self._state.conn
            if conn is not None:
                self.statements.forget(conn)
                self._untrusted.add(conn)
            if code == LOST:  # the session lost what it prepared: a pooler between us, most likely
                self.statements.disable(str(exc).strip().splitlines()[0])

    def commit(self) -> None:
        writes = self._take_at_commit()
        begin = self._take_deferred_begin()
        if writes:
            if self.statements is not None:
                writes = [(self.statements.sql_for(self._state.conn, write), values) for write, values in writes]
            sql = "; ".join([*(write for write, _ in writes), "COMMIT"])
            sql, params = "BEGIN; " + sql if begin else sql, tuple(value for _, values in writes for value in values)
            peewee.logger.debug((sql, params))  # as execute_sql logs every statement
            try:
                with peewee.__exception_wrapper__:
                    try:
                        self.cursor().execute(sql, params)
                    except Exception as exc:
                        self._distrust_on(exc)
                        raise
            except peewee.DataError as exc:  # the inbox mark found its update applied elsewhere?
                UpdateAppliedElsewhere.raise_for(exc)
                raise
        elif not begin:
            super().commit()

    def rollback(self) -> None:
        self._take_at_commit()  # rolled back with the transaction, never sent
        if not self._take_deferred_begin():
            super().rollback()

    # --- pooled connections without a check on every check-out --------------------------

    def _is_closed(self, conn: Any) -> bool:
        given_back = self._given_back.pop(self.conn_key(conn), None)
        if (
            given_back is not None
            and time.monotonic() - given_back < PG_RECHECK_AFTER_IDLE_SECONDS
            and not conn.closed
            and self._adapter.txn_status(conn) == self._adapter.txn_idle
        ):
            return False
        return super()._is_closed(conn)

    def _close(self, conn: Any, close_conn: bool = False) -> None:
        key = self.conn_key(conn)
        super()._close(conn, close_conn)
        if close_conn:
            self._given_back.pop(key, None)
            if self.statements is not None:
                self.statements.forget(conn)
            return
        if len(self._given_back) > 4 * (self._max_connections or 64):  # keys of connections closed at check-in
            self._given_back.clear()
        self._given_back[key] = time.monotonic()


def database_away(exc: BaseException) -> bool:
    """Whether ``exc`` is the database unreachable or refusing for a while (its driver's errors
    as peewee raises them, or no pooled connection free in time): worth one line and a later
    try, not a traceback. Anything else is a bug."""
    return isinstance(exc, (peewee.OperationalError, peewee.InterfaceError, MaxConnectionsExceeded))


def sqlstate(exc: BaseException) -> str | None:
    """PostgreSQL's SQLSTATE of ``exc``: the driver's exception, or one peewee wrapped (once or
    more) around it; None for any other error."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return None
        code = getattr(seen, "pgcode", None)
        if code is not None:
            return code
        inner = seen.args[0] if seen.args else None  # peewee's wrapper keeps the original first
        seen = inner if isinstance(inner, BaseException) else seen.__context__
    return None


def _flag(name: str, value: Any) -> bool:
    """A yes/no option of DATABASE_URL (``?name=false``)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be true or false, not {value!r}")


#: The options of a SQLite DATABASE_URL (``?synchronous=full&timeout=30``).
SQLITE_URL_OPTIONS = ("synchronous", "timeout")
#: The options of a PostgreSQL DATABASE_URL that are habitreward's own (the pool's and the
#: prepared statements'); every other one is handed to libpq (``sslmode``, ``connect_timeout``, ...).
POSTGRES_URL_OPTIONS = ("max_connections", "prepared_statements", "stale_timeout", "timeout")


def _number(name: str, value: Any, *, whole: bool = False, least: float = 0) -> Any:
    """A number option of DATABASE_URL (``?timeout=30``), checked before anything connects."""
    kind = int if whole else float
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < least or (
            whole and not isinstance(value, int)):
        what = "a whole number" if whole else "a number"
        raise ValueError(f"{name} must be {what} of at least {least:g}, not {str(value)!r}")
    return kind(value)


def _check_libpq_options(options: dict[str, Any]) -> None:
    """Refuse an option libpq does not know (``?sslmod=require``) here, in one line, rather
    than as psycopg2's traceback at the first connection."""
    if not options:
        return
    from psycopg2 import ProgrammingError
    from psycopg2.extensions import make_dsn

    unknown = []
    for name, value in options.items():
        try:
            make_dsn(**{name: str(value)})
        except ProgrammingError:
            unknown.append(f"?{name}=")
    if unknown:
        raise ValueError(
            f"unknown option {', '.join(unknown)} (habitreward's own are {', '.join(POSTGRES_URL_OPTIONS)}; "
            "any other goes to libpq, which has none of that name: see its sslmode, connect_timeout, ...)"
        )


#: libpq's connection parameters that hold a secret (``?password=`` works as well as ``user:password@``).
LIBPQ_SECRET_PARAMETERS = ("password", "sslpassword")


def libpq_url(url: str) -> tuple[str, bool]:
    """``url`` (a PostgreSQL DATABASE_URL) as libpq's own tools (pg_dump, psql) take it: without
    habitreward's options, which libpq refuses, and without the password (in the user info or
    ``?password=``), so that it can be shown; the second value says whether a password was left out."""
    from habitreward.redaction import hide_url_credentials

    def secret(name: str) -> bool:
        return name in LIBPQ_SECRET_PARAMETERS

    without = hide_url_credentials(url, keep_user=True, mark=None, secret_name=secret)
    # A password left out, even an empty one: what an empty mark leaves ('user:@', '?password=') differs.
    had_password = hide_url_credentials(url, keep_user=True, mark="", secret_name=secret) != without
    shown = urlparse(without)
    query = "&".join(pair for pair in shown.query.split("&")
                     if pair and pair.partition("=")[0] not in POSTGRES_URL_OPTIONS)
    scheme = shown.scheme.removesuffix("+pool")
    scheme = "postgresql" if scheme == "postgres" else scheme
    # Put together by hand: geturl() drops the '//' of an empty host (postgresql:///db?host=/run/postgresql,
    # a socket directory), and libpq reads 'postgresql:/db' as no URL at all.
    return (f"{scheme}://{shown.netloc}{shown.path}" + (f";{shown.params}" if shown.params else "")
            + (f"?{query}" if query else "") + (f"#{shown.fragment}" if shown.fragment else "")), had_password


def open_database(url: str, *, bind: bool = True) -> peewee.Database:
    """Open the database at ``url`` (not connecting yet) and bind the models to it."""
    scheme = urlparse(url).scheme
    if "#" in url:
        # urlparse takes the rest for a fragment and drops it: 'sqlite:///bot.db   # live' opened
        # a new, empty 'bot.db   '. Not shown: it may be part of a password.
        raise ConfigError(
            "DATABASE_URL is not usable: it holds a '#', which a URL cannot (what follows would be "
            "dropped): a comment after the value (systemd's EnvironmentFile= keeps those; put it on "
            "a line of its own), or a '#' in a PostgreSQL user name or password (write it %23) or in "
            "a SQLite file's path (taken as written, %23 too: rename the file)"
        )
    try:
        if scheme in ("sqlite", ""):
            options = db_url.parse(url)
            unknown = [name for name in options if name != "database" and name not in SQLITE_URL_OPTIONS]
            if unknown:
                raise ValueError(f"SQLite has no option {', '.join(f'?{name}=' for name in unknown)} "
                                 f"(a sqlite:// URL takes {' and '.join(SQLITE_URL_OPTIONS)})")
            synchronous = str(options.pop("synchronous", SQLITE_PRAGMAS["synchronous"])).strip().lower()
            if synchronous not in SQLITE_SYNCHRONOUS:
                raise ValueError(f"synchronous must be {', '.join(SQLITE_SYNCHRONOUS)}, not {synchronous!r}")
            if "timeout" in options:
                options["timeout"] = _number("timeout", options["timeout"])
            params = {
                "pragmas": {**SQLITE_PRAGMAS, "synchronous": synchronous},
                "timeout": SQLITE_BUSY_TIMEOUT_SECONDS,
                # Every transaction takes the write lock up front, so two writers
                # queue instead of failing to upgrade a read lock (reads that need one
                # snapshot ask for DEFERRED).
                "lock_type": "IMMEDIATE",
                **options,  # the URL's own options (?timeout=...) win
            }
            database = SqliteDatabase(**params)
        elif scheme in ("postgres", "postgresql", "postgres+pool", "postgresql+pool"):
            # Percent-escapes decoded as libpq decodes them (pg_dump and psql take the same URL):
            # a '#' or '@' in a password is written %23 or %40.
            params = db_url.parse(url, unquote_password=True, unquote_user=True)
            params["database"] = unquote(params["database"])
            if not params.get("database"):
                raise ValueError("it names no database (postgresql://user@host/dbname)")  # no URL: a password
            params["prepared_statements"] = _flag("prepared_statements", params.get("prepared_statements", True))
            params["max_connections"] = _number("max_connections", params.get("max_connections", 20),
                                                whole=True, least=1)
            params["stale_timeout"] = _number("stale_timeout", params.get("stale_timeout", 300))
            params["timeout"] = _number("timeout", params.get("timeout", 30))
            connection = ("database", "user", "password", "host", "port")
            _check_libpq_options({name: value for name, value in params.items()
                                  if name not in connection and name not in POSTGRES_URL_OPTIONS})
            database = PostgresqlDatabase(**params)
        else:
            database = db_url.connect(url)
    except (RuntimeError, ValueError) as exc:
        raise ConfigError(f"DATABASE_URL is not usable: {exc}") from None
    except ImportError as exc:
        raise ConfigError(
            f"DATABASE_URL needs a driver that is not installed ({exc.name}): "
            "pip install 'habitreward[postgres]'"
        ) from None
    if bind:
        database_proxy.initialize(database)
    return database


def is_postgres(database: peewee.Database) -> bool:
    return isinstance(database, peewee.PostgresqlDatabase)


def sqlite_file(database_url: str) -> Path | None:
    """The database file of a SQLite URL (None: PostgreSQL, or SQLite in memory)."""
    parts = urlparse(database_url)
    if parts.scheme in ("sqlite", "") and parts.path not in ("", "/:memory:", ":memory:"):
        return Path(parts.path[1:] if parts.path.startswith("/") else parts.path)
    return None


def why_sqlite_cannot_open(url: str) -> str | None:
    """Why SQLite could not open the file of a ``sqlite://`` DATABASE_URL ("unable to open
    database file" names neither the file nor the cause), or None when no reason is seen."""
    name = sqlite_file(url)
    if name is None:
        return None
    path = name.expanduser().absolute()
    folder = path.parent
    if path.is_dir():
        return f"{path} is a directory, not a database file"
    if not folder.is_dir():
        return f"{path}: its folder {folder} does not exist"
    if not path.exists() and not os.access(folder, os.W_OK | os.X_OK):
        return f"{path} does not exist and cannot be made: no permission to write in {folder}"
    if path.exists() and not os.access(path, os.R_OK):
        return f"{path}: no permission to read it"
    return None


def is_sqlite(database: peewee.Database) -> bool:
    return isinstance(database, peewee.SqliteDatabase)


def values_per_statement(database: peewee.Database) -> int | None:
    """How many values one statement may bind on ``database``: SQLite's limit as its build has
    it (999 before 3.32, 32,766 since; a distribution may set more); None on PostgreSQL, where
    psycopg2 writes the values into the statement's text and no such limit applies."""
    if not is_sqlite(database):
        return None
    return database.connection().getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)


def rows_per_insert(database: peewee.Database, model: type[peewee.Model], most: int) -> int:
    """Rows of ``model`` for one ``insert_many``: ``most``, or fewer where that many rows of
    every column (peewee binds each column, given or defaulted) would pass the database's
    limit on values (:func:`values_per_statement`: 99 rows of ten columns before SQLite 3.32)."""
    limit = values_per_statement(database)
    if limit is None:
        return most
    return max(1, min(most, limit // len(model._meta.sorted_fields)))


#: Ids in one ``IN (...)`` list where their number depends on the data (a person's rows, the habits
#: one sees): within what any SQLite build takes in one statement (999 values before 3.32, 32,766
#: since), with room for the statement's other values.
IDS_PER_STATEMENT = 500

_T = TypeVar("_T")


def id_chunks(ids: Sequence[_T], size: int = IDS_PER_STATEMENT) -> Iterator[Sequence[_T]]:
    """``ids`` in order, ``size`` at a time: one statement each, whatever their number."""
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


@contextlib.contextmanager
def read_snapshot(database: peewee.Database) -> Iterator[None]:
    """One consistent view of every table while the bot keeps writing.

    PostgreSQL: a repeatable-read, read-only transaction. SQLite: a deferred
    transaction, which under WAL reads one snapshot without taking the write lock
    (the bot's connections use BEGIN IMMEDIATE, see :class:`SqliteDatabase`).

    Inside a transaction already (a plugin's hook in a completion, a caller's own
    ``engine.transaction()``), that transaction is the view, its own writes included:
    PostgreSQL cannot change the isolation of a transaction under way (SET TRANSACTION
    in a savepoint is an error), so on both databases nothing is begun.
    """
    if database.in_transaction():
        yield
    elif is_postgres(database):
        with database.atomic():
            database.execute_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield
    elif is_sqlite(database):
        with database.atomic(lock_type="DEFERRED"):
            yield
    else:
        with database.atomic():
            yield


def stream_rows(database: peewee.Database, query: peewee.Select, batch: int = 2000) -> Iterator[Any]:
    """The rows of ``query`` (its row type), read from the database ``batch`` at a time.

    SQLite's cursor steps through the rows as they are read. psycopg2's ordinary cursor
    fetches every row of a result into the client at once (2.3 GB for 6.4 million habit
    logs); a cursor declared on the server hands them out a batch at a time instead. It
    lives in the caller's transaction (:func:`read_snapshot`), which closes it at its end
    if the rows are not read to the last.
    """
    if not is_postgres(database):
        yield from query.iterator()
        return
    sql, params = query.sql()
    name = f"habitreward_rows_{next(_cursor_numbers)}"
    database.execute_sql(f"DECLARE {name} NO SCROLL CURSOR FOR {sql}", params)
    while True:
        cursor = database.execute_sql(f"FETCH {int(batch)} FROM {name}")
        rows = list(query._get_cursor_wrapper(cursor).iterator())  # noqa: SLF001 - peewee's own row reader
        if not rows:
            break
        yield from rows
    database.execute_sql(f"CLOSE {name}")


_cursor_numbers = itertools.count(1)
