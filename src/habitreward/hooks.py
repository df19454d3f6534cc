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


#: Checks an implementation's non-None answer, ``by`` naming who gave it (`` (plugin 'x')``):
#: raises PluginError, else returns the answer to pass on.
_Check = Callable[[Any, str], Any]

#: The mark of a PluginError habitreward's own check raised: not to be blamed on a plugin whose
#: wrapper it passed through (the message names the plugin that answered).
_CHECKED_ANSWER = "answer"


def _by(impl: Any) -> str:
    return f" (plugin {_plugin_label(impl)!r})"


def _wrapped_by(wrappers: Sequence[Any]) -> str:
    """How an error about what the wrappers returned names them, outermost first."""
    labels = [_plugin_label(impl) for impl in reversed(wrappers)]
    if len(labels) == 1:
        return f" (plugin {labels[0]!r}, which wraps the hook)"
    return f" (one of the plugins wrapping the hook: {', '.join(repr(label) for label in labels)})"


def _stand_in(impl: Any, hook_name: str, kwargs: dict[str, Any], check: _Check) -> Callable[[], Any]:
    """What pluggy calls in ``impl``'s place under a wrapper: ``impl`` with the call's arguments
    (the stand-in takes none, so pluggy hands it none), its exception blamed on its plugin, its
    answer checked and named after it."""

    def stand_in() -> Any:
        try:
            answer = impl.function(*(kwargs[name] for name in impl.argnames))
        except Exception as exc:
            _blame(exc, impl, hook_name)
            raise
        if answer is None:
            return None
        try:
            return check(answer, _by(impl))
        except PluginError as exc:
            setattr(exc, _FAILURE_ATTRIBUTE, _CHECKED_ANSWER)
            raise

    return stand_in


class Hooks:
    def __init__(self, pm: pluggy.PluginManager):
        self.pm = pm

    def _answers(self, hook_name: str, kwargs: dict[str, Any], *, first: bool,
                 check: _Check | None = None) -> list[tuple[Any, str]]:
        """The hook's non-None answers, each with how an error about it names the plugin that gave
        it (`` (plugin 'x')``): with several implementing a hook, the hook's name alone leaves the
        author guessing. Called one by one in pluggy's order; with a wrapper among the
        implementations, see :meth:`_wrapped_answers` (``check`` is for that case)."""
        caller = getattr(self.pm.hook, hook_name)
        impls = caller.get_hookimpls()
        if any(impl.hookwrapper or impl.wrapper for impl in impls):
            return self._wrapped_answers(hook_name, impls, kwargs, first=first, check=check)
        answers: list[tuple[Any, str]] = []
        for impl in reversed(impls):  # pluggy calls the last registered (and tryfirst) first
            try:
                answer = impl.function(*(kwargs[name] for name in impl.argnames))
            except Exception as exc:
                _blame(exc, impl, hook_name)
                raise
            if answer is not None:
                answers.append((answer, _by(impl)))
                if first:
                    break
        return answers

    def _wrapped_answers(self, hook_name: str, impls: Sequence[Any], kwargs: dict[str, Any], *, first: bool,
                         check: _Check | None) -> list[tuple[Any, str]]:
        """A wrapper's code runs around the other implementations, is thrown their exceptions and
        may change their answer, as pluggy documents: so pluggy calls the wrappers, and each of the
        others through a stand-in of ours (``call_extra`` on a hook caller without their plugins),
        in pluggy's order. A stand-in checks its implementation's answer as it is given, naming its
        plugin (a wrapper is handed only answers that keep the contract); what the wrappers return
        is then checked by the caller, naming them."""
        wrappers = [impl for impl in impls if impl.hookwrapper or impl.wrapper]
        others = [impl for impl in impls if not (impl.hookwrapper or impl.wrapper)]
        outer = self.pm.subset_hook_caller(hook_name, [impl.plugin for impl in others])
        if check is None or [id(impl) for impl in outer.get_hookimpls()] != [id(impl) for impl in wrappers]:
            # No answer to check, or a plugin that both wraps the hook and implements it (pluggy's
            # specname): pluggy calls them all, and an answer goes unnamed.
            outer, stand_ins, by = getattr(self.pm.hook, hook_name), [], ""
        else:
            stand_ins, by = [_stand_in(impl, hook_name, kwargs, check) for impl in others], _wrapped_by(wrappers)
        try:
            # call_extra puts the stand-ins after the plugins' own (here: none) in the order given,
            # and before the wrappers: pluggy calls them in reverse, as it would the implementations.
            result = outer.call_extra(stand_ins, kwargs)
        except Exception as exc:
            if (impl := _raising_impl(exc, impls)) is not None:
                _blame(exc, impl, hook_name)
            raise
        if first:
            return [(result, by)]
        if check is None:  # answers that mean nothing (an event's): a wrapper that returns none is no error
            return []
        if not isinstance(result, list):  # `yield` without `return (yield)`: None, iterated as the answers
            raise PluginError(f"{hook_name} answered {result!r}{_wrapped_by(wrappers)}: a wrapper of it returns"
                              " the list of answers it is handed at its yield (return (yield)), changed or not")
        return [(answer, by) for answer in result]

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

    def _first_answer(self, hook_name: str, check: _Check, **kwargs: Any) -> tuple[Any, str]:
        answers = self._answers(hook_name, kwargs, first=True, check=check)
        return answers[0] if answers else (None, "")

    def compute_streak(self, habit: Habit, day: dt.date, previous_day: dt.date | None, previous_streak: int) -> int:
        streak, by = self._first_answer(
            "habitreward_compute_streak", _check_streak, habit=habit, day=day, previous_day=previous_day,
            previous_streak=previous_streak
        )
        return int(_check_streak(streak, by))

    def odds_multiplier(self, habit: Habit, streak: int, settings: Settings, user: User, day: dt.date) -> float:
        multiplier, by = self._first_answer("habitreward_odds_multiplier", _check_multiplier, habit=habit,
                                            streak=streak, settings=settings, user=user, day=day)
        return float(_check_multiplier(multiplier, by))

    def weigh_rewards(self, candidates: Sequence[Candidate], multiplier: float) -> list[Candidate]:
        check = _weights_check(candidates)
        answer, by = self._first_answer("habitreward_weigh_rewards", check, candidates=candidates,
                                        multiplier=multiplier)
        return check(answer, by)

    def draw_reward(self, candidates: Sequence[Candidate], rng: random.Random) -> Candidate | None:
        check = _drawn_check(candidates)
        chosen, by = self._first_answer("habitreward_draw_reward", check, candidates=candidates, rng=rng)
        if chosen is None or chosen is NO_REWARD:
            return None
        return check(chosen, by)

    def habit_completed(self, engine: Engine, event: HabitCompleted) -> tuple[Award, ...]:
        awards: list[Award] = []
        for answer, by in self._answers("habitreward_habit_completed", {"engine": engine, "event": event},
                                        first=False, check=_check_awards):
            if answer is not None:
                _check_awards(answer, by)
                awards.extend([answer] if isinstance(answer, Award) else answer)
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
        habits = list(habits)
        result, by = self._first_answer("habitreward_match_habits", _check_match, user=user, text=text,
                                        habits=habits)
        if result is None:
            return None
        _check_match(result, by)
        visible = {h.id for h in habits}
        kept = tuple(m for m in result.matches if getattr(m.habit, "id", None) in visible)
        return result if len(kept) == len(result.matches) else dataclasses.replace(result, matches=kept)


