"""The separately packaged plugin in plugins/perfect-day, loaded through its entry point
(issue 2, Must show): it changes what a completion yields and `habitreward plugins` lists it."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import os
import random

import pytest
from click.testing import CliRunner

from conftest import IN_CI
from habitreward.errors import ConfigError
from habitreward.testing.engines import make_engine


def _installed() -> bool:
    return any(ep.name == "perfect_day" for ep in importlib.metadata.entry_points(group="habitreward"))


@pytest.fixture
def plugin_engine(db_url, clock, monkeypatch):
    if not _installed():
        if IN_CI:
            pytest.fail("plugins/perfect-day is not installed: pip install -e plugins/perfect-day")
        pytest.skip("plugins/perfect-day is not installed: pip install -e plugins/perfect-day")
    monkeypatch.delenv("HABITREWARD_LOAD_PLUGINS", raising=False)
    eng = make_engine(db_url, clock=clock, rng=random.Random(3), load_entry_points=True)
    yield eng
    eng.close()


def test_perfect_day_bonus_through_the_entry_point(plugin_engine, clock):
    engine = plugin_engine
    assert "perfect_day" in {engine.pm.get_name(p) for p in engine.pm.get_plugins()}
    user = engine.add_user(1, "Ann", active=True)
    run, read = engine.add_habit("Run"), engine.add_habit("Read")
    engine.add_reward("Perfect day", weight=0.000001, pieces_required=3, max_per_day=0)
    engine.add_reward("Nothing", weight=1000, type="none")

    first = engine.complete(user, run)
    assert first.awards == ()
    second = engine.complete(user, read)
    assert [a.kind for a in second.awards] == ["perfect_day"]
    assert "Perfect day" in second.awards[0].message
    assert {p.reward.name: p.pieces_earned for p in engine.progress(user)} == {"Perfect day": 1}

    # Undoing a completion of that day takes the bonus back.
    engine.undo(user, read)
    assert {p.reward.name: p.pieces_earned for p in engine.progress(user)} == {"Perfect day": 0}
    assert engine.complete(user, read).awards[0].kind == "perfect_day"

    # The same day never pays twice; a new day pays again.
    clock.advance(days=1)
    engine.complete(user, run)
    assert [a.kind for a in engine.complete(user, read).awards] == ["perfect_day"]
    assert {p.reward.name: p.pieces_earned for p in engine.progress(user)} == {"Perfect day": 2}


def test_without_the_plugin_a_completion_yields_no_bonus(engine):
    user = engine.add_user(1, "Ann", active=True)
    habit = engine.add_habit("Run")
    engine.add_reward("Perfect day", weight=0.000001, pieces_required=3)
    engine.add_reward("Nothing", weight=1000, type="none")
    assert engine.complete(user, habit).awards == ()


def test_plugins_command_lists_it_and_its_command_works(plugin_engine, db_url, monkeypatch):
    from habitreward.cli import cli
    from habitreward.cli.app import register_plugin_commands

    register_plugin_commands()
    runner = CliRunner()
    args = ["--env-file", os.devnull, "--database-url", db_url]
    listed = json.loads(runner.invoke(cli, [*args, "plugins", "--json"]).output)
    entry = next(p for p in listed if p["name"] == "perfect_day")
    assert entry["package"] == "habitreward-perfect-day"
    assert "habitreward_habit_completed" in entry["hooks"]

    engine = plugin_engine
    engine.add_user(1, "Ann", active=True)
    engine.add_habit("Run")
    engine.add_reward("Perfect day", weight=0.000001, pieces_required=3)
    engine.add_reward("Nothing", weight=1000, type="none")
    done = runner.invoke(cli, [*args, "done", "1", "Run", "--json"])
    assert json.loads(done.output)["awards"][0]["kind"] == "perfect_day"
    result = runner.invoke(cli, [*args, "perfect-days", "1"])
    # The CLI runs on the real clock (the fixture's frozen one is the engine's only).
    assert result.exit_code == 0
    assert result.output.strip() == dt.datetime.now(dt.timezone.utc).date().isoformat()
    with engine.session():
        from habitreward_perfect_day import PerfectDay

        assert PerfectDay.select().count() == 1


def test_switching_third_party_plugins_off(monkeypatch):
    from habitreward.plugins import make_plugin_manager

    if not _installed():
        pytest.skip("plugins/perfect-day is not installed")
    names = lambda pm: {pm.get_name(p) for p in pm.get_plugins()}  # noqa: E731
    assert "perfect_day" in names(make_plugin_manager(environ={}))
    assert "perfect_day" not in names(make_plugin_manager(environ={"HABITREWARD_LOAD_PLUGINS": ""}))
    assert "perfect_day" in names(make_plugin_manager(environ={"HABITREWARD_LOAD_PLUGINS": "perfect_day"}))
    with pytest.raises(ConfigError, match="HABITREWARD_LOAD_PLUGINS names other, which no installed package provides"):
        make_plugin_manager(environ={"HABITREWARD_LOAD_PLUGINS": "other"})  # a typo must not turn plugins off


def test_an_unimportable_extra_plugin_is_a_one_line_error(tmp_path):
    import subprocess
    import sys

    env = {"HABITREWARD_EXTRA_PLUGINS": "no_such_plugin_module", "PATH": "", "HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "habitreward", "plugins"], capture_output=True, text=True,
                            env=env, cwd=tmp_path, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Error: HABITREWARD_EXTRA_PLUGINS: cannot import 'no_such_plugin_module'"
        " (ModuleNotFoundError: No module named 'no_such_plugin_module')"
    ]


def test_a_day_logged_afterwards_asks_only_for_the_habits_there_were_that_day(plugin_engine, clock):
    """Logging an earlier day completes it with the habits the user had then: a habit added
    since (today) cannot have been done that day, and must not keep it from being perfect."""
    engine = plugin_engine
    user = engine.add_user(1, "Ann", active=True)
    run, read = engine.add_habit("Run"), engine.add_habit("Read")
    engine.add_reward("Perfect day", weight=0.000001, pieces_required=3, max_per_day=0)
    engine.add_reward("Nothing", weight=1000, type="none")
    yesterday = engine.today(user)
    engine.complete(user, run)
    clock.advance(days=1)
    engine.add_habit("Swim")  # added today

    late = engine.complete(user, read, day=yesterday)  # yesterday's last habit, logged today
    assert [a.kind for a in late.awards] == ["perfect_day"]
    assert {p.reward.name: p.pieces_earned for p in engine.progress(user)} == {"Perfect day": 1}

    # Today's day asks for Swim too.
    engine.complete(user, run)
    assert engine.complete(user, read).awards == ()
    assert [a.kind for a in engine.complete(user, engine.find_habit(user, "Swim")).awards] == ["perfect_day"]


def test_the_bonus_reward_is_never_drawn_yet_comes_on_every_perfect_day(plugin_engine, clock):
    """The bonus reward is the plugin's own: its habitreward_weigh_rewards wrapper keeps it out of
    the ordinary draw (weight 0), whatever weight it has, so it needs no tiny weight (the README's
    old `--weight 0.0001`). Heavy here: in the draw, it would come out of nearly every completion."""
    engine = plugin_engine
    user = engine.add_user(1, "Ann", active=True)
    run, read = engine.add_habit("Run"), engine.add_habit("Read")
    engine.add_reward("Perfect day", weight=1000, pieces_required=10_000, max_per_day=0)
    engine.add_reward("Coffee", weight=1, pieces_required=10_000, max_per_day=0)

    # The odds (the bot's /odds and `habitreward odds`) do not offer it either.
    odds = engine.odds(user, run)
    assert [(row.reward.name if row.reward else None) for row in odds.rows] == ["Coffee"]
    assert odds.excluded == ()

    drawn, perfect_days = [], 0
    for day in range(40):  # every other day perfect: 60 completions, 20 perfect days
        drawn.append(engine.complete(user, run).reward)
        if day % 2 == 0:
            done = engine.complete(user, read)
            drawn.append(done.reward)
            assert [a.kind for a in done.awards] == ["perfect_day"]
            perfect_days += 1
        clock.advance(days=1)
    assert {reward.name for reward in drawn if reward is not None} == {"Coffee"}
    assert len([reward for reward in drawn if reward is not None]) == 60  # nothing but Coffee, every time
    assert {p.reward.name: p.pieces_earned for p in engine.progress(user)} == {"Coffee": 60,
                                                                                "Perfect day": perfect_days}


def test_with_perfect_day_off_its_reward_is_an_ordinary_one(engine):
    """Keeping the reward out of the draw is the plugin's doing: without it, it is drawn."""
    user = engine.add_user(1, "Ann", active=True)
    habit = engine.add_habit("Run")
    engine.add_reward("Perfect day", weight=1000, max_per_day=0)
    assert [row.reward.name for row in engine.odds(user, habit).rows] == ["Perfect day"]
    assert engine.complete(user, habit).reward.name == "Perfect day"


