"""Versioned schema migrations for the core and for plugins.

Migration files follow ``playhouse.migrations`` (``0001_name.py`` with
``up(migrator, db)``). Each source of migrations has a namespace, and all
of them are recorded in one ``schema_migrations`` table as ``namespace:name``,
so a plugin's ``0001_initial`` never collides with the core's.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import peewee
from playhouse.migrations import Migration, MigrationError, Runner

from habitreward.db import is_postgres
from habitreward.errors import ConfigError

CORE_NAMESPACE = "habitreward"
CORE_MIGRATIONS = Path(__file__).parent / "migrations"
HISTORY_TABLE = "schema_migrations"
# Any constant: the PostgreSQL advisory lock that serialises concurrent upgrades.
_UPGRADE_LOCK_KEY = 0x68616269


class NamespacedRunner(Runner):
    """A playhouse Runner whose history rows are prefixed with a namespace."""

    def __init__(self, database: peewee.Database, namespace: str, directory: str | Path):
        super().__init__(database, str(directory), table_name=HISTORY_TABLE)
        self.namespace = namespace

    def applied(self) -> dict[str, dt.datetime]:
        if not self.History.table_exists():
            return {}
        prefix = f"{self.namespace}:"
        query = self.History.select().where(self.History.name.startswith(prefix))
        return {h.name[len(prefix) :]: h.applied for h in query}

    def _run(self, name, module, direction, fake=False):  # noqa: ANN001 - playhouse's signature
        # Let playhouse do the work and record the plain name, then qualify it.
        super()._run(name, module, direction, fake=fake)
        if direction == "up":
            (
                self.History.update(name=f"{self.namespace}:{name}")
                .where(self.History.name == name)
                .execute()
            )


@dataclass(frozen=True)
class MigrationSource:
    namespace: str
    directory: Path


@dataclass(frozen=True)
class MigrationState:
    namespace: str
    name: str
    applied: dt.datetime | None


def _sources(extra: list[MigrationSource] | None) -> list[MigrationSource]:
    sources = [MigrationSource(CORE_NAMESPACE, CORE_MIGRATIONS)]
    for source in extra or []:
        clash = next((s for s in sources if s.namespace == source.namespace), None)
        if clash is not None:
            raise ConfigError(f"two sources of migrations use the namespace {source.namespace!r} ({clash.directory}"
                              f" and {source.directory}): each plugin needs a namespace of its own")
        sources.append(source)
    return sources


def status(database: peewee.Database, extra: list[MigrationSource] | None = None) -> list[MigrationState]:
    """Every known migration with the time it was applied (``None`` = pending)."""
    rows = []
    for source in _sources(extra):
        runner = NamespacedRunner(database, source.namespace, source.directory)
        rows.extend(MigrationState(source.namespace, m.name, m.applied) for m in runner.status())
    return rows


def unloaded(database: peewee.Database, extra: list[MigrationSource] | None = None) -> dict[str, list[MigrationState]]:
    """Migrations applied here whose namespace no source provides now, by namespace: a plugin
    uninstalled or left out by ``HABITREWARD_LOAD_PLUGINS``. Its tables and rows are still in
    the database, but without its models nothing here reads them (an export would leave them out)."""
    known = {source.namespace for source in _sources(extra)}
    history = NamespacedRunner(database, CORE_NAMESPACE, CORE_MIGRATIONS).History
    found: dict[str, list[MigrationState]] = {}
    if not history.table_exists():
        return found
    for row in history.select().order_by(history.name):
        namespace, _, name = row.name.partition(":")
        if name and namespace not in known:
            found.setdefault(namespace, []).append(MigrationState(namespace, name, row.applied))
    return found


def upgrade(database: peewee.Database, extra: list[MigrationSource] | None = None) -> list[str]:
    """Apply every pending migration, core first, then plugins; return what was applied.

    Safe to run from several processes at once: on PostgreSQL an advisory lock
    serialises them, on SQLite the write lock does.
    """
    applied: list[str] = []
    with database.connection_context():
        if is_postgres(database):
            database.execute_sql("SELECT pg_advisory_lock(%s)", (_UPGRADE_LOCK_KEY,))
        try:
            for source in _sources(extra):
                runner = NamespacedRunner(database, source.namespace, source.directory)
                with database.atomic():
                    names = runner.up()
                applied.extend(f"{source.namespace}:{name}" for name in names)
        finally:
            if is_postgres(database):
                database.execute_sql("SELECT pg_advisory_unlock(%s)", (_UPGRADE_LOCK_KEY,))
    return applied


def pending(database: peewee.Database, extra: list[MigrationSource] | None = None) -> list[str]:
    return [f"{m.namespace}:{m.name}" for m in status(database, extra) if m.applied is None]


__all__ = ["Migration", "MigrationError", "MigrationSource", "MigrationState", "pending", "status", "unloaded",
           "upgrade"]
