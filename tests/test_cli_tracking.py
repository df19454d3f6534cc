"""A user's day from the command line: done, undo, claim and odds as a user sees them (both backends)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from habitreward.models import Habit


def added_a_week_ago(engine) -> None:
    """Date every habit a week back (the CLI runs on the real clock, not the engine fixture's)."""
    week_ago = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(days=7)
    with engine.session():
        Habit.update(created_at=week_ago).execute()


def test_a_removed_reward_that_is_achieved_is_still_claimed(run):
    run("users", "add", "42", "--name", "Ann", "--active", "--timezone", "UTC")
    run("habits", "add", "A")
    run("rewards", "add", "Star", "--pieces", "1")
    assert json.loads(run("done", "42", "A", "--json").output)["status"] == "achieved"
    assert run("rewards", "remove", "Star").exit_code == 0
    # Out of the draw, but progress still shows it achieved ...
    assert [(p["reward"], p["status"]) for p in json.loads(run("progress", "42", "--json").output)] == [
        ("Star", "achieved")
    ]
    # ... and a new reward may take its name: the claim takes the one that is achieved.
    assert run("rewards", "add", "Star", "--pieces", "5").exit_code == 0

    claimed = run("claim", "42", "star", "--json")
    assert claimed.exit_code == 0, claimed.output
    assert json.loads(claimed.output) == {"reward": "Star", "status": "claimed", "times_claimed": 1}
    assert json.loads(run("progress", "42", "--json").output) == []  # the removed one is done with
    again = run("claim", "42", "Star")  # now the active Star: nothing earned yet
    assert again.exit_code == 1 and "'Star' is not achieved yet: 0 of 5 pieces." in again.output


def test_a_removed_reward_is_claimed_by_its_name_as_names_are_compared(run):
    """Typed with a non-final sigma and a zero-width space, as a lookup of an active one finds it."""
    run("users", "add", "42", "--name", "Eleni", "--active", "--timezone", "UTC")
    run("habits", "add", "A")
    run("rewards", "add", "ΚΑΦΕΣ", "--pieces", "1")
    run("done", "42", "A")
    run("rewards", "remove", "ΚΑΦΕΣ")
    claimed = run("claim", "42", "καφ\u200bεσ", "--json")
    assert claimed.exit_code == 0, claimed.output
    assert json.loads(claimed.output)["reward"] == "ΚΑΦΕΣ"


def test_undo_of_a_removed_habit_is_refused_as_the_bot_refuses_it(run):
    run("users", "add", "42", "--name", "Ann", "--active", "--timezone", "UTC")
    run("habits", "add", "A")
    run("done", "42", "A")
    run("habits", "remove", "A")
    result = run("undo", "42", "A")
    assert result.exit_code == 1 and "No habit called 'A'." in result.output
    assert [h["habit"] for h in json.loads(run("history", "42", "--json").output)] == ["A"]  # history stays


def test_done_again_reports_the_stored_completion(run, engine):
    run("users", "add", "42", "--name", "Ann", "--active", "--timezone", "UTC")
    run("habits", "add", "A", "--weight", "20")
    added_a_week_ago(engine)  # so that yesterday can be logged

    def done(*args: str) -> dict:
        result = run("done", "42", "A", "--json", *args)
        assert result.exit_code == 0, result.output
        return json.loads(result.output)

    today = dt.date.fromisoformat(done()["date"])
    run("undo", "42", "A")
    yesterday = (today - dt.timedelta(days=1)).isoformat()
    first = done("--date", yesterday)
    assert (first["streak"], first["multiplier"], first["backdated"]) == (1, 2.2, True)  # 20/10 x 1.1

    again = done("--date", yesterday)
    assert again["already_done"] is True and again["reward"] is None
    assert (again["date"], again["streak"], again["multiplier"], again["backdated"]) == (yesterday, 1, 2.2, True)

    assert (done()["streak"], done()["multiplier"]) == (2, 2.4)  # the second call is already done
    again_today = done()
    assert (again_today["already_done"], again_today["streak"], again_today["multiplier"],
            again_today["backdated"]) == (True, 2, 2.4, False)


def test_odds_json_gives_what_the_table_shows(run):
    run("users", "add", "42", "--name", "Ann", "--active", "--timezone", "UTC")
    for habit in ("A", "B", "C"):
        run("habits", "add", habit)
    run("rewards", "add", "Star", "--weight", "1000", "--pieces", "1")
    assert json.loads(run("done", "42", "A", "--json").output)["status"] == "achieved"  # the only one
    run("rewards", "add", "Coffee", "--weight", "1000", "--pieces", "5", "--max-per-day", "1")
    assert json.loads(run("done", "42", "B", "--json").output)["reward"] == "Coffee"  # Star is out
    run("rewards", "add", "Tea", "--weight", "3")
    run("rewards", "add", "Nothing", "--type", "none", "--weight", "1")

    table = run("odds", "42", "C")
    assert table.exit_code == 0, table.output
    assert "C: streak 1, multiplier x1.10" in table.output
    assert "Out of the draw: Star (achieved, waiting to be claimed)" in table.output
    assert "Out of the draw: Coffee (came out its max_per_day today)" in table.output

    odds = json.loads(run("odds", "42", "C", "--json").output)
    assert (odds["habit"], odds["streak"], odds["multiplier"]) == ("C", 1, 1.1)
    assert odds["excluded"] == [{"reward": "Star", "reason": "achieved"}, {"reward": "Coffee", "reason": "max_per_day"}]
    assert [(r["reward"], r["weight"]) for r in odds["rewards"]] == [("Tea", 3.3), (None, 1.0)]  # Tea: 3 x 1.1
    assert [r["probability"] for r in odds["rewards"]] == pytest.approx([3.3 / 4.3, 1 / 4.3], abs=1e-6)


def test_odds_of_a_habit_done_today_are_tomorrows(run):
    run("users", "add", "42", "--name", "Ann", "--active", "--timezone", "UTC")
    run("habits", "add", "A")
    run("rewards", "add", "Movie", "--pieces", "5", "--max-per-day", "1")
    today = dt.date.fromisoformat(json.loads(run("done", "42", "A", "--json").output)["date"])  # Movie drawn
    tomorrow = (today + dt.timedelta(days=1)).isoformat()

    table = run("odds", "42", "A").output
    assert f"A is done today: odds for tomorrow's completion ({tomorrow})." in table
    assert "A: streak 2, multiplier x1.20" in table and "Out of the draw" not in table

    odds = json.loads(run("odds", "42", "A", "--json").output)
    assert (odds["done_today"], odds["for_day"], odds["streak"], odds["multiplier"]) == (True, tomorrow, 2, 1.2)
    assert odds["rewards"] == [{"reward": "Movie", "probability": 1.0, "weight": 1.2}]
    assert odds["excluded"] == []


def test_undo_reverts_the_most_recently_recorded_completion_as_its_help_says(run, engine):
    assert "Revert the most recently recorded completion of HABIT" in run("undo", "--help").output
    run("users", "add", "42", "--name", "Ann", "--active", "--timezone", "UTC")
    run("habits", "add", "A")
    added_a_week_ago(engine)  # so that yesterday can be logged
    today = dt.date.fromisoformat(json.loads(run("done", "42", "A", "--json").output)["date"])
    yesterday = (today - dt.timedelta(days=1)).isoformat()
    run("done", "42", "A", "--date", yesterday)  # recorded after today's

    undone = json.loads(run("undo", "42", "A", "--json").output)
    assert (undone["date"], undone["streak"]) == (yesterday, 1)  # not today's, the latest day
    assert [h["completed_on"] for h in json.loads(run("history", "42", "--json").output)] == [today.isoformat()]
