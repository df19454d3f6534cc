"""Opening the database named by ``DATABASE_URL``.

Models are bound to :data:`database_proxy`; :func:`open_database` creates the
real connection and points the proxy at it, so the engine, the CLI and tests
all share one code path.
"""

from __future__ import annotations

from urllib.parse import urlparse

import peewee
from playhouse import db_url
from playhouse.pool import PooledPostgresqlDatabase

from habitreward.errors import ConfigError

database_proxy = peewee.DatabaseProxy()

#: Applied on every SQLite connection: WAL lets readers work while one writer
#: commits, foreign keys are off by default in SQLite, and ``synchronous=normal``
#: is durable under WAL except for the last commit on power loss.
SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "foreign_keys": 1,
    "synchronous": "normal",
    "cache_size": -16 * 1024,
}
SQLITE_BUSY_TIMEOUT_SECONDS = 15


def open_database(url: str, *, bind: bool = True) -> peewee.Database:
    """Open the database at ``url`` (not connecting yet) and bind the models to it."""
    scheme = urlparse(url).scheme
    try:
        if scheme in ("sqlite", ""):
            database = db_url.connect(
                url,
                pragmas=SQLITE_PRAGMAS,
                timeout=SQLITE_BUSY_TIMEOUT_SECONDS,
                # Every transaction takes the write lock up front, so two writers
                # queue on the busy timeout instead of failing to upgrade a read lock.
                lock_type="IMMEDIATE",
            )
        elif scheme in ("postgres", "postgresql", "postgres+pool", "postgresql+pool"):
            params = db_url.parse(url)
            params.setdefault("max_connections", 20)
            params.setdefault("stale_timeout", 300)
            params.setdefault("timeout", 30)
            database = PooledPostgresqlDatabase(**params)
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


def is_sqlite(database: peewee.Database) -> bool:
    return isinstance(database, peewee.SqliteDatabase)
