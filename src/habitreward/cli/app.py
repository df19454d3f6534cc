"""The root click group, its shared options, and how errors reach the user."""

from __future__ import annotations

import logging
import os
import traceback
from dataclasses import dataclass, field
from typing import Any

import click
import peewee

from habitreward import __version__
from habitreward.errors import ConfigError, HabitRewardError


@dataclass
class AppContext:
    """Lazily built settings and engine, shared by every command of one invocation."""

    overrides: dict[str, Any]
    env_file: str | None
    _settings: Any = None
    _engine: Any = None
    _plugin_manager: Any = field(default=None)

    @property
    def settings(self):  # noqa: ANN201
        if self._settings is None:
            from habitreward.settings import Settings

            self._settings = Settings.load(env_file=self.env_file, **self.overrides)
        return self._settings

    @property
    def plugin_manager(self):  # noqa: ANN201
        if self._plugin_manager is None:
            from habitreward.plugins import make_plugin_manager

            self._plugin_manager = make_plugin_manager()
        return self._plugin_manager

    def engine(self, *, upgrade_sqlite: bool = True):  # noqa: ANN201
        """The engine, with the schema checked: a fresh SQLite file is set up on the spot,
        anything else with pending migrations asks for ``habitreward db upgrade``."""
        if self._engine is None:
            from habitreward.db import is_sqlite
            from habitreward.engine import Engine

            engine = Engine(self.settings, plugin_manager=self.plugin_manager)
            pending = engine.pending_migrations()
            if pending:
                if upgrade_sqlite and is_sqlite(engine.db):
                    engine.upgrade_schema()
                else:
                    raise ConfigError(
                        f"The database needs {len(pending)} migration(s): run `habitreward db upgrade` first."
                    )
            self._engine = engine
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()


pass_app = click.make_pass_decorator(AppContext)


#: How many -v make a plugin's failure show its traceback too.
TRACEBACK_VERBOSITY = 2


def verbosity(ctx: click.Context | None = None) -> int:
    """How many times -v/--verbose was given to ``habitreward``."""
    ctx = ctx or click.get_current_context()
    return ctx.find_root().params.get("verbose") or 0


def _why_not_opened(ctx: click.Context) -> str:
    """``: <why>`` for SQLite's "unable to open database file", when the cause is to be seen."""
    from habitreward.db import why_sqlite_cannot_open

    app = ctx.find_object(AppContext)
    try:
        url = app.settings.database_url if app is not None else None
    except HabitRewardError:
        return ""
    reason = why_sqlite_cannot_open(url) if url else None
    return f": {reason}" if reason else ""


