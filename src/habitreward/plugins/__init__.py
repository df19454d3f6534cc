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
        allowed = env.get(LOAD_PLUGINS_ENV)
        try:
            if allowed is None:
                pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
            elif allowed.strip():
                for name in (n.strip() for n in allowed.split(",") if n.strip()):
                    pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP, name=name)
        except Exception as exc:  # a broken third-party package must not look like our bug
            raise ConfigError(
                f"A habitreward plugin failed to load ({type(exc).__name__}: {exc}); "
                f"{LOAD_PLUGINS_ENV} can leave it out"
            ) from exc
        for module_name in (n.strip() for n in env.get(EXTRA_PLUGINS_ENV, "").split(",") if n.strip()):
            if not pm.has_plugin(module_name):
                try:
                    module = importlib.import_module(module_name)
                except ImportError as exc:
                    raise ConfigError(f"{EXTRA_PLUGINS_ENV}: cannot import {module_name!r}: {exc}") from exc
                pm.register(module, name=module_name)
    pm.check_pending()
    return pm


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
