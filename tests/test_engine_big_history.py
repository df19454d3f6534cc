"""A bot with many users and a long history: a person's undo and claim read that person's rows,
not everybody's logs of a shared habit or reward (found on a database of 10,000 users and two
years of logs, where they took up to 3 s).

The work is counted in SQLite virtual-machine steps (deterministic, unlike time): SQLite plans
without statistics, so the plan these tests see is the one an operator's database gets.
PostgreSQL plans by its statistics, which a test database of this size does not resemble; its
plans were checked on the big database (see docs/performance.md).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from habitreward.models import HabitLog, RewardProgress, User

#: Logs of other people, recorded after the person's own: what a walk over a shared habit's or
#: reward's index, newest first, passes before it reaches the person's log.
OTHER_LOGS = 20_000


def _steps(engine: Any, action: Callable[[], Any]) -> int:
    """SQLite VM instructions (in thousands) that ``action`` runs on the engine's connection."""
    count = [0]

    def tick() -> int:
        count[0] += 1
        return 0

    with engine.session():
        connection = engine.db.connection()
        connection.set_progress_handler(tick, 1000)
        try:
            action()
        finally:
            connection.set_progress_handler(None, 0)
    return count[0]


def _others_log(engine: Any, day: dt.date, *, habit: Any, reward: Any = None, cycle: int | None = None) -> None:
    """OTHER_LOGS completions of ``habit`` by 200 other people (100 days each), newest ids last."""
    with engine.session(), engine.db.atomic():
        first = User.select().count() + 1000
        User.insert_many([{"telegram_id": first + n, "name": f"P{n}", "active": True} for n in range(200)]).execute()
        people = [u.id for u in User.select(User.id).where(User.telegram_id >= first)]
        rows = [{"user": person, "habit": habit.id, "reward": reward.id if reward else None,
                 "got_reward": reward is not None, "habit_weight": 10, "total_weight_applied": 1.0,
                 "completed_on": day - dt.timedelta(days=n), "reward_cycle": cycle}
                for person in people for n in range(OTHER_LOGS // len(people))]
        for start in range(0, len(rows), 500):
            HabitLog.insert_many(rows[start:start + 500]).execute()


@pytest.fixture
def sqlite_only(backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("counts SQLite's steps; PostgreSQL plans by statistics a test database does not have")


@pytest.mark.usefixtures("sqlite_only")
def test_undoing_a_shared_habit_reads_the_persons_logs_not_everybodys(engine):
    ann = engine.add_user(1, "Ann", active=True)
    water = engine.add_habit("Water")  # shared: every user's logs of it share one index
    engine.complete(ann, water)
    engine.undo(ann, water)
    engine.complete(ann, water)
    alone = _steps(engine, lambda: engine.undo(ann, water))
    engine.complete(ann, water)
    _others_log(engine, engine.today(ann), habit=water)

    crowded = _steps(engine, lambda: engine.undo(ann, water))

    assert crowded <= alone + 5, f"undo ran {crowded}k steps among {OTHER_LOGS} other logs, {alone}k alone"
    with engine.session():
        assert not HabitLog.select().where(HabitLog.user == ann.id).exists()


@pytest.mark.usefixtures("sqlite_only")
def test_a_claim_that_keeps_surplus_pieces_reads_the_persons_logs_not_everybodys(engine):
    ann = engine.add_user(1, "Ann", active=True)
    star = engine.add_reward("Star", weight=1000, pieces_required=3, max_per_day=0)
    habits = [engine.add_habit(name) for name in ("Run", "Read", "Swim")]

    def earn() -> None:
        for habit in habits:
            result = engine.complete(ann, habit)
            assert result.reward is not None and result.reward.id == star.id

    def claim() -> None:
        lowered = engine.edit_reward(star, pieces_required=2)  # an admin lowered it: one piece is surplus
        engine.claim(ann, lowered)

    earn()
    alone = _steps(engine, claim)
    engine.edit_reward(star, pieces_required=3)
    with engine.session():
        HabitLog.delete().where(HabitLog.user == ann.id).execute()
        RewardProgress.delete().where(RewardProgress.user == ann.id).execute()
    earn()
    _others_log(engine, engine.today(ann), habit=habits[0], reward=star, cycle=0)

    crowded = _steps(engine, claim)

    assert crowded <= alone + 5, f"the claim ran {crowded}k steps among {OTHER_LOGS} other logs, {alone}k alone"
    with engine.session():
        progress = RewardProgress.get((RewardProgress.user == ann.id) & (RewardProgress.reward == star.id))
        assert (progress.pieces_earned, progress.times_claimed, progress.claimed) == (1, 1, False)
        newest = HabitLog.select().where(HabitLog.user == ann.id).order_by(HabitLog.id.desc()).first()
        assert newest.reward_cycle == 1  # the kept piece is the newest one, in the new cycle
