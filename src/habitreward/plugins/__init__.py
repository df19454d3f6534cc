"""The plugin manager: built-in plugins plus third-party ones from entry points.

Built-ins are registered directly, so they work from a source checkout and
when third-party loading is off. Third-party plugins come from the
``habitreward`` entry-point group. ``HABITREWARD_LOAD_PLUGINS`` restricts them:
unset loads all, an empty value loads none, ``a,b`` loads only those.
``HABITREWARD_EXTRA_PLUGINS=pkg.module,other.module`` also registers plain
importable modules (no packaging needed: a local plugin, or a test's).
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import inspect
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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


class PluginManager(pluggy.PluginManager):
    """pluggy's plugin manager, checking each plugin as it is registered: an installed one, one of
    HABITREWARD_EXTRA_PLUGINS and one a test or a program registers by hand alike.

    A ``@hookimpl`` whose name is no hook (a typo), a function named after a hook but not marked
    ``@hookimpl``, or an argument the hook does not have fails ``register`` with a
    ``pluggy.PluginValidationError`` that names the plugin, says what is wrong (with the hook or
    argument meant, when one is close) and registers nothing of it. pluggy alone notices a
    misspelled hook only in ``check_pending()``, which a plugin's test never calls, and skips an
    unmarked function without a word: either way the rule would silently never run. A class given
    instead of an instance (an entry point naming ``MyPlugin``) is refused saying so: pluggy took
    it, and its first hook call passed the hook's first argument as ``self``.
    """

    def register(self, plugin: Any, name: str | None = None) -> str | None:
        if plugin is not None and self.hook.__dict__:  # the hookspecs are added: check against them
            problems = self._misfits(plugin)
            if problems:
                label = name if name and name != str(id(plugin)) else _plugin_label(plugin)
                raise pluggy.PluginValidationError(
                    plugin, f"the plugin {label!r} does not fit: {'; '.join(problems)}")
        return super().register(plugin, name)

    def _misfits(self, plugin: Any) -> list[str]:
        specs = {name: caller.spec for name, caller in vars(self.hook).items()
                 if isinstance(caller, pluggy.HookCaller) and caller.spec is not None}
        if inspect.isclass(plugin) and (methods := self._instance_methods(plugin)):
            return [_a_class_given(plugin, methods)]
        problems = []
        for attribute in dir(plugin):
            opts = self.parse_hookimpl_opts(plugin, attribute)
            if opts is None:
                if attribute in specs and callable(getattr(plugin, attribute, None)):
                    problems.append(f"{attribute} is not marked @hookimpl (from habitreward import hookimpl),"
                                    " so it would never be called")
                continue
            hook = opts.get("specname") or attribute
            spec = specs.get(hook)
            if spec is None:
                if not opts.get("optionalhook"):
                    problems.append(f"{hook!r} is no hook{_did_you_mean(hook, specs)} (the hooks: docs/plugins.md)")
                continue
            function = getattr(plugin, attribute)
            taken = pluggy.HookImpl(plugin, "", function, dict(opts)).argnames
            allowed = (*spec.argnames, *spec.kwargnames)
            for argument in (a for a in taken if a not in allowed):
                problems.append(f"{hook}{_signature(function)}: no argument {argument!r}"
                                f"{_did_you_mean(argument, allowed)}; the hook's arguments are"
                                f" {', '.join(spec.argnames)} (take any of them, by name)")
        return problems

    def _instance_methods(self, cls: type) -> list[str]:
        """The hooks of a class that are plain methods: they need an instance (``self``), which a
        class given as the plugin lacks (a staticmethod or a classmethod works on the class)."""
        return [attribute for attribute in dir(cls)
                if self.parse_hookimpl_opts(cls, attribute) is not None
                and inspect.isfunction(inspect.getattr_static(cls, attribute, None))]


def _a_class_given(cls: type, methods: list[str]) -> str:
    """A class registered instead of an instance: say so, and what to register."""
    name = cls.__name__
    return (f"it is the class {name}, not an instance, and its hooks ({', '.join(methods)}) are methods"
            f" that need one: register an instance, {name}(), or a module (for an entry point:"
            f" 'package.module:plugin', with plugin = {name}() in that module)")


def _did_you_mean(name: str, choices: Any) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _signature(function: Any) -> str:
    try:
        return str(inspect.signature(function))
    except (TypeError, ValueError):
        return "(...)"


def _plugin_label(plugin: Any) -> str:
    """A plugin registered without a name: its module's or class's name."""
    if isinstance(getattr(plugin, "__name__", None), str):
        return plugin.__name__
    return f"{type(plugin).__module__}.{type(plugin).__name__}"


def make_plugin_manager(
    *, load_entry_points: bool = True, environ: Mapping[str, str] | None = None
) -> pluggy.PluginManager:
    """A fresh plugin manager with the built-ins and (unless disabled) third-party plugins."""
    pm = PluginManager(hookspecs.PROJECT_NAME)
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
                    raise ConfigError(_not_a_module(module_name, exc) or f"{EXTRA_PLUGINS_ENV}: cannot import"
                                      f" {module_name!r} ({type(exc).__name__}: {exc})") from exc
                if not pm.is_registered(module):  # also installed with an entry point: loaded once
                    try:
                        pm.register(module, name=module_name)
                    except pluggy.PluginValidationError as exc:  # e.g. a misspelled hook, an argument
                        raise ConfigError(f"{EXTRA_PLUGINS_ENV}: {_fit_message(exc, module_name)}") from exc
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:  # e.g. a misspelled hook name
        raise ConfigError(f"A habitreward plugin does not fit: {one_line(exc)}") from exc
    return pm


def _not_a_module(dotted: str, exc: Exception) -> str | None:
    """When ``package.module.Name`` in HABITREWARD_EXTRA_PLUGINS names a class (or another object)
    in a module rather than a module: what it is, and what to name instead (else None)."""
    parent, _, attribute = dotted.rpartition(".")
    if not parent or not isinstance(exc, ModuleNotFoundError) or exc.name not in (dotted, parent):
        return None
    try:
        found = getattr(importlib.import_module(parent), attribute)
    except Exception:  # the module itself does not import, or has no such name: the plain message
        return None
    names_modules = f"not a module: {EXTRA_PLUGINS_ENV} names modules, whose functions are the hooks"
    if inspect.isclass(found):
        return (f"{EXTRA_PLUGINS_ENV}: {dotted!r} is the class {attribute} in the module {parent}, {names_modules}"
                f" (an instance, {attribute}(), loads through an entry point: '{parent}:plugin' with"
                f" plugin = {attribute}() in {parent}; docs/plugins.md)")
    return (f"{EXTRA_PLUGINS_ENV}: {dotted!r} is an object in the module {parent} (a {type(found).__name__}),"
            f" {names_modules} (an object loads through an entry point: '{parent}:{attribute}'; docs/plugins.md)")


def _fit_message(exc: pluggy.PluginValidationError, name: str) -> str:
    """``the plugin 'x' does not fit: ...``, one line: PluginManager's message says so already,
    one of pluggy's own (a wrapper that is no generator) is prefixed."""
    message = one_line(exc)
    return message if message.startswith("the plugin ") else f"the plugin {name!r} does not fit: {message}"


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
            if isinstance(exc, pluggy.PluginValidationError):
                what = f"The habitreward {_fit_message(exc, name).removeprefix('the ')}"
            else:
                what = f"The habitreward plugin {name!r} failed to load ({type(exc).__name__}: {one_line(exc)})"
            raise ConfigError(f"{what}; to run without it, set {LOAD_PLUGINS_ENV}={others}") from exc


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
