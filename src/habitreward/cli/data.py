"""``habitreward import-airtable``, ``export``, ``import`` and ``backup``: taking data along.

Heavy or optional modules (pyairtable, the exporters) are imported inside the
commands so ``habitreward --help`` stays fast.
"""

from __future__ import annotations

import os
from pathlib import PurePath

import click

from habitreward.cli.app import AppContext, cli, pass_app
from habitreward.cli.output import TELEGRAM_ID, emit_json, emit_table, json_option


@cli.command("import-airtable")
@click.option("--api-key", metavar="TOKEN", help="Airtable personal access token [env: AIRTABLE_API_KEY].")
@click.option("--base-id", metavar="ID", help="The Airtable base, appXXXXXXXX [env: AIRTABLE_BASE_ID].")
@click.option(
    "--endpoint-url",
    metavar="URL",
    help="Airtable API URL, for a proxy or a stand-in [env: AIRTABLE_ENDPOINT_URL; default: https://api.airtable.com].",
)
@click.option("--users-table", default="Users", show_default=True, help="Name of the users table.")
@click.option("--habits-table", default="Habits", show_default=True, help="Name of the habits table.")
@click.option("--rewards-table", default="Rewards", show_default=True, help="Name of the rewards table.")
@click.option("--progress-table", default="RewardProgress", show_default=True,
              help="Name of the reward progress table.")
@click.option("--logs-table", default="HabitLog", show_default=True, help="Name of the habit log table.")
@click.option("--dry-run", is_flag=True, help="Read and check everything, report what would change, write nothing.")
@click.option("--no-progress", is_flag=True, help="No progress output on stderr.")
@json_option
@pass_app
def import_airtable(
    app: AppContext,
    api_key: str | None,
    base_id: str | None,
    endpoint_url: str | None,
    users_table: str,
    habits_table: str,
    rewards_table: str,
    progress_table: str,
    logs_table: str,
    dry_run: bool,
    no_progress: bool,
    as_json: bool,
) -> None:
    """Migrate the original bot's Airtable base into this database.

    Reads the five tables (Users, Habits, Rewards, RewardProgress, HabitLog),
    checks every record with the same rules as the bot, and writes in batches.
    Airtable's habits and rewards were global, so they become shared ones.
    Every row keeps its Airtable record id: running the import again updates
    what changed in Airtable and creates nothing twice. Records that cannot be
    imported (no telegram_id, a weight out of range, a link to a missing or
    skipped record, ...) are listed with their record id and skipped; the rest
    is imported. Rate-limit answers (HTTP 429) and 500, 502, 503, 504 are retried with back-off.

    Needs the airtable extra: pip install 'habitreward[airtable]'.
    """
    try:
        import pyairtable  # noqa: F401
    except ImportError:
        raise click.ClickException(
            "import-airtable needs pyairtable: pip install 'habitreward[airtable]'"
        ) from None
    from habitreward.data.airtable import AirtableImporter, TableNames, fetch_base

    settings = app.settings
    api_key = api_key or settings.require("airtable_api_key")
    base_id = base_id or settings.require("airtable_base_id")
    endpoint_url = endpoint_url or settings.airtable_endpoint_url
    names = TableNames(users_table, habits_table, rewards_table, progress_table, logs_table)
    engine = app.engine()
    records = fetch_base(api_key, base_id, names, endpoint_url=endpoint_url, log=None if not no_progress else _Null())
    report = AirtableImporter(engine, dry_run=dry_run, show_progress=not no_progress).run(records, names)
    if as_json:
        emit_json(report.as_dict())
        return
    for problem in report.problems:
        click.echo(f"skipped {problem.table} {problem.record_id}: {problem.message}")
    if report.problems:
        click.echo("")
    if dry_run:
        click.echo("Dry run: nothing was written. This is what the import would do:")
    emit_table(
        ["table", "read", "created", "updated", "unchanged", "skipped"],
        [(t.table, t.read, t.created, t.updated, t.unchanged, t.skipped) for t in report.tables],
    )


