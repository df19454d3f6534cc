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
    """List installed plugins and the hooks each implements.

    A plugin without a hook (a module with no @hookimpl function, say) is never called: its hooks
    read "(no hooks)". --json prints [{"name", "package", "version", "hooks", "builtin",
    "warning"}]; "warning" is null, or for such a plugin says so.
    """
    from habitreward.plugins import describe_plugins

    infos = [i for i in describe_plugins(app.plugin_manager) if show_all or not i.builtin]
    data = [{"name": i.name, "package": i.package, "version": i.version, "hooks": list(i.hooks),
             "builtin": i.builtin, "warning": None if i.hooks else NO_HOOKS} for i in infos]

    def table() -> None:
        emit_table(
            ["name", "package", "version", "hooks"],
            [(i.name, i.package or ("(built in)" if i.builtin else "(HABITREWARD_EXTRA_PLUGINS)"), i.version or "",
              ", ".join(i.hooks) or "(no hooks)") for i in infos],
            empty="No third-party plugins installed (--all shows the built-in ones).",
        )
        if any(not i.hooks for i in infos):
            click.echo(f"(no hooks): {NO_HOOKS}.")

    emit(as_json, data, table)


#: What "(no hooks)" means, and the usual causes.
NO_HOOKS = ("it implements no hook, so it is never called: no function of it is marked @hookimpl (from habitreward"
            " import hookimpl), or its entry point names something other than the module or object that has them")
