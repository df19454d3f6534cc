"""Time zones a user may set: every offset the world uses, nothing else; and a stored zone this
machine does not know never takes the user's screens down."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from habitreward.engine.validation import stored_zone, timezone_name
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