# --- what each hook may answer (each check raises PluginError naming the hook and ``by``, the
# plugin that answered, else returns the answer to go on with) ---------------------------------


def _check_streak(streak: Any, by: str) -> Any:
    if not isinstance(streak, numbers.Integral) or isinstance(streak, bool) or streak < 1:
        raise PluginError(f"habitreward_compute_streak answered {streak!r}{by}: a streak is a whole number"
                          " from 1 (the completion itself counts)")
    return streak


def _check_multiplier(multiplier: Any, by: str) -> Any:
    if not isinstance(multiplier, (numbers.Real, decimal.Decimal)) or isinstance(multiplier, bool) \
            or not (math.isfinite(multiplier) and multiplier >= 0):
        raise PluginError(f"habitreward_odds_multiplier answered {multiplier!r}{by}: a multiplier is a"
                          " finite number from 0")
    return multiplier


def _weights_check(candidates: Sequence[Candidate]) -> Callable[[Any, str], list[Candidate]]:
    allowed = {c.reward.id for c in candidates}

    def check(answer: Any, by: str) -> list[Candidate]:
        try:
            weighted = list(answer)
        except TypeError:
            raise PluginError(f"habitreward_weigh_rewards answered {answer!r}{by}: the candidates, each with its"
                              " weight") from None
        if not all(isinstance(c, Candidate) and c.reward.id in allowed for c in weighted):
            raise PluginError(f"habitreward_weigh_rewards answered a reward that is not one of the candidates{by}"
                              " (weigh them, do not add any)")
        # 0 leaves a reward out of this draw; a negative or endless weight was dropped without a word.
        odd = next((c.weight for c in weighted if not _is_weight(c.weight)), None)
        if odd is not None:
            raise PluginError(f"habitreward_weigh_rewards answered the weight {odd!r}{by}: a weight is a finite"
                              " number from 0")
        return weighted

    return check


def _drawn_check(candidates: Sequence[Candidate]) -> _Check:
    def check(chosen: Any, by: str) -> Any:
        if chosen is NO_REWARD:
            return chosen
        # Only a candidate: another user's personal reward, a removed one or one waiting to be
        # claimed is out of the draw for a reason (privacy, a piece never silently lost).
        reward = getattr(chosen, "reward", None)
        if not isinstance(chosen, Candidate) or not any(c.reward.id == getattr(reward, "id", None)
                                                        for c in candidates):
            raise PluginError(f"habitreward_draw_reward answered {chosen!r}{by}, which is not one of the"
                              " candidates (the rewards this user may draw now)")
        return chosen

    return check


def _check_awards(answer: Any, by: str) -> Any:
    # a str is a Sequence too: it would become an award per letter
    if not isinstance(answer, Award) and not (isinstance(answer, (list, tuple))
                                              and all(isinstance(a, Award) for a in answer)):
        raise PluginError(f"habitreward_habit_completed answered {answer!r}{by}: an Award, a list of"
                          " Awards or None")
    return answer


def _check_match(result: Any, by: str) -> Any:
    from habitreward.nlp.results import MatchResult

    if not isinstance(result, MatchResult):
        raise PluginError(f"habitreward_match_habits answered {result!r}{by}: a MatchResult"
                          " (habitreward.nlp) or None")
    return result
