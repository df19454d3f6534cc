"""The weighted reward draw, free of the database so it is easy to reason about and test."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from habitreward.models import Reward


@dataclass(frozen=True)
class Candidate:
    """A reward that may come out of a draw, with its effective weight."""

    reward: Reward
    weight: float

    def with_weight(self, weight: float) -> Candidate:
        return replace(self, weight=weight)


class _NoReward:
    """The outcome "no reward this time" (also what an empty draw gives)."""

    reward = None
    weight = 0.0

    def __repr__(self) -> str:
        return "NO_REWARD"


NO_REWARD = _NoReward()


def weighted_choice(candidates: Sequence[Candidate], rng: random.Random) -> Candidate | None:
    """One candidate with probability weight / total; ``None`` when no weight is left."""
    pool = [c for c in candidates if c.weight > 0 and math.isfinite(c.weight)]
    total = math.fsum(c.weight for c in pool)
    if total <= 0:
        return None
    point = rng.random() * total
    for candidate in pool:
        point -= candidate.weight
        if point < 0:
            return candidate
    return pool[-1]  # rounding left a sliver at the end


def probabilities(candidates: Sequence[Candidate]) -> list[tuple[Candidate, float]]:
    """Each candidate with its chance of being drawn."""
    pool = [c for c in candidates if c.weight > 0 and math.isfinite(c.weight)]
    total = math.fsum(c.weight for c in pool)
    if total <= 0:
        return []
    return [(c, c.weight / total) for c in pool]
