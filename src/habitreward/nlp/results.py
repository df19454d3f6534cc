"""What a matcher answers: the habits a message reports, each with how sure the matcher is."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from habitreward.models import Habit

MatchSource = Literal["exact", "alias", "fuzzy", "llm"]


@dataclass(frozen=True)
class HabitMatch:
    """One habit the message reports. ``confidence`` is 0..1; ``source`` says how it was found."""

    habit: Habit
    confidence: float
    source: MatchSource

    def as_dict(self) -> dict[str, Any]:
        return {
            "habit_id": self.habit.id,
            "habit": self.habit.name,
            "confidence": round(self.confidence, 3),
            "source": self.source,
        }


@dataclass(frozen=True)
class MatchResult:
    """The answer of ``engine.hooks.match_habits``.

    ``confident`` is True only when every match may be logged without asking
    the user; otherwise the matches are suggestions to confirm (and an empty
    list means "show the habit keyboard"). ``used_llm`` says whether an LLM
    was called for this message.
    """

    matches: tuple[HabitMatch, ...] = ()
    confident: bool = False
    used_llm: bool = False
    # Why the result is not confident (for logs and tests): "negation", "no match", "llm failed", ...
    reason: str = ""

    @property
    def habits(self) -> list[Habit]:
        return [m.habit for m in self.matches]

    def as_dict(self) -> dict[str, Any]:
        return {
            "matches": [m.as_dict() for m in self.matches],
            "confident": self.confident,
            "used_llm": self.used_llm,
            "reason": self.reason,
        }


EMPTY = MatchResult()
