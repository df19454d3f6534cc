"""A small typed facade over the plugin hooks, so the core never scatters ``pm.hook.x`` calls."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

from habitreward.draw import NO_REWARD, Candidate
from habitreward.events import Award, CompletionUndone, HabitCompleted, RewardClaimed, StreakBroken

if TYPE_CHECKING:
    import click

    from habitreward.engine import Engine
    from habitreward.models import Habit, User
    from habitreward.settings import Settings


class Hooks:
    def __init__(self, pm: pluggy.PluginManager):
        self.pm = pm

    def compute_streak(self, habit: Habit, day: dt.date, previous_day: dt.date | None, previous_streak: int) -> int:
        return int(
            self.pm.hook.habitreward_compute_streak(
                habit=habit, day=day, previous_day=previous_day, previous_streak=previous_streak
            )
        )

    def odds_multiplier(self, habit: Habit, streak: int, settings: Settings) -> float:
        return float(self.pm.hook.habitreward_odds_multiplier(habit=habit, streak=streak, settings=settings))

    def weigh_rewards(self, candidates: Sequence[Candidate], multiplier: float) -> list[Candidate]:
        return list(self.pm.hook.habitreward_weigh_rewards(candidates=candidates, multiplier=multiplier))

    def draw_reward(self, candidates: Sequence[Candidate], rng: random.Random) -> Candidate | None:
        chosen = self.pm.hook.habitreward_draw_reward(candidates=candidates, rng=rng)
        return None if chosen is None or chosen is NO_REWARD else chosen

    def habit_completed(self, engine: Engine, event: HabitCompleted) -> tuple[Award, ...]:
        awards: list[Award] = []
        for answer in self.pm.hook.habitreward_habit_completed(engine=engine, event=event):
            if isinstance(answer, Award):
                awards.append(answer)
            elif answer:
                awards.extend(answer)
        return tuple(awards)

    def completion_undone(self, engine: Engine, event: CompletionUndone) -> None:
        self.pm.hook.habitreward_completion_undone(engine=engine, event=event)

    def reward_claimed(self, engine: Engine, event: RewardClaimed) -> None:
        self.pm.hook.habitreward_reward_claimed(engine=engine, event=event)

    def streak_broken(self, engine: Engine, event: StreakBroken) -> None:
        self.pm.hook.habitreward_streak_broken(engine=engine, event=event)

    def user_deleted(self, engine: Engine, user: User) -> None:
        self.pm.hook.habitreward_user_deleted(engine=engine, user=user)

    def models(self) -> list[type]:
        """Every model registered by a plugin (core first), each once."""
        registered: list[type] = []

        def register(*models: type) -> None:
            for model in models:
                if model not in registered:
                    registered.append(model)

        self.pm.hook.habitreward_register_models(register=register)
        return registered

    def migration_sources(self) -> list[Any]:
        from habitreward.schema import MigrationSource

        sources: list[MigrationSource] = []

        def register(namespace: str, directory: str) -> None:
            sources.append(MigrationSource(namespace, Path(directory)))

        self.pm.hook.habitreward_register_migrations(register=register)
        return sources

    def register_commands(self, cli: click.Group) -> None:
        self.pm.hook.habitreward_register_commands(cli=cli)

    def register_handlers(self, register: Callable[..., None], settings: Settings) -> None:
        self.pm.hook.habitreward_register_handlers(register=register, settings=settings)

    def match_habits(self, user: User, text: str, habits: Iterable[Habit]) -> Any:
        return self.pm.hook.habitreward_match_habits(user=user, text=text, habits=list(habits))
