"""Each rule hook can be replaced by a plugin, and each event reaches plugins (issue 2)."""

from __future__ import annotations

import random
import re

import pytest

from habitreward import hookimpl
from habitreward.draw import NO_REWARD
from habitreward.errors import PluginError
from habitreward.events import CompletionUndone, HabitCompleted, RewardClaimed, StreakBroken


def test_habitreward_compute_streak_plugin_gets_the_first_word(engine, clock):
    class EveryOtherDayCounts:
        @hookimpl
        def habitreward_compute_streak(self, habit, day, previous_day, previous_streak):
            # A plugin rule: any gap up to 2 days keeps the streak, whatever the habit says.
            if previous_day is not None and (day - previous_day).days <= 3:
                return previous_streak + 1
            return 1

    engine.pm.register(EveryOtherDayCounts())
    user, habit = engine.add_user(1, "Ann", active=True), engine.add_habit("Run")
    streaks = []
    for _ in range(3):
        streaks.append(engine.complete(user, habit).streak)
        clock.advance(days=3)
    assert streaks == [1, 2, 3]


def test_habitreward_odds_multiplier_and_weigh_rewards(engine):
    from decimal import Decimal

    class Flat:
        @hookimpl
        def habitreward_odds_multiplier(self, habit, streak, settings):
            return Decimal("7.0")  # any real number, a Decimal too

        @hookimpl
        def habitreward_weigh_rewards(self, candidates, multiplier):
            return [c.with_weight(1.0) for c in candidates]  # every entry equally likely

    engine.pm.register(Flat())
    user, habit = engine.add_user(1, "Ann", active=True), engine.add_habit("Run")
    engine.add_reward("Coffee", weight=9)
    engine.add_reward("Nothing", weight=1, type="none")
    odds = engine.odds(user, habit)
    assert odds.multiplier == 7.0
    assert {(r.reward.name if r.reward else None): r.probability for r in odds.rows} == {"Coffee": 0.5, None: 0.5}
    assert engine.complete(user, habit).log.total_weight_applied == 7.0


def test_habitreward_draw_reward_replaces_the_draw(engine):
    seen = []

    class AlwaysTheRarest:
        @hookimpl
        def habitreward_draw_reward(self, candidates, rng):
            seen.append([c.reward.name for c in candidates])
            assert isinstance(rng, random.Random)
            real = [c for c in candidates if not c.reward.is_nothing]
            return min(real, key=lambda c: c.weight) if real else NO_REWARD

    engine.pm.register(AlwaysTheRarest())
    user = engine.add_user(1, "Ann", active=True)
    engine.add_reward("Common", weight=100, max_per_day=0, pieces_required=9)
    engine.add_reward("Rare", weight=0.01, max_per_day=0, pieces_required=9)
    engine.add_reward("Nothing", weight=1000, type="none")
    assert engine.complete(user, engine.add_habit("Run")).reward.name == "Rare"
    assert seen == [["Common", "Rare", "Nothing"]]


def test_events_reach_plugins_inside_the_transaction(engine, clock):
    events = []

    class Recorder:
        @hookimpl
        def habitreward_habit_completed(self, engine, event):
            assert engine.db.in_transaction()
            events.append(event)

        @hookimpl
        def habitreward_completion_undone(self, engine, event):
            events.append(event)

        @hookimpl
        def habitreward_reward_claimed(self, engine, event):
            events.append(event)

        @hookimpl
        def habitreward_streak_broken(self, engine, event):
            events.append(event)

    engine.pm.register(Recorder())
    user, habit = engine.add_user(1, "Ann", active=True), engine.add_habit("Run")
    coffee = engine.add_reward("Coffee", weight=1, max_per_day=0)
    engine.complete(user, habit)
    clock.advance(days=1)
    engine.complete(user, habit)
    engine.claim(user, coffee)
    clock.advance(days=3)
    engine.complete(user, habit)
    engine.undo(user, habit)
    kinds = [type(e) for e in events]
    assert kinds == [HabitCompleted, HabitCompleted, RewardClaimed, StreakBroken, HabitCompleted, CompletionUndone]
    broken = events[3]
    assert (broken.previous_streak, broken.habit.name) == (2, "Run")


