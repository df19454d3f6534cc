"""``habitreward plugins``: what is loaded."""

from __future__ import annotations

import click

from habitreward.cli.app import AppContext, cli, pass_app
from habitreward.cli.output import emit, emit_table, json_option


@cli.command("plugins")
@click.option("--all", "show_all", is_flag=True, help="Include the built-in plugins.")
@json_option
@pass_app
def plugins_command(app: AppContext, show_all: bool, as_json: bool) -> None:
    """List installed plugins and the hooks each implements."""
    from habitreward.plugins import describe_plugins

    infos = [i for i in describe_plugins(app.plugin_manager) if show_all or not i.builtin]
    data = [{"name": i.name, "package": i.package, "version": i.version, "hooks": list(i.hooks),
             "builtin": i.builtin} for i in infos]
    emit(as_json, data, lambda: emit_table(
        ["name", "package", "version", "hooks"],
        [(i.name, i.package or ("(built in)" if i.builtin else "(HABITREWARD_EXTRA_PLUGINS)"), i.version or "",
          ", ".join(i.hooks)) for i in infos],
        empty="No third-party plugins installed (--all shows the built-in ones).",
    ))
