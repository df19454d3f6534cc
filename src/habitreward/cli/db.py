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
    """List migrations and whether each is applied; exit code 1 while any is pending.

    Migrations of a plugin that is no longer loaded are listed too, marked "plugin not
    loaded": its tables and data are still in the database.
    """
    from habitreward import schema
    from habitreward.engine import Engine

    engine = Engine(app.settings, plugin_manager=app.plugin_manager)
    try:
        sources = engine.hooks.migration_sources()
        rows = schema.status(engine.db, sources)
        # A plugin no longer loaded: its tables and rows are still here (export refuses to leave them out).
        gone = [state for states in schema.unloaded(engine.db, sources).values() for state in states]
    finally:
        engine.close()
    data = [{"namespace": r.namespace, "name": r.name, "applied": r.applied, "loaded": True} for r in rows]
    data += [{"namespace": r.namespace, "name": r.name, "applied": r.applied, "loaded": False} for r in gone]
    emit(
        as_json,
        data,
        lambda: emit_table(
            ["namespace", "migration", "applied"],
            [(r.namespace, r.name, r.applied.isoformat(" ", "seconds") if r.applied else "pending") for r in rows]
            + [(r.namespace, r.name, f"{r.applied.isoformat(' ', 'seconds')} (plugin not loaded)") for r in gone],
        ),
    )
    if any(r.applied is None for r in rows):
        raise SystemExit(1)
