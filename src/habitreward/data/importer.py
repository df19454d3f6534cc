"""``habitreward import``: load an export (JSON, a CSV directory or a CSV zip) into this database.

Rows are inserted with their exported primary keys, parents first, in one
transaction: either everything is in or nothing changed. A row whose primary
key is already taken is handled by the conflict policy:

* ``fail`` (default): stop and change nothing (the way into an empty database);
* ``skip``: keep the existing row (also any row that clashes on another unique key);
* ``replace``: overwrite the existing row with the exported one.

Both keep the exported ids, so they are for the same rows (an export imported again, or
into the database it came from): a taken id held by another row here (created at another
moment, or another unique key) stops the import, as the file's rows that point at it would
end up attached to the wrong row.

On PostgreSQL the id sequences are moved past the imported ids afterwards,
so the next row the bot creates does not collide with an imported one.
"""

from __future__ import annotations

import collections
import contextlib
import csv
import io
import itertools
import json
import math
import os
import re
import shlex
import sys
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import peewee

from habitreward.data.bulk_insert import BulkInsert
from habitreward.data.exporter import ordered_models
from habitreward.data.formats import FORMAT_NAME, FORMAT_VERSION, decode, from_cell
from habitreward.data.json_stream import CutShort, JsonDocumentError, NumberTooBig, RowReader, read_header
from habitreward.data.progress import Progress
from habitreward.db import IDS_PER_STATEMENT, is_postgres
from habitreward.engine import validation
from habitreward.engine.catalog import sql_name_key
from habitreward.errors import Conflict, ValidationError
from habitreward.models import Habit, Reward, User
from habitreward.plugins import LOAD_PLUGINS_ENV

POLICIES = ("fail", "skip", "replace")

def _stored_name(what: str, longest: int) -> Any:
    """A name as earlier versions may have stored it: not blank and fitting its column. Names
    are tidied more strictly today (invisible characters, 100 characters for users too), but
    an export of this program's own data must always import again."""
    def check(value: Any) -> None:
        if not str(value).split():
            raise ValidationError(f"The {what} must not be empty.")
        if len(str(value)) > longest:
            raise ValidationError(f"The {what} is too long: at most {longest} characters, got {len(str(value))}.")
    return check


def _reward_weight(value: Any) -> None:
    """Above 0 and finite, as earlier versions allowed (today's bound, 1e9, is newer)."""
    weight = float(value)
    if not (math.isfinite(weight) and weight > 0):
        raise ValidationError(f"The reward weight must be a number above 0, got {value}.")


def _daily_limit(value: Any) -> None:
    """0 or more, as earlier versions allowed (today's bound, 1000, is newer), within 32 bits."""
    if not 0 <= int(value) <= 2**31 - 1:
        raise ValidationError(f"Max per day must be 0 (no limit) or more, got {value}.")


def _stored_zone(value: Any) -> None:
    """A time zone the engine knows, or an ``Etc/GMT`` offset an earlier version could store
    (``Etc/GMT+13``: read as UTC since, with a warning): "Mars/Olympus" is refused."""
    if not re.fullmatch(r"Etc/GMT[+-]\d{1,2}", str(value)):
        validation.timezone_name(value, exact=True)  # stored as it is: no typing slips


def _at_least(what: str, least: int | float) -> Any:
    """A count or amount of at least ``least`` (a finite number)."""
    def check(value: Any) -> None:
        if not (math.isfinite(float(value)) and value >= least):
            raise ValidationError(f"The {what} must be at least {least}, got {value}.")
    return check


def _bot_state(value: Any) -> None:
    """The bot's state (``bot.*`` namespaces) is JSON: anything else breaks every update of its user."""
    try:
        json.loads(value)
    except (TypeError, ValueError):
        raise ValidationError(f"The bot's state must be JSON, got {str(value)[:40]!r}.") from None


#: The engine's rules for values people type, checked on the file's rows too (table -> column ->
#: rule): an edited file must not put into the database what the bot and the CLI refuse (a habit
#: weight of 500, a reward needing 0 pieces). Rules tightened since data could first be stored
#: (names, the reward weight's upper bound, the daily limit) are checked as they were then.
#: Values the file leaves empty are the column's NULL.
RULES: dict[str, dict[str, Any]] = {
    "users": {"telegram_id": validation.telegram_id, "language": validation.language,
              "name": _stored_name("user name", 255), "timezone": _stored_zone},
    "habits": {"name": _stored_name("habit name", 100), "weight": validation.habit_weight,
               "allowed_skip_days": validation.skip_days},
    "rewards": {"name": _stored_name("reward name", 100), "weight": _reward_weight,
                "type": validation.reward_type, "pieces_required": validation.pieces_required,
                "max_per_day": _daily_limit, "piece_value": validation.piece_value},
    "reward_progress": {"pieces_earned": _at_least("pieces earned", 0),
                        "times_claimed": _at_least("number of claims", 0)},
    "habit_logs": {"streak_count": _at_least("streak", 1), "habit_weight": _at_least("habit weight", 0),
                   "total_weight_applied": _at_least("odds multiplier", 0),
                   "reward_cycle": _at_least("reward cycle", 0)},
}
#: Rows per batch: one bulk INSERT (bulk_insert: executemany binds one row's values at a time,
#: execute_values writes them into the statement's text) and one look-up of which of their ids are
#: taken, an IN list of as many values, which SQLite builds before 3.32 take up to 999 of
#: (db.IDS_PER_STATEMENT): the only statement a batch's size is limited by.
BATCH_SIZE = 500
PROGRESS_FROM_ROWS = 1000
#: A JSON file at least this big shows the progress of its first read (about 2,000 rows of habit logs).
READ_PROGRESS_FROM_BYTES = 256 * 1024


