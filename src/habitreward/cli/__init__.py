"""The ``habitreward`` command line. Commands live in sibling modules by topic; plugins add
theirs through the ``habitreward_register_commands`` hook."""

from __future__ import annotations

import sys

# Importing a module registers its commands on ``cli``.
from habitreward.cli import admin, chat, data, db, nlp, plugins, serve, tracking  # noqa: E402,F401
from habitreward.cli.app import cli, run


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    import click

    from habitreward.cli.app import register_plugin_commands
    from habitreward.errors import HabitRewardError

    try:
        register_plugin_commands()
    except HabitRewardError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    except Exception as exc:  # a plugin's habitreward_register_commands raised
        from habitreward.hooks import plugin_failure

        failure = plugin_failure(exc)
        if failure is None:
            raise
        click.echo(f"Error: {failure.describe(exc)}", err=True)
        sys.exit(1)
    sys.exit(run(argv))


__all__ = ["cli", "main"]
