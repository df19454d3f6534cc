"""The export format: how each column's values are written and read back without loss.

Every value is turned into a JSON-native value by the *kind* of its column
(recorded in the export, so CSV cells can be read back too):

========  ===================================  ==========================
kind      written as                           example
========  ===================================  ==========================
int       integer                              ``42``
float     shortest repr that round-trips       ``1.1``
decimal   string, digits as stored             ``"2.50"``
bool      true / false                         ``true``
datetime  ISO 8601, naive UTC, microseconds    ``"2026-01-05T12:00:00.5"``
date      ISO 8601                             ``"2026-01-05"``
time      ISO 8601                             ``"07:30:00"``
uuid      canonical string                     ``"6f1c..."``
bytes     base64                               ``"aGk="``
json      the JSON value itself                ``{"a": 1}``
text      string                               ``"Running"``
========  ===================================  ==========================

In CSV, NULL is written as ``\\N`` (as PostgreSQL's COPY does), a text that
starts with a backslash gets one more, json values are JSON text and bools
``true``/``false``; everything else is the JSON form above without quotes.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from decimal import Decimal
from typing import Any

import peewee

from habitreward.engine.validation import whole_number

FORMAT_NAME = "habitreward-export"
FORMAT_VERSION = 1
CSV_NULL = "\\N"


def kind_of(field: peewee.Field) -> str:
    """The kind of a column (see the module docstring); foreign keys take their target's."""
    if isinstance(field, peewee.ForeignKeyField):
        return kind_of(field.rel_field)
    if field.field_type in ("JSON", "JSONB") or type(field).__name__.endswith("JSONField"):
        return "json"
    checks: tuple[tuple[type, str], ...] = (
        (peewee.BooleanField, "bool"),
        (peewee.TimestampField, "datetime"),
        (peewee.DateTimeField, "datetime"),
        (peewee.DateField, "date"),
        (peewee.TimeField, "time"),
        (peewee.DecimalField, "decimal"),
        (peewee.FloatField, "float"),
        (peewee.IntegerField, "int"),
        (peewee.UUIDField, "uuid"),
        (peewee.BlobField, "bytes"),
    )
    for cls, kind in checks:
        if isinstance(field, cls):
            return kind
    return "text"


def encode(kind: str, value: Any) -> Any:
    """A Python value of a column as a JSON-native value."""
    if value is None:
        return None
    if kind == "decimal":
        return str(value)
    if kind in ("datetime", "date", "time"):
        return value.isoformat() if hasattr(value, "isoformat") else str(value)
    if kind == "uuid":
        return str(value)
    if kind == "bytes":
        return base64.b64encode(bytes(value)).decode("ascii")
    if kind == "bool":
        return bool(value)
    return value


def decode(kind: str, value: Any) -> Any:
    """The inverse of :func:`encode`."""
    if value is None:
        return None
    if kind == "int":
        return _whole(value)
    if kind == "float":
        if isinstance(value, bool):
            raise ValueError(f"not a number: {value!r}")
        return float(value)
    if kind == "decimal":
        try:
            return Decimal(str(value))
        except ArithmeticError:  # decimal.InvalidOperation, whose message is a class name
            raise ValueError(f"not a decimal number: {value!r}") from None
    if kind == "bool":
        return _truth(value)
    if kind == "datetime":
        return dt.datetime.fromisoformat(value)
    if kind == "date":
        return dt.date.fromisoformat(value)
    if kind == "time":
        return dt.time.fromisoformat(value)
    if kind == "uuid":
        return uuid.UUID(str(value))
    if kind == "bytes":
        return base64.b64decode(value)
    return value


def _whole(value: Any) -> int:
    """An integer column's value: a whole number, never a float cut to one (an id of 1.5 is not 1)."""
    number = whole_number(value)
    if number is None:
        raise ValueError(f"not a whole number: {value!r}")
    return number


def _truth(value: Any) -> bool:
    """A yes/no column's value: true or false (also 1 and 0, as SQLite writes them); anything
    else is no answer at all ("yes" is not read as false)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise ValueError(f"not true or false: {value!r}")


def to_cell(kind: str, value: Any) -> str:
    """A JSON-native value as a CSV cell."""
    if value is None:
        return CSV_NULL
    if kind == "json":
        return json.dumps(value, ensure_ascii=False)
    if kind == "bool":
        return "true" if value else "false"
    if kind == "float":
        return repr(float(value))
    text = str(value)
    return "\\" + text if text.startswith("\\") else text


def from_cell(kind: str, cell: str) -> Any:
    """A CSV cell as the JSON-native value :func:`to_cell` was given."""
    if cell == CSV_NULL:
        return None
    if cell.startswith("\\"):
        cell = cell[1:]
    if kind == "json":
        return json.loads(cell)
    if kind == "int":
        return int(cell)
    if kind == "float":
        return float(cell)
    if kind == "bool":
        return _truth(cell)
    return cell
