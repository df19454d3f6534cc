"""A scripted 60-day scenario with exact expected streaks (issue 2, Must show).

Users in UTC+14 and UTC-10 log around their local midnight, a Berlin user logs across
the spring DST switch, grace days keep a streak or do not, a backdated day joins two
runs and undo takes completions back. The expected numbers are written out by hand.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

START = dt.date(2026, 3, 1)  # day 1; the DST switch in Berlin is on 2026-03-29 (day 29)


def day(n: int) -> dt.date:
    return START + dt.timedelta(days=n - 1)


def at_local(engine, clock, user, n: int, hh: int, mm: int) -> dt.datetime:
    """Move the clock to local time hh:mm of day n for ``user``; return that instant in UTC."""
    local = dt.datetime.combine(day(n), dt.time(hh, mm), tzinfo=ZoneInfo(user.timezone))
    moment = local.astimezone(dt.timezone.utc)
    clock.set(moment)
    return moment


@pytest.fixture
def world(engine, clock):
    clock.set(dt.datetime(2026, 2, 20, tzinfo=dt.timezone.utc))
    ann = engine.add_user(1, "Ann", active=True, timezone="Pacific/Kiritimati")  # UTC+14
    bob = engine.add_user(2, "Bob", active=True, timezone="Pacific/Honolulu")  # UTC-10
    cara = engine.add_user(3, "Cara", active=True, timezone="Europe/Berlin")  # CET -> CEST
    run = engine.add_habit("Run")  # no grace
    read = engine.add_habit("Read", allowed_skip_days=2)
    return engine, clock, ann, bob, cara, run, read


def test_utc_plus_14_around_local_midnight(world):
    engine, clock, ann, _, _, run, _ = world
    # Days 1-30: odd days at 00:05, even days at 23:55 local. In UTC+14, 23:55 on day n and
    # 00:05 on day n+1 fall on the same UTC date: a UTC-based day would see a double.
    for n in range(1, 31):
        at_local(engine, clock, ann, n, 0 if n % 2 else 23, 5 if n % 2 else 55)
        result = engine.complete(ann, run)
        assert (result.day, result.streak, result.already_done) == (day(n), n, False)
    # A second completion on the same local day: "already done", nothing drawn or logged.
    at_local(engine, clock, ann, 30, 23, 59)
    again = engine.complete(ann, run)
    assert again.already_done and again.streak == 30 and again.reward is None
    # Day 31 missed: no grace on Run, so the streak shows 0 on day 32 and restarts at 1.
    at_local(engine, clock, ann, 32, 8, 0)
    assert [s.streak for s in engine.streaks(ann) if s.habit.name == "Run"] == [0]
    assert engine.complete(ann, run).streak == 1
    streaks = []
    for n in range(33, 61):
        at_local(engine, clock, ann, n, 23, 59)
        streaks.append(engine.complete(ann, run).streak)
    assert streaks == list(range(2, 30))
    assert len(engine.history(ann, limit=100)) == 59


def test_utc_minus_10_around_local_midnight(world):
    engine, clock, _, bob, _, run, _ = world
    # 23:50 on day n is 09:50 UTC on day n+1; 00:05 on day n+1 is 10:05 UTC on day n+1.
    at_local(engine, clock, bob, 10, 23, 50)
    first = engine.complete(bob, run)
    at_local(engine, clock, bob, 11, 0, 5)
    second = engine.complete(bob, run)
    assert (first.day, first.streak) == (day(10), 1)
    assert (second.day, second.streak, second.already_done) == (day(11), 2, False)
    # The time the user acted decides the day, not when the message is processed.
    sent = at_local(engine, clock, bob, 12, 23, 58)
    clock.advance(minutes=10)  # processed at 00:08 on day 13
    late = engine.complete(bob, run, at=sent)
    assert (late.day, late.streak) == (day(12), 3)
    assert engine.complete(bob, run).day == day(13)


def test_dst_switch_in_berlin(world):
    engine, clock, _, _, cara, run, _ = world
    # 00:30 local on day 30 (CEST, UTC+2) is 22:30 UTC on day 29: a stale CET offset
    # would put it on day 29 and call it a double.
    expected = []
    for n, (hh, mm) in zip(range(27, 33), [(23, 30), (0, 30), (0, 30), (0, 30), (23, 59), (0, 1)]):
        at_local(engine, clock, cara, n, hh, mm)
        result = engine.complete(cara, run)
        expected.append((result.day, result.streak, result.already_done))
    assert expected == [(day(n), n - 26, False) for n in range(27, 33)]


def test_grace_days_inside_and_outside(world):
    engine, clock, ann, _, _, _, read = world
    done = {}
    for n in (1, 2, 5, 6, 9, 13, 14):  # Read allows 2 missed days
        at_local(engine, clock, ann, n, 12, 0)
        done[n] = engine.complete(ann, read).streak
    # 2 -> 5 misses 2 days (kept), 6 -> 9 misses 2 (kept), 9 -> 13 misses 3 (broken).
    assert done == {1: 1, 2: 2, 5: 3, 6: 4, 9: 5, 13: 1, 14: 2}
    at_local(engine, clock, ann, 17, 12, 0)  # days 15, 16 missed: still within grace
    assert engine.current_streak(ann, read) == 2
    at_local(engine, clock, ann, 18, 12, 0)  # 15, 16, 17 missed: broken, shows 0
    assert engine.current_streak(ann, read) == 0


def test_backdated_day_joins_two_runs_and_undo(world):
    engine, clock, ann, _, _, run, _ = world
    for n in (40, 41, 43, 44):
        at_local(engine, clock, ann, n, 9, 0)
        engine.complete(ann, run)

    def stored():
        return {e.log.completed_on: e.log.streak_count for e in engine.history(ann, limit=50)}

    assert stored() == {day(40): 1, day(41): 2, day(43): 1, day(44): 2}
    at_local(engine, clock, ann, 44, 20, 0)
    backdated = engine.complete(ann, run, day=day(42))
    assert backdated.backdated and backdated.streak == 3
    assert stored() == {day(40): 1, day(41): 2, day(42): 3, day(43): 4, day(44): 5}
    assert engine.current_streak(ann, run) == 5

    # Undo takes back the most recent entry (the backdated day): the runs split again.
    undone = engine.undo(ann, run)
    assert undone.day == day(42) and undone.streak == 2
    assert stored() == {day(40): 1, day(41): 2, day(43): 1, day(44): 2}

    engine.complete(ann, run, day=day(42))
    at_local(engine, clock, ann, 45, 9, 0)
    assert engine.complete(ann, run).streak == 6
    undone = engine.undo(ann, run)  # day 45's completion
    assert undone.day == day(45)
    assert engine.current_streak(ann, run) == 5  # day 44 is yesterday: not broken
    assert stored() == {day(40): 1, day(41): 2, day(42): 3, day(43): 4, day(44): 5}


def test_backdating_limits(world):
    from habitreward.errors import ValidationError

    engine, clock, ann, _, _, run, _ = world
    at_local(engine, clock, ann, 20, 10, 0)
    assert engine.complete(ann, run, day=day(13)).streak == 1  # 7 days back: allowed
    with pytest.raises(ValidationError, match="more than 7 days"):
        engine.complete(ann, run, day=day(12))
    with pytest.raises(ValidationError, match="future"):
        engine.complete(ann, run, day=day(21))
    # Never before the habit existed (added on 2026-02-20 UTC, 2026-02-21 in UTC+14).
    clock.set(dt.datetime(2026, 2, 22, 12, tzinfo=dt.timezone.utc))
    late_habit = engine.add_habit("Swim")
    clock.advance(days=3)
    with pytest.raises(ValidationError, match="before the habit"):
        engine.complete(ann, late_habit, day=dt.date(2026, 2, 22))
    assert engine.complete(ann, late_habit, day=dt.date(2026, 2, 23)).streak == 1


def test_two_engines_in_one_process_each_use_their_own_database(tmp_path):
    from habitreward.testing.engines import make_engine

    first = make_engine(f"sqlite:///{tmp_path / 'first.db'}", load_entry_points=False)
    second = make_engine(f"sqlite:///{tmp_path / 'second.db'}", load_entry_points=False)
    first.add_user(1, "In the first")
    second.add_user(2, "In the second")
    assert [u.name for u in first.list_users()] == ["In the first"]
    assert [u.name for u in second.list_users()] == ["In the second"]
    first.close()
    second.close()
