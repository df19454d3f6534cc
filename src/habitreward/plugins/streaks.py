"""Built-in plugin: the streak rule (PRODUCT.md §3)."""

from __future__ import annotations

import datetime as dt

from habitreward.hookspecs import hookimpl
from habitreward.models import Habit


def next_streak(previous_day: dt.date | None, previous_streak: int, day: dt.date, allowed_skip_days: int) -> int:
    """Continue the streak when at most ``allowed_skip_days`` days were missed in between."""
    if previous_day is None or previous_streak <= 0:
        return 1
    missed = (day - previous_day).days - 1
    if 0 <= missed <= allowed_skip_days:
        return previous_streak + 1
    return 1


@hookimpl(trylast=True)
def habitreward_compute_streak(
    habit: Habit, day: dt.date, previous_day: dt.date | None, previous_streak: int
) -> int:
    return next_streak(previous_day, previous_streak, day, habit.allowed_skip_days)