@dataclass
class TableData:
    table: str
    columns: list[dict[str, str]]
    count: int
    rows: Iterable[list[Any]]  # JSON-native values, in column order
    held: int | None = None  # how many rows the file holds, where known without reading them (JSON)

    def __post_init__(self) -> None:
        # An edited description: a ValueError here (one line where read), not a KeyError on "name" later.
        if not isinstance(self.columns, list) or not all(
                isinstance(c, dict) and isinstance(c.get("name"), str) and isinstance(c.get("kind"), str)
                for c in self.columns):
            raise ValueError(f"the columns of {self.table!r} are not a list of a name and a kind each")
        self.count = int(self.count)


@dataclass
class ExportDocument:
    meta: dict[str, Any]
    tables: list[TableData]


@dataclass
class TableResult:
    table: str
    rows: int = 0
    inserted: int = 0
    replaced: int = 0
    skipped: int = 0


@dataclass
class ImportResult:
    policy: str
    tables: list[TableResult] = field(default_factory=list)
    #: Empty tables of the export that no plugin loaded here provides (nothing of them is lost).
    left_out: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"on_conflict": self.policy, "tables": [asdict(t) for t in self.tables], "left_out": self.left_out}


# --- reading an export ----------------------------------------------------------------------


@contextlib.contextmanager
def open_export(path: str | Path, *, show_progress: bool = True,
                progress_file: TextIO | None = None) -> Iterator[ExportDocument]:
    """The export at ``path``: a JSON file (``-`` = stdin), a CSV directory or a CSV ``.zip``.

    A JSON file of :data:`READ_PROGRESS_FROM_BYTES` or more shows the progress of its first
    read (every byte is parsed before the import starts) on stderr, as the import shows its own.
    """
    if str(path) == "-":
        try:
            text = sys.stdin.read()
            if not text.strip():  # not `null`, which is JSON (and no export): json.loads gives None for it too
                raise ValidationError(f"standard input {EMPTY}")
            document = json.loads(text)
        except ValueError as exc:  # not JSON (nor UTF-8), or cut short: one line, as for a file
            raise ValidationError(f"standard input is not a habitreward export, or it was cut short (not JSON: {exc})."
                                  " Nothing was imported.") from None
        if _is_manifest(document):  # no directory to name: standard input has no path
            raise ValidationError("standard input is the manifest of a CSV export: import its directory (habitreward"
                                  " import DIRECTORY), which holds the rows. Nothing was imported.")
        yield _json_document(document, "stdin")
        return
    source = Path(path)
    if not source.exists():
        raise ValidationError(f"{source} does not exist.")
    if source.is_dir():
        # utf-8-sig: a file saved again by a spreadsheet may begin with a byte-order mark.
        with _csv_document(lambda name: open(source / name, encoding="utf-8-sig", newline=""), source) as doc:
            yield doc
        return
    if zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as archive:
            _refuse_zipped_json(source, archive)

            def open_member(name: str) -> TextIO:
                return io.TextIOWrapper(archive.open(name), encoding="utf-8-sig", newline="")

            with _csv_document(open_member, source) as doc:
                yield doc
        return
    with open(source, "rb") as handle:
        start = handle.read(16)
    if not start.strip() and _blank(source):  # not "cut short": nothing of an export was ever in it
        raise ValidationError(f"{source} {EMPTY}")
    if start.startswith(b"PK\x03\x04"):  # a zip's first member, but no directory at its end
        raise ValidationError(f"{source} is a zip file cut short or damaged (its table of contents at the end is"
                              " missing): copy or export it again. Nothing was imported.")
    _refuse_near_misses(source, start)
    size = source.stat().st_size
    enabled = show_progress and size >= READ_PROGRESS_FROM_BYTES
    try:
        # Everything but the rows, which are read as they are imported.
        with Progress(f"Reading {source.name} (bytes)", size, file=progress_file, enabled=enabled) as bar:
            header = read_header(source, on_read=bar.advance)
    except NumberTooBig as exc:  # as the database would refuse it, had the parser read it
        raise ValidationError(f"{exc.table}: a value of the file does not fit its column (a number beyond 64 bits):"
                              " the file was edited? Nothing was imported.") from None
    except JsonDocumentError as exc:
        if not isinstance(exc, CutShort) and not _unclosed(source):
            raise ValidationError(
                f"{source} is not a habitreward export (not JSON, a zip or a directory): {exc}") from None
        raise ValidationError(f"{source} ends in the middle of the export: the file was cut short (an export or a"
                              " copy that did not finish?). Nothing was imported.") from None
    if _is_manifest(header):  # a CSV export's manifest.json, which names its files and holds no rows
        raise ValidationError(f"{source} is the manifest of a CSV export: import its directory, {source.parent}."
                              " Nothing was imported.")
    reader = RowReader(source)
    try:
        yield _json_document(header, str(source), rows=reader.rows)
    finally:
        reader.close()


