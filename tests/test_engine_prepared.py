"""Queries compiled once (engine/prepared.py) give what the same peewee query gives,
with every value converted as peewee converts it, on both backends."""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal

import peewee
import pytest

from habitreward.engine.prepared import Prepared, PreparedShapes, prepared_insert
from habitreward.models import Habit, HabitLog, Reward, User


def test_a_prepared_select_returns_the_rows_of_the_plain_query_for_each_run(engine):
    ann = engine.add_user(1, "Ann", active=True)
    bob = engine.add_user(2, "Bob", active=True)
    run, read = engine.add_habit("Run"), engine.add_habit("Read")
    engine.complete(ann, run)
    engine.complete(bob, read)
    engine.complete(bob, run)

    def plain(user_id: int, day: dt.date) -> list[tuple]:
        query = HabitLog.select().where((HabitLog.user == user_id) & (HabitLog.completed_on == day))
        return [(log.id, log.habit_id, log.completed_on) for log in query.order_by(HabitLog.id)]

    logs = Prepared(
        lambda user_id, day: HabitLog.select().where((HabitLog.user == user_id) & (HabitLog.completed_on == day))
        .order_by(HabitLog.id),
        2,
    )
    today = engine.today(ann)
    with engine.session():
        for user in (ann, bob, ann):  # the same compiled SQL, new values each time
            got = [(log.id, log.habit_id, log.completed_on) for log in logs.rows(engine.db, user.id, today)]
            assert got == plain(user.id, today) and got
            assert all(isinstance(log, HabitLog) for log in logs.rows(engine.db, user.id, today))
        assert list(logs.rows(engine.db, ann.id, today - dt.timedelta(days=1))) == []
        assert logs.first(engine.db, bob.id, today).habit_id == read.id


def test_a_prepared_insert_converts_values_like_peewee_and_returns_the_new_key(engine):
    fields = (Reward.name, Reward.weight, Reward.type, Reward.pieces_required, Reward.piece_value,
              Reward.max_per_day, Reward.active, Reward.created_at, Reward.updated_at)
    insert = prepared_insert(Reward, fields)
    moment = dt.datetime(2026, 11, 25, 8, 30, 15, 123456)
    with engine.session():
        first = insert.insert(engine.db, "Coffee", 2.5, "money", 3, Decimal("1.505"), 0, True, moment, moment)
        second = insert.insert(engine.db, "Tea", 1.0, "virtual", 1, None, 1, False, moment, moment)
        coffee, tea = Reward.get_by_id(first), Reward.get_by_id(second)
        same = Reward.get_by_id(Reward.create(name="Same", piece_value=Decimal("1.505")).id)
    assert second != first
    assert (coffee.name, coffee.weight, coffee.pieces_required, coffee.active) == ("Coffee", 2.5, 3, True)
    assert coffee.piece_value == same.piece_value == Decimal("1.50")  # MoneyField's rounding, as peewee's
    assert coffee.created_at == moment
    assert tea.piece_value is None and tea.active is False


def test_an_insert_that_leaves_out_a_defaulted_column_is_refused():
    with pytest.raises(ValueError, match="created_at"):
        prepared_insert(User, (User.telegram_id, User.name))


def test_on_conflict_ignore_reports_no_new_row(engine):
    insert = prepared_insert(
        User, (User.telegram_id, User.name, User.language, User.language_chosen, User.timezone, User.active,
               User.is_admin, User.created_at, User.updated_at), on_conflict_ignore=True)
    now = dt.datetime(2026, 1, 1)
    with engine.session():
        assert insert.write(engine.db, 5, "Ann", "en", False, "UTC", True, False, now, now) == 1
        assert insert.write(engine.db, 5, "Other", "en", False, "UTC", True, False, now, now) == 0
        assert User.get(User.telegram_id == 5).name == "Ann"


def test_in_lists_are_compiled_per_length_and_keep_their_values(engine):
    habits = [engine.add_habit(name) for name in ("Run", "Read", "Swim")]
    by_ids = PreparedShapes(lambda ids: Habit.select().where(Habit.id.in_(list(ids))).order_by(Habit.id))
    with engine.session():
        for ids in ([habits[0].id], [habits[1].id, habits[2].id], [habits[2].id]):
            assert [h.id for h in by_ids.shape(len(ids)).rows(engine.db, *ids)] == ids
    assert by_ids.shape(1) is by_ids.shape(1)


def test_the_sql_is_built_once_and_the_same_statement_runs_each_time(engine, caplog):
    engine.add_user(1, "Ann", active=True)
    with caplog.at_level(logging.DEBUG, logger="peewee"), engine.session():
        for _ in range(3):
            assert engine.find_user(1).name == "Ann"
        assert engine.find_user(2) is None
    statements = {r.getMessage().split("', ")[0] for r in caplog.records if "FROM \"users\"" in r.getMessage()}
    assert len(statements) == 1  # one SQL text, values passed as parameters


def test_every_slot_must_appear_in_the_sql():
    import peewee

    unused = Prepared(lambda user_id, other: User.select().where(User.id == user_id), 2)
    with pytest.raises(ValueError, match="every slot"):
        unused.compiled(peewee.SqliteDatabase(":memory:"))


