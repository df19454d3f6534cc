"""The engine given an object loaded before someone else changed it (another request of a web app,
another process, an admin at the command line): the row as the operation's transaction finds it
decides, never the copy the caller holds. And arguments a caller gives that are not "not given":
a history limit of 0, an empty time zone."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from habitreward.errors import Conflict, NotClaimable, NotFound, NothingToUndo, ValidationError
from habitreward.models import ProgressStatus


@pytest.fixture
def ann(engine, clock):
    clock.set(dt.datetime(2026, 3, 10, 12, tzinfo=dt.timezone.utc))
    return engine.add_user(1, "Ann", active=True)


def _streaks_by_day(engine, user) -> dict[dt.date, int]:
    return {entry.log.completed_on: entry.log.streak_count for entry in engine.history(user)}


def test_completing_a_habit_removed_meanwhile_is_not_found_and_logs_nothing(engine, ann):
    stale = engine.add_habit("Run")
    engine.remove_habit(engine.find_habit(ann, "Run"))  # another request removed it
    with pytest.raises(NotFound, match="'Run' was removed"):
        engine.complete(ann, stale)
    with pytest.raises(NotFound, match="'Run' was removed"):
        engine.complete(ann, stale, day=engine.today(ann))
    assert engine.history(ann) == []


def test_a_completion_uses_the_weight_the_habit_has_now(engine, ann):
    stale = engine.add_habit("Run", weight=10)
    engine.edit_habit(engine.find_habit(ann, "Run"), weight=40, name="Long run")
    result = engine.complete(ann, stale)
    assert result.multiplier == pytest.approx(4.0 * (1 + engine.settings.streak_multiplier_rate))
    assert result.log.habit_weight == 40
    assert (result.habit.name, result.habit.weight) == ("Long run", 40)
    assert engine.complete(ann, stale).habit.name == "Long run"  # already done: the name it has now
    odds = engine.odds(ann, stale)  # tomorrow's, with the weight of 40 too
    assert (odds.habit.name, odds.habit.weight) == ("Long run", 40)
    assert odds.multiplier == engine.odds(ann, engine.find_habit(ann, "Long run")).multiplier


def test_a_completion_uses_the_grace_the_habit_has_now(engine, ann, clock):
    stale = engine.add_habit("Run", allowed_skip_days=0)
    engine.complete(ann, stale)
    engine.edit_habit(engine.find_habit(ann, "Run"), allowed_skip_days=2)
    clock.advance(days=3)  # two days missed: within the new grace
    assert engine.complete(ann, stale).streak == 2
    assert engine.current_streak(ann, stale) == 2


def test_a_backdated_completion_recomputes_later_streaks_with_the_grace_the_habit_has_now(engine, ann, clock):
    stale = engine.add_habit("Run", allowed_skip_days=0)
    first = engine.today(ann)
    engine.complete(ann, stale)
    clock.advance(days=4)
    assert engine.complete(ann, stale).streak == 1  # three days missed, no grace
    engine.edit_habit(engine.find_habit(ann, "Run"), allowed_skip_days=2)
    backdated = engine.complete(ann, stale, day=first + dt.timedelta(days=1))
    assert (backdated.backdated, backdated.streak) == (True, 2)
    # The day after the backdated one: two days missed, kept by the new grace.
    assert _streaks_by_day(engine, ann)[first + dt.timedelta(days=4)] == 3


def test_undo_of_a_habit_removed_meanwhile_is_not_found_and_keeps_the_log(engine, ann):
    stale = engine.add_habit("Run")
    engine.complete(ann, stale)
    engine.remove_habit(engine.find_habit(ann, "Run"))
    with pytest.raises(NotFound, match="'Run' was removed"):
        engine.undo(ann, stale)
    assert len(engine.history(ann)) == 1
    other = engine.add_habit("Walk")
    engine.remove_habit(engine.find_habit(ann, "Walk"))
    with pytest.raises(NotFound):  # nothing to undo either: that it is gone is what matters
        engine.undo(ann, other)
    with pytest.raises(NothingToUndo, match="'Swim'"):
        engine.undo(ann, engine.add_habit("Swim"))


def test_undo_recomputes_later_streaks_with_the_grace_the_habit_has_now(engine, ann, clock):
    stale = engine.add_habit("Run", allowed_skip_days=1)
    first = engine.today(ann)
    logs = []
    for _ in range(3):
        logs.append(engine.complete(ann, stale).log)
        clock.advance(days=1)
    clock.advance(days=-1)
    engine.edit_habit(engine.find_habit(ann, "Run"), allowed_skip_days=0)
    undone = engine.undo(ann, stale, log_id=logs[1].id)  # the middle day
    # The third day now follows a missed day, which the grace of 0 no longer keeps.
    assert _streaks_by_day(engine, ann) == {first: 1, first + dt.timedelta(days=2): 1}
    assert undone.streak == 1
    assert undone.habit.allowed_skip_days == 0


def _holding(engine, user, reward, pieces: int) -> None:
    for _ in range(pieces):
        assert engine.grant_piece(user, reward) is not None


def test_a_claim_counts_the_pieces_the_reward_requires_now(engine, ann):
    stale = engine.add_reward("Trip", pieces_required=2)
    _holding(engine, ann, stale, 2)
    engine.edit_reward(engine.find_reward(ann, "Trip"), pieces_required=3)
    with pytest.raises(NotClaimable, match="2 of 3 pieces"):
        engine.claim(ann, stale)
    assert [entry.status for entry in engine.progress(ann)] == [ProgressStatus.PENDING]

    lowered = engine.add_reward("Tea", pieces_required=3)
    _holding(engine, ann, lowered, 2)
    engine.edit_reward(engine.find_reward(ann, "Tea"), pieces_required=2)
    progress = engine.claim(ann, lowered)  # held 2 of the 2 it requires now
    assert (progress.times_claimed, progress.status) == (1, ProgressStatus.CLAIMED)
    assert progress.reward.pieces_required == 2


def test_a_reward_removed_after_it_was_achieved_can_still_be_claimed_with_the_old_object(engine, ann):
    stale = engine.add_reward("Trip", pieces_required=1)
    _holding(engine, ann, stale, 1)
    engine.remove_reward(engine.find_reward(ann, "Trip"))
    assert engine.claim(ann, stale).times_claimed == 1


def test_a_piece_outside_the_draw_follows_the_reward_as_it_is_now(engine, ann):
    stale = engine.add_reward("Trip", pieces_required=2)
    _holding(engine, ann, stale, 2)  # achieved: one more would be lost
    assert engine.grant_piece(ann, stale) is None
    engine.edit_reward(engine.find_reward(ann, "Trip"), pieces_required=3)
    progress = engine.grant_piece(ann, stale)  # 2 of 3 now: the third piece is given
    assert progress is not None and progress.pieces_earned == 3
    gone = engine.add_reward("Tea")
    engine.remove_reward(engine.find_reward(ann, "Tea"))
    assert engine.grant_piece(ann, gone) is None  # a removed reward gives no more pieces
    assert [entry.reward.name for entry in engine.progress(ann)] == ["Trip"]


def test_editing_a_habit_or_reward_removed_meanwhile_is_not_found(engine, ann):
    habit, reward = engine.add_habit("Run"), engine.add_reward("Trip")
    engine.remove_habit(engine.find_habit(ann, "Run"))
    engine.remove_reward(engine.find_reward(ann, "Trip"))
    with pytest.raises(NotFound, match="That habit no longer exists"):
        engine.edit_habit(habit, weight=50)
    with pytest.raises(NotFound, match="That reward no longer exists"):
        engine.edit_reward(reward, weight=5)
    assert [h.weight for h in engine.all_habits(include_inactive=True)] == [10]
    assert [r.weight for r in engine.all_rewards(include_inactive=True)] == [1.0]


def test_odds_of_a_habit_removed_meanwhile_are_not_found(engine, ann):
    stale = engine.add_habit("Run")
    engine.remove_habit(engine.find_habit(ann, "Run"))
    with pytest.raises(NotFound, match="'Run' was removed"):
        engine.odds(ann, stale)


@pytest.mark.parametrize("limit", [-1, -100, "-5", "all", 2.5, True, Decimal("2.5"), Decimal("Infinity"),
                                   float("inf")])
def test_history_refuses_a_limit_that_is_no_count(engine, ann, limit):
    with pytest.raises(ValidationError, match="limit must be a whole number, 0 or more"):
        engine.history(ann, limit)


def test_history_gives_as_many_as_asked_none_for_zero_and_the_setting_by_default(engine, ann, clock):
    habits = [engine.add_habit(f"Habit {i}") for i in range(3)]
    for habit in habits:
        engine.complete(ann, habit)
    assert engine.history(ann, 0) == []
    assert len(engine.history(ann, 2)) == 2
    assert len(engine.history(ann, "2")) == 2  # a query string's digits are a count
    assert len(engine.history(ann, 10**30)) == 3  # more than there are: all of them
    assert len(engine.history(ann)) == min(3, engine.settings.recent_logs_limit)


@pytest.mark.parametrize("field", ["timezone", "language"])
def test_a_new_user_with_an_empty_time_zone_or_language_is_refused(engine, field):
    with pytest.raises(ValidationError, match="Unknown time zone ''" if field == "timezone" else "language must be"):
        engine.add_user(5, "Bea", **{field: ""})
    assert engine.find_user(5) is None


def test_an_alias_of_a_habit_removed_meanwhile_is_not_found(engine, ann):
    """As editing it is: the alias was stored (for a habit no text can reach any more), and for a
    habit deleted with its owner it was a Conflict ("already has the alias")."""
    stale = engine.add_habit("Run")
    engine.add_alias(stale, "jog")
    engine.remove_habit(engine.find_habit(ann, "Run"))
    with pytest.raises(NotFound, match="That habit no longer exists"):
        engine.add_alias(stale, "sprint")
    with pytest.raises(NotFound, match="That habit no longer exists"):
        engine.remove_alias(stale, "jog")
    assert engine.aliases_for([stale]) == {stale.id: ["jog"]}

    bob = engine.add_user(2, "Bob", active=True)
    mine = engine.add_habit("Swim", owner=bob)
    engine.delete_user(2)  # his habits go with him
    for call in (engine.add_alias, engine.remove_alias):
        with pytest.raises(NotFound, match="That habit no longer exists"):
            call(mine, "dip")


def test_an_alias_may_not_repeat_the_name_the_habit_has_now(engine, ann):
    stale = engine.add_habit("Run")
    engine.edit_habit(engine.find_habit(ann, "Run"), name="Jog")
    with pytest.raises(Conflict, match="'jog' is already the habit's name"):
        engine.add_alias(stale, "jog")
    assert engine.add_alias(stale, "run") == "run"  # its old name is free now
    assert engine.aliases_for([stale]) == {stale.id: ["run"]}

