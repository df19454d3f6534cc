"""Printing results: aligned tables for people, ``--json`` for scripts."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
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


def emit_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], empty: str = "Nothing yet.") -> None:
    if not rows:
        click.echo(empty)
        return
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    click.echo("  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip())
    click.echo("  ".join("-" * w for w in widths))
    for row in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


def emit(as_json: bool, data: Any, table: Callable[[], None]) -> None:
    if as_json:
        emit_json(data)
    else:
        table()
