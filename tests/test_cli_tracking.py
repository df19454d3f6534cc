"""A user's day from the command line: done, undo, claim and odds as a user sees them (both backends)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from habitreward.cli import cli


@pytest.fixture
def run(db_url, engine, monkeypatch):
    """Invoke the CLI against the test database (the ``engine`` fixture's frozen clock is not the CLI's)."""
    monkeypatch.setenv("HABITREWARD_LOAD_PLUGINS", "")
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(cli, ["--env-file", "/nonexistent/.env", "--database-url", db_url, *args])

    return invoke


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


def test_undo_of_a_removed_habit_is_refused_as_the_bot_refuses_it(run):
    run("users", "add", "42", "--name", "Ann", "--active", "--timezone", "UTC")
    run("habits", "add", "A")
    run("done", "42", "A")
    run("habits", "remove", "A")
    result = run("undo", "42", "A")
    assert result.exit_code == 1 and "No habit called 'A'." in result.output
    assert [h["habit"] for h in json.loads(run("history", "42", "--json").output)] == ["A"]  # history stays
