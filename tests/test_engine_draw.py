"""The reward draw (issue 2, Must show): frequencies follow PRODUCT.md's formula, streaks and
heavy habits raise the reward rate, achieved-unclaimed and capped rewards never come out."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from habitreward.draw import Candidate
from habitreward.errors import NotClaimable
from habitreward.models import ProgressStatus

DRAWS = 100_000
# Absolute tolerance on a frequency: with 100k draws one standard error is at most
# 0.0016, so 0.008 is 5 standard errors (a seeded run is reproducible anyway).
TOLERANCE = 0.008


def expected_probabilities(real: dict[str, float], nothing: float, habit_weight: int, streak: int,
                           rate: float = 0.1) -> dict[str | None, float]:
    """PRODUCT.md §3 written out independently: real weights x m, "none" weights unchanged."""
    m = (habit_weight / 10) * (1 + streak * rate)
    total = sum(w * m for w in real.values()) + nothing
    probs: dict[str | None, float] = {name: w * m / total for name, w in real.items()}
    probs[None] = nothing / total
    return probs


@pytest.mark.parametrize("habit_weight,streak", [(10, 0), (10, 5), (40, 3), (3, 12)])
def test_draw_frequencies_match_the_formula(engine, habit_weight, streak):
    user = engine.add_user(1, "Ann", active=True)
    habit = engine.add_habit("Run", weight=habit_weight)
    engine.add_reward("Coffee", weight=3, max_per_day=0, pieces_required=5)
    engine.add_reward("Movie", weight=1, max_per_day=0, pieces_required=5)
    engine.add_reward("Nothing", weight=20, type="none")
    expected = expected_probabilities({"Coffee": 3, "Movie": 1}, 20, habit_weight, streak)

    # The engine's own pipeline: candidates -> plugin weights -> plugin draw.
    with engine.session():
        candidates = engine._candidates(user, engine.today(user))
    multiplier = engine.hooks.odds_multiplier(habit, streak, engine.settings, user, engine.today(user))
    weighted = engine.hooks.weigh_rewards(candidates, multiplier)
    rng = random.Random(7)
    counts = Counter()
    for _ in range(DRAWS):
        chosen = engine.hooks.draw_reward(weighted, rng)
        counts[None if chosen is None or chosen.reward.is_nothing else chosen.reward.name] += 1
    for name, probability in expected.items():
        assert abs(counts[name] / DRAWS - probability) < TOLERANCE, (name, counts[name] / DRAWS, probability)


def test_odds_report_the_formula(engine, clock):
    user = engine.add_user(1, "Ann", active=True)
    habit = engine.add_habit("Run", weight=20)
    engine.add_reward("Coffee", weight=3, max_per_day=0, pieces_required=100)
    engine.add_reward("Nothing", weight=10, type="none")
    for _ in range(4):  # a 4-day streak: the next completion would be streak 5
        engine.complete(user, habit)
        clock.advance(days=1)
    odds = {row.reward.name if row.reward else None: row.probability for row in engine.odds(user, habit).rows}
    expected = expected_probabilities({"Coffee": 3}, 10, 20, 5)
    assert odds == pytest.approx(expected)


def test_odds_tell_which_rewards_are_out_of_the_draw_and_why(engine, clock):
    from habitreward.engine.results import EXCLUDED_ACHIEVED, EXCLUDED_TODAY

    user = engine.add_user(1, "Ann", active=True)
    run, read = engine.add_habit("Run"), engine.add_habit("Read")
    engine.add_reward("Movie", max_per_day=1, pieces_required=5)
    assert engine.complete(user, run).reward.name == "Movie"  # the only reward: drawn
    engine.add_reward("Coffee", max_per_day=0, pieces_required=1)
    odds = engine.odds(user, read)
    assert [(reward.name, why) for reward, why in odds.excluded] == [("Movie", EXCLUDED_TODAY)]
    assert engine.complete(user, read).reward.name == "Coffee"  # achieved at once, waiting to be claimed
    clock.advance(days=1)
    assert [(reward.name, why) for reward, why in engine.odds(user, run).excluded] == [("Coffee", EXCLUDED_ACHIEVED)]


def test_odds_of_a_habit_done_today_are_those_of_tomorrows_completion(engine, clock):
    """A second completion today draws nothing, so the odds shown are the next one's: tomorrow's."""
    import datetime as dt

    user = engine.add_user(1, "Ann", active=True)
    run = engine.add_habit("Run", weight=20)
    engine.add_reward("Movie", max_per_day=1, pieces_required=5)
    today = engine.today(user)
    before = engine.odds(user, run)
    assert (before.done_today, before.day, before.streak) == (False, today, 1)
    assert engine.complete(user, run).reward.name == "Movie"  # the only reward: drawn, its max for today

    odds = engine.odds(user, run)
    assert (odds.done_today, odds.day, odds.streak) == (True, today + dt.timedelta(days=1), 2)
    assert odds.multiplier == pytest.approx(2 * 1.2)  # weight 20, streak 2
    assert odds.excluded == ()  # Movie is back in tomorrow's draw
    assert [(row.reward.name, row.probability) for row in odds.rows] == [("Movie", 1.0)]

    clock.advance(days=1)  # tomorrow: the odds shown yesterday are today's, and the completion's
    assert (engine.odds(user, run).streak, engine.odds(user, run).done_today) == (2, False)
    done = engine.complete(user, run)
    assert (done.streak, done.multiplier) == (odds.streak, odds.multiplier)


def test_longer_streak_and_heavier_habit_raise_the_reward_rate(engine, clock):
    engine.add_reward("Coffee", weight=1, max_per_day=0, pieces_required=10_000)
    engine.add_reward("Nothing", weight=9, type="none")
    light_user = engine.add_user(1, "Light", active=True)
    heavy_user = engine.add_user(2, "Heavy", active=True)
    light = engine.add_habit("Stretch", weight=5, owner=light_user)
    heavy = engine.add_habit("Marathon training", weight=50, owner=heavy_user)
    rewarded: dict[str, list[bool]] = {"light": [], "heavy": []}
    for _ in range(60):
        rewarded["light"].append(engine.complete(light_user, light).reward is not None)
        rewarded["heavy"].append(engine.complete(heavy_user, heavy).reward is not None)
        clock.advance(days=1)
    # Same streaks (1..60), so the habit weight alone makes the difference.
    assert sum(rewarded["heavy"]) > 2 * sum(rewarded["light"])
    # Within one habit, the second month (streak 31-60, capped at 30) beats the first.
    assert sum(rewarded["light"][30:]) > sum(rewarded["light"][:30])

    # And exactly: the stored multiplier grows with the streak, capped at STREAK_MULTIPLIER_MAX_STREAK.
    multipliers = [e.log.total_weight_applied for e in reversed(engine.history(light_user, limit=60))]
    assert multipliers[0] == pytest.approx(0.5 * 1.1)
    assert multipliers[29] == pytest.approx(0.5 * 4.0)
    assert multipliers[59] == pytest.approx(0.5 * 4.0)


def test_achieved_unclaimed_reward_is_never_drawn_until_claimed(engine, clock):
    user = engine.add_user(1, "Ann", active=True)
    habits = [engine.add_habit(f"Habit {i}") for i in range(6)]
    trip = engine.add_reward("Trip", weight=1000, pieces_required=2, max_per_day=0)
    engine.add_reward("Sticker", weight=1, max_per_day=0, pieces_required=100)
    drawn = []
    for _ in range(5):
        for habit in habits:
            result = engine.complete(user, habit)
            drawn.append(result.reward.name if result.reward else None)
        clock.advance(days=1)
    # With weight 1000 the first two draws are Trip; once ACHIEVED it is out of the draw.
    assert drawn[:2] == ["Trip", "Trip"]
    assert "Trip" not in drawn[2:]
    progress = {p.reward.name: p for p in engine.progress(user)}
    assert progress["Trip"].pieces_earned == 2 and progress["Trip"].status is ProgressStatus.ACHIEVED

    engine.claim(user, trip)
    result = engine.complete(user, engine.add_habit("One more"))
    assert result.reward.name == "Trip"
    assert (result.progress.pieces_earned, result.status) == (1, ProgressStatus.PENDING)
    assert result.progress.times_claimed == 1


def test_capped_reward_is_drawn_at_most_max_per_day(engine, clock):
    user = engine.add_user(1, "Ann", active=True)
    habits = [engine.add_habit(f"Habit {i}") for i in range(8)]
    engine.add_reward("Candy", weight=1000, max_per_day=2, pieces_required=100)
    engine.add_reward("Nothing", weight=1, type="none")
    per_day = []
    for _ in range(3):
        got = [engine.complete(user, h).reward for h in habits]
        per_day.append(sum(1 for r in got if r is not None and r.name == "Candy"))
        clock.advance(days=1)
    assert per_day == [2, 2, 2]


def test_nothing_left_to_draw_means_no_reward(engine):
    user = engine.add_user(1, "Ann", active=True)
    habit = engine.add_habit("Run")
    result = engine.complete(user, habit)
    assert result.reward is None and not result.log.got_reward
    assert [(r.reward, r.probability) for r in engine.odds(user, habit).rows] == [(None, 1.0)]


def test_seeded_runs_are_reproducible(db_url, tmp_path):
    from habitreward.testing.engines import FrozenClock, make_engine

    def run(url: str) -> list:
        eng = make_engine(url, clock=FrozenClock(), rng=random.Random(99), load_entry_points=False)
        try:
            user = eng.add_user(1, "Ann", active=True)
            eng.add_reward("A", weight=1, max_per_day=0, pieces_required=100)
            eng.add_reward("B", weight=2, max_per_day=0, pieces_required=100)
            eng.add_reward("N", weight=3, type="none")
            return [getattr(eng.complete(user, eng.add_habit(f"H{i}")).reward, "name", None) for i in range(40)]
        finally:
            eng.close()

    first = run(f"sqlite:///{tmp_path / 'a.db'}")
    second = run(f"sqlite:///{tmp_path / 'b.db'}")
    assert first == second and len(set(first)) == 3


def test_candidate_weights_only_scale_real_rewards(engine):
    engine.add_reward("Coffee", weight=2, max_per_day=0)
    engine.add_reward("Nothing", weight=5, type="none")
    user = engine.add_user(1, "Ann", active=True)
    with engine.session():
        candidates = engine._candidates(user, engine.today(user))
    weighted = {c.reward.name: c.weight for c in engine.hooks.weigh_rewards(candidates, 3.0)}
    assert weighted == {"Coffee": 6.0, "Nothing": 5.0}
    assert all(isinstance(c, Candidate) for c in candidates)


def test_a_claim_spends_the_pieces_required_and_keeps_the_rest(engine, clock):
    """An admin lowered pieces_required below what the user held: no piece is lost at the claim."""
    user = engine.add_user(1, "Ann", active=True)
    trip = engine.add_reward("Trip", weight=1000, pieces_required=10, max_per_day=0)
    for i in range(7):
        engine.complete(user, engine.add_habit(f"Habit {i}"))
    trip = engine.edit_reward(trip, pieces_required=3)

    engine.claim(user, trip)
    (entry,) = engine.progress(user)
    assert (entry.pieces_earned, entry.status, entry.times_claimed) == (4, ProgressStatus.ACHIEVED, 1)
    engine.claim(user, trip)
    (entry,) = engine.progress(user)
    assert (entry.pieces_earned, entry.status, entry.times_claimed) == (1, ProgressStatus.PENDING, 2)
    result = engine.complete(user, engine.add_habit("One more"))
    assert (result.progress.pieces_earned, result.status) == (2, ProgressStatus.PENDING)
    # A kept piece is the newest one's: undoing its completion takes it back, as before a claim.
    assert engine.undo(user, engine.find_habit(user, "Habit 6")).piece_taken_back
    assert engine.undo(user, engine.find_habit(user, "One more")).piece_taken_back
    (entry,) = engine.progress(user)
    assert (entry.pieces_earned, entry.status, entry.times_claimed) == (0, ProgressStatus.CLAIMED, 2)


def test_undoing_the_last_piece_a_claim_kept_leaves_the_reward_claimed_with_none(engine, clock):
    """rules.md, "Pieces and claims": 4 pieces of 3, claimed, keep 1; its completion undone, the
    reward is CLAIMED with 0 pieces, as if the claim had spent all there were."""
    user = engine.add_user(1, "Ann", active=True)
    trip = engine.add_reward("Trip", weight=1000, pieces_required=10, max_per_day=0)
    for i in range(4):
        engine.complete(user, engine.add_habit(f"Habit {i}"))
    trip = engine.edit_reward(trip, pieces_required=3)
    engine.claim(user, trip)
    (entry,) = engine.progress(user)
    assert (entry.pieces_earned, entry.status, entry.times_claimed) == (1, ProgressStatus.PENDING, 1)

    assert engine.undo(user, engine.find_habit(user, "Habit 3")).piece_taken_back  # the newest: kept

    (entry,) = engine.progress(user)
    assert (entry.pieces_earned, entry.status, entry.times_claimed) == (0, ProgressStatus.CLAIMED, 1)
    with pytest.raises(NotClaimable, match="already claimed"):
        engine.claim(user, trip)
    assert engine.complete(user, engine.add_habit("Again")).progress.pieces_earned == 1  # a new cycle


def test_undoing_the_first_piece_after_a_claim_leaves_the_reward_claimed(engine, clock):
    user = engine.add_user(1, "Ann", active=True)
    trip = engine.add_reward("Trip", weight=1000, pieces_required=1, max_per_day=0)
    engine.complete(user, engine.add_habit("Run"))
    engine.claim(user, trip)
    read = engine.add_habit("Read")
    assert engine.complete(user, read).status is ProgressStatus.ACHIEVED  # a new cycle's piece
    assert engine.undo(user, read).piece_taken_back
    (entry,) = engine.progress(user)
    assert (entry.status, entry.times_claimed) == (ProgressStatus.CLAIMED, 1)