def test_a_failing_event_hook_rolls_the_completion_back(engine):
    class Broken:
        @hookimpl
        def habitreward_habit_completed(self, engine, event):
            raise RuntimeError("plugin bug")

    engine.pm.register(Broken())
    user, habit = engine.add_user(1, "Ann", active=True), engine.add_habit("Run")
    engine.add_reward("Coffee", weight=1, max_per_day=0)
    with pytest.raises(RuntimeError, match="plugin bug"):
        engine.complete(user, habit)
    assert engine.history(user) == [] and engine.progress(user) == []


def test_habitreward_register_models_and_migrations(engine, tmp_path):
    """A plugin's table comes from its own migration and goes with its user."""
    import peewee

    from habitreward.models import BaseModel, User

    (tmp_path / "migrations").mkdir()
    (tmp_path / "migrations" / "0001_badges.py").write_text(
        "from peewee import *\n"
        "def up(migrator, db):\n"
        "    class Badge(Model):\n"
        "        user_id = IntegerField()\n"
        "        title = CharField()\n"
        "        class Meta:\n"
        "            database = db\n"
        "            table_name = 'test_badges'\n"
        "    db.create_tables([Badge])\n"
    )

    class Badge(BaseModel):
        user = peewee.ForeignKeyField(User, on_delete="CASCADE")
        title = peewee.CharField()

        class Meta:
            table_name = "test_badges"

    class Badges:
        @hookimpl
        def habitreward_register_models(self, register):
            register(Badge)

        @hookimpl
        def habitreward_register_migrations(self, register):
            register("badges", str(tmp_path / "migrations"))

    engine.pm.register(Badges())
    assert engine.pending_migrations() == ["badges:0001_badges"]
    assert engine.upgrade_schema() == ["badges:0001_badges"]
    assert engine.upgrade_schema() == []
    assert Badge in engine.hooks.models()
    ann, bob = engine.add_user(1, "Ann"), engine.add_user(2, "Bob")
    with engine.session():
        Badge.create(user=ann, title="early bird")
        Badge.create(user=bob, title="night owl")
    counts = engine.delete_user(1)
    assert counts["test_badges"] == 1
    with engine.session():
        assert [b.title for b in Badge.select()] == ["night owl"]
        engine.db.execute_sql("DROP TABLE test_badges")
        engine.db.execute_sql("DELETE FROM schema_migrations WHERE name = 'badges:0001_badges'")


def test_habitreward_register_commands():
    import click
    from click.testing import CliRunner

    from habitreward.hooks import Hooks
    from habitreward.plugins import make_plugin_manager

    class Hello:
        @hookimpl
        def habitreward_register_commands(self, cli):
            @cli.command()
            def hello():
                """Say hello (from a plugin)."""
                click.echo("hello from a plugin")

    @click.group()
    def root():
        pass

    pm = make_plugin_manager(load_entry_points=False)
    pm.register(Hello())
    Hooks(pm).register_commands(root)
    assert CliRunner().invoke(root, ["hello"]).output == "hello from a plugin\n"


def test_habitreward_user_deleted_runs_inside_the_deletion(engine):
    from habitreward.models import KeyValue

    class Forgetful:
        @hookimpl
        def habitreward_user_deleted(self, engine, user):
            assert engine.db.in_transaction()
            KeyValue.delete().where((KeyValue.namespace == "test") & (KeyValue.key == str(user.telegram_id))).execute()

    engine.pm.register(Forgetful())
    engine.add_user(1, "Ann")
    engine.add_user(2, "Bob")
    with engine.session():
        KeyValue.create(namespace="test", key="1", value="{}")
        KeyValue.create(namespace="test", key="2", value="{}")
    engine.delete_user(1)
    with engine.session():
        assert [kv.key for kv in KeyValue.select()] == ["2"]


def test_deleting_a_user_removes_their_processed_updates_from_the_inbox(engine):
    import json

    from habitreward.models import ProcessedUpdate, utcnow

    engine.add_user(12345, "Ann")
    engine.add_user(999, "Bob")

    def update(update_id: int, sender: int, processed: bool = True) -> None:
        payload = {"update_id": update_id, "message": {"message_id": 1, "date": 0, "text": "hi 12345",
                                                     "chat": {"id": sender, "type": "private"},
                                                     "from": {"id": sender, "is_bot": False, "first_name": "x"}}}
        ProcessedUpdate.create(update_id=update_id, payload=json.dumps(payload),
                               processed_at=utcnow() if processed else None)

    with engine.session():
        update(1, 12345)
        update(2, 999)  # mentions 12345 in its text only: not Ann's
        update(3, 12345, processed=False)  # still to be processed: left for the server
    engine.delete_user(12345)
    with engine.session():
        assert sorted(u.update_id for u in ProcessedUpdate.select()) == [2, 3]


