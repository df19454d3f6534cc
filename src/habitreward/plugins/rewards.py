"""Built-in plugin: the odds multiplier and the weighted reward draw (PRODUCT.md §3)."""

from __future__ import annotations

import random
from collections.abc import Sequence

from habitreward.draw import NO_REWARD, Candidate, weighted_choice
from habitreward.hookspecs import hookimpl
from habitreward.models import Habit
from habitreward.settings import Settings


def odds_multiplier(habit_weight: int, streak: int, rate: float, max_streak: int) -> float:
    """m = (habit weight / 10) x (1 + streak x rate), the streak capped at ``max_streak``."""
    return (habit_weight / 10) * (1 + min(max(streak, 0), max_streak) * rate)


@hookimpl(trylast=True)
def habitreward_odds_multiplier(habit: Habit, streak: int, settings: Settings) -> float:
    return odds_multiplier(
        habit.weight, streak, settings.streak_multiplier_rate, settings.streak_multiplier_max_streak
    )


@hookimpl(trylast=True)
def habitreward_weigh_rewards(candidates: Sequence[Candidate], multiplier: float) -> list[Candidate]:
    # Only real rewards are scaled: scaling "none" too would cancel the multiplier out.
    return [c if c.reward.is_nothing else c.with_weight(c.weight * multiplier) for c in candidates]


@hookimpl(trylast=True)
def habitreward_draw_reward(candidates: Sequence[Candidate], rng: random.Random) -> Candidate:
    return weighted_choice(candidates, rng) or NO_REWARD
