"""The bot loop's runner (habitreward.server.runner) when its start fails."""

from __future__ import annotations

import socket

import pytest
from telegram.error import NetworkError

from habitreward.server.inbox import Inbox
from habitreward.server.runner import BotRunner
from habitreward.server.service import build_bot
from habitreward.testing.engines import make_engine


def closed_port() -> int:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_failed_start_leaves_a_closed_loop_and_stop_is_quiet(tmp_path):
    # Every round: `serve` stops the runner right after start() failed; the loop thread
    # used to close its loop only after start() had returned, so stop() sometimes
    # scheduled on a loop closing under it ("Event loop is closed" instead of the error).
    engine = make_engine(f"sqlite:///{tmp_path / 'runner.db'}", load_entry_points=False,
                         telegram_bot_token="123456:RUNNER-TEST", telegram_api_url=f"http://127.0.0.1:{closed_port()}/bot")
    inbox = Inbox(engine)
    try:
        for _ in range(5):
            runner = BotRunner(build_bot(engine, rate_limit=False), inbox, sweep_interval=0)
            with pytest.raises(NetworkError):
                runner.start()
            assert runner.loop is not None and runner.loop.is_closed()
            runner.stop(1)  # nothing to stop, and no error
            assert not runner.alive()
    finally:
        inbox.close()
        engine.close()
