"""``habitreward serve`` (long polling) as a subprocess against the stand-in's getUpdates."""

from __future__ import annotations

import signal

import pytest

from habitreward.testing.builders import message_update
from test_serve_kit import ServeProcess, applications, counted, inbox, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def poller(db_url, botapi, tmp_path):
    started: list[ServeProcess] = []

    def start(name: str = "poll") -> ServeProcess:
        process = ServeProcess(db_url, botapi, tmp_path, env={"HABITREWARD_POLL_TIMEOUT": "1"}, name=name)
        started.append(process)
        return process.start(wait_for="polling Telegram")

    yield start
    for process in started:
        process.kill()


def test_crash_mid_batch_loses_nothing_and_duplicates_nothing(poller, db_url, botapi):
    # One user's updates are processed one after the other, so the kill lands mid-batch.
    batch = [message_update(1001, "count 0.05", update_id=70_000 + i) for i in range(30)]
    for update in batch:
        botapi.queue_update(update)
    first = poller("first")
    wait_until(lambda: len(applications(db_url)) >= 5, what="part of the batch applied")
    first.kill()
    applied_at_crash = len(applications(db_url))
    assert applied_at_crash < len(batch)

    # While it is down: new updates arrive, and Telegram serves part of the old batch again.
    later = [message_update(1002, "count", update_id=70_100 + i) for i in range(5)]
    for update in batch[:10] + later:
        botapi.queue_update(update)

    second = poller("second")
    everything = {u["update_id"] for u in batch + later}
    wait_until(lambda: set(applications(db_url)) == everything, timeout=30, what="every update applied")
    wait_until(lambda: botapi.pending_updates() == 0, what="the stand-in's queue confirmed")
    assert applications(db_url) == {i: 1 for i in everything}
    assert all(count == 1 for count in counted(botapi).values())
    assert all(processed for processed, _, _ in inbox(db_url).values())

    calls = botapi.calls_of("getUpdates")
    assert calls and calls[-1]["allowed_updates"] == ["message", "callback_query"]
    assert botapi.calls_of("deleteWebhook")  # getUpdates would be refused while a webhook is set

    second.signal(signal.SIGTERM)
    assert second.wait(30) == 0
    assert "database closed" in second.logs()
