"""The engine as a program embedding it calls it (a web app, a script): what it is handed from
outside (a query string, a form) and gets wrong is refused with one of habitreward.errors, whose
message says what to pass, never a TypeError or ValueError from deep inside."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from fractions import Fraction

import pytest

from habitreward.errors import NotFound, NothingToUndo, ValidationError


@pytest.fixture
def ann_runs(engine, clock):
    clock.set(dt.datetime(2026, 3, 10, 12, tzinfo=dt.timezone.utc))
    ann = engine.add_user(1, "Ann", active=True, timezone="Asia/Almaty")
    run = engine.add_habit("Run")
    clock.advance(days=3)
    return ann, run


@pytest.mark.parametrize("day", [dt.datetime(2026, 3, 12, 8), "2026-03-12"], ids=["datetime", "text"])
def test_a_day_to_backdate_that_is_not_a_date_is_refused_and_says_what_to_pass(engine, ann_runs, day):
    ann, run = ann_runs
    with pytest.raises(ValidationError, match=r"must be a date \(datetime.date\).*at="):
        engine.complete(ann, run, day=day)
    assert engine.history(ann) == []
    assert engine.complete(ann, run, day=dt.date(2026, 3, 12)).backdated


@pytest.mark.parametrize("at", ["2026-03-12 08:00", dt.date(2026, 3, 12), 1773302400], ids=["text", "date", "unix"])
def test_a_moment_that_is_no_datetime_is_refused_and_says_what_to_pass(engine, ann_runs, at):
    ann, run = ann_runs
    with pytest.raises(ValidationError, match=r"must be a datetime \(datetime.datetime\).*day="):
        engine.complete(ann, run, at=at)
    assert engine.history(ann) == []
    assert engine.complete(ann, run, at=dt.datetime(2026, 3, 12, 8)).log is not None


@pytest.mark.parametrize("name", [5, 2.5, ["Run"], b"Run"], ids=["int", "float", "list", "bytes"])
def test_a_name_that_is_no_text_is_refused_not_a_crash(engine, ann_runs, name):
    ann, run = ann_runs
    with pytest.raises(ValidationError, match="A name must be text"):
        engine.find_habit(ann, name)
    with pytest.raises(ValidationError, match="A name must be text"):
        engine.add_habit(name)
    with pytest.raises(ValidationError, match="A name must be text"):
        engine.add_alias(run, name)
    assert [h.name for h in engine.all_habits()] == ["Run"]


@pytest.mark.parametrize("telegram_id", ["abc", "", None, 1.5, True, Decimal("1.5"), Fraction(3, 2),
                                         float("nan"), Decimal("Infinity")])
def test_a_telegram_id_that_is_no_whole_number_is_refused_when_looking_someone_up(engine, ann_runs, telegram_id):
    with pytest.raises(ValidationError, match="whole number"):
        engine.get_user(telegram_id)
    with pytest.raises(ValidationError, match="whole number"):
        engine.find_user(telegram_id)
    assert engine.get_user("1").name == "Ann"  # a query string's digits are an id
    assert engine.get_user(Decimal("1")).name == engine.get_user(1.0).name == "Ann"  # whole: an id


@pytest.mark.parametrize("telegram_id", [True, 2.5, Decimal("2.5")])
def test_a_new_users_telegram_id_is_not_made_whole_by_cutting_it(engine, telegram_id):
    """True is not user 1, nor 2.5 user 2 (``int()`` would make them so)."""
    with pytest.raises(ValidationError, match="whole number from 1"):
        engine.add_user(telegram_id, "Bob")
    assert engine.list_users() == []


def test_completing_for_a_user_deleted_meanwhile_is_not_found(engine, ann_runs):
    """A web app looked Ann up, then (another request) she was deleted: the completion it still
    runs with her object is NotFound, as a lookup would be, not a database IntegrityError."""
    ann, _ = ann_runs
    mine = engine.add_habit("Mine", owner=ann)
    shared = engine.add_habit("Walk")
    engine.delete_user(1)
    for habit in (shared, mine):
        with pytest.raises(NotFound, match="No user with Telegram id 1"):
            engine.complete(ann, habit)
    assert engine.list_users() == []


@pytest.mark.parametrize("item_id", ["abc", None, True, 1.5, Decimal("1.5"), 2**64, -(2**64)])
def test_a_habit_or_reward_id_that_is_no_number_is_not_found(engine, ann_runs, item_id):
    """Not found, never another item (True or 1.5 is not id 1) nor a database error (2**64)."""
    ann, run = ann_runs
    with pytest.raises(NotFound, match="That habit no longer exists"):
        engine.get_habit(ann, item_id)
    with pytest.raises(NotFound, match="That reward no longer exists"):
        engine.get_reward(ann, item_id)
    assert engine.get_habit(ann, str(run.id)) == run  # a URL's digits are an id


@pytest.mark.parametrize("log_id", [True, 2.5, Decimal("2.5"), "abc", 2**64])
def test_undo_of_a_log_id_that_is_no_whole_number_undoes_nothing(engine, ann_runs, clock, log_id):
    """A form's log id: True is not log 1 nor 2.5 log 2 (``int()`` made them so, and undid that
    day), and "abc" or 2**64 is no log either, not a ValueError or a database error."""
    ann, run = ann_runs
    first = engine.complete(ann, run).log
    clock.advance(days=1)
    second = engine.complete(ann, run).log
    assert (first.id, second.id) == (1, 2)
    with pytest.raises(NothingToUndo, match="no completion of 'Run' to undo"):
        engine.undo(ann, run, log_id=log_id)
    assert [entry.log.id for entry in engine.history(ann)] == [2, 1]
    assert engine.undo(ann, run, log_id="1").day == first.completed_on  # a form's digits are an id
    assert engine.undo(ann, run, log_id=2.0).day == second.completed_on  # whole: an id


@pytest.mark.parametrize("telegram_id", ["abc", None, 2.5, True, Decimal("2.5")])
def test_deciding_a_request_of_a_telegram_id_that_is_no_whole_number_is_refused(engine, telegram_id):
    """Refused before anything is written: "abc" and None were a ValueError and a TypeError."""
    from habitreward.bot.state import approval_of, set_approval

    newcomer = engine.add_user(2, "Bob")
    set_approval(engine, newcomer.telegram_id, "requested")
    with pytest.raises(ValidationError, match="Telegram user id is a whole number"):
        engine.decide_request(telegram_id, True)
    assert not engine.get_user(2).active
    assert approval_of(engine, 2) == "requested"
    assert engine.decide_request("2", True)[1] and engine.get_user(2).active  # digits: an id


@pytest.mark.parametrize("telegram_id", [0, -5, "-5"])
def test_registering_a_telegram_id_no_one_has_is_refused(engine, telegram_id):
    """As add_user refuses it (register made user 0 or -5, whom no Telegram update ever names)."""
    with pytest.raises(ValidationError, match="whole number from 1"):
        engine.register(telegram_id, "Nobody")
    assert engine.list_users() == []
    assert engine.register("5", "Bea")[0].telegram_id == 5


@pytest.mark.parametrize("telegram_id", [2**64, -(2**64)])
def test_a_telegram_id_past_64_bits_is_nobody(engine, ann_runs, telegram_id):
    """No user, as for any unknown id; not an OverflowError (SQLite) or a DataError (PostgreSQL)."""
    assert engine.find_user(telegram_id) is None
    for call in (engine.get_user, engine.activate_user, engine.delete_user, lambda t: engine.decide_request(t, True)):
        with pytest.raises(NotFound, match=f"No user with Telegram id {telegram_id}"):
            call(telegram_id)
    assert [user.name for user in engine.list_users()] == ["Ann"]


@pytest.mark.parametrize("value", [True, 2.5, Decimal("2.5"), float("nan")])
def test_a_weight_or_count_that_is_no_whole_number_is_refused_not_cut(engine, ann_runs, value):
    """True was a habit weight of 1 and 2.5 one of 2 (``int()``), and so for the grace days, the
    pieces a reward requires and its daily limit."""
    ann, run = ann_runs
    coffee = engine.add_reward("Coffee")
    calls = {
        "habit weight must be a whole number": lambda: engine.add_habit("Swim", weight=value),
        "Allowed skip days must be a whole number": lambda: engine.add_habit("Swim", allowed_skip_days=value),
        "Pieces required must be a whole number": lambda: engine.add_reward("Tea", pieces_required=value),
        "Max per day must be a whole number": lambda: engine.edit_reward(coffee, max_per_day=value),
    }
    for message, call in calls.items():
        with pytest.raises(ValidationError, match=message):
            call()
    with pytest.raises(ValidationError, match="habit weight must be a whole number"):
        engine.edit_habit(run, weight=value)
    assert [(h.name, h.weight) for h in engine.all_habits()] == [("Run", 10)]
    assert [(r.name, r.max_per_day) for r in engine.all_rewards()] == [("Coffee", 1)]
    # Whole values are those numbers, however they come.
    assert engine.add_habit("Swim", weight=Decimal("20"), allowed_skip_days=2.0).weight == 20
    assert engine.add_reward("Tea", pieces_required="3", max_per_day=Fraction(4, 2)).max_per_day == 2


def test_a_reward_weight_of_true_is_refused(engine):
    with pytest.raises(ValidationError, match="reward weight must be a number above 0, got True"):
        engine.add_reward("Coffee", weight=True)
    assert engine.all_rewards() == []


def test_a_reward_type_is_its_name_or_a_reward_type_and_none_is_no_type(engine):
    """None was the type "none" (str(None)): a reward that gives nothing, made without a word;
    RewardType.REAL, the models' own enum, was refused (str() of it is no type name). None is the
    default type now ("virtual", see the test of None for a setting); anything else is refused."""
    from habitreward.models import RewardType

    with pytest.raises(ValidationError, match="reward type must be virtual, real or none, got 5"):
        engine.add_reward("Coffee", type=5)
    assert engine.all_rewards() == []
    assert engine.add_reward("Coffee", type=RewardType.REAL).type == "real"
    assert engine.edit_reward(engine.find_reward(None, "Coffee"), type=RewardType.NONE).is_nothing


def test_a_completion_without_a_source_is_logged(engine, ann_runs):
    """``source=None`` is no source (it was a TypeError from deep inside); a number is refused."""
    ann, run = ann_runs
    with pytest.raises(ValidationError, match="source must be text, got 5"):
        engine.complete(ann, run, source=5)
    result = engine.complete(ann, run, source=None)
    assert not result.already_done and result.log.source == ""
    assert [entry.log.source for entry in engine.history(ann)] == [""]


def _row(item, *fields):
    return tuple(getattr(item, f) for f in fields)


def test_none_for_an_optional_setting_of_a_new_habit_or_reward_is_its_default(engine):
    """An embedder passing None for "not given" (a form field left empty) got a ValidationError
    for weight, skip days, pieces or daily limit, where None is already the default for a
    completion's ``source`` and a user's time zone: None is what leaving the argument out gives."""
    fields = ("weight", "category", "allowed_skip_days", "owner_id")
    given = engine.add_habit("Run", weight=None, category=None, allowed_skip_days=None)
    assert _row(given, *fields) == _row(engine.add_habit("Swim"), *fields) == (10, None, 0, None)

    fields = ("weight", "type", "pieces_required", "piece_value", "max_per_day", "owner_id")
    given = engine.add_reward("Coffee", weight=None, type=None, pieces_required=None, piece_value=None,
                              max_per_day=None)
    assert _row(given, *fields) == _row(engine.add_reward("Tea"), *fields) == (1.0, "virtual", 1, None, 1, None)
    assert not given.is_nothing  # None is the default type, never the type "none"
    engine.remove_habit(engine.find_habit(None, "Swim"))
    assert engine.all_habits(include_inactive=None) == engine.all_habits() == [engine.find_habit(None, "Run")]


def test_none_for_an_optional_flag_of_a_new_user_is_its_default(engine):
    """``add_user(active=None, admin=None)`` stored no flag at all (a database error); None is the
    default there too: no rights."""
    fields = ("active", "is_admin", "timezone", "language")
    given = engine.add_user(7, "Ann", active=None, admin=None, timezone=None, language=None)
    assert _row(given, *fields) == _row(engine.add_user(8, "Bob"), *fields)
    assert (given.active, given.is_admin) == (False, False)


@pytest.mark.parametrize("flag", [None, "no"])
def test_promote_user_with_no_true_or_false_grants_nothing(engine, flag):
    """``promote_user(id, admin=None)``, an embedder's "not given" (a checkbox left out of a form),
    made the person an admin: a grant of rights by default. It is refused, and nothing changes."""
    engine.add_user(7, "Ann", active=True)
    with pytest.raises(ValidationError, match="admin must be True or False"):
        engine.promote_user(7, admin=flag)
    assert not engine.get_user(7).is_admin
    assert engine.promote_user(7).is_admin and not engine.promote_user(7, admin=False).is_admin


def test_none_in_an_edit_leaves_a_setting_as_it_is(engine):
    """In edit_habit and edit_reward None is what leaving the argument out is: no change (not the
    default). Category and piece value are the exception, None is a value they hold: cleared."""
    run = engine.add_habit("Run", weight=30, category="Sport", allowed_skip_days=2)
    coffee = engine.add_reward("Coffee", weight=5, type="real", pieces_required=3, piece_value="2.50",
                               max_per_day=4)

    run = engine.edit_habit(run, name=None, weight=None, allowed_skip_days=None)
    coffee = engine.edit_reward(coffee, name=None, weight=None, type=None, pieces_required=None, max_per_day=None)

    assert _row(run, "name", "weight", "category", "allowed_skip_days") == ("Run", 30, "Sport", 2)
    assert _row(coffee, "name", "weight", "type", "pieces_required", "piece_value", "max_per_day") == (
        "Coffee", 5.0, "real", 3, Decimal("2.50"), 4)
    assert engine.edit_habit(run, category=None).category is None
    assert engine.edit_reward(coffee, piece_value=None).piece_value is None