class _Null:
    """A file that swallows writes (for --no-progress)."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


@cli.command("export")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "csv"]),
    help="json: one document. csv: a directory (or a PATH ending in .zip) with one CSV per table and a manifest."
         "  [default: csv for -o PATH ending in .zip, else json]",
)
@click.option("--user", "user_id", type=TELEGRAM_ID, metavar="TELEGRAM_ID",
              help="Only this person's data (and the shared habits and rewards it uses).")
@click.option(
    "-o", "--output", "output", metavar="PATH",
    help="Where to write; default for json: standard output. Required for csv."
)
@click.option("--no-progress", is_flag=True, help="No progress output on stderr.")
@click.option("--skip-unloaded-plugins", is_flag=True,
              help="Export even though plugins that are not loaded have data here, leaving their tables out"
                   " (without it, such an export is refused).")
@pass_app
def export_data(app: AppContext, fmt: str | None, user_id: int | None, output: str | None, no_progress: bool,
                skip_unloaded_plugins: bool) -> None:
    """Write every table (core and plugins') to JSON or CSV, ids and all.

    The export is lossless: decimals, dates and times are written exactly and
    rows keep their ids, so `habitreward import` rebuilds the same database.
    It is read in one consistent snapshot while the bot keeps running. This is
    also the way from SQLite to PostgreSQL:

    \b
      habitreward export -o data.json
      DATABASE_URL=postgresql://... habitreward db upgrade
      DATABASE_URL=postgresql://... habitreward import data.json
    """
    from habitreward.data.exporter import Exporter

    zipped = bool(output) and output.lower().endswith(".zip")
    fmt = fmt or ("csv" if zipped else "json")
    if fmt == "csv" and not output:
        raise click.UsageError("--format csv needs -o PATH (a new directory, or a file ending in .zip).")
    if fmt == "json" and zipped:  # `import` would read it as a CSV archive, and it is none
        raise click.UsageError(f"{output} ends in .zip, which is a CSV export: leave out --format json, or"
                               " name the JSON file otherwise.")
    archive = _archive_suffix(output)
    if archive:  # a directory (CSV) or plain JSON under that name: neither tar, gunzip nor import takes it
        raise click.UsageError(f"{output} ends in {archive}, an archive or compressed file, which export does not"
                               " write: for CSV give a new directory or a file ending in .zip, for JSON a file"
                               " ending in .json (compress it afterwards if you like).")
    if fmt == "csv" and output.lower().endswith(".json"):  # a directory named like a file: import reads it, nobody else
        raise click.UsageError(f"{output} ends in .json, a JSON file, where --format csv writes a directory: give a"
                               " new directory or a file ending in .zip, or leave out --format csv for one JSON file.")
    if fmt == "json" and output and output.endswith(("/", os.sep)):  # written as a file named like the directory
        raise click.UsageError(f"{output} ends in {output[-1]}, a directory, where a JSON export is one file: give a"
                               " file name (data.json), or --format csv for a directory.")
    exporter = Exporter(app.engine(), user_telegram_id=user_id, show_progress=not no_progress,
                        skip_unloaded_plugins=skip_unloaded_plugins)
    tables = exporter.write_csv(output) if fmt == "csv" else exporter.write_json(output)
    if output and output != "-":
        total = sum(t.count for t in tables)
        click.echo(f"Exported {total} rows from {len(tables)} tables to {output}", err=True)


#: Names of archives and compressed files, which `export` does not write.
ARCHIVE_SUFFIXES = (".tar", ".tgz", ".gz", ".bz2", ".xz", ".zst", ".7z", ".rar")


def _archive_suffix(output: str | None) -> str | None:
    """``.tar.gz`` of ``x.tar.gz`` (``.xz`` of ``data.json.xz``), or None for any other name."""
    if not output or output == "-":
        return None
    suffixes = [s.lower() for s in PurePath(output).suffixes]
    if not suffixes or suffixes[-1] not in ARCHIVE_SUFFIXES:
        return None
    return "".join(suffixes[-2:]) if suffixes[-2:-1] == [".tar"] else suffixes[-1]


@cli.command("import")
@click.argument("path", metavar="PATH")
@click.option(
    "--on-conflict",
    type=click.Choice(["fail", "skip", "replace"]),
    default="fail",
    show_default=True,
    help="A row whose id is already taken: fail (change nothing), skip (keep the existing row) or replace it;"
         " skip and replace are for the same rows (an export imported again): an id held by another row here"
         " stops the import.",
)
@click.option("--no-progress", is_flag=True, help="No progress output on stderr.")
@json_option
@pass_app
def import_data(app: AppContext, path: str, on_conflict: str, no_progress: bool, as_json: bool) -> None:
    """Load an export made by `habitreward export` (a JSON file, a CSV directory or .zip; - = stdin).

    Everything goes in one transaction: on any error nothing is changed. Rows
    keep their ids. Into an empty database nothing can conflict; into one with
    data, --on-conflict decides. Plugins whose tables hold rows in the export must
    be installed and loaded here too (a table of none is left out and named). On
    PostgreSQL run `habitreward db upgrade` first.
    """
    from habitreward.data.importer import Importer, open_export

    importer = Importer(app.engine(), on_conflict=on_conflict, show_progress=not no_progress)
    with open_export(path, show_progress=not no_progress) as document:
        result = importer.run(document)
    if as_json:
        emit_json(result.as_dict())
        return
    emit_table(
        ["table", "rows", "inserted", "replaced", "skipped"],
        [(t.table, t.rows, t.inserted, t.replaced, t.skipped) for t in result.tables],
    )
    if result.left_out:
        click.echo(f"Left out (empty in the export, and no plugin loaded here has them): {', '.join(result.left_out)}")


@cli.command("backup")
@click.argument("path", type=click.Path(dir_okay=False), metavar="PATH")
@click.option("--force", is_flag=True, help="Overwrite PATH if it exists.")
@click.option("--no-progress", is_flag=True, help="No progress output on stderr.")
@pass_app
def backup(app: AppContext, path: str, force: bool, no_progress: bool) -> None:
    """Copy the SQLite database to PATH while the bot keeps running.

    Uses SQLite's online backup API, so the copy is consistent even while
    completions are being written, then checks it with PRAGMA integrity_check.
    On PostgreSQL it prints the pg_dump command to run instead (DATABASE_URL
    without its password, user:password@ or ?password=, and habitreward's own
    options) and exits with code 1.
    """
    import shlex

    from habitreward.data.backup import backup_sqlite
    from habitreward.db import is_postgres, is_sqlite, libpq_url, open_database

    database = open_database(app.settings.database_url, bind=False)
    if is_postgres(database):
        # DATABASE_URL as pg_dump takes it: often it is in .env, not in the shell, and
        # habitreward's own options (?max_connections=) would make pg_dump refuse it.
        url, had_password = libpq_url(app.settings.database_url)
        password = " (it asks for the password, or reads it from PGPASSWORD or ~/.pgpass)" if had_password else ""
        raise click.ClickException(
            "backup copies SQLite databases; for PostgreSQL use pg_dump: "
            f"pg_dump --format=custom --file={shlex.quote(path)} {shlex.quote(url)}{password}"
        )
    if not is_sqlite(database) or database.database in ("", ":memory:"):
        raise click.ClickException("backup needs a SQLite database file (DATABASE_URL=sqlite:///path.db).")
    result = backup_sqlite(database.database, path, overwrite=force, show_progress=not no_progress)
    note = " (the database was busy: copied in one step)" if result.single_step else ""
    click.echo(f"Backed up {database.database} to {result.path}: {result.bytes} bytes, integrity ok{note}")