#: Compressed files by their first bytes: (name, suffix, the command that decompresses one).
COMPRESSED = ((b"\x1f\x8b", "gzip", ".gz", "gunzip"), (b"BZh", "bzip2", ".bz2", "bunzip2"),
              (b"\xfd7zXZ\x00", "xz", ".xz", "unxz"), (b"\x28\xb5\x2f\xfd", "zstd", ".zst", "unzstd"))


def _refuse_near_misses(source: Path, start: bytes) -> None:
    """What an operator moving data may hand ``import`` instead of the export (the SQLite database,
    an export compressed for the copy, one CSV file of a CSV export): say what it is and what to
    import, where the JSON parser would only say "invalid char"."""
    if start.startswith(b"SQLite format 3\x00"):
        url = shlex.quote(f"sqlite:///{source}")
        raise ValidationError(f"{source} is a SQLite database, not an export: export it first (habitreward"
                              f" --database-url {url} export -o data.json), then import that file. Nothing was"
                              " imported.")
    for magic, name, suffix, command in COMPRESSED:
        if start.startswith(magic):
            if source.suffix.lower() == suffix:
                how = f"{command} {shlex.quote(str(source))}), then import {source.with_suffix('')}"
            else:
                how = f"{command} -c {shlex.quote(str(source))} > data.json), then import data.json"
            raise ValidationError(f"{source} is compressed ({name}): decompress it first ({how}. Nothing was"
                                  " imported.")
    if source.suffix.lower() == ".csv" and (source.parent / "manifest.json").is_file():
        raise ValidationError(f"{source} is one table of a CSV export: import its directory, {source.parent}."
                              " Nothing was imported.")


#: What an empty file (or standard input) is said to be, where the JSON parser saw a file cut short.
EMPTY = "is empty: it holds no export (was the export written elsewhere, or did it fail?). Nothing was imported."


def _blank(path: Path) -> bool:
    """Nothing in the file, or nothing but white space."""
    with open(path, "rb") as handle:
        return all(not chunk.strip() for chunk in iter(lambda: handle.read(64 * 1024), b""))


def _refuse_zipped_json(source: Path, archive: zipfile.ZipFile) -> None:
    """A JSON export zipped for the copy (zip data.zip data.json): a zip without a CSV export's
    manifest.json, whose .json member begins as a JSON export does (its format's name first); or
    a CSV export's directory zipped whole (zip -r all-csv.zip all-csv), its manifest.json in a
    folder, which would otherwise be taken for that JSON export (the manifest names the format too)."""
    names = archive.namelist()
    if "manifest.json" in names:
        return
    folders = sorted(name[:-len("manifest.json")] for name in names if name.endswith("/manifest.json"))
    if folders:
        folder = folders[0].rstrip("/")
        raise ValidationError(f"{source} is a zip file holding a CSV export in a folder, {folder} (the zip export"
                              f" writes holds manifest.json at its top): unzip it first (unzip"
                              f" {shlex.quote(str(source))}), then import the directory {folder}. Nothing was"
                              " imported.")
    for name in names:
        if not name.lower().endswith(".json"):
            continue
        try:
            with archive.open(name) as member:
                start = member.read(4096)
        except (zipfile.BadZipFile, zlib.error, RuntimeError, NotImplementedError):  # damaged, encrypted...
            continue  # not readable as a JSON export: the zip is said to lack its manifest.json
        if FORMAT_NAME.encode() in start:
            raise ValidationError(f"{source} is a zip file holding a JSON export, {name} (a CSV export's zip holds"
                                  f" manifest.json): unzip it first (unzip {shlex.quote(str(source))}"
                                  f" {shlex.quote(name)}), then import {name}. Nothing was imported.")


