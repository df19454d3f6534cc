"""Time zones a user may set: every offset the world uses, nothing else; and a stored zone this
machine does not know never takes the user's screens down."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from habitreward.engine.validation import stored_zone, timezone_name, zone_label
from habitreward.errors import ValidationError
from habitreward.models import User


@pytest.mark.no_db
@pytest.mark.parametrize(("typed", "stored"), [
    ("UTC-12", "Etc/GMT+12"), ("UTC+14", "Etc/GMT-14"), ("+05:45", "UTC+05:45"), ("UTC-9:30", "UTC-09:30"),
    ("UTC+12:45", "UTC+12:45"), ("-0", "UTC"),
])
def test_every_offset_in_use_is_accepted(typed, stored):
    assert timezone_name(typed) == stored


@pytest.mark.no_db
@pytest.mark.parametrize(("typed", "stored"), [
    ("asia/almaty", "Asia/Almaty"), ("EUROPE/MOSCOW", "Europe/Moscow"), ("Almaty", "Asia/Almaty"),
    ("los angeles", "America/Los_Angeles"), ("Los_Angeles", "America/Los_Angeles"),
    ("istanbul", "Asia/Istanbul"),  # one zone, two names (Asia/Istanbul links to Europe/Istanbul): the shorter is taken
])
def test_a_zone_name_as_people_type_it_is_the_zone(typed, stored):
    assert timezone_name(typed) == stored


@pytest.mark.no_db
@pytest.mark.parametrize("typed", ["asia/almaty", "Almaty"])
def test_stored_data_keeps_the_exact_spelling(typed):
    """An import checks the name it will store as it is: a slip there is refused, not fixed."""
    with pytest.raises(ValidationError, match="Unknown time zone"):
        timezone_name(typed, exact=True)


@pytest.mark.no_db
@pytest.mark.parametrize(("stored", "shown"), [("Etc/GMT-5", "UTC+5"), ("Etc/GMT+12", "UTC-12"), ("Etc/GMT+0", "UTC"),
                                               ("Etc/GMT-0", "UTC"), ("Asia/Almaty", "Asia/Almaty")])
def test_a_stored_zone_is_shown_with_the_sign_people_use(stored, shown):
    assert zone_label(stored) == shown


@pytest.mark.no_db
@pytest.mark.parametrize("typed", ["UTC-13", "UTC-14", "UTC-12:30", "UTC+14:30", "UTC+15", "+5:75"])
def test_an_offset_no_place_has_is_refused(typed):
    with pytest.raises(ValidationError, match=r"A UTC offset must be between -12:00 and \+14:00"):
        timezone_name(typed)


def test_an_unknown_stored_zone_counts_as_utc_with_a_warning(engine, clock, caplog):
    """What an older version let through (UTC-13 was stored as Etc/GMT+13, which does not exist)."""
    stored_zone.cache_clear()  # warned once per name and process
    clock.set(dt.datetime(2026, 1, 5, 23, 30, tzinfo=dt.timezone.utc))
    ann = engine.add_user(42, "Ann", active=True)
    User.update(timezone="Etc/GMT+13").where(User.id == ann.id).execute()
    ann = engine.get_user(42)
    habit = engine.add_habit("Running")
    with caplog.at_level(logging.WARNING):
        result = engine.complete(ann, habit)
    assert result.log.completed_on == dt.date(2026, 1, 5)  # UTC's day
    assert "unknown time zone 'Etc/GMT+13' stored for a user: UTC is used until it is changed" in caplog.text
    engine.set_timezone(ann, "UTC-12")
    assert engine.get_user(42).timezone == "Etc/GMT+12"


def test_after_moving_west_the_days_already_logged_ahead_keep_true_streaks(engine, clock):
    """Kiritimati (UTC+14) logs its 5 January while Honolulu (UTC-10) is still on the 4th; after the
    move, the 4th, 5th and 6th in a row are a streak of 1, 2, 3, and today is today."""
    clock.set(dt.datetime(2026, 1, 4, 12, tzinfo=dt.timezone.utc))  # Kiritimati: 5 Jan, 02:00
    ann = engine.add_user(1, "Ann", active=True, timezone="Pacific/Kiritimati")
    habit = engine.add_habit("Run")
    clock.advance(hours=1)
    assert engine.complete(ann, habit).day == dt.date(2026, 1, 5)
    ann = engine.set_timezone(ann, "Pacific/Honolulu")  # 4 Jan, 03:00 there

    today = engine.complete(ann, habit)
    assert (today.day, today.streak) == (dt.date(2026, 1, 4), 1)
    (info,) = engine.streaks(ann)
    assert (info.streak, info.done_today, info.last_day) == (1, True, dt.date(2026, 1, 4))
    clock.advance(days=1)  # Honolulu's 5 January: logged already, from Kiritimati
    assert engine.complete(ann, habit).already_done
    (info,) = engine.streaks(ann)
    assert (info.streak, info.done_today) == (2, True)
    clock.advance(days=1)
    assert engine.complete(ann, habit).streak == 3
    assert [(e.log.completed_on.day, e.log.streak_count) for e in engine.history(ann)] == [(6, 3), (5, 2), (4, 1)]


@pytest.mark.no_db
@pytest.mark.parametrize("typed", [
    "Europe", "America", "Etc",      # directories of the tz database, not zones (IsADirectoryError)
    "Europe/" + "x" * 300,           # too long for a file name (OSError)
    "UTC+23:5", "UTC*23:00", "UTC/05:00", "UTC+5:0", "UTC+05:00x",  # no offset's spelling
    "a\x00b",
])
def test_a_word_that_is_no_zone_is_unknown(typed):
    with pytest.raises(ValidationError, match="Unknown time zone") as refused:
        timezone_name(typed)
    assert len(str(refused.value)) < 160  # a long one is quoted cut short (the CLI prints it)


@pytest.mark.parametrize("typed", ["localtime", "posixrules", "posix/Europe/Berlin", "right/Europe/Berlin"])
def test_a_file_of_the_machines_zone_folder_is_no_zone(engine, clock, typed):
    """"localtime" was accepted: the user's day was the server's (/etc/localtime), wherever it stood;
    the others exist on some machines only (and right/ counts leap seconds)."""
    clock.set(dt.datetime(2026, 1, 5, 23, 30, tzinfo=dt.timezone.utc))
    ann = engine.add_user(42, "Ann", active=True, timezone="Asia/Kolkata")
    with pytest.raises(ValidationError, match="Unknown time zone"):
        engine.set_timezone(ann, typed)
    assert engine.get_user(42).timezone == "Asia/Kolkata"
    assert engine.today(engine.get_user(42)) == dt.date(2026, 1, 6)


@pytest.mark.no_db
@pytest.mark.parametrize("stored", ["UTC+23:05", "UTC*05:00", "Europe"])
def test_a_stored_offset_outside_the_rule_counts_as_utc(stored, caplog):
    """What the old check let through (``UTC*05:00`` was read as UTC-05:00)."""
    stored_zone.cache_clear()
    with caplog.at_level(logging.WARNING):
        assert stored_zone(stored) == dt.timezone.utc
    assert f"unknown time zone {stored!r} stored for a user" in caplog.text