def test_rows_are_the_instances_peewee_builds_every_field_converted_and_nothing_dirty(engine):
    ann = engine.add_user(1, "Ann", active=True)
    engine.add_habit("Run", category="sport", allowed_skip_days=2, owner=ann)
    engine.add_habit("Read")
    coffee = engine.add_reward("Coffee", weight=3, pieces_required=3, piece_value=Decimal("1.50"))
    engine.complete(ann, engine.find_habit(ann, "Run"))

    def state(instance) -> tuple:
        return type(instance), instance.__data__, instance._dirty, {k: v for k, v in vars(instance).items()
                                                                       if not k.startswith("_")}

    cases = [  # a whole model, some of its columns, an extra aliased column
        (lambda owner: Habit.select().where(Habit.owner.is_null() | (Habit.owner == owner)).order_by(Habit.id),
         ann.id),
        (lambda user: HabitLog.select(HabitLog.id, HabitLog.completed_on, HabitLog.got_reward)
         .where(HabitLog.user == user), ann.id),
        (lambda reward: Reward.select(Reward, (Reward.weight * 2).alias("double")).where(Reward.id == reward),
         coffee.id),
    ]
    with engine.session():
        for build, value in cases:
            ours = Prepared(build, 1).rows(engine.db, value)
            theirs = list(build(value))
            assert ours and [state(r) for r in ours] == [state(r) for r in theirs]
        reward = Prepared(cases[2][0], 1).first(engine.db, coffee.id)
        assert reward.piece_value == Decimal("1.50") and reward.double == 6 and reward.active is True
        reward.weight = 4  # a change is tracked as usual, and saved
        assert reward.dirty_fields == [Reward.weight]
        reward.save()
    assert Reward.get_by_id(coffee.id).weight == 4


def test_a_flat_join_puts_the_joined_columns_on_the_model(engine):
    from habitreward.models import RewardProgress

    ann = engine.add_user(1, "Ann", active=True)
    coffee = engine.add_reward("Coffee", pieces_required=3)
    tea = engine.add_reward("Tea", pieces_required=2)
    engine.grant_piece(ann, coffee)

    query = Prepared(lambda user: Reward.select(Reward, RewardProgress.pieces_earned.alias("pieces"))
                     .join(RewardProgress, on=((RewardProgress.reward == Reward.id) & (RewardProgress.user == user)),
                           join_type=peewee.JOIN.LEFT_OUTER)
                     .order_by(Reward.id), 1, flat=True)
    with engine.session():
        rows = query.rows(engine.db, ann.id)
    assert [(r.id, r.name, r.pieces) for r in rows] == [(coffee.id, "Coffee", 1), (tea.id, "Tea", None)]
    assert all(type(r) is Reward and not hasattr(r, "rewardprogress") for r in rows)


def test_tuple_rows_are_peewees_tuples(engine):
    ann = engine.add_user(1, "Ann", active=True)
    engine.add_habit("Run")
    engine.add_reward("Coffee", piece_value=Decimal("2.50"))

    cases = [
        (lambda name: Habit.select(Habit.id, Habit.name, Habit.created_at, Habit.active)
         .where(Habit.name == name).tuples(), "Run"),
        (lambda name: Reward.select(Reward.piece_value, Reward.name).where(Reward.name == name).tuples(), "Coffee"),
        (lambda user: User.select(User.id).where(User.id == user).tuples(), ann.id),
    ]
    with engine.session():
        for build, value in cases:
            ours = Prepared(build, 1).rows(engine.db, value)
            assert ours == list(build(value)) and ours
        (habit,) = Prepared(cases[0][0], 1).rows(engine.db, "Run")
        assert isinstance(habit[2], dt.datetime) and habit[3] is True  # converted, not SQLite's text and 1
        assert Prepared(cases[0][0], 1).rows(engine.db, "nothing") == []
    assert ours == [(ann.id,)]


@pytest.mark.parametrize("text", ["2026-11-30 00:03:52.123456", "2026-11-30 00:03:52", "2026-11-30",
                                  "2026-11-30T00:03:52+05:00", "30.11.2026", ""])
def test_the_models_time_fields_read_text_as_peewee_does(text):
    from habitreward.models import DateField, DateTimeField

    assert DateTimeField().python_value(text) == peewee.DateTimeField().python_value(text)
    assert DateField().python_value(text) == peewee.DateField().python_value(text)


def test_integer_and_text_columns_are_read_as_the_driver_gives_them(engine, monkeypatch):
    """Peewee's conversion of an integer or text column returns what both drivers give already:
    the rows skip it (a tenth of reading them); columns that need one (booleans) still get it."""
    ann = engine.add_user(1, "Ann", active=True)
    engine.add_habit("Run", category="sport", owner=ann)
    engine.add_habit("Read")
    converted: list[str] = []
    original = peewee.Field.python_value

    def python_value(self, value):
        converted.append(self.name)
        return original(self, value)

    monkeypatch.setattr(peewee.Field, "python_value", python_value)
    query = Prepared(lambda owner: Habit.select().where(Habit.owner.is_null() | (Habit.owner == owner))
                     .order_by(Habit.id), 1)
    with engine.session():
        rows = query.rows(engine.db, ann.id)
    assert [(h.name, h.category, h.owner_id, h.active) for h in rows] == [("Run", "sport", ann.id, True),
                                                                           ("Read", None, None, True)]
    assert type(rows[0].id) is int and type(rows[0].weight) is int
    assert "active" in converted
    assert not set(converted) & {"id", "name", "weight", "category", "allowed_skip_days", "owner", "airtable_id"}
