"""``habitreward export``: every registered table (core and plugins) as one JSON document or CSV files.

Rows keep their primary keys, so foreign keys hold after an import. Tables
are written parents first (users before habits before logs), which is also the
order the importer inserts them in. With a user, only what belongs to that
person is written (their row, every row that points at them, and the shared
habits and rewards those rows point at), for a personal copy of their data.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import os
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import peewee

from habitreward import __version__
from habitreward.bot.state import user_state_ids
from habitreward.data.formats import FORMAT_NAME, FORMAT_VERSION, encode, kind_of, to_cell
from habitreward.data.progress import Progress
from habitreward.db import id_chunks, is_postgres, is_sqlite, read_snapshot, stream_rows
from habitreward.errors import Conflict, ValidationError
from habitreward.models import KeyValue, User

#: Tables with at least this many rows show progress on stderr.
PROGRESS_FROM_ROWS = 1000
_FETCH = 2000


@dataclass
class TableExport:
    model: type[peewee.Model]
    #: Read one after the other: one, or several where a table's rows are picked by more ids than
    #: one statement takes (a person's bot state, :meth:`Exporter._user_queries`).
    queries: tuple[peewee.Select, ...]
    count: int

    @property
    def table(self) -> str:
        return self.model._meta.table_name

    @property
    def fields(self) -> list[peewee.Field]:
        return list(self.model._meta.sorted_fields)

    def columns(self) -> list[dict[str, str]]:
        return [{"name": f.column_name, "kind": kind_of(f)} for f in self.fields]


def ordered_models(models: list[type[peewee.Model]]) -> list[type[peewee.Model]]:
    """Parents before children (peewee's dependency sort), so inserts never break a foreign key."""
    return list(peewee.sort_models(models))


class Exporter:
    def __init__(
        self,
        engine: Any,
        *,
        user_telegram_id: int | None = None,
        progress_file: TextIO | None = None,
        show_progress: bool = True,
        skip_unloaded_plugins: bool = False,
    ):
        self.engine = engine
        self.user_telegram_id = user_telegram_id
        self.skip_unloaded_plugins = skip_unloaded_plugins
        self.progress_file = progress_file
        self.show_progress = show_progress

    # --- what goes out ---------------------------------------------------------------------

    def tables(self) -> list[TableExport]:
        if not self.skip_unloaded_plugins:
            self._refuse_unloaded_plugins()
        models = ordered_models(self.engine.hooks.models())
        if self.user_telegram_id is None:
            queries = {m: [m.select(*m._meta.sorted_fields)] for m in models}
        else:
            queries = self._user_queries(models, self.engine.get_user(self.user_telegram_id))
        exports = []
        for model in models:
            if model not in queries:
                continue
            parts = tuple(query.order_by(model._meta.primary_key) for query in queries[model])
            exports.append(TableExport(model, parts, sum(query.count() for query in parts)))
        return exports

    def _refuse_unloaded_plugins(self) -> None:
        """A plugin whose migrations ran here but which is not loaded now has tables the export
        cannot see (no models): leaving their rows out without a word would lose them on a move.
        Its tables are the ones no loaded model has; empty ones lose nothing."""
        from habitreward import schema

        db = self.engine.db
        gone = schema.unloaded(db, self.engine.hooks.migration_sources())
        if not gone:
            return
        known = {model._meta.table_name for model in self.engine.hooks.models()} | {schema.HISTORY_TABLE}
        rows = {table: peewee.Table(table).select(peewee.fn.COUNT(peewee.SQL("*"))).bind(db).scalar()
                for table in sorted(set(db.get_tables()) - known)}
        filled = {table: count for table, count in rows.items() if count}
        if filled:
            names = ", ".join(f"{namespace} ({', '.join(s.name for s in states)})"
                              for namespace, states in gone.items())
            tables = ", ".join(f"{table} ({count} rows)" for table, count in filled.items())
            raise ValidationError(
                f"Data of plugins that are not loaded is in this database, and the export would leave it out:"
                f" {names}; tables {tables}. Install or load them (HABITREWARD_LOAD_PLUGINS), or export"
                f" without their data with --skip-unloaded-plugins."
            )

    def _user_queries(self, models: list[type[peewee.Model]],
                      user: User) -> dict[type[peewee.Model], list[peewee.Select]]:
        """One person's rows: theirs, and the parents those rows point at (shared habits, rewards)."""
        conditions: dict[type[peewee.Model], list[peewee.Expression]] = {User: [User.id == user.id]}
        for model in models:
            owner_fks = [f for f in model._meta.refs if f.rel_model is User]
            if model is not User and owner_fks:
                conditions[model] = [fk == user.id for fk in owner_fks]
        # Rows of their rows: the aliases of their personal habits (tables with no user of their own
        # that point at what is theirs); `users delete` takes these with the person too.
        owned = {m: _any(c) for m, c in conditions.items() if m is not User}
        for model in models:
            if model in conditions or model is KeyValue:
                continue
            for fk in model._meta.refs:
                parent = fk.rel_model
                if parent in owned and parent is not model:
                    theirs = parent.select(parent._meta.primary_key).where(owned[parent])
                    conditions.setdefault(model, []).append(fk.in_(theirs))
        # Parents of included rows, children before parents so each parent sees all its children.
        for model in reversed(models):
            for fk in model._meta.refs:
                parent = fk.rel_model
                if model not in conditions or parent is User or parent is model:
                    continue
                where = _any(conditions[model])
                referenced = model.select(fk).where(where & fk.is_null(False)).distinct()
                conditions.setdefault(parent, []).append(parent._meta.primary_key.in_(referenced))
        queries = {m: [m.select(*m._meta.sorted_fields).where(_any(c))] for m, c in conditions.items()}
        if KeyValue in models:  # the bot's state of this person (what `users delete` forgets): their
            # open dialogs, one per group chat and dialog, can be more ids than one statement takes
            queries[KeyValue] = [KeyValue.select(*KeyValue._meta.sorted_fields).where(KeyValue.id.in_(chunk))
                                 for chunk in id_chunks(user_state_ids(user.telegram_id))]
        return queries

    def _rows(self, export: TableExport) -> Iterator[list[Any]]:
        kinds = [kind_of(f) for f in export.fields]
        enabled = self.show_progress and export.count >= PROGRESS_FROM_ROWS
        with Progress(f"Exporting {export.table}", export.count, file=self.progress_file, enabled=enabled) as bar:
            rows = (row for query in export.queries for row in stream_rows(self.engine.db, query.tuples(), _FETCH))
            for n, row in enumerate(rows, 1):
                yield [encode(kind, value) for kind, value in zip(kinds, row)]
                if n % _FETCH == 0:
                    bar.advance(_FETCH)
            bar.advance(export.count % _FETCH or (_FETCH if export.count else 0))

    def _meta(self, tables: list[TableExport]) -> dict[str, Any]:
        return {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "habitreward_version": __version__,
            "exported_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "source": ("postgresql" if is_postgres(self.engine.db)
                       else "sqlite" if is_sqlite(self.engine.db) else "other"),
            "user": self.user_telegram_id,
        }

    # --- writers -----------------------------------------------------------------------------

    def write_json(self, path: str | Path | None) -> list[TableExport]:
        """One JSON document to ``path`` (``None`` or ``-`` = stdout), written row by row."""
        if path is not None and str(path) != "-":
            _check_output(Path(path), directory=False)
        with self.engine.session(), read_snapshot(self.engine.db):
            tables = self.tables()
            with _open_text(path) as out:
                meta = self._meta(tables)
                out.write("{\n")
                for key, value in meta.items():
                    out.write(f"  {json.dumps(key)}: {json.dumps(value)},\n")
                out.write('  "tables": [')
                for i, export in enumerate(tables):
                    head = {"table": export.table, "count": export.count, "columns": export.columns()}
                    out.write(("," if i else "") + "\n    " + json.dumps(head, ensure_ascii=False)[:-1] + ', "rows": [')
                    for n, row in enumerate(self._rows(export)):
                        out.write(("," if n else "") + "\n      " + json.dumps(row, ensure_ascii=False))
                    out.write("\n    ]}")
                out.write("\n  ]\n}\n")
        return tables

    def write_csv(self, path: str | Path) -> list[TableExport]:
        """A directory (or a ``.zip``) with ``manifest.json`` and one ``<table>.csv`` per table."""
        target = Path(path)
        _check_output(target, directory=target.suffix.lower() != ".zip")
        with self.engine.session(), read_snapshot(self.engine.db):
            tables = self.tables()
            with _csv_sink(target) as open_member:
                for export in tables:
                    kinds = [c["kind"] for c in export.columns()]
                    with open_member(f"{export.table}.csv") as member:
                        writer = csv.writer(member, lineterminator="\n")
                        writer.writerow([c["name"] for c in export.columns()])
                        for row in self._rows(export):
                            writer.writerow([to_cell(kind, value) for kind, value in zip(kinds, row)])
                manifest = {
                    **self._meta(tables),
                    "tables": [
                        {"table": e.table, "file": f"{e.table}.csv", "count": e.count, "columns": e.columns()}
                        for e in tables
                    ],
                }
                with open_member("manifest.json") as member:
                    json.dump(manifest, member, ensure_ascii=False, indent=2)
        return tables


