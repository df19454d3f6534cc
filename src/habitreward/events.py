"""Domain events handed to plugins. Small, frozen, and free of Telegram."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from habitreward.models import Habit, HabitLog, Reward, RewardProgress, User


@dataclass(frozen=True)
class Award:
    """Something a plugin granted on top of the draw (a bonus piece, a badge, ...)."""

    kind: str
    reward: Reward | None = None
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HabitCompleted:
    user: User
    habit: Habit
    log: HabitLog
    streak: int
    multiplier: float
    reward: Reward | None
    progress: RewardProgress | None
    day: dt.date
    backdated: bool


@dataclass(frozen=True)
class CompletionUndone:
    user: User
    habit: Habit
    day: dt.date
    reward: Reward | None
    piece_taken_back: bool


@dataclass(frozen=True)
class RewardClaimed:
    user: User
    reward: Reward
    progress: RewardProgress


@dataclass(frozen=True)
class StreakBroken:
    """A completion started a new streak after a longer one had lapsed."""

    user: User
    habit: Habit
    previous_streak: int
    last_day: dt.date
    day: dt.date