def _is_manifest(header: Any) -> bool:
    """A CSV export's manifest.json: its tables name their files and hold no rows."""
    tables = header.get("tables") if isinstance(header, dict) else None
    return (isinstance(tables, list) and bool(tables)
            and all(isinstance(t, dict) and "file" in t and "rows" not in t for t in tables))


def _unclosed(path: Path) -> bool:
    """A JSON object begun and not ended: an export cut short, wherever the cut fell (yajl calls one
    inside a string or a number a lexical error, not the end of the file)."""
    with open(path, "rb") as handle:
        first = handle.read(64).lstrip()[:1]
        handle.seek(max(path.stat().st_size - 64, 0))
        last = handle.read().rstrip()[-1:]
    return first == b"{" and last != b"}"


def _check_meta(meta: Any, where: str) -> dict[str, Any]:
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise ValidationError(f"{where} is not a habitreward export (no \"format\": \"{FORMAT_NAME}\").")
    if meta.get("version") != FORMAT_VERSION:
        raise ValidationError(
            f"{where} has export format version {meta.get('version')}; this habitreward reads version {FORMAT_VERSION}."
        )
    return meta


def _json_document(data: Any, where: str, rows: Callable[[int], Iterator[list[Any]]] | None = None) -> ExportDocument:
    """``data``: the whole document, or with ``rows`` (the rows of the table at an index) its
    header, each table's "rows" the number of its rows (json_stream.read_header)."""
    meta = _check_meta(data, where)
    if not isinstance(meta.get("tables"), list):
        raise ValidationError(f"{where} has no \"tables\": the file is incomplete.")
    try:
        # "count" (what the export wrote, checked against the rows read) may be left out by hand.
        tables = [TableData(t["table"], t["columns"],
                            int(t.get("count", len(t["rows"]) if rows is None else t["rows"])),
                            t["rows"] if rows is None else rows(index),
                            len(t["rows"]) if rows is None else int(t["rows"]))
                  for index, t in enumerate(meta["tables"])]
    except (KeyError, TypeError, ValueError) as exc:
        raise ValidationError(f"{where}: a table lacks its table, columns or rows ({exc}).") from None
    return ExportDocument({k: v for k, v in meta.items() if k != "tables"}, tables)


@contextlib.contextmanager
def _csv_document(open_member: Any, where: Path) -> Iterator[ExportDocument]:
    try:
        with open_member("manifest.json") as handle:
            manifest = json.load(handle)
    except (FileNotFoundError, KeyError):
        raise ValidationError(f"{where} has no manifest.json: it is not a habitreward CSV export.") from None
    except ValueError as exc:  # not JSON (or not UTF-8): cut short or edited
        raise ValidationError(f"{where}: its manifest.json is not JSON ({exc}): the file is incomplete or was"
                              " edited. Nothing was imported.") from None
    meta = _check_meta(manifest, str(where))
    with contextlib.ExitStack() as stack:
        tables = []
        for entry in meta.get("tables", []):
            if not isinstance(entry, dict) or not {"table", "file", "columns", "count"} <= set(entry):
                raise ValidationError(f"{where}: a table of manifest.json lacks its table, file, columns or count:"
                                      " the export was edited? Nothing was imported.")
            try:
                handle = stack.enter_context(open_member(entry["file"]))
            except (FileNotFoundError, KeyError):  # a directory's file, a zip's member
                raise ValidationError(f"{where}: {entry['file']} is missing, which manifest.json lists: the export"
                                      " is incomplete or was edited. Nothing was imported.") from None
            try:
                data = TableData(entry["table"], entry["columns"], entry["count"], _csv_rows(handle, entry))
            except (TypeError, ValueError) as exc:
                raise ValidationError(f"{where}: a table of manifest.json is not as an export writes it ({exc}): the"
                                      " export was edited? Nothing was imported.") from None
            tables.append(data)
        yield ExportDocument({k: v for k, v in meta.items() if k != "tables"}, tables)


def _csv_rows(handle: TextIO, entry: dict[str, Any]) -> Iterator[list[Any]]:
    reader = csv.reader(handle)
    header = next(reader, None)
    names = [c["name"] for c in entry["columns"]]
    if header != names:
        raise ValidationError(f"{entry['file']}: the header does not match the manifest's columns"
                              f" ({_header_difference(header, names)}). Nothing was imported.")
    kinds = [c["kind"] for c in entry["columns"]]
    for row in reader:
        if len(row) != len(kinds):  # a line cut short (or split): zip would drop the missing cells
            raise ValidationError(f"{entry['file']} line {reader.line_num}: {len(row)} values where the header"
                                  f" has {len(kinds)}: the file is incomplete or was edited.")
        try:
            values = [from_cell(kind, cell) for kind, cell in zip(kinds, row)]
        except ValueError:  # an edited cell: "x1" in a number column, a JSON value that is not JSON
            for name, kind, cell in zip(names, kinds, row):  # again, to say which column
                try:
                    from_cell(kind, cell)
                except ValueError:
                    raise ValidationError(
                        f"{entry['file']} line {reader.line_num}, {name}: {cell[:40]!r} is not a value of its"
                        f" column's kind ({kind}): the file was edited? Nothing was imported.") from None
            raise
        yield values