def test_same_name_tells_names_apart_as_find_reward_does(engine):
    """habitreward.same_name, the public way a plugin compares a configured name with the rewards
    or habits it is handed (perfect-day's bonus): the same answer as engine.find_reward."""
    from habitreward import same_name
    from habitreward.errors import NotFound

    engine.add_reward("Perfect day")
    engine.add_reward("ΔΡΟΜΟΣ")
    for stored, typed in (("Perfect day", "perfect DAY"), ("Perfect day", "  Perfect\u200b   day "),
                          ("Perfect day", "Perfect  days"), ("Perfect day", "Perfectday"),
                          ("ΔΡΟΜΟΣ", "δρομος"), ("ΔΡΟΜΟΣ", "δρομοσ")):
        try:
            found = engine.find_reward(None, typed).name == stored
        except NotFound:
            found = False
        assert same_name(stored, typed) is found, (stored, typed)
        assert same_name(typed, stored) is found
    assert same_name("Perfect day", "perfect day") and not same_name("Perfect day", "Perfect night")


@pytest.mark.no_db
def test_the_example_plugins_use_only_the_public_api():
    """plugins/ and examples/ are what plugin authors copy: nothing from the engine's inner
    modules (habitreward.engine.validation's name_key and tidy_name were), nothing private."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    internal = []
    for path in sorted([*root.glob("plugins/*/*/**/*.py"), *root.glob("examples/*.py")]):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("habitreward"):
                modules, names = [node.module], [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                modules = names = [alias.name for alias in node.names if alias.name.startswith("habitreward")]
            else:
                continue
            internal += [f"{path.relative_to(root)}: {name}" for name in modules
                         if name.startswith("habitreward.engine.")]
            internal += [f"{path.relative_to(root)}: {name}" for name in names if "._" in name]
    assert internal == []


def test_with_perfect_day_wrapping_the_weights_another_plugins_answer_is_still_named(plugin_engine):
    """perfect-day wraps habitreward_weigh_rewards, so pluggy calls the implementations: a weight
    another plugin got wrong is still refused naming that plugin (it was "answered the weight
    -1.0:", no plugin), and a right one still gets the wrapper's bonus reward out of the draw."""
    from habitreward import hookimpl
    from habitreward.errors import PluginError

    class Weekend:
        weight = 2.0

        @hookimpl
        def habitreward_weigh_rewards(self, candidates):
            return [c.with_weight(self.weight) for c in candidates]

    engine = plugin_engine
    weekend = Weekend()
    engine.pm.register(weekend, name="weekend")
    user, run = engine.add_user(1, "Ann", active=True), engine.add_habit("Run")
    engine.add_reward("Perfect day", weight=1000)
    engine.add_reward("Coffee", weight=1)
    assert [(row.reward.name, row.weight) for row in engine.odds(user, run).rows] == [("Coffee", 2.0)]
    weekend.weight = -1.0
    with pytest.raises(PluginError, match=r"^habitreward_weigh_rewards answered the weight -1.0 \(plugin 'weekend'\):"):
        engine.complete(user, run)


def test_rewards_list_shows_the_bonus_reward_as_not_drawn_not_by_its_weight(plugin_engine, db_url, monkeypatch):
    """The bonus is never drawn (the wrapper weighs it 0), yet `rewards list` showed the weight it
    was added with, which an operator reads as a chance: it reads "not drawn", with why, and
    --json keeps "weight" and adds "in_draw"."""
    from habitreward.cli import cli

    # Every reward listed is weighed in batches as it is read: two here, so that one is another batch.
    monkeypatch.setattr("habitreward.cli.admin._REWARDS_WEIGHED_TOGETHER", 2)

    engine = plugin_engine
    ann = engine.add_user(1, "Ann", active=True)
    engine.add_reward("Perfect day", weight=1000, pieces_required=3)
    engine.add_reward("Coffee", weight=2)
    engine.remove_reward(engine.add_reward("Gone", weight=3))
    args = ["--env-file", os.devnull, "--database-url", db_url, "rewards", "list"]

    table = CliRunner().invoke(cli, args)
    assert table.exit_code == 0, table.output
    assert table.output == (
        "id  name         weight     type     pieces  value  max/day  owner   active\n"
        "--  -----------  ---------  -------  ------  -----  -------  ------  ------\n"
        "2   Coffee       2          virtual  1              1        shared  yes\n"
        "1   Perfect day  not drawn  virtual  3              1        shared  yes\n"
        "not drawn: a plugin keeps the reward out of the random draw (its pieces come from the plugin), so the"
        " weight it was added with counts for nothing.\n"
    )
    for extra in ([], ["--user", "1"], ["--all"]):
        listed = {r["name"]: (r["weight"], r["in_draw"])
                  for r in json.loads(CliRunner().invoke(cli, [*args, *extra, "--json"]).output)}
        assert listed == {"Coffee": (2.0, True), "Perfect day": (1000.0, False),
                          **({"Gone": (3.0, False)} if extra == ["--all"] else {})}, extra
    # What the odds say too: no chance of it.
    assert [row.reward.name for row in engine.odds(ann, engine.add_habit("Run")).rows] == ["Coffee"]


def test_undoing_a_perfect_day_whose_bonus_was_claimed_keeps_the_new_cycles_pieces(plugin_engine, clock):
    """The bonus of a day already claimed is spent: undoing a completion of that day (its message's
    Undo button) took a piece of the next cycle instead, so a later perfect day's piece was lost."""
    engine = plugin_engine
    user = engine.add_user(1, "Ann", active=True)
    clock.advance(days=-3)
    run, read = engine.add_habit("Run"), engine.add_habit("Read")
    bonus = engine.add_reward("Perfect day", pieces_required=2, max_per_day=0)
    engine.add_reward("Nothing", weight=1000, type="none")
    days = [engine.today(user) + dt.timedelta(days=n) for n in range(3)]
    logs = {}
    for day in days[:2]:  # two perfect days: the bonus is achieved, and claimed
        clock.set(dt.datetime.combine(day, dt.time(12), dt.timezone.utc))
        engine.complete(user, run)
        logs[day] = engine.complete(user, read).log
    engine.claim(user, bonus)
    clock.set(dt.datetime.combine(days[2], dt.time(12), dt.timezone.utc))
    engine.complete(user, run)
    assert [a.kind for a in engine.complete(user, read).awards] == ["perfect_day"]  # the next cycle's first

    engine.undo(user, read, log_id=logs[days[1]].id)  # a day whose bonus was claimed
    [entry] = engine.progress(user)
    assert (entry.pieces_earned, entry.status.value, entry.times_claimed) == (1, "pending", 1)

    # The new cycle's own bonus taken back: CLAIMED with 0 pieces, as before it came (docs/rules.md).
    engine.undo(user, read)
    [entry] = engine.progress(user)
    assert (entry.pieces_earned, entry.status.value, entry.times_claimed) == (0, "claimed", 1)


def test_a_bonus_a_claim_kept_is_taken_back_by_undoing_its_day(plugin_engine, clock):
    """pieces_required lowered from 3 to 1 while 2 bonuses were held: the claim keeps the newest,
    and undoing that day takes it back (as for drawn pieces, docs/rules.md "Pieces and claims")."""
    engine = plugin_engine
    user = engine.add_user(1, "Ann", active=True)
    clock.advance(days=-2)
    run = engine.add_habit("Run")
    bonus = engine.add_reward("Perfect day", pieces_required=3, max_per_day=0)
    engine.add_reward("Nothing", weight=1000, type="none")
    for _ in range(2):
        assert [a.kind for a in engine.complete(user, run).awards] == ["perfect_day"]
        clock.advance(days=1)
    engine.edit_reward(bonus, pieces_required=1)
    kept = engine.claim(user, bonus)
    assert (kept.pieces_earned, kept.claimed) == (1, False)

    engine.undo(user, run)  # the newest perfect day: its bonus is the piece kept
    [entry] = engine.progress(user)
    assert (entry.pieces_earned, entry.status.value, entry.times_claimed) == (0, "claimed", 1)
