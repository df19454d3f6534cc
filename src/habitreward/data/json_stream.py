"""Reading a JSON export without holding it in memory (ijson).

``json.load`` of a big export builds every row as Python objects at once: 7 GB of memory for a
1.7 GB file of 8.6 million rows. Here the file is read twice, as a stream of parser events: the
first pass takes everything but the rows (and counts them, and checks the JSON to its end); then
each table's rows are read as the import asks for them, one at a time. The importer takes the
tables in the order an export writes them (parents first), so the second pass is one read of the
file; a table asked for out of that order is read from the start again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import ijson

Event = tuple[str, str, Any]


class JsonDocumentError(ValueError):
    """The file is not JSON (or is cut short)."""


class CutShort(JsonDocumentError):
    """The file ends before its JSON does: an export or a copy that did not finish."""


class NumberTooBig(JsonDocumentError):
    """An integer beyond 64 bits, which the parser cannot read and no column can hold."""

    def __init__(self, table: str | None):
        super().__init__(f"{table}: a number beyond 64 bits")
        self.table = table


def _events(handle: BinaryIO) -> Iterator[Event]:
    try:
        # Floats as Python floats (the export writes their shortest repr), as json.load reads them.
        yield from ijson.parse(handle, use_float=True)
    except ijson.JSONError as exc:
        raise _one_line(exc) from None


def _one_line(exc: Exception) -> JsonDocumentError:
    """yajl's message is three lines (what, the text around it, an arrow): one line, for the CLI."""
    text = exc.args[0] if len(exc.args) == 1 else str(exc)
    if isinstance(text, bytes):  # yajl gives bytes when the text around the error is no UTF-8 (a binary file)
        text = text.decode("utf-8", "replace")
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    if not lines:
        return JsonDocumentError(type(exc).__name__)
    if "premature EOF" in lines[0]:
        return CutShort(lines[0])
    near = next((line for line in lines[1:] if "(right here)" not in line), "")
    return JsonDocumentError(f"{lines[0]}, near {near[:60]!r}" if near else lines[0])


def _build(first: Event, events: Iterator[Event]) -> Any:
    """The value that starts with ``first``, built from ``events``."""
    _, event, value = first
    if event not in ("start_map", "start_array"):
        return value
    builder = ijson.ObjectBuilder()
    builder.event(event, value)
    depth = 1
    for _, event, value in events:
        builder.event(event, value)
        depth += event in ("start_map", "start_array")
        depth -= event in ("end_map", "end_array")
        if depth == 0:
            return builder.value
    raise JsonDocumentError("the file ends in the middle of a value")


def _skip(first: Event, events: Iterator[Event]) -> None:
    if first[1] not in ("start_map", "start_array"):
        return
    depth = 1
    for _, event, _ in events:
        depth += event in ("start_map", "start_array")
        depth -= event in ("end_map", "end_array")
        if depth == 0:
            return


def _walk(events: Iterator[Event], *, rows: bool) -> Iterator[tuple[str, Any, Any]]:
    """("meta", key, value) for a top-level key other than "tables", ("table", index, entry)
    for each table's entry without its rows (once it is complete), and with ``rows`` each row
    as ("row", index, values)."""
    index = -1
    entry: dict[str, Any] = {}
    try:
        for prefix, event, value in events:
            if prefix == "" and event == "map_key" and value != "tables":
                yield "meta", value, _build(next(events), events)
            elif prefix == "tables.item" and event == "start_map":
                index, entry = index + 1, {}
            elif prefix == "tables.item" and event == "end_map":
                yield "table", index, entry
            elif prefix == "tables.item" and event == "map_key" and value != "rows":
                entry[value] = _build(next(events), events)
            elif prefix == "tables.item.rows" and event == "start_array":
                entry["rows"] = 0
            elif prefix == "tables.item.rows.item" and event in ("start_array", "start_map", "string", "number",
                                                                   "boolean", "null"):
                entry["rows"] += 1
                if rows:
                    yield "row", index, _build((prefix, event, value), events)
                else:
                    _skip((prefix, event, value), events)
    except JsonDocumentError as exc:
        if "integer overflow" in str(exc):  # yajl's words for it
            raise NumberTooBig(entry.get("table")) from None
        raise


class _Counted:
    """A binary file whose reads report how many bytes they gave (the parser reads 64 KiB at a time)."""

    def __init__(self, handle: BinaryIO, on_read: Callable[[int], None]):
        self._handle, self._on_read = handle, on_read

    def read(self, size: int = -1) -> bytes:
        data = self._handle.read(size)
        self._on_read(len(data))
        return data


def read_header(path: Path, on_read: Callable[[int], None] | None = None) -> dict[str, Any]:
    """The document's top-level values but "tables" and, if it has them, its tables' entries
    without their rows ("rows" holds how many there are), in file order; reads to the end,
    telling ``on_read`` the bytes of each read (for progress)."""
    meta: dict[str, Any] = {}
    tables: list[dict[str, Any]] | None = None
    with open(path, "rb") as handle:
        source: Any = handle if on_read is None else _Counted(handle, on_read)
        for kind, key, value in _walk(_events(source), rows=False):
            if kind == "meta":
                meta[key] = value
            else:
                tables = (tables or []) + [value]
    if tables is not None:
        meta["tables"] = tables
    return meta


class RowReader:
    """Each table's rows read from ``path`` as they are asked for."""

    def __init__(self, path: Path):
        self.path = path
        self._stream: Iterator[tuple[str, Any, Any]] | None = None
        self._handle: BinaryIO | None = None
        self._next_table = 0  # the first table the open stream has not passed yet
        self._pending: tuple[str, Any, Any] | None = None

    def rows(self, index: int) -> Iterator[list[Any]]:
        if self._stream is None or index < self._next_table:
            self._open()
        self._next_table = index + 1
        for item in self._items():
            kind, at, value = item
            if at < index:
                continue
            if at > index or kind == "table":
                self._pending = item if at > index else None
                return
            yield value

    def _items(self) -> Iterator[tuple[str, Any, Any]]:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            yield pending
        assert self._stream is not None
        for item in self._stream:
            if item[0] != "meta":
                yield item

    def _open(self) -> None:
        self.close()
        self._handle = open(self.path, "rb")
        self._stream = _walk(_events(self._handle), rows=True)
        self._pending = None

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
            self._stream = None