def _header_difference(header: list[str] | None, names: list[str]) -> str:
    """Where a CSV file's header first differs from the manifest's columns."""
    if not header:
        return "the file is empty"
    for number, (found, wanted) in enumerate(zip(header, names), 1):
        if found != wanted:
            return f"column {number} is {found!r} where manifest.json says {wanted!r}"
    return f"{len(header)} columns where manifest.json says {len(names)}"


# --- writing into the database ----------------------------------------------------------------


class Importer:
    def __init__(
        self,
        engine: Any,
        *,
        on_conflict: str = "fail",
        batch_size: int = BATCH_SIZE,
        progress_file: TextIO | None = None,
        show_progress: bool = True,
    ):
        if on_conflict not in POLICIES:
            raise ValidationError(f"--on-conflict must be one of {', '.join(POLICIES)}, got {on_conflict!r}.")
        self.engine = engine
        self.policy = on_conflict
        self.batch_size = batch_size
        self.progress_file = progress_file
        self.show_progress = show_progress
        #: With ``skip``: the rows kept out because another unique key of theirs (a telegram_id) is
        #: taken here by a row with another id: model -> {id: "it is here under another id (...)"}.
        #: A row of the file that points at one of them cannot go in, and the error says why.
        self._kept_out: dict[type[peewee.Model], dict[Any, str]] = {}

    def run(self, document: ExportDocument) -> ImportResult:
        result = ImportResult(self.policy)
        plan = self._plan(document, result.left_out)
        with self.engine.session(), self.engine.db.atomic():
            loaded: dict[type[peewee.Model], set[Any]] = {}
            for model, data, fields in plan:
                result.tables.append(self._load(model, data, fields, loaded))
            for model in (Habit, Reward):  # every row is in: a clash may be with a later one
                if loaded.get(model):
                    _check_names(model, loaded[model])
            if is_postgres(self.engine.db):
                for model, _, _ in plan:
                    reset_sequence(self.engine.db, model)
        return result

    def _plan(self, document: ExportDocument,
              left_out: list[str]) -> list[tuple[type[peewee.Model], TableData, list[peewee.Field]]]:
        """Match every exported table and column to a model here; refuse what would be lost (an
        empty table of a plugin not here loses nothing: it is left out, in ``left_out``)."""
        models = {m._meta.table_name: m for m in self.engine.hooks.models()}
        plan = []
        for data in document.tables:
            model = models.get(data.table)
            if model is None:
                # The export writes every loaded plugin's table, used or not: one the new server
                # does not have is no reason to stop when it holds nothing.
                if data.count == 0 and (data.held if data.held is not None else _count(data.rows)) == 0:
                    left_out.append(data.table)
                    continue
                loading = os.environ.get(LOAD_PLUGINS_ENV)
                hint = ("" if loading is None else
                        f" ({LOAD_PLUGINS_ENV}={loading!r} here loads only the plugins it names: if that plugin"
                        " is installed, name it there)")
                raise ValidationError(
                    f"The export has a table {data.table!r} ({data.count} rows) that no plugin loaded here"
                    f" provides{hint}: install that plugin (and run `habitreward db upgrade`) first."
                )
            columns = model._meta.columns
            unknown = [c["name"] for c in data.columns if c["name"] not in columns]
            if unknown:
                raise ValidationError(
                    f"The export's table {data.table!r} has columns this database does not: {', '.join(unknown)}."
                    " Upgrade habitreward and its plugins, then run `habitreward db upgrade`."
                )
            plan.append((model, data, [columns[c["name"]] for c in data.columns]))
        order = {m: i for i, m in enumerate(ordered_models([m for m, _, _ in plan]))}
        return sorted(plan, key=lambda item: order[item[0]])

    def _load(self, model: type[peewee.Model], data: TableData, fields: list[peewee.Field],
              loaded: dict[type[peewee.Model], set[Any]]) -> TableResult:
        result = TableResult(data.table)
        pk = model._meta.primary_key
        pk_index = _position(fields, pk)
        if pk_index is None:
            raise ValidationError(f"The export's table {data.table!r} lacks its primary key column {pk.column_name!r}.")
        kinds = [c["kind"] for c in data.columns]
        names = [c["name"] for c in data.columns]
        rules = RULES.get(data.table, {})
        # (column, check(value, row)): the rules above, and the bot state's JSON.
        checks = [(i, lambda value, row, rule=rules[c["name"]]: rule(value))
                  for i, c in enumerate(data.columns) if c["name"] in rules]
        if data.table == "key_values" and {"namespace", "value"} <= set(names):  # the bot's state: JSON
            namespace = names.index("namespace")
            checks.append((names.index("value"), lambda value, row: _bot_state(value)
                           if str(row[namespace]).startswith("bot.") else None))
        enabled = self.show_progress and data.count >= PROGRESS_FROM_ROWS
        size = min(self.batch_size, IDS_PER_STATEMENT)  # the look-ups' IN lists, not the INSERT: see BATCH_SIZE
        statement = BulkInsert(self.engine.db, model, fields, self._on_conflict(model, fields))
        with Progress(f"Importing {data.table}", data.count, file=self.progress_file, enabled=enabled) as bar:
            for batch in _batches(data.rows, size):
                rows = [_decoded(data.table, kinds, row, result.rows + n + 1, names)
                        for n, row in enumerate(batch)]
                _check_values(data, checks, rows, result.rows + 1)
                self._insert(model, fields, pk_index, rows, result, statement)
                if model in (Habit, Reward):  # their names are checked once all are in
                    loaded.setdefault(model, set()).update(row[pk_index] for row in rows)
                bar.advance(len(rows))
        if result.rows != data.count:  # rows lost (or added) since the export wrote its count
            raise ValidationError(f"The export's table {data.table!r} holds {result.rows} rows where it says"
                                  f" {data.count}: the file is incomplete or was edited. Nothing was imported.")
        return result

    def _insert(
        self,
        model: type[peewee.Model],
        fields: list[peewee.Field],
        pk_index: int,
        rows: list[tuple[Any, ...]],
        result: TableResult,
        statement: BulkInsert,
    ) -> None:
        pk = model._meta.primary_key
        keys = [row[pk_index] for row in rows]
        taken = {value for (value,) in model.select(pk).where(pk.in_(keys)).tuples()}
        result.rows += len(rows)
        if taken and self.policy == "fail":
            first = sorted(taken)[0]
            raise Conflict(
                f"{model._meta.table_name} already has a row with {pk.column_name} {first}:"
                " import into an empty database, or choose --on-conflict skip or replace."
            )
        if taken:
            _check_same_rows(model, fields, pk_index, [row for row in rows if row[pk_index] in taken])
        try:
            # In a savepoint (BulkInsert.run): after a failed statement PostgreSQL takes no more in
            # the transaction, and a foreign key's failure is looked into (_missing_parent) before
            # the error is told.
            written = statement.run(rows)
        except (peewee.DataError, OverflowError) as exc:  # a number too big for its column, say
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ValidationError(
                f"{model._meta.table_name}: a value of the file does not fit its column ({message}):"
                " the file was edited? Nothing was imported."
            ) from None
        except peewee.IntegrityError as exc:
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if "unique" in message.lower() or "duplicate key" in message.lower():
                raise Conflict(
                    f"{model._meta.table_name}: a row clashes with another ({message}): with a row here, or"
                    " with another row of the file, which an export never holds (the file was edited?)."
                    + (" If the rows here are the ones to keep, --on-conflict skip keeps them."
                       if self.policy != "skip" else "")
                ) from None
            missing = _missing_parent(model, fields, pk_index, rows)
            if missing is not None:
                row_id, field, value = missing
                table, parent = model._meta.table_name, field.rel_model._meta.table_name
                pointing = f"{table}: {table} id {row_id} of the file points at {parent} {field.rel_field.column_name}"
                kept_out = self._kept_out.get(field.rel_model, {}).get(value)
                if kept_out is not None:  # skip kept its parent out: the parent is here under another id
                    raise Conflict(
                        f"{pointing} {value}, which --on-conflict skip kept out: {kept_out}. Keeping ids, the"
                        " file's rows that point at it would point at nothing: import into an empty database."
                        " Nothing was imported."
                    ) from None
                where = ("neither in the file nor" if field.rel_model is not model  # parents go in first
                         else "not before it in the file, nor")
                raise ValidationError(
                    f"{pointing} {value}, which is {where} in this database: the file is incomplete or was"
                    " edited. Nothing was imported."
                ) from None
            raise ValidationError(  # a missing value, a check the database makes...
                f"{model._meta.table_name}: a row of the file cannot be stored ({message}):"
                " the file is incomplete or was edited. Nothing was imported."
            ) from None
        if self.policy == "skip":
            result.inserted += written
            result.skipped += len(rows) - written
            if len(rows) - written > len(taken):  # some clashed on another unique key, not their id
                self._note_kept_out(model, fields, pk_index, rows, taken)
        else:
            result.replaced += len(taken)
            result.inserted += len(rows) - len(taken)

    def _on_conflict(self, model: type[peewee.Model],
                     fields: list[peewee.Field]) -> Callable[[peewee.ModelInsert], peewee.ModelInsert]:
        """The conflict policy as a change of the INSERT."""
        pk = model._meta.primary_key
        if self.policy == "skip":
            return lambda query: query.on_conflict_ignore()
        if self.policy == "replace":
            return lambda query: query.on_conflict(conflict_target=[pk], preserve=[f for f in fields if f is not pk])
        return lambda query: query

    def _note_kept_out(self, model: type[peewee.Model], fields: list[peewee.Field], pk_index: int,
                       rows: list[tuple[Any, ...]], taken: set[Any]) -> None:
        pk = model._meta.primary_key
        keys = [row[pk_index] for row in rows if row[pk_index] not in taken]
        here = {value for (value,) in model.select(pk).where(pk.in_(keys)).tuples()}
        unique = [f for f in _identity_key(model) if _position(fields, f) is not None]
        for row in rows:
            key = row[pk_index]
            if key in taken or key in here:  # skipped for its id, or held twice in the file (edited)
                continue
            shown = ", ".join(f"{f.column_name} {row[_position(fields, f)]}" for f in unique) or "a unique key"
            self._kept_out.setdefault(model, {})[key] = f"it is here under another id ({shown} taken)"


