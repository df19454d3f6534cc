"""pytest fixtures published through the ``pytest11`` entry point.

Any project that has habitreward installed gets them, so a plugin author can
write ``def test_x(habitreward_engine): ...``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from habitreward.testing.engines import FrozenClock, make_engine


@pytest.fixture
def habitreward_clock() -> FrozenClock:
    """A clock the test moves by hand; starts at 2026-01-05 12:00 UTC."""
    return FrozenClock()


@pytest.fixture
def habitreward_engine(tmp_path: Path, habitreward_clock: FrozenClock) -> Iterator:
    """An Engine on a fresh, migrated SQLite database, seeded randomness, the frozen clock.

    Plugins installed in the environment are loaded, so a plugin's own tests
    exercise it through its entry point.
    """
    engine = make_engine(f"sqlite:///{tmp_path / 'habitreward-test.db'}", clock=habitreward_clock,
                         rng=random.Random(1234))
    try:
        yield engine
    finally:
        engine.close()