# --- a plugin that breaks a hook's contract: the completion is refused whole --------------------------


def _refused(engine, plugin, match: str, name: str | None = None) -> None:
    from habitreward.models import HabitLog, RewardProgress

    engine.pm.register(plugin, name=name)
    user, habit = engine.add_user(1, "Ann", active=True), engine.add_habit("Run")
    with pytest.raises(PluginError, match=match):
        engine.complete(user, habit)
    with engine.session():
        assert HabitLog.select().count() == 0 and RewardProgress.select().count() == 0


@pytest.mark.parametrize("hook", ["draw", "weigh"])
def test_a_plugin_cannot_bring_a_reward_that_is_not_a_candidate(engine, hook):
    """Another user's personal reward: not Ann's to draw, whether drawn or slipped into the weights."""
    from habitreward.draw import Candidate

    bob = engine.add_user(2, "Bob", active=True)
    secret = Candidate(reward=engine.add_reward("Bob's secret", owner=bob), weight=100.0)
    engine.add_reward("Coffee")

    class Thief:
        if hook == "draw":
            @hookimpl
            def habitreward_draw_reward(self, candidates, rng):
                return secret
        else:
            @hookimpl
            def habitreward_weigh_rewards(self, candidates, multiplier):
                return [*candidates, secret]

    _refused(engine, Thief(), f"(?=.*\\(plugin 'test_hooks.Thief'\\))habitreward_{hook}_reward[s]? answered .*not"
                              " one of the candidates")


@pytest.mark.parametrize("weight", [-1.0, float("nan"), float("inf"), "3"])
def test_a_weight_out_of_its_range_is_refused(engine, weight):
    """A negative weight used to leave the reward out of the draw without a word (as 0 does on
    purpose), and so did an endless one: now the author hears which plugin answered what."""
    engine.add_reward("Coffee")

    class Skewed:
        @hookimpl
        def habitreward_weigh_rewards(self, candidates, multiplier):
            return [c.with_weight(weight) for c in candidates]

    _refused(engine, Skewed(), r"habitreward_weigh_rewards answered the weight .* \(plugin 'test_hooks.Skewed'\):"
                               " a weight is a finite number from 0")


@pytest.mark.parametrize("answer", ["Nice streak!", {"a": 1}, [None]])
def test_habit_completed_answers_awards_or_nothing(engine, answer):
    class Chatty:
        @hookimpl
        def habitreward_habit_completed(self, engine, event):
            return answer  # a str would have been an award per letter

    _refused(engine, Chatty(), "habitreward_habit_completed answered .* \\(plugin 'test_hooks.Chatty'\\): an Award,"
                               " a list of Awards or None")


@pytest.mark.parametrize(("hook", "answer"), [("streak", 0), ("streak", -3), ("streak", "5"), ("odds", -1.0),
                                              ("odds", float("inf")), ("odds", float("nan")), ("odds", "2")])
def test_streaks_and_multipliers_out_of_their_range_are_refused(engine, hook, answer):
    class Odd:
        if hook == "streak":
            @hookimpl
            def habitreward_compute_streak(self, habit, day, previous_day, previous_streak):
                return answer
        else:
            @hookimpl
            def habitreward_odds_multiplier(self, habit, streak, settings):
                return answer

    _refused(engine, Odd(), ("habitreward_compute_streak" if hook == "streak" else "habitreward_odds_multiplier")
             + r" answered .* \(plugin 'test_hooks.Odd'\): ")


def test_a_refused_answer_names_the_plugin_that_gave_it_among_several(engine):
    """Two plugins implement the hook: the error says which one answered, by the name it was
    loaded under (an entry point's name), so the author knows where to look."""
    class Quiet:
        @hookimpl
        def habitreward_odds_multiplier(self, streak):
            return None  # lets the next one answer

    class Weekend:
        @hookimpl
        def habitreward_odds_multiplier(self, day):
            return "2"

    engine.pm.register(Weekend(), name="weekend_rules")
    _refused(engine, Quiet(), r"^habitreward_odds_multiplier answered '2' \(plugin 'weekend_rules'\): a multiplier"
                              " is a finite number from 0$")


