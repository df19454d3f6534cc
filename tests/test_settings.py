"""Settings refuse, in one line naming the variable, a value that would only fail later."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from habitreward.cli import cli
from habitreward.errors import ConfigError
from habitreward.settings import Settings

pytestmark = pytest.mark.no_db


@pytest.mark.parametrize(("variable", "raw", "message"), [
    # "inf" was accepted, then every completion failed: "habitreward_odds_multiplier answered inf".
    ("STREAK_MULTIPLIER_RATE", "inf", "STREAK_MULTIPLIER_RATE must be a finite number, got 'inf'"),
    ("STREAK_MULTIPLIER_RATE", "-Infinity", "STREAK_MULTIPLIER_RATE must be a finite number, got '-Infinity'"),
    ("STREAK_MULTIPLIER_RATE", "nan", "STREAK_MULTIPLIER_RATE must be a finite number, got 'nan'"),
    ("STREAK_MULTIPLIER_RATE", "-0.5", "STREAK_MULTIPLIER_RATE must be at least 0.0, got '-0.5'"),
    ("STREAK_MULTIPLIER_RATE", "1e308", "STREAK_MULTIPLIER_RATE must be at most 100.0, got '1e308'"),
    ("LLM_TIMEOUT", "inf", "LLM_TIMEOUT must be a finite number, got 'inf'"),
    ("LLM_TIMEOUT", "0", "LLM_TIMEOUT must be at least 0.1, got '0'"),
])
def test_a_float_setting_out_of_range_is_refused_by_name(variable, raw, message):
    with pytest.raises(ConfigError) as refused:
        Settings.load({variable: raw}, env_file=None)
    assert str(refused.value) == message


def test_the_command_line_says_so_in_one_line(tmp_path):
    result = CliRunner().invoke(cli, ["--env-file", os.devnull, "--database-url", f"sqlite:///{tmp_path / 'x.db'}",
                                      "odds", "1", "Running"],
                                env={"STREAK_MULTIPLIER_RATE": "inf", "HABITREWARD_LOAD_PLUGINS": ""})
    assert result.exit_code == 1
    assert result.output == "Error: STREAK_MULTIPLIER_RATE must be a finite number, got 'inf'\n"


@pytest.mark.parametrize(("raw", "shown"), [
    ("habitreward.db", "'habitreward.db'"),
    ("bot:hunter2pass@db.example.org/habits", "'[REDACTED]@db.example.org/habits'"),
    ("postgres:bot:hunter2pass@db.example.org:5432/habits", "'[REDACTED]@db.example.org:5432/habits'"),
])
def test_a_database_url_that_is_no_url_is_refused_without_its_password(raw, shown):
    with pytest.raises(ConfigError) as refused:
        Settings.load({"DATABASE_URL": raw}, env_file=None)
    assert str(refused.value) == ("DATABASE_URL must be a URL such as sqlite:///habitreward.db or"
                                  f" postgresql://user@host/db, got {shown}")
    assert "hunter2pass" not in str(refused.value)


def test_finite_values_in_range_are_kept():
    settings = Settings.load({"STREAK_MULTIPLIER_RATE": "100", "LLM_TIMEOUT": "2.5"}, env_file=None)
    assert (settings.streak_multiplier_rate, settings.llm_timeout) == (100.0, 2.5)


@pytest.mark.parametrize(("raw", "stored"), [("UTC+5", "Etc/GMT-5"), ("+05:45", "UTC+05:45"), ("UTC-12", "Etc/GMT+12"),
                                             (" Asia/Kolkata ", "Asia/Kolkata")])
def test_the_default_time_zone_takes_what_a_user_may_set(raw, stored):
    """An offset, as users may type one, was refused ("must be an IANA time zone")."""
    assert Settings.load({"DEFAULT_TIMEZONE": raw}, env_file=None).default_timezone == stored


@pytest.mark.parametrize("raw", ["Europe", "Mars/Olympus", "UTC+15"])
def test_a_default_time_zone_that_is_none_is_one_line(tmp_path, raw):
    """"Europe" (a directory of the tz database) was a traceback ending in IsADirectoryError."""
    result = CliRunner().invoke(cli, ["--env-file", os.devnull, "--database-url", f"sqlite:///{tmp_path / 'x.db'}",
                                      "users", "add", "42", "--name", "Ann"],
                                env={"DEFAULT_TIMEZONE": raw, "HABITREWARD_LOAD_PLUGINS": ""})
    assert result.exit_code == 1
    assert result.output == ("Error: DEFAULT_TIMEZONE must be an IANA time zone such as Europe/Berlin or an offset"
                             f" such as UTC+5, got {raw!r}\n")
