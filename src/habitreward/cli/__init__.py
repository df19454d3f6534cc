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

    from habitreward.cli.app import register_plugin_commands, warn_about_plugin_commands
    from habitreward.errors import HabitRewardError

    try:
        failures = register_plugin_commands()
    except HabitRewardError as exc:  # a plugin that cannot load: which plugins are on is unknown
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    # A plugin whose habitreward_register_commands raised: the rest works, `plugins` included.
    warn_about_plugin_commands(failures, sys.argv[1:] if argv is None else argv)
    sys.exit(run(argv))


__all__ = ["cli", "main"]