class KeepsBonusOut:
    """A wrapper as perfect-day's (docs/plugins.md): the reward "Bonus" weighs 0 whoever weighed."""

    @hookimpl(wrapper=True)
    def habitreward_weigh_rewards(self):
        weighted = yield
        return [c.with_weight(0) if c.reward.name == "Bonus" else c for c in weighted]


def _odd_answers(secret):
    """For each rule and event hook, a plugin answering what the hook may not (``secret``: a
    candidate of another user's), the name it is registered under and the error naming it."""
    class Streaks:
        @hookimpl
        def habitreward_compute_streak(self):
            return 0

    class Odds:
        @hookimpl
        def habitreward_odds_multiplier(self):
            return float("nan")

    class Weights:
        @hookimpl
        def habitreward_weigh_rewards(self, candidates):
            return [c.with_weight(-1.0) for c in candidates]

    class Thief:
        @hookimpl
        def habitreward_weigh_rewards(self, candidates):
            return [*candidates, secret]

    class Drawer:
        @hookimpl
        def habitreward_draw_reward(self):
            return secret

    class Chatty:
        @hookimpl
        def habitreward_habit_completed(self):
            return "Nice streak!"

    return {
        "streak": (Streaks(), "habitreward_compute_streak answered 0 (plugin 'streak'): a streak is"),
        "odds": (Odds(), "habitreward_odds_multiplier answered nan (plugin 'odds'): a multiplier is"),
        "weight": (Weights(), "habitreward_weigh_rewards answered the weight -1.0 (plugin 'weight'): a weight"),
        "thief": (Thief(), "habitreward_weigh_rewards answered a reward that is not one of the candidates"
                           " (plugin 'thief')"),
        "draw": (Drawer(), f"habitreward_draw_reward answered {secret!r} (plugin 'draw'), which is not one of the"),
        "awards": (Chatty(), "habitreward_habit_completed answered 'Nice streak!' (plugin 'awards'): an Award"),
    }


@pytest.mark.parametrize("wrapper", ["weigh_rewards", "the same hook"])
@pytest.mark.parametrize("case", ["streak", "odds", "weight", "thief", "draw", "awards"])
def test_a_refused_answer_names_its_plugin_with_a_wrapper_installed(engine, case, wrapper):
    """pluggy calls the implementations under a wrapper (perfect-day wraps weigh_rewards): the
    error still names the plugin that answered, not none, nor the wrapper."""
    from habitreward.draw import Candidate

    bob = engine.add_user(2, "Bob", active=True)
    secret = Candidate(reward=engine.add_reward("Bob's secret", owner=bob), weight=100.0)
    engine.add_reward("Coffee")
    plugin, message = _odd_answers(secret)[case]
    hook = next(name for name in dir(plugin) if name.startswith("habitreward_"))
    if wrapper == "weigh_rewards":
        engine.pm.register(KeepsBonusOut(), name="keeps_bonus_out")
    else:  # a wrapper of the very hook answered wrongly, doing nothing but wrap it
        def wrap():
            return (yield)

        engine.pm.register(type("Timing", (), {hook: staticmethod(hookimpl(wrapper=True)(wrap))})(), name="timing")
    _refused(engine, plugin, "^" + re.escape(message), name=case)


