"""SQLite's options in DATABASE_URL: how durable a commit is (``?synchronous=``)."""

from __future__ import annotations

import pytest

from habitreward.db import open_database
from habitreward.errors import ConfigError

pytestmark = pytest.mark.no_db

#: PRAGMA synchronous answers a number.
LEVELS = {"normal": 1, "full": 2, "extra": 3}


def synchronous_of(url: str) -> int:
    database = open_database(url, bind=False)
    try:
        with database.connection_context():
            return database.execute_sql("PRAGMA synchronous").fetchone()[0]
    finally:
        database.close()


def test_commits_survive_a_crash_of_the_process_by_default(tmp_path):
    assert synchronous_of(f"sqlite:///{tmp_path / 'a.db'}") == LEVELS["normal"]


@pytest.mark.parametrize("level", ["full", "EXTRA", "normal"])
def test_synchronous_in_the_url_sets_how_each_commit_reaches_the_disk(tmp_path, level):
    url = f"sqlite:///{tmp_path / 'a.db'}?synchronous={level}&timeout=5"
    assert synchronous_of(url) == LEVELS[level.lower()]


@pytest.mark.parametrize("level", ["off", "fast", ""])
def test_a_synchronous_level_that_could_lose_data_or_means_nothing_is_a_one_line_error(tmp_path, level):
    with pytest.raises(ConfigError, match=r"DATABASE_URL is not usable: synchronous must be normal, full, extra"):
        open_database(f"sqlite:///{tmp_path / 'a.db'}?synchronous={level}", bind=False)
