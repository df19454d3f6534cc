"""What engine operations return: plain data for the CLI, the bot and plugins."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

from habitreward.events import Award
from habitreward.models import Habit, HabitLog, ProgressStatus, Reward, RewardProgress


class HabitListing(NamedTuple):
    """One habit of :meth:`~habitreward.engine.Engine.habit_listing`: its columns, no model."""

    id: int
    name: str
    weight: int
    category: str | None
    allowed_skip_days: int
    owner_telegram_id: int | None  # None: a shared habit
    active: bool


class UserListing(NamedTuple):
    """One user of :meth:`~habitreward.engine.Engine.user_listing`: its columns, no model."""

    telegram_id: int
    name: str
    active: bool
    is_admin: bool
    language: str
    timezone: str
    created_at: dt.datetime


class WaitingListing(NamedTuple):
    """One person of :meth:`~habitreward.engine.Engine.waiting_listing`: the person (their
    ``created_at``: when they registered, with the first message, which asked) and where their
    request to use the bot stands."""

    user: UserListing
    request: str  # "unsent" (no admin has it yet), "sending" (being sent) or "requested" (an admin has it)


class RewardListing(NamedTuple):
    """One reward of :meth:`~habitreward.engine.Engine.reward_listing`: its columns, no model."""

    id: int
    name: str
    weight: float
    type: str
    pieces_required: int
    piece_value: Decimal | None
    max_per_day: int  # 0: no limit
    owner_telegram_id: int | None  # None: a shared reward
    active: bool


class AliasListing(NamedTuple):
    """One habit of :meth:`~habitreward.engine.Engine.alias_listing` and its aliases, oldest first."""

    habit_id: int
    habit_name: str
    aliases: list[str]


@dataclass(frozen=True)
class CompletionResult:
    """What a completion did. ``already_done``: the day was logged before and nothing was drawn;
    ``streak``, ``multiplier`` and ``log`` are then the stored log's, ``backdated`` whether the day
    is before the user's today."""

    habit: Habit
    day: dt.date
    streak: int
    already_done: bool
    log: HabitLog
    reward: Reward | None = None  # a real reward whose piece was added; None for "no reward"
    progress: RewardProgress | None = None
    multiplier: float = 1.0
    backdated: bool = False
    awards: tuple[Award, ...] = ()

    @property
    def status(self) -> ProgressStatus | None:
        if self.reward is None or self.progress is None:
            return None
        return self.progress.status_for(self.reward.pieces_required)

    def as_dict(self) -> dict[str, Any]:
        return {
            "habit": self.habit.name,
            "date": self.day.isoformat(),
            "streak": self.streak,
            "already_done": self.already_done,
            "backdated": self.backdated,
            "reward": self.reward.name if self.reward else None,
            "pieces_earned": self.progress.pieces_earned if self.progress else None,
            "pieces_required": self.reward.pieces_required if self.reward else None,
            "status": self.status.value if self.status else None,
            "multiplier": round(self.multiplier, 6),
            "awards": [{"kind": a.kind, "reward": a.reward.name if a.reward else None, "message": a.message}
                       for a in self.awards],
        }


@dataclass(frozen=True)
class UndoResult:
    habit: Habit
    day: dt.date
    reward: Reward | None
    piece_taken_back: bool
    streak: int  # the habit's current streak after the undo

    def as_dict(self) -> dict[str, Any]:
        return {
            "habit": self.habit.name,
            "date": self.day.isoformat(),
            "reward": self.reward.name if self.reward else None,
            "piece_taken_back": self.piece_taken_back,
            "streak": self.streak,
        }


@dataclass(frozen=True)
class StreakInfo:
    habit: Habit
    streak: int  # 0 once broken
    last_day: dt.date | None
    done_today: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "habit": self.habit.name,
            "streak": self.streak,
            "last_completed": self.last_day.isoformat() if self.last_day else None,
            "done_today": self.done_today,
        }


@dataclass(frozen=True)
class HistoryEntry:
    log: HabitLog
    habit_name: str
    reward_name: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.log.id,
            "habit": self.habit_name,
            "completed_on": self.log.completed_on.isoformat(),
            "streak_count": self.log.streak_count,
            "reward": self.reward_name,
            "multiplier": round(self.log.total_weight_applied, 6),
            "timestamp": self.log.timestamp.isoformat() + "Z",
        }


@dataclass(frozen=True)
class OddsRow:
    reward: Reward | None  # None: "no reward"
    probability: float
    weight: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "reward": self.reward.name if self.reward else None,
            "probability": round(self.probability, 6),
            "weight": round(self.weight, 6),
        }


#: Why a reward is out of a draw (``Odds.excluded``): achieved and waiting to be claimed, or it
#: came out ``max_per_day`` times on that day already.
EXCLUDED_ACHIEVED = "achieved"
EXCLUDED_TODAY = "max_per_day"


@dataclass(frozen=True)
class Odds:
    """The chances of the next completion of ``habit``: on ``day``, the user's today, or tomorrow
    when the habit is ``done_today`` (a second completion today draws nothing). ``streak`` and
    ``multiplier`` are the ones that completion would have."""

    habit: Habit
    streak: int
    multiplier: float
    rows: tuple[OddsRow, ...] = field(default_factory=tuple)
    excluded: tuple[tuple[Reward, str], ...] = ()  # (reward, EXCLUDED_*) left out of the draw
    day: dt.date | None = None
    done_today: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "habit": self.habit.name,
            "for_day": self.day.isoformat() if self.day else None,
            "done_today": self.done_today,
            "streak": self.streak,
            "multiplier": round(self.multiplier, 6),
            "rewards": [row.as_dict() for row in self.rows],
            "excluded": [{"reward": reward.name, "reason": reason} for reward, reason in self.excluded],
        }


@dataclass(frozen=True)
class ProgressEntry:
    reward: Reward
    pieces_earned: int
    status: ProgressStatus
    times_claimed: int

    @property
    def pieces_required(self) -> int:
        return self.reward.pieces_required

    def as_dict(self) -> dict[str, Any]:
        value: Decimal | None = self.reward.piece_value
        return {
            "reward": self.reward.name,
            "pieces_earned": self.pieces_earned,
            "pieces_required": self.reward.pieces_required,
            "status": self.status.value,
            "times_claimed": self.times_claimed,
            "piece_value": str(value) if value is not None else None,
        }