def _any(conditions: list[peewee.Expression]) -> peewee.Expression:
    expression = conditions[0]
    for condition in conditions[1:]:
        expression = expression | condition
    return expression


@contextlib.contextmanager
def _open_text(path: str | Path | None) -> Iterator[TextIO]:
    if path is None or str(path) == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    with _replaced_at_the_end(Path(path)) as partial, open(partial, "w", encoding="utf-8") as handle:
        yield handle


def _check_output(path: Path, *, directory: bool) -> None:
    """Refuse an output the export could not write, before anything is read (one line, not an
    OSError at the end): a missing parent directory is not created on a guess."""
    if not path.parent.is_dir():
        raise ValidationError(f"Cannot write the export to {path}: the directory {path.parent} does not exist.")
    if path.is_dir() and not directory:
        raise ValidationError(f"Cannot write the export to {path}: it is a directory; give a file name.")


@contextlib.contextmanager
def _replaced_at_the_end(path: Path) -> Iterator[Path]:
    """A ``<path>.part`` to write, renamed to ``path`` once complete: an export that fails half
    way (a full disk, a database error) leaves no file that looks whole, and an earlier export
    of that name stays as it was."""
    partial = path.with_name(path.name + ".part")
    try:
        yield partial
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, path)


@contextlib.contextmanager
def _csv_sink(target: Path) -> Iterator[Any]:
    """``open_member(name)`` for a zip file or a directory."""
    if target.suffix.lower() == ".zip":
        with _replaced_at_the_end(target) as partial, \
                zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:

            @contextlib.contextmanager
            def open_zip_member(name: str) -> Iterator[TextIO]:
                with archive.open(name, "w") as raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as text:
                    yield text

            yield open_zip_member
        return
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise Conflict(f"{target} exists and is not an empty directory: choose a new path for the CSV export.")
    target.mkdir(exist_ok=True)  # its parent exists: _check_output

    @contextlib.contextmanager
    def open_file_member(name: str) -> Iterator[TextIO]:
        with open(target / name, "w", encoding="utf-8", newline="") as handle:
            yield handle

    yield open_file_member
