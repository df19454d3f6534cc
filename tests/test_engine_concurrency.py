"""Simultaneous completions (issue 2, Must show): one log and at most one piece, with threads
on every backend and with two processes on PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading

import pytest

from habitreward.models import HabitLog, RewardProgress


def test_eight_threads_complete_the_same_habit_once(engine):
    user = engine.add_user(1, "Ann", active=True)
    habit = engine.add_habit("Run")
    engine.add_reward("Coffee", weight=1000, pieces_required=50, max_per_day=0)
    barrier = threading.Barrier(8)
    results, errors = [], []

    def worker() -> None:
        try:
            barrier.wait()
            results.append(engine.complete(user, habit))
        except Exception as exc:  # surfaced below; a thread must not swallow it
            errors.append(exc)
        finally:
            engine.db.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sorted(r.already_done for r in results) == [False] + [True] * 7
    with engine.session():
        assert HabitLog.select().count() == 1
        assert RewardProgress.get().pieces_earned == 1


def test_threads_completing_different_habits_respect_max_per_day(engine):
    user = engine.add_user(1, "Ann", active=True)
    habits = [engine.add_habit(f"Habit {i}") for i in range(8)]
    engine.add_reward("Coffee", weight=1000, pieces_required=50, max_per_day=1)
    engine.add_reward("Nothing", weight=1, type="none")
    barrier = threading.Barrier(8)
    results, errors = [], []

    def worker(habit) -> None:  # noqa: ANN001
        try:
            barrier.wait()
            results.append(engine.complete(user, habit))
        except Exception as exc:
            errors.append(exc)
        finally:
            engine.db.close()

    threads = [threading.Thread(target=worker, args=(h,)) for h in habits]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert len(results) == 8 and not any(r.already_done for r in results)
    assert sum(1 for r in results if r.reward is not None) == 1
    with engine.session():
        assert RewardProgress.get().pieces_earned == 1


WORKER = textwrap.dedent(
    """
    import json, sys, time
    from habitreward.testing.engines import make_engine
    url, start_at = sys.argv[1], float(sys.argv[2])
    engine = make_engine(url, load_entry_points=False, upgrade=False)
    user = engine.get_user(1)
    habits = engine.habits_for(user)
    while time.time() < start_at:
        time.sleep(0.001)
    out = []
    for habit in habits:
        r = engine.complete(user, habit)
        out.append({"habit": habit.name, "already": r.already_done,
                    "reward": r.reward.name if r.reward else None})
    print(json.dumps(out))
    """
)


@pytest.mark.postgres_only
def test_two_processes_on_postgres(engine, db_url):
    import time

    user = engine.add_user(1, "Ann", active=True)
    for i in range(30):
        engine.add_habit(f"Habit {i}")
    engine.add_reward("Coffee", weight=1000, pieces_required=100, max_per_day=1)
    engine.add_reward("Tea", weight=1, pieces_required=100, max_per_day=0)
    engine.close()
    start_at = time.time() + 2.0  # both processes start completing at the same moment
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER, db_url, str(start_at)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        outputs.append(json.loads(out))
    fresh = [row for output in outputs for row in output if not row["already"]]
    assert sorted(row["habit"] for row in fresh) == sorted(f"Habit {i}" for i in range(30))
    assert sum(1 for row in fresh if row["reward"] == "Coffee") == 1
    with engine.session():
        assert HabitLog.select().where(HabitLog.user == user.id).count() == 30
        pieces = {p.reward.name: p.pieces_earned for p in RewardProgress.select()}
    assert pieces.get("Coffee") == 1
    assert pieces.get("Coffee", 0) + pieces.get("Tea", 0) == len(fresh)


def test_a_progress_row_stored_after_the_draw_read_it_gets_the_piece(engine, monkeypatch):
    """The draw found no progress row, then a writer that does not take the user's lock (an
    import, say) stored one: the piece goes to that row, nothing fails, no second row."""
    user = engine.add_user(1, "Ann", active=True)
    habit = engine.add_habit("Run")
    reward = engine.add_reward("Coffee", weight=1000, pieces_required=5, max_per_day=0)
    real = engine._candidates

    def candidates(*args, **kwargs):
        found = real(*args, **kwargs)
        RewardProgress.create(user=user.id, reward=reward.id, pieces_earned=2, claimed=False, times_claimed=0)
        return found

    monkeypatch.setattr(engine, "_candidates", candidates)
    result = engine.complete(user, habit)
    assert result.reward is not None and result.reward.id == reward.id
    with engine.session():
        assert [(p.pieces_earned, p.claimed) for p in RewardProgress.select()] == [(3, False)]


@pytest.mark.parametrize("write", ["add a habit", "rename a reward"])
def test_two_writers_giving_the_same_name_at_once_one_gets_a_conflict(engine, monkeypatch, write):
    """Both check the name, then both write it: on PostgreSQL (READ COMMITTED, no unique index)
    both used to succeed. The window between check and write is widened: each waits, after its
    check, for the other's check, which never comes when the checks take turns."""
    import contextlib

    from habitreward.engine.catalog import CatalogMixin
    from habitreward.errors import Conflict
    from habitreward.models import Habit, Reward

    if write == "add a habit":
        model, writes = Habit, [lambda: engine.add_habit("Run"), lambda: engine.add_habit("run")]
    else:
        first, second = engine.add_reward("Coffee"), engine.add_reward("Tea")
        model = Reward
        writes = [lambda: engine.edit_reward(first, name="Cake"), lambda: engine.edit_reward(second, name="CAKE")]
    checked = threading.Barrier(2, timeout=2)
    check = CatalogMixin._check_unique

    def widened(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        check(self, *args, **kwargs)
        with contextlib.suppress(threading.BrokenBarrierError):  # the other waits on the lock
            checked.wait()

    monkeypatch.setattr(CatalogMixin, "_check_unique", widened)
    outcomes: list[object] = []

    def worker(write) -> None:  # noqa: ANN001
        try:
            outcomes.append(write())
        except Exception as exc:  # reported below
            outcomes.append(exc)
        finally:
            engine.db.close()

    threads = [threading.Thread(target=worker, args=(w,)) for w in writes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)
    errors = [o for o in outcomes if isinstance(o, Exception)]
    assert len(outcomes) == 2 and len(errors) == 1 and isinstance(errors[0], Conflict), outcomes
    assert str(errors[0]).startswith("There is already a")
    with engine.session():
        names = [m.name.lower() for m in model.select().where(model.active)]
    assert names.count("run" if model is Habit else "cake") == 1


def test_an_approve_and_a_decline_at_the_same_moment_one_decides(engine):
    """Two admins answer one newcomer at once: exactly one answer decides, whichever comes first."""
    from habitreward.bot.state import approval_of, set_approval

    for round_ in range(10):
        newcomer = engine.add_user(100 + round_, f"New {round_}")
        set_approval(engine, newcomer.telegram_id, "requested")
        barrier = threading.Barrier(2)
        outcomes: dict[bool, object] = {}

        def worker(approve: bool, tid: int = newcomer.telegram_id, barrier: threading.Barrier = barrier,
                   outcomes: dict = outcomes) -> None:
            try:
                barrier.wait()
                outcomes[approve] = engine.decide_request(tid, approve)[1]
            except Exception as exc:  # reported below
                outcomes[approve] = exc
            finally:
                engine.db.close()

        threads = [threading.Thread(target=worker, args=(approve,)) for approve in (True, False)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(outcomes.values(), key=str) == [False, True], outcomes
        active = engine.get_user(newcomer.telegram_id).active
        assert active is outcomes[True]
        assert approval_of(engine, newcomer.telegram_id) == (None if active else "declined")
