"""Habit aliases (engine API and CLI), ``habitreward match`` and ``habitreward stats``."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from habitreward.cli import cli
from habitreward.errors import Conflict, NotFound, PermissionDenied, ValidationError
from habitreward.models import HabitAlias
from habitreward.nlp import stats


@pytest.fixture
def run(db_url, engine, monkeypatch):
    monkeypatch.setenv("HABITREWARD_LOAD_PLUGINS", "")
    for name in ("LLM_MODEL", "LLM_API_BASE", "LLM_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(cli, ["--env-file", os.devnull, "--database-url", db_url, *args])

    return invoke


def test_alias_makes_free_text_match(engine):
    user, _ = engine.register(1, "Ann")
    running = engine.add_habit("Running")
    habits = engine.habits_for(user)
    assert engine.hooks.match_habits(user, "jogged 5k", habits).matches == ()
    assert engine.add_alias(running, "  Jog ") == "Jog"
    result = engine.hooks.match_habits(user, "jogged 5k", habits)
    assert [(m.habit.name, m.source) for m in result.matches] == [("Running", "alias")] and result.confident
    engine.remove_alias(running, "JOG")
    assert engine.hooks.match_habits(user, "jogged 5k", habits).matches == ()


def test_alias_rules(engine):
    running = engine.add_habit("Running")
    reading = engine.add_habit("Reading")
    engine.add_alias(running, "Jog")
    with pytest.raises(Conflict):
        engine.add_alias(running, "jög!")  # same alias once case, accents and punctuation are ignored
    with pytest.raises(Conflict):
        engine.add_alias(running, "running")
    with pytest.raises(ValidationError):
        engine.add_alias(running, " ?! ")
    with pytest.raises(ValidationError):
        engine.add_alias(running, "x" * 101)
    engine.add_alias(reading, "jog")  # another habit may use the same word: the matcher then asks
    assert engine.add_alias(reading, "\u200bbo\u200bok\u202e") == "book"  # nothing invisible kept
    engine.remove_alias(reading, "book")
    # 98 characters, but 111 once "ß" is "ss": its key did not fit the column (PostgreSQL: a DataError).
    with pytest.raises(ValidationError, match="at most 100 characters, counting ß as ss.*: this one has 111"):
        engine.add_alias(running, "Straße " * 14)
    assert engine.add_alias(running, "ß" * 50) == "ß" * 50  # 100 once spelled out: fits
    with pytest.raises(NotFound):
        engine.remove_alias(running, "sprint")
    assert engine.aliases_for([running, reading]) == {running.id: ["Jog", "ß" * 50], reading.id: ["jog"]}


def test_alias_rights_follow_the_habit(engine):
    owner, _ = engine.register(1, "Ann")
    other, _ = engine.register(2, "Bob")
    admin = engine.add_user(3, "Boss", admin=True)
    personal = engine.add_habit("Diary", owner=owner)
    shared = engine.add_habit("Running")
    engine.add_alias(personal, "journal", actor=owner)
    with pytest.raises(PermissionDenied):
        engine.add_alias(personal, "notes", actor=other)
    with pytest.raises(PermissionDenied):
        engine.add_alias(shared, "jog", actor=owner)
    engine.add_alias(shared, "jog", actor=admin)
    with pytest.raises(PermissionDenied):
        engine.remove_alias(shared, "jog", actor=other)


def test_aliases_go_with_their_habit_row(engine):
    owner, _ = engine.register(1, "Ann")
    engine.add_alias(engine.add_habit("Diary", owner=owner), "journal")
    engine.delete_user(1)
    with engine.session():
        assert HabitAlias.select().count() == 0


def test_cli_alias_match_and_stats(run, engine):
    assert run("users", "add", "42", "--name", "Ann", "--active").exit_code == 0
    assert run("habits", "add", "Running").exit_code == 0
    assert run("habits", "add", "Diary", "--user", "42").exit_code == 0
    added = run("habits", "alias", "add", "running", "jog", "sprint")
    assert added.exit_code == 0, added.output
    assert "'Running' now also matches 'jog'." in added.output
    assert run("habits", "alias", "add", "Diary", "journal", "--user", "42").exit_code == 0
    listed = json.loads(run("habits", "alias", "list", "--user", "42", "--json").output)
    assert {r["habit"]: r["aliases"] for r in listed} == {"Diary": ["journal"], "Running": ["jog", "sprint"]}
    table = run("habits", "alias", "list", "Running")
    assert "jog, sprint" in table.output

    duplicate = run("habits", "alias", "add", "Running", "JOG")
    assert duplicate.exit_code == 1 and duplicate.output.strip() == "Error: 'Running' already has the alias 'JOG'."
    half = run("habits", "alias", "add", "Running", "trot", "dash", "")  # the last is refused: none is added
    assert half.exit_code == 1 and "An alias needs at least one letter or digit." in half.output
    assert "now also matches" not in half.output
    assert "trot" not in run("habits", "alias", "list", "Running").output
    missing = run("habits", "alias", "remove", "Running", "walk")
    assert missing.exit_code == 1 and "has no alias 'walk'" in missing.output
    assert run("habits", "alias", "remove", "Running", "sprint").exit_code == 0

    matched = json.loads(run("match", "42", "jogged and wrote in my journal", "--json").output)
    assert [(m["habit"], m["source"]) for m in matched["matches"]] == [("Diary", "alias"), ("Running", "alias")]
    assert matched["confident"] is True and matched["used_llm"] is False
    unsure = run("match", "42", "didn't jog today")
    assert "asked to confirm" in unsure.output and "LLM called: no" in unsure.output
    nothing = run("match", "42", "hello")
    assert "the bot would show the habit keyboard" in nothing.output

    stats.persist(engine.db, "llm_calls", 3)
    stats.persist(engine.db, "llm_failures")
    shown = json.loads(run("stats", "--json").output)
    assert shown["llm_calls"] == 3 and shown["llm_failures"] == 1 and shown["llm_model"] is None
    assert "not configured (local matching only)" in run("stats").output


def test_stats_shows_llm_api_base_without_its_credentials(run, monkeypatch):
    """A proxy's key in LLM_API_BASE (user info, ?api_key=) was printed as written, so a pasted
    `habitreward stats` gave it away."""
    monkeypatch.setenv("LLM_MODEL", "openai/some-model")
    monkeypatch.setenv("LLM_API_BASE", "https://bot:pr0xy-pa55@llm.example:8443/v1?api_key=sk-in-the-query&tier=2")
    shown = "https://[REDACTED]@llm.example:8443/v1?api_key=[REDACTED]&tier=2"
    table = run("stats")
    assert table.exit_code == 0 and shown in table.output
    as_json = run("stats", "--json")
    assert json.loads(as_json.output)["llm_api_base"] == shown
    for output in (table.output, as_json.output):
        assert "pr0xy-pa55" not in output and "sk-in-the-query" not in output and "bot:" not in output
    monkeypatch.setenv("LLM_API_BASE", "http://127.0.0.1:11434")  # nothing to hide: as written
    assert json.loads(run("stats", "--json").output)["llm_api_base"] == "http://127.0.0.1:11434"


def test_cli_match_shows_the_day_the_bot_would_log(run, engine):
    import datetime as dt

    user, _ = engine.register(42, "Ann")
    engine.add_habit("Running", owner=user)
    engine.add_habit("Reading", owner=user)
    plain = json.loads(run("match", "42", "ran", "--json").output)
    assert plain["confident"] is True and plain["days"] == []
    today = dt.date.fromisoformat(plain["day"])  # the command's own clock: the day it is now

    def day(back: int) -> str:
        return (today - dt.timedelta(days=back)).isoformat()

    yesterday = json.loads(run("match", "42", "ran yesterday", "--json").output)
    assert yesterday["confident"] is True and yesterday["day"] == day(1) and yesterday["days"] == [day(1)]
    assert f"logged at once for {day(1)} (yesterday)" in run("match", "42", "ran yesterday").output
    assert f"logged at once for {day(0)} (today)" in run("match", "42", "ran").output
    assert f"logged at once for {day(3)} (3 days ago)" in run("match", "42", "ran 3 days ago").output
    assert json.loads(run("match", "42", "ran 48 hours ago", "--json").output)["day"] == day(2)  # Ann is on UTC
    two = json.loads(run("match", "42", "I ran yesterday and read today", "--json").output)
    assert two["confident"] is False and two["day"] is None and two["days"] == [day(0), day(1)]
    assert f"asking which day ({day(0)}, {day(1)})" in run("match", "42", "I ran yesterday and read today").output
    week = run("match", "42", "ran last week")
    assert "asked to confirm (doubt: an earlier day), with the day picked first" in week.output
    dated = (today - dt.timedelta(days=2)).strftime("%d.%m")  # "25.11": day first
    assert f"logged at once for {day(2)} (2 days ago)" in run("match", "42", f"ran {dated}").output
    too_far = (today - dt.timedelta(days=20)).strftime("%d.%m.%Y")
    assert "with the day picked first" in run("match", "42", f"ran {too_far}").output


def test_cli_match_keeps_a_plugin_matcher_to_the_users_habits(run, engine, tmp_path, monkeypatch):
    """A matcher plugin naming another user's personal habit: `habitreward match` no longer
    shows it as logged at once (the bot never logged it); an answer that is not a MatchResult
    is one line naming the plugin, not an AttributeError."""
    (tmp_path / "nosy_matcher.py").write_text(
        "from habitreward import hookimpl\n"
        "from habitreward.models import Habit\n"
        "from habitreward.nlp import HabitMatch, MatchResult\n"
        "@hookimpl\n"
        "def habitreward_match_habits(user, text, habits):\n"
        "    if text == 'words':\n"
        "        return 'Piano'\n"
        "    return MatchResult((HabitMatch(Habit.get(Habit.name == 'Piano'), 1.0, 'fuzzy'),), confident=True)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("HABITREWARD_EXTRA_PLUGINS", "nosy_matcher")
    ann, _ = engine.register(42, "Ann")
    bob, _ = engine.register(43, "Bob")
    engine.add_habit("Running", owner=ann)
    engine.add_habit("Piano", owner=bob)

    nosy = run("match", "42", "played piano")
    assert nosy.exit_code == 0, nosy.output
    assert "Piano" not in nosy.output and "No habit found" in nosy.output
    assert json.loads(run("match", "43", "played piano", "--json").output)["matches"][0]["habit"] == "Piano"
    wrong = run("match", "42", "words")
    assert wrong.exit_code == 1
    assert wrong.output == ("Error: habitreward_match_habits answered 'Piano' (plugin 'nosy_matcher'): a MatchResult"
                            " (habitreward.nlp) or None\n")


def test_alias_list_shows_each_habit_with_aliases_in_the_habit_list_order(run, engine):
    ann, bob = engine.add_user(42, "Ann", active=True), engine.add_user(7, "Bob", active=True)
    bobs = engine.add_habit("running", owner=bob)
    anns = engine.add_habit("Running", owner=ann)
    diary = engine.add_habit("Diary")
    engine.add_habit("Quiet")  # no aliases: not listed
    gone = engine.add_habit("Gone")
    for habit, alias in [(anns, "jog"), (diary, "journal"), (bobs, "sprint"), (anns, "trot"), (gone, "old")]:
        engine.add_alias(habit, alias)
    engine.remove_habit(gone)

    table = run("habits", "alias", "list")

    assert table.exit_code == 0, table.output
    assert table.output == (
        "id  habit    aliases\n"
        "--  -------  ---------\n"
        "3   Diary    journal\n"
        "1   running  sprint\n"
        "2   Running  jog, trot\n"
    )
    assert json.loads(run("habits", "alias", "list", "--user", "42", "--json").output) == [
        {"habit_id": 3, "habit": "Diary", "aliases": ["journal"]},
        {"habit_id": 2, "habit": "Running", "aliases": ["jog", "trot"]}]
    assert run("habits", "alias", "list", "Quiet").output.splitlines()[2] == "4   Quiet  -"
    engine.remove_habit(diary)
    engine.remove_habit(anns)
    engine.remove_habit(bobs)
    assert run("habits", "alias", "list").output == "No aliases yet.\n"
    assert run("habits", "alias", "list", "--json").output == "[]\n"


def _word(n: int) -> str:
    """A word of its own for each number (digits as letters: 1100 is "quxbbaa")."""
    return "qux" + "".join("abcdefghij"[int(d)] for d in f"{n:04}")


def test_aliases_of_more_habits_than_a_sqlite_statement_takes(run, engine, sqlite_limit):
    """The alias list read every habit, then their aliases with a list of all their ids in one
    statement: more than 999 habits failed on SQLite before 3.32 (32,766 since); so did a message
    of a person who sees that many habits."""
    from habitreward.models import Habit

    engine.add_user(42, "Ann", active=True)
    count = 1200
    with engine.session(), engine.db.atomic():
        Habit.insert_many([{"name": f"Habit {n:04}"} for n in range(count)]).execute()
        ids = [habit_id for (habit_id,) in Habit.select(Habit.id).order_by(Habit.id).tuples()]
        HabitAlias.insert_many([{"habit": habit_id, "alias": _word(n), "normalized": _word(n)}
                                for n, habit_id in enumerate(ids)]).execute()
    engine.add_alias(engine.find_habit(None, "Habit 1100"), "marathon")
    sqlite_limit(999)

    table = run("habits", "alias", "list")
    mine = run("habits", "alias", "list", "--user", "42", "--json")
    matched = run("match", "42", "ran a marathon", "--json")

    assert table.exit_code == 0, table.output
    assert table.output.splitlines()[2:4] == [f"{ids[0]:<4}  Habit 0000  {_word(0)}",
                                              f"{ids[1]:<4}  Habit 0001  {_word(1)}"]
    assert len(table.output.splitlines()) == 2 + count
    assert mine.exit_code == 0, mine.output
    assert [item["aliases"] for item in json.loads(mine.output)] == [
        [_word(n), "marathon"] if n == 1100 else [_word(n)] for n in range(count)]
    assert matched.exit_code == 0, matched.output
    assert [m["habit"] for m in json.loads(matched.output)["matches"]] == ["Habit 1100"]