def _missing_parent(model: type[peewee.Model], fields: list[peewee.Field], pk_index: int,
                    rows: list[tuple[Any, ...]]) -> tuple[Any, peewee.ForeignKeyField, Any] | None:
    """The first row of ``rows`` (a batch that broke a foreign key) whose parent is not in the
    database, as (its id, the foreign key, the value it points at); None if every parent is here
    (the batch broke something else)."""
    first: tuple[int, Any, peewee.ForeignKeyField, Any] | None = None
    for i, key in enumerate(fields):
        if not isinstance(key, peewee.ForeignKeyField):
            continue
        values = {row[i] for row in rows if row[i] is not None}
        target = key.rel_field
        here = {value for (value,) in key.rel_model.select(target).where(target.in_(list(values))).tuples()}
        for n, row in enumerate(rows):
            if row[i] is not None and row[i] not in here and (first is None or n < first[0]):
                first = (n, row[pk_index], key, row[i])
                break
    return None if first is None else first[1:]


def _check_names(model: type[Habit] | type[Reward], ids: set[Any]) -> None:
    """Refuse two active habits (or rewards) one user would see under one name, whatever its case
    (the engine's rule: shared ones among themselves, a shared one and anybody's personal one,
    one person's own), where at least one came from the file: an edited export, or one written
    before the rule. Rows already here that clash among themselves are not the file's doing.

    The database works out each name's key (see sql_name_key); the rows are grouped by it here.
    A self-join on the key did the same in SQL, but SQLite cannot index an expression for a
    join: it compared every pair, 25 minutes for 45,000 habits.
    """
    by_key: dict[Any, list[tuple[int, str, int | None]]] = collections.defaultdict(list)
    rows = model.select(model.id, model.name, model.owner, sql_name_key(model.name)).where(model.active).tuples()
    for item_id, name, owner, key in rows:
        by_key[key].append((item_id, name, owner))
    clashes = (
        (a, b)
        for group in by_key.values() if len(group) > 1
        for a, b in _same_viewer_pairs(sorted(group))
        if a[0] in ids or b[0] in ids
    )
    first = min(clashes, default=None)  # the one the lowest ids make, whatever the order of the rows
    if first is not None:
        (id_a, name_a, owner_a), (id_b, name_b, owner_b) = first
        table = model._meta.table_name
        raise Conflict(
            f"{table}: the {table} {name_a!r} (id {id_a}, {_whose(owner_a)}) and {name_b!r} (id {id_b},"
            f" {_whose(owner_b)}) have one name: names are unique whatever their case among the {table}"
            " one person sees. Rename one in the file. Nothing was imported."
        )


