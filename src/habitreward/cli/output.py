"""Printing results: aligned tables for people, ``--json`` for scripts."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import click

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


class TelegramIdParam(click.ParamType):
    """A Telegram user id on the command line (a number too big for the database is refused
    here, as a usage error, not by the database driver)."""

    name = "telegram_id"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        from habitreward.engine.validation import telegram_id
        from habitreward.errors import ValidationError

        try:
            return telegram_id(value)
        except ValidationError as exc:
            self.fail(str(exc), param, ctx)


TELEGRAM_ID = TelegramIdParam()


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


#: Lines (or JSON items) written to the output at once: one write per line was a third of a
#: listing of 45,000 habits.
_LINES_PER_WRITE = 1000


def emit_json_items(items: Iterable[Any]) -> None:
    """A JSON list, item by item as ``items`` yields them, exactly as :func:`emit_json` writes the
    whole list: a listing of any length is never held in memory as one document."""
    batch: list[str] = []
    first = True

    def write() -> None:
        nonlocal first
        click.echo(("[\n" if first else ",\n") + ",\n".join(batch), nl=False)
        first = False
        batch.clear()

    for item in items:
        # Each item indented one level more, as json.dumps nests it (JSON text holds no raw
        # newline but those of its own layout).
        batch.append("  " + json.dumps(item, ensure_ascii=False, indent=2, default=str).replace("\n", "\n  "))
        if len(batch) >= _LINES_PER_WRITE:
            write()
    if batch:
        write()
    click.echo("[]" if first else "\n]")


def emit_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], empty: str = "Nothing yet.") -> None:
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    if not cells:
        click.echo(empty)
        return
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    click.echo("  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip())
    click.echo("  ".join("-" * w for w in widths))
    for start in range(0, len(cells), _LINES_PER_WRITE):
        click.echo("\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()
                              for row in cells[start:start + _LINES_PER_WRITE]))


def emit(as_json: bool, data: Any, table: Callable[[], None]) -> None:
    if as_json:
        emit_json(data)
    else:
        table()
