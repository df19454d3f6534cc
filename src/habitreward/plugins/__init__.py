"""The plugin manager: built-in plugins plus third-party ones from entry points.

Built-ins are registered directly, so they work from a source checkout and
when third-party loading is off. Third-party plugins come from the
``habitreward`` entry-point group. ``HABITREWARD_LOAD_PLUGINS`` restricts them:
unset loads all, an empty value loads none, ``a,b`` loads only those.
``HABITREWARD_EXTRA_PLUGINS=pkg.module,other.module`` also registers plain
importable modules (no packaging needed: a local plugin, or a test's).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
from collections.abc import Mapping
from dataclasses import dataclass

import pluggy

from habitreward import hookspecs
from habitreward.errors import ConfigError

DEFAULT_PLUGINS: tuple[str, ...] = (
    "habitreward.plugins.habits",
    "habitreward.plugins.streaks",
    "habitreward.plugins.rewards",
    "habitreward.plugins.nlp",
    "habitreward.bot.state",
)
ENTRY_POINT_GROUP = "habitreward"
LOAD_PLUGINS_ENV = "HABITREWARD_LOAD_PLUGINS"
EXTRA_PLUGINS_ENV = "HABITREWARD_EXTRA_PLUGINS"


def make_plugin_manager(
    *, load_entry_points: bool = True, environ: Mapping[str, str] | None = None
) -> pluggy.PluginManager:
    """A fresh plugin manager with the built-ins and (unless disabled) third-party plugins."""
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    for module_name in DEFAULT_PLUGINS:
        pm.register(importlib.import_module(module_name), name=module_name)
    if load_entry_points:
        env = os.environ if environ is None else environ
        _load_entry_points(pm, env.get(LOAD_PLUGINS_ENV))
        for module_name in (n.strip() for n in env.get(EXTRA_PLUGINS_ENV, "").split(",") if n.strip()):
            if not pm.has_plugin(module_name):
                try:
                    module = importlib.import_module(module_name)
                except Exception as exc:  # not only ImportError: a module may fail while it runs
                    raise ConfigError(f"{EXTRA_PLUGINS_ENV}: cannot import {module_name!r}"
                                      f" ({type(exc).__name__}: {exc})") from exc
                if not pm.is_registered(module):  # also installed with an entry point: loaded once
                    try:
                        pm.register(module, name=module_name)
                    except pluggy.PluginValidationError as exc:  # e.g. an argument the hook has not
                        raise ConfigError(f"{EXTRA_PLUGINS_ENV}: the plugin {module_name!r} does not fit:"
                                          f" {one_line(exc)}") from exc
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:  # e.g. a misspelled hook name
        raise ConfigError(f"A habitreward plugin does not fit: {one_line(exc)}") from exc
    return pm


def one_line(exc: BaseException) -> str:
    """An error's message on one line: pluggy's validation errors span three (the plugin and
    hook, the definition, what is wrong), and a load error is meant to be one line."""
    return "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())


def _load_entry_points(pm: pluggy.PluginManager, allowed: str | None) -> None:
    """The installed plugins (entry points of the ``habitreward`` group), or only those named in
    HABITREWARD_LOAD_PLUGINS; a name nothing provides is an error, as a typo would silently
    turn a plugin off."""
    installed = sorted({ep.name for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)})
    if allowed is None:
        names = installed
    else:
        names = [n.strip() for n in allowed.split(",") if n.strip()]
        unknown = [n for n in names if n not in installed]
        if unknown:
            raise ConfigError(f"{LOAD_PLUGINS_ENV} names {', '.join(unknown)}, which no installed package provides"
                              f" (installed: {', '.join(installed) or 'none'})")
    for name in names:
        try:
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP, name=name)
        except Exception as exc:  # a broken third-party package must not look like our bug
            others = ",".join(n for n in names if n != name)
            raise ConfigError(
                f"The habitreward plugin {name!r} failed to load ({type(exc).__name__}: {one_line(exc)}); to run"
                f" without it, set {LOAD_PLUGINS_ENV}={others}"
            ) from exc


@dataclass(frozen=True)
class PluginInfo:
    name: str
    hooks: tuple[str, ...]
    version: str | None
    package: str | None
    builtin: bool


def describe_plugins(pm: pluggy.PluginManager) -> list[PluginInfo]:
    """What is loaded, for ``habitreward plugins``."""
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    infos = []
    for plugin in pm.get_plugins():
        name = pm.get_name(plugin) or repr(plugin)
        hooks = tuple(sorted(caller.name for caller in pm.get_hookcallers(plugin) or []))
        dist = dists.get(id(plugin))
        infos.append(
            PluginInfo(
                name=name,
                hooks=hooks,
                version=dist.version if dist else None,
                package=dist.project_name if dist else None,
                builtin=name in DEFAULT_PLUGINS,
            )
        )
    return sorted(infos, key=lambda info: (not info.builtin, info.name))