def _same_viewer_pairs(group: list[tuple[int, str, int | None]]) -> Iterator[tuple[Any, Any]]:
    """Pairs (lower id first) of a group of one name that one person sees together: a shared one
    with any other, a personal one with another of the same owner."""
    shared = [row for row in group if row[2] is None]
    by_owner: dict[int, list[Any]] = collections.defaultdict(list)
    for row in group:
        if row[2] is not None:
            by_owner[row[2]].append(row)
    for row in shared:
        for other in group:
            if other[0] > row[0] or (other[2] is not None and other[0] < row[0]):
                yield (row, other) if row[0] < other[0] else (other, row)
    for rows in by_owner.values():
        yield from itertools.combinations(rows, 2)


def _whose(owner_id: int | None) -> str:
    if owner_id is None:
        return "shared"
    telegram_id = User.select(User.telegram_id).where(User.id == owner_id).scalar()
    return f"personal, of Telegram id {telegram_id}"


def _identity(model: type[peewee.Model]) -> list[peewee.Field]:
    """The columns that tell one row of ``model`` from another with the same id: when it was
    created (the same row, exported and imported, keeps it), else its unique key."""
    created = model._meta.fields.get("created_at")
    if created is not None:
        return [created]
    for index in model._meta.indexes:  # (columns, unique) pairs; add_index() may also leave ModelIndex or SQL
        if isinstance(index, tuple) and len(index) == 2 and index[1]:
            return [model._meta.fields[name] for name in index[0] if name in model._meta.fields]
    return []


