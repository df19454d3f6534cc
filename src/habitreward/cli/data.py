"""``habitreward import-airtable``, ``export``, ``import`` and ``backup``: taking data along.

Heavy or optional modules (pyairtable, the exporters) are imported inside the
commands so ``habitreward --help`` stays fast.
"""

from __future__ import annotations


import click

from habitreward.cli.app import AppContext, cli, pass_app
from habitreward.cli.output import emit_json, emit_table, json_option


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
@click.option("--progress-table", default="RewardProgress", show_default=True, help="Name of the reward progress table.")
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
    is imported. Rate-limit answers (HTTP 429) are retried with back-off.

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