class HabitRewardGroup(click.Group):
    """Turns domain and database errors, and a third-party plugin's exception, into one line on
    stderr and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except HabitRewardError as exc:
            raise click.ClickException(_without_secrets(ctx, str(exc))) from None
        except peewee.ImproperlyConfigured as exc:
            # e.g. a postgresql:// URL without psycopg2 installed
            raise click.ClickException(f"{exc} Install it with: pip install 'habitreward[postgres]'") from None
        except peewee.OperationalError as exc:
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if message == "unable to open database file":
                message += _why_not_opened(ctx)
            raise click.ClickException(f"Database error: {message}") from None
        except click.ClickException as exc:
            exc.message = _without_secrets(ctx, exc.message)
            raise
        except Exception as exc:
            # A plugin's own exception stays itself for its author's tests; a person at the
            # command line gets which plugin failed where, and the traceback with -vv.
            failure = _plugin_that_failed(ctx, exc)
            if failure is None:
                raise
            if verbosity(ctx) >= TRACEBACK_VERBOSITY:
                click.echo(_without_secrets(ctx, "".join(traceback.format_exception(exc))), err=True, nl=False)
                hint = ""
            else:
                hint = " (-vv shows the traceback)"
            raise click.ClickException(_without_secrets(ctx, failure.describe(exc)) + hint) from None


def _plugin_that_failed(ctx: click.Context, exc: Exception) -> Any:
    """The third-party plugin that raised ``exc`` (a :class:`~habitreward.hooks.PluginFailure`):
    the one a hook call saw raise it, else the one whose code is innermost in the traceback, as
    in a command it registered (then named as failing in that command)."""
    import dataclasses

    from habitreward.hooks import Hooks, plugin_failure

    pm = _command_plugins or getattr(ctx.obj, "_plugin_manager", None)
    failure = plugin_failure(exc) if pm is None else Hooks(pm).blame(exc)
    if failure is not None and failure.hook is None:
        where = f"the command {ctx.invoked_subcommand!r}" if ctx.invoked_subcommand else "the command line"
        failure = dataclasses.replace(failure, hook=where)
    return failure


def _without_secrets(ctx: click.Context, message: str) -> str:
    """An error may quote what it failed on, such as a Bot API URL, which holds the token."""
    settings = getattr(ctx.obj, "_settings", None)  # only what was loaded: nothing to hide otherwise
    if settings is None:
        return message
    from habitreward.redaction import RedactSecrets
    from habitreward.server.secrets import secrets_of

    return RedactSecrets(secrets_of(settings)).redact(message)


@click.group(cls=HabitRewardGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="habitreward")
@click.option(
    "--database-url",
    metavar="URL",
    help="Where the data lives [env: DATABASE_URL; default: sqlite:///habitreward.db].",
)
@click.option(
    "--env-file",
    default=".env",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="File of settings (KEY=value) read before the environment; a missing .env is no error, "
         "a missing file named here is.",
)
@click.option("-v", "--verbose", count=True,
              help="More log output (-vv for debug, and the traceback of a plugin's failure).")
@click.pass_context
def cli(ctx: click.Context, database_url: str | None, env_file: str, verbose: int) -> None:
    """habitreward: a gamified habit tracker for Telegram, with plugins.

    Log habits, keep streaks, win rewards piece by piece. Settings come from
    the environment and .env (see docs/configuration.md); every command here
    works on the database named by DATABASE_URL.

    \b
    First steps:
      habitreward chat                 talk to the bot in this terminal
      habitreward users add 42 --name Ann --active
      habitreward habits add Running --weight 20
      habitreward done 42 Running
    """
    if ctx.get_parameter_source("env_file") is not click.core.ParameterSource.DEFAULT and not os.path.exists(env_file):
        # Read as "no file", a mistyped path ran the command on the default database
        # (sqlite:///habitreward.db, made afresh and empty) with no token.
        raise click.BadParameter(f"{env_file} does not exist.", param_hint="'--env-file'")
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(level=max(level, logging.DEBUG), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = AppContext(overrides={"database_url": database_url}, env_file=env_file)
    ctx.obj = app
    ctx.default_map = {**_env_file_defaults(ctx.command, env_file), **(ctx.default_map or {})}
    ctx.call_on_close(app.close)
    _warn_about_plugin_variables_in(env_file)


def _warn_about_plugin_variables_in(env_file: str | None) -> None:
    """HABITREWARD_LOAD_PLUGINS and HABITREWARD_EXTRA_PLUGINS are read from the environment
    only (the plugins load, adding their commands, before --env-file is read): set in the env
    file alone, where every other setting works, they did nothing without a word."""
    from pathlib import Path

    from dotenv import dotenv_values

    from habitreward.plugins import EXTRA_PLUGINS_ENV, LOAD_PLUGINS_ENV

    if not env_file or not Path(env_file).is_file():
        return
    values = dotenv_values(env_file)
    for name in (LOAD_PLUGINS_ENV, EXTRA_PLUGINS_ENV):
        if name in values and name not in os.environ:
            click.echo(f"Warning: {env_file} sets {name}, which is read from the environment only (plugins load"
                       " before the env file is read): it has no effect here; set it in the environment"
                       " (docs/configuration.md#plugins)", err=True)


def _env_file_defaults(group: click.Group, env_file: str | None) -> dict[str, Any]:
    """Options read from variables (``serve --port``: HABITREWARD_PORT) take the env file's
    values too, as the settings do; click itself reads only the environment, which still wins
    (the order: command line, environment, env file, the option's default)."""
    from pathlib import Path

    from dotenv import dotenv_values

    if not env_file or not Path(env_file).is_file():
        return {}
    values = {key: value for key, value in dotenv_values(env_file).items() if value is not None}

    def defaults(command: click.Command) -> dict[str, Any]:
        found: dict[str, Any] = {}
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                if sub_defaults := defaults(sub):
                    found[name] = sub_defaults
        for param in command.params:
            names = [param.envvar] if isinstance(param.envvar, str) else list(param.envvar or ())
            for name in names:
                if name in values:
                    found[param.name] = values[name]
                    break
        return found

    return defaults(group) if values else {}


_plugins_registered = False
#: The plugin manager whose plugins added commands: which plugin a command's failure is theirs.
_command_plugins: Any = None


def register_plugin_commands() -> list[tuple[Any, Exception]]:
    """Let plugins add commands (once per process). Returns each third-party plugin whose
    ``habitreward_register_commands`` raised (a :class:`~habitreward.hooks.PluginFailure`)
    with its exception: its commands are left out, every other command works."""
    global _plugins_registered, _command_plugins
    if _plugins_registered:
        return []
    _plugins_registered = True
    from habitreward.hooks import Hooks
    from habitreward.plugins import make_plugin_manager

    _command_plugins = make_plugin_manager()
    return Hooks(_command_plugins).register_commands(cli)


def warn_about_plugin_commands(failures: list[tuple[Any, Exception]], argv: list[str]) -> None:
    """One line on stderr per plugin whose commands could not be added (``-vv`` in ``argv``:
    its traceback first), so that a command missing from ``--help`` is explained, and
    ``habitreward plugins`` is there to look into it."""
    if not failures:
        return
    try:  # only the options before the command, nothing run (--help, --version included)
        verbose = cli.make_context("habitreward", list(argv), resilient_parsing=True).params.get("verbose") or 0
    except click.ClickException:
        verbose = 0
    for failure, exc in failures:
        if verbose >= TRACEBACK_VERBOSITY:
            click.echo("".join(traceback.format_exception(exc)), err=True, nl=False)
        hint = "" if verbose >= TRACEBACK_VERBOSITY else " (-vv shows the traceback)"
        click.echo(f"Warning: {failure.describe(exc)}; its commands are not available{hint}", err=True)


def run(argv: list[str] | None = None) -> int:
    try:
        cli.main(args=argv, prog_name="habitreward", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 1
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    return 0
