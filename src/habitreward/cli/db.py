"""``habitreward db``: schema migrations."""

from __future__ import annotations

import click

from habitreward.cli.app import AppContext, cli, pass_app
from habitreward.cli.output import emit, emit_table, json_option


@cli.group()
def db() -> None:
    """Create and upgrade the database schema."""


@db.command()
@pass_app
def upgrade(app: AppContext) -> None:
    """Apply every pending migration (core and plugins). Safe to run twice or from two hosts."""
    from habitreward.engine import Engine

    engine = Engine(app.settings, plugin_manager=app.plugin_manager)
    try:
        applied = engine.upgrade_schema()
    finally:
        engine.close()
    if applied:
        for name in applied:
            click.echo(f"applied {name}")
    else:
        click.echo("The database is up to date.")


@db.command()
@json_option
@pass_app
def status(app: AppContext, as_json: bool) -> None:
    """List migrations and whether each is applied; exit code 1 while any is pending."""
    from habitreward import schema
    from habitreward.engine import Engine

    engine = Engine(app.settings, plugin_manager=app.plugin_manager)
    try:
        rows = schema.status(engine.db, engine.hooks.migration_sources())
    finally:
        engine.close()
    data = [{"namespace": r.namespace, "name": r.name, "applied": r.applied} for r in rows]
    emit(
        as_json,
        data,
        lambda: emit_table(
            ["namespace", "migration", "applied"],
            [(r.namespace, r.name, r.applied.isoformat(" ", "seconds") if r.applied else "pending") for r in rows],
        ),
    )
    if any(r.applied is None for r in rows):
        raise SystemExit(1)
