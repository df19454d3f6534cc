"""A small typed facade over the plugin hooks, so the core never scatters ``pm.hook.x`` calls."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import decimal
import math
import numbers
import random
import traceback
import types
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

from habitreward.draw import NO_REWARD, Candidate
from habitreward.errors import PluginError
from habitreward.events import Award, CompletionUndone, HabitCompleted, RewardClaimed, StreakBroken

if TYPE_CHECKING:
    import click

    from habitreward.engine import Engine
    from habitreward.models import Habit, User
    from habitreward.settings import Settings


def _plugin_label(impl: Any) -> str:
    """How an error names a plugin: its entry point or registered name, else (registered
    without a name, under its id) its module's or class's name."""
    return _label(impl.plugin_name, impl.plugin)


def _label(name: str | None, plugin: Any) -> str:
    if name and name != str(id(plugin)):
        return name
    if isinstance(getattr(plugin, "__name__", None), str):  # a module (or a class)
        return plugin.__name__
    return f"{type(plugin).__module__}.{type(plugin).__name__}"


def _module_of(plugin: Any) -> str:
    """The module a plugin's code lives in: the plugin itself, or its class's."""
    if isinstance(plugin, types.ModuleType):
        return plugin.__name__
    return plugin.__module__ if isinstance(plugin, type) else type(plugin).__module__


def _is_builtin(plugin: Any) -> bool:
    """habitreward's own plugins: an exception of theirs is the engine's own bug, reported as
    before (a traceback), not blamed on "a plugin"."""
    return _module_of(plugin).startswith("habitreward.")


@dataclasses.dataclass(frozen=True)
class PluginFailure:
    """Which third-party plugin raised an exception, and where: in ``hook`` (or what else it
    names, such as a command), or (``hook`` None) in code of its own such as a bot handler it
    registered."""

    plugin: str
    hook: str | None

    def describe(self, exc: BaseException) -> str:
        """One line for a person: the plugin, where, and the exception as itself."""
        where = self.hook or "a handler it registered"
        try:
            text = str(exc)
        except Exception:  # a plugin's broken __str__ must not hide its failure (as traceback says)
            text = "<exception str() failed>"
        message = "; ".join(line.strip() for line in text.splitlines() if line.strip())
        return f"plugin {self.plugin!r} failed in {where}: {type(exc).__name__}" + (f": {message}" if message else "")


_FAILURE_ATTRIBUTE = "habitreward_plugin_failure"

#: The mark of an exception a built-in plugin raised: habitreward's own bug, which neither a
#: plugin whose hook it passed through (one calling the engine) nor a wrapper is to be blamed for.
_BUILTIN_FAILURE = "habitreward"


def plugin_failure(exc: BaseException) -> PluginFailure | None:
    """The plugin and hook that raised ``exc``, when a hook call of :class:`Hooks` saw a
    third-party plugin raise it (else None)."""
    failure = getattr(exc, _FAILURE_ATTRIBUTE, None)
    return failure if isinstance(failure, PluginFailure) else None


def _blame(exc: BaseException, impl: Any, hook_name: str) -> None:
    """Mark ``exc`` as raised by ``impl``'s plugin in ``hook_name``, keeping the exception itself
    (its type is the plugin's, and a plugin's own tests expect it): an attribute for the CLI and
    the bot, and a note (PEP 678) that its traceback shows. The innermost hook call marks it:
    a plugin calling the engine, whose hook another plugin (or a built-in one) failed in, does
    not take the blame."""
    if hasattr(exc, _FAILURE_ATTRIBUTE):  # an inner hook call's mark
        return
    if _is_builtin(impl.plugin):
        with contextlib.suppress(AttributeError, TypeError):
            setattr(exc, _FAILURE_ATTRIBUTE, _BUILTIN_FAILURE)
        return
    failure = PluginFailure(_plugin_label(impl), hook_name)
    try:
        setattr(exc, _FAILURE_ATTRIBUTE, failure)
    except (AttributeError, TypeError):  # a __setattr__ that refuses (a frozen dataclass): left unnamed
        return
    exc.add_note(f"habitreward: raised by the plugin {failure.plugin!r} in {hook_name}")


def _raising_impl(exc: BaseException, impls: Sequence[Any]) -> Any:
    """The implementation whose function is innermost in ``exc``'s traceback (pluggy called
    them, so only the traceback tells)."""
    by_code = {getattr(impl.function, "__code__", None): impl for impl in impls}
    found = None
    for frame, _ in traceback.walk_tb(exc.__traceback__):
        found = by_code.get(frame.f_code, found)
    return found


def _is_weight(value: Any) -> bool:
    return isinstance(value, (numbers.Real, decimal.Decimal)) and not isinstance(value, bool) \
        and math.isfinite(value) and value >= 0


class Hooks:
    def __init__(self, pm: pluggy.PluginManager):
        self.pm = pm

    def _answers(self, hook_name: str, kwargs: dict[str, Any], *, first: bool) -> list[tuple[Any, str | None]]:
        """The hook's non-None answers, each with the plugin that gave it, so that an error
        about an answer names the plugin (with several implementing a hook, the hook's name
        alone leaves the author guessing). Called in pluggy's order; with a wrapper among the
        implementations pluggy calls them, and the plugin goes unnamed."""
        caller = getattr(self.pm.hook, hook_name)
        impls = caller.get_hookimpls()
        if any(impl.hookwrapper or impl.wrapper for impl in impls):
            try:
                result = caller(**kwargs)
            except Exception as exc:
                if (impl := _raising_impl(exc, impls)) is not None:
                    _blame(exc, impl, hook_name)
                raise
            return [(result, None)] if first else [(answer, None) for answer in result]
        answers: list[tuple[Any, str | None]] = []
        for impl in reversed(impls):  # pluggy calls the last registered (and tryfirst) first
            try:
                answer = impl.function(*(kwargs[name] for name in impl.argnames))
            except Exception as exc:
                _blame(exc, impl, hook_name)
                raise
            if answer is not None:
                answers.append((answer, _plugin_label(impl)))
                if first:
                    break
        return answers

    def _call(self, hook_name: str, **kwargs: Any) -> None:
        """Call every implementation of a hook whose answers mean nothing."""
        self._answers(hook_name, kwargs, first=False)

    def blame(self, exc: BaseException) -> PluginFailure | None:
        """Which third-party plugin raised ``exc``: the one a hook call saw raise it, else the
        plugin whose module (or a module inside its package) is innermost in the traceback,
        e.g. a bot handler it registered. None when no plugin's code raised it, or a built-in
        plugin did (habitreward's own bug, even with a plugin's wrapper or call around it)."""
        if hasattr(exc, _FAILURE_ATTRIBUTE):  # a hook call saw who raised it (a built-in: no plugin)
            return plugin_failure(exc)
        modules = {_module_of(plugin): _label(self.pm.get_name(plugin), plugin)
                   for plugin in self.pm.get_plugins() if not _is_builtin(plugin)}
        found = None
        for frame, _ in traceback.walk_tb(exc.__traceback__):
            name = frame.f_globals.get("__name__", "")
            found = next((label for module, label in modules.items()
                          if name == module or name.startswith(module + ".")), found)
        return PluginFailure(found, None) if found else None

    def _first_answer(self, hook_name: str, **kwargs: Any) -> tuple[Any, str]:
        answers = self._answers(hook_name, kwargs, first=True)
        answer, plugin = answers[0] if answers else (None, None)
        return answer, f" (plugin {plugin!r})" if plugin else ""

    def compute_streak(self, habit: Habit, day: dt.date, previous_day: dt.date | None, previous_streak: int) -> int:
        streak, by = self._first_answer(
            "habitreward_compute_streak", habit=habit, day=day, previous_day=previous_day,
            previous_streak=previous_streak
        )
        if not isinstance(streak, numbers.Integral) or isinstance(streak, bool) or streak < 1:
            raise PluginError(f"habitreward_compute_streak answered {streak!r}{by}: a streak is a whole number"
                              " from 1 (the completion itself counts)")
        return int(streak)

    def odds_multiplier(self, habit: Habit, streak: int, settings: Settings, user: User, day: dt.date) -> float:
        multiplier, by = self._first_answer("habitreward_odds_multiplier", habit=habit, streak=streak,
                                            settings=settings, user=user, day=day)
        if not isinstance(multiplier, (numbers.Real, decimal.Decimal)) or isinstance(multiplier, bool) \
                or not (math.isfinite(multiplier) and multiplier >= 0):
            raise PluginError(f"habitreward_odds_multiplier answered {multiplier!r}{by}: a multiplier is a"
                              " finite number from 0")
        return float(multiplier)

    def weigh_rewards(self, candidates: Sequence[Candidate], multiplier: float) -> list[Candidate]:
        answer, by = self._first_answer("habitreward_weigh_rewards", candidates=candidates, multiplier=multiplier)
        weighted = list(answer)
        allowed = {c.reward.id for c in candidates}
        if not all(isinstance(c, Candidate) and c.reward.id in allowed for c in weighted):
            raise PluginError(f"habitreward_weigh_rewards answered a reward that is not one of the candidates{by}"
                              " (weigh them, do not add any)")
        # 0 leaves a reward out of this draw; a negative or endless weight was dropped without a word.
        odd = next((c.weight for c in weighted if not _is_weight(c.weight)), None)
        if odd is not None:
            raise PluginError(f"habitreward_weigh_rewards answered the weight {odd!r}{by}: a weight is a finite"
                              " number from 0")
        return weighted

    def draw_reward(self, candidates: Sequence[Candidate], rng: random.Random) -> Candidate | None:
        chosen, by = self._first_answer("habitreward_draw_reward", candidates=candidates, rng=rng)
        if chosen is None or chosen is NO_REWARD:
            return None
        # Only a candidate: another user's personal reward, a removed one or one waiting to be
        # claimed is out of the draw for a reason (privacy, a piece never silently lost).
        reward = getattr(chosen, "reward", None)
        if not isinstance(chosen, Candidate) or not any(c.reward.id == getattr(reward, "id", None)
                                                        for c in candidates):
            raise PluginError(f"habitreward_draw_reward answered {chosen!r}{by}, which is not one of the"
                              " candidates (the rewards this user may draw now)")
        return chosen

    def habit_completed(self, engine: Engine, event: HabitCompleted) -> tuple[Award, ...]:
        awards: list[Award] = []
        for answer, plugin in self._answers("habitreward_habit_completed", {"engine": engine, "event": event},
                                            first=False):
            if isinstance(answer, Award):
                awards.append(answer)
            elif isinstance(answer, (list, tuple)) and all(isinstance(a, Award) for a in answer):
                awards.extend(answer)
            elif answer is not None:  # a str is a Sequence too: it would become an award per letter
                by = f" (plugin {plugin!r})" if plugin else ""
                raise PluginError(f"habitreward_habit_completed answered {answer!r}{by}: an Award, a list of"
                                  " Awards or None")
        return tuple(awards)

    def completion_undone(self, engine: Engine, event: CompletionUndone) -> None:
        self._call("habitreward_completion_undone", engine=engine, event=event)

    def reward_claimed(self, engine: Engine, event: RewardClaimed) -> None:
        self._call("habitreward_reward_claimed", engine=engine, event=event)

    def streak_broken(self, engine: Engine, event: StreakBroken) -> None:
        self._call("habitreward_streak_broken", engine=engine, event=event)

    def user_deleted(self, engine: Engine, user: User) -> None:
        self._call("habitreward_user_deleted", engine=engine, user=user)

    def models(self) -> list[type]:
        """Every model registered by a plugin (core first), each once."""
        registered: list[type] = []

        def register(*models: type) -> None:
            for model in models:
                if model not in registered:
                    registered.append(model)

        self._call("habitreward_register_models", register=register)
        return registered

    def migration_sources(self) -> list[Any]:
        from habitreward.schema import MigrationSource

        sources: list[MigrationSource] = []

        def register(namespace: str, directory: str) -> None:
            sources.append(MigrationSource(namespace, Path(directory)))

        self._call("habitreward_register_migrations", register=register)
        return sources

    def register_commands(self, cli: click.Group) -> list[tuple[PluginFailure, Exception]]:
        """Let each plugin add its commands, one at a time: a third-party plugin whose hook
        raises loses the commands it added (it may have added half of them) and is returned with
        its exception, and the others' commands, like the built-in ones, stay usable. A built-in
        plugin's exception (habitreward's own bug) is raised."""
        hook_name = "habitreward_register_commands"
        impls = getattr(self.pm.hook, hook_name).get_hookimpls()
        if any(impl.hookwrapper or impl.wrapper for impl in impls):  # pluggy must call them all
            return self._register_commands_together(cli)
        failures: list[tuple[PluginFailure, Exception]] = []
        for impl in reversed(impls):  # pluggy's order
            before = dict(cli.commands)
            try:
                impl.function(*({"cli": cli}[name] for name in impl.argnames))
            except Exception as exc:
                _blame(exc, impl, hook_name)
                if (failure := plugin_failure(exc)) is None:
                    raise
                cli.commands = before
                failures.append((failure, exc))
        return failures

    def _register_commands_together(self, cli: click.Group) -> list[tuple[PluginFailure, Exception]]:
        before = dict(cli.commands)
        try:
            self._call("habitreward_register_commands", cli=cli)
        except Exception as exc:
            if (failure := plugin_failure(exc)) is None:
                raise
            cli.commands = before  # which plugin added what is unknown: none of theirs is kept
            return [(failure, exc)]
        return []

    def register_handlers(self, register: Callable[..., None], settings: Settings) -> None:
        self._call("habitreward_register_handlers", register=register, settings=settings)

    def match_habits(self, user: User, text: str, habits: Iterable[Habit]) -> Any:
        """The first matcher's MatchResult (or None), keeping only habits among ``habits``: a
        matcher cannot make anyone log another user's personal habit, in the bot or in
        ``habitreward match`` alike."""
        from habitreward.nlp.results import MatchResult

        habits = list(habits)
        result, by = self._first_answer("habitreward_match_habits", user=user, text=text, habits=habits)
        if result is None:
            return None
        if not isinstance(result, MatchResult):
            raise PluginError(f"habitreward_match_habits answered {result!r}{by}: a MatchResult"
                              " (habitreward.nlp) or None")
        visible = {h.id for h in habits}
        kept = tuple(m for m in result.matches if getattr(m.habit, "id", None) in visible)
        return result if len(kept) == len(result.matches) else dataclasses.replace(result, matches=kept)
