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

#: The token the ``bot`` fixture uses (the bot id is the part before the colon).
TEST_BOT_TOKEN = "123456:TEST"


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


@pytest.fixture
def botapi() -> Iterator:
    """A started :class:`~habitreward.testing.botapi.BotApiStandIn`: a fake Bot API on 127.0.0.1.

    Read what the bot sent with ``botapi.sent(chat_id)``, ``botapi.last_text(chat_id)``,
    ``botapi.last_buttons(chat_id)``; make a method fail with ``botapi.fail_next(...)``.
    """
    from habitreward.testing.botapi import BotApiStandIn

    with BotApiStandIn() as standin:
        yield standin


@pytest.fixture
def bot(habitreward_engine, botapi) -> Iterator:
    """A :class:`~habitreward.testing.driver.BotDriver`: the real bot (with every installed
    plugin's handlers) on ``habitreward_engine``, talking to ``botapi``::

        def test_ping(bot):
            assert bot.send(42, "/ping").text == "pong"
    """
    from habitreward.testing.driver import BotDriver

    with BotDriver(habitreward_engine, botapi, token=TEST_BOT_TOKEN) as driver:
        yield driver