def _identity_key(model: type[peewee.Model]) -> list[peewee.Field]:
    """The columns of ``model``'s unique fields and first unique index (a user's telegram_id)."""
    unique = [f for f in model._meta.sorted_fields if f.unique and f is not model._meta.primary_key]
    if unique:
        return unique[:1]
    for index in model._meta.indexes:
        if isinstance(index, tuple) and len(index) == 2 and index[1]:
            return [model._meta.fields[name] for name in index[0] if name in model._meta.fields]
    return []


def _check_same_rows(model: type[peewee.Model], fields: list[peewee.Field], pk_index: int,
                     rows: list[tuple[Any, ...]]) -> None:
    """``skip`` and ``replace`` keep ids: only sound where a taken id is the same row (imported
    again, or from an export of this database). Another row with that id here would get the
    file's rows that point at it (another person's habits, logs, pieces): refuse."""
    identity = [f for f in _identity(model) if _position(fields, f) is not None]
    if not identity:
        return
    pk = model._meta.primary_key
    positions = [_position(fields, f) for f in identity]
    here = {row[0]: row[1:] for row in model.select(pk, *identity).where(
        pk.in_([row[pk_index] for row in rows])).tuples()}
    for row in rows:
        exported = tuple(row[i] for i in positions)
        existing = here.get(row[pk_index])
        if existing is not None and existing != exported:
            names = ", ".join(f.name for f in identity)
            raise Conflict(
                f"{model._meta.table_name}: the row with {pk.column_name} {row[pk_index]} here is another one than"
                f" in the file ({names}: {_shown(existing)} here, {_shown(exported)} in the file); keeping ids,"
                " the file's rows that point at it would belong to it. Import into an empty database instead."
            )


def _decoded(table: str, kinds: list[str], row: list[Any], number: int,
             names: list[str] | None = None) -> tuple[Any, ...]:
    """A row of the file as Python values; a value that is not of its column's kind is a one-line
    error naming the table, row and column."""
    if len(row) != len(kinds):
        raise ValidationError(f"The export's table {table!r}, row {number}: {len(row)} values for"
                              f" {len(kinds)} columns: the file is incomplete or was edited.")
    try:
        return tuple(decode(kind, value) for kind, value in zip(kinds, row))
    except (ValueError, TypeError, ArithmeticError):
        for i, (kind, value) in enumerate(zip(kinds, row)):  # again, to say which column
            try:
                decode(kind, value)
            except (ValueError, TypeError, ArithmeticError) as exc:
                column = f", {names[i]}" if names else ""
                raise ValidationError(f"The export's table {table!r}, row {number}{column}: {exc}. The file"
                                      " was edited? Nothing was imported.") from None
        raise


def _check_values(data: TableData, checks: list[tuple[int, Any]], rows: list[tuple[Any, ...]], first: int) -> None:
    for n, row in enumerate(rows):
        for i, rule in checks:
            if row[i] is None:
                continue  # NULL: the database's NOT NULL decides
            try:
                rule(row[i], row)
            except ValidationError as exc:
                raise ValidationError(f"The export's table {data.table!r}, row {first + n},"
                                      f" {data.columns[i]['name']}: {exc} Nothing was imported.") from None


def _position(fields: list[peewee.Field], field: peewee.Field) -> int | None:
    """Where ``field`` is in ``fields`` (by identity: a peewee field's ``==`` builds an expression,
    so ``in`` and ``index`` would match the first field whatever it is)."""
    return next((i for i, candidate in enumerate(fields) if candidate is field), None)


def _shown(values: tuple[Any, ...]) -> str:
    return ", ".join(str(v) for v in values)


def reset_sequence(database: peewee.Database, model: type[peewee.Model]) -> None:
    """Move a PostgreSQL serial past the largest id, after rows were inserted with explicit ids."""
    pk = model._meta.primary_key
    if not isinstance(pk, peewee.AutoField):
        return
    table, column = model._meta.table_name, pk.column_name
    database.execute_sql(
        f"SELECT setval(pg_get_serial_sequence(%s, %s), COALESCE(MAX(\"{column}\"), 1), MAX(\"{column}\") IS NOT NULL)"
        f' FROM "{table}"',
        (f'"{table}"', column),
    )


def _count(rows: Iterable[Any]) -> int:
    return sum(1 for _ in rows)


def _batches(rows: Iterable[list[Any]], size: int) -> Iterator[list[list[Any]]]:
    batch: list[list[Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