def test_under_a_wrapper_the_plugins_answer_is_wrapped_as_pluggy_documents(engine):
    """The wrapper runs around the implementations (its code before and after its yield), is
    handed their answer and may change it (the "Bonus" out of the draw), and is thrown what one of
    them raised, at its yield, to catch it if it will."""
    called = []

    class Outer:
        @hookimpl(wrapper=True)
        def habitreward_weigh_rewards(self):
            called.append("before")
            try:
                return (yield)
            except PluginError as exc:  # a refused answer, thrown in at the yield
                called.append(f"thrown {exc}")
                raise
            finally:
                called.append("after")

    class OldStyle:
        @hookimpl(hookwrapper=True)
        def habitreward_weigh_rewards(self):
            outcome = yield
            called.append("old-style saw " + (f"{len(outcome.get_result())}" if outcome.exception is None
                                              else type(outcome.exception).__name__))

    doubled = True

    class Doubling:
        @hookimpl
        def habitreward_weigh_rewards(self, candidates):
            called.append("inner")
            return [c.with_weight(2 * c.weight if doubled else -1.0) for c in candidates]

    engine.pm.register(KeepsBonusOut(), name="keeps_bonus_out")
    engine.pm.register(Doubling(), name="doubling")
    engine.pm.register(OldStyle(), name="old_style")
    engine.pm.register(Outer(), name="outer")
    ann, run = engine.add_user(1, "Ann", active=True), engine.add_habit("Run")
    engine.add_reward("Coffee", weight=1)
    engine.add_reward("Tea", weight=3)
    engine.add_reward("Bonus", weight=1000)
    odds = engine.odds(ann, run)
    assert {row.reward.name: row.weight for row in odds.rows} == {"Coffee": 2, "Tea": 6}
    assert called == ["before", "inner", "old-style saw 3", "after"]

    called.clear()
    doubled = False
    with pytest.raises(PluginError, match=r"answered the weight -1.0 \(plugin 'doubling'\)"):
        engine.odds(ann, run)
    assert called == ["before", "inner", "old-style saw PluginError", "thrown habitreward_weigh_rewards answered"
                      " the weight -1.0 (plugin 'doubling'): a weight is a finite number from 0", "after"]


def test_what_a_wrapper_makes_of_the_answers_names_the_wrapper(engine):
    class Spoiler:
        @hookimpl(wrapper=True)
        def habitreward_compute_streak(self):
            yield
            return -1

    engine.pm.register(Spoiler(), name="spoiler")
    _refused(engine, KeepsBonusOut(), r"^habitreward_compute_streak answered -1 \(plugin 'spoiler', which wraps"
                                      r" the hook\): a streak is")


def test_a_wrapper_of_an_event_hook_that_returns_nothing(engine):
    """A wrapper with a bare ``yield`` returns None, where pluggy expects the implementations'
    list of answers: it was iterated as that list, a TypeError traceback naming no plugin. For a
    hook whose answers mean nothing (users delete's) that is no error; for habit_completed, whose
    Awards it drops, it is a PluginError naming the wrapper, and nothing is kept."""
    from habitreward.models import User

    class Watcher:
        @hookimpl(wrapper=True)
        def habitreward_user_deleted(self):
            yield

        @hookimpl(wrapper=True)
        def habitreward_habit_completed(self):
            yield

    engine.add_user(2, "Bob")
    _refused(engine, Watcher(), r"^habitreward_habit_completed answered None \(plugin 'watcher', which wraps the"
                                r" hook\): a wrapper of it returns the list of answers", name="watcher")
    engine.delete_user(2)
    with engine.session():
        assert [u.telegram_id for u in User.select()] == [1]


def test_the_odds_multiplier_is_told_the_user_and_the_completions_day(engine, clock):
    import datetime as dt

    asked = []

    class DayRule:
        @hookimpl
        def habitreward_odds_multiplier(self, user, day):  # only what it needs
            asked.append((user.telegram_id, day))

    engine.pm.register(DayRule())
    clock.set(dt.datetime(2026, 1, 10, 20, tzinfo=dt.timezone.utc))  # already the 11th in Almaty
    ann = engine.add_user(1, "Ann", active=True, timezone="Asia/Almaty")
    clock.advance(days=-3)
    run = engine.add_habit("Run")
    clock.advance(days=3)
    engine.odds(ann, run)
    engine.complete(ann, run, day=dt.date(2026, 1, 9))  # backdated
    assert asked == [(1, dt.date(2026, 1, 11)), (1, dt.date(2026, 1, 9))]


def test_a_plugins_own_integrity_error_is_reported_as_itself(engine):
    import peewee

    from habitreward.models import HabitLog, User

    class Clumsy:
        @hookimpl
        def habitreward_habit_completed(self, engine, event):
            User.create(id=event.user.id, telegram_id=999, name="clash")  # a taken primary key

    engine.pm.register(Clumsy())
    user, habit = engine.add_user(1, "Ann", active=True), engine.add_habit("Run")
    with pytest.raises(peewee.IntegrityError):  # not HabitLog.DoesNotExist from the race handling
        engine.complete(user, habit)
    with engine.session():
        assert HabitLog.select().count() == 0
