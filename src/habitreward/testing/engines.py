"""Engines on throwaway databases, with a clock that tests move by hand."""

from __future__ import annotations

import datetime as dt
import random
import threading
from typing import Any

from habitreward.db import open_database
from habitreward.engine import Engine
from habitreward.plugins import make_plugin_manager
from habitreward.settings import Settings


class FrozenClock:
    """A thread-safe clock that stands still until moved: ``clock.advance(days=1)``, ``clock.set(...)``."""

    def __init__(self, start: dt.datetime | None = None):
        self._now = start or dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.timezone.utc)
        self._lock = threading.Lock()

    def __call__(self) -> dt.datetime:
        with self._lock:
            return self._now

    def set(self, moment: dt.datetime) -> None:
        if moment.tzinfo is None:
            raise ValueError("FrozenClock needs an aware datetime")
        with self._lock:
            self._now = moment

    def advance(self, **delta: float) -> dt.datetime:
        with self._lock:
            self._now = self._now + dt.timedelta(**delta)
            return self._now


def make_engine(
    database_url: str,
    *,
    clock: Any = None,
    rng: random.Random | None = None,
    load_entry_points: bool = True,
    upgrade: bool = True,
    **settings: Any,
) -> Engine:
    """An Engine on ``database_url`` with settings given as keyword arguments (no .env read)."""
    config = Settings.load(environ={}, env_file=None, database_url=database_url, **settings)
    engine = Engine(
        config,
        database=open_database(database_url),
        plugin_manager=make_plugin_manager(load_entry_points=load_entry_points),
        rng=rng or random.Random(0),
        clock=clock,
    )
    if upgrade:
        engine.upgrade_schema()
    return engine
