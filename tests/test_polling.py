"""``habitreward serve`` (long polling) as a subprocess against the stand-in's getUpdates."""

from __future__ import annotations

import os
import signal

import pytest

from habitreward.testing.builders import message_update
from test_serve_kit import ServeProcess, applications, assert_one_error_record, counted, inbox, wait_until

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


def test_polling_says_so_when_it_removes_a_webhook(poller, botapi):
    """Another deployment may be serving that webhook: it gets nothing once polling starts, so the
    log says which webhook went (its host: a path may hold the token)."""
    import json
    import urllib.request

    from test_serve_kit import TOKEN

    hook = json.dumps({"url": f"https://bot.example.org/hook/{TOKEN}"}).encode()
    urllib.request.urlopen(urllib.request.Request(f"{botapi.base_url}{TOKEN}/setWebhook", data=hook,
                                                  headers={"Content-Type": "application/json"}))
    started = poller()
    wait_until(lambda: botapi.webhook["url"] == "" and "removing the webhook" in started.logs(),
               what="the webhook removed, and said so")
    logs = started.logs()
    assert "removing the webhook at https://bot.example.org so that polling works" in logs
    assert TOKEN not in logs


def test_polling_without_a_webhook_says_nothing_about_one(poller, botapi):
    started = poller()
    wait_until(lambda: botapi.calls_of("getUpdates"), what="polling under way")  # after the check
    assert "removing the webhook" not in started.logs()


def _serve_three_updates(poller, db_url, botapi, chat_id: int, first_update_id: int, what: str):
    """Queue three updates of one chat, start polling, and wait until each is applied exactly once."""
    updates = [message_update(chat_id, "count", update_id=first_update_id + i) for i in range(3)]
    for update in updates:
        botapi.queue_update(update)
    started = poller()
    wait_until(lambda: set(applications(db_url)) == {u["update_id"] for u in updates}, timeout=30, what=what)
    assert applications(db_url) == {u["update_id"]: 1 for u in updates}
    return started


def test_a_restart_that_meets_the_previous_runs_poll_still_open_keeps_polling(poller, db_url, botapi):
    """After a restart Telegram answers 409 Conflict while the previous run's long poll is still
    open on its side (up to that poll's timeout): the new run waits it out and serves everything,
    where it used to stop polling and exit at once."""
    conflict = "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
    botapi.fail_next("getUpdates", 409, conflict, times=2)
    started = _serve_three_updates(poller, db_url, botapi, 1201, 71_000,
                                   "every update applied once the conflict is over")
    assert started.proc.poll() is None  # still polling
    assert "getUpdates refused (Conflict: terminated by other getUpdates request" in started.logs()

    started.signal(signal.SIGTERM)
    assert started.wait(30) == 0


def test_a_webhook_set_meanwhile_stops_polling_with_one_line(poller, botapi):
    botapi.fail_next("getUpdates", 409, "Conflict: can't use getUpdates method while webhook is active;"
                                         " use deleteWebhook to delete the webhook first")
    started = poller()
    assert started.wait(30) == 1
    assert "Error: Telegram refused getUpdates: Conflict: can't use getUpdates method while webhook is active" \
        in started.logs()


def test_answers_it_cannot_read_are_retried_not_a_silent_stop(db_url, tmp_path):
    """getUpdates answered 200 without a result (a proxy in the way, Telegram unwell): polling used
    to end there with exit code 0 and no word in the log, which no supervisor restarts."""
    from habitreward.testing.botapi import BotApiStandIn

    class UnreadableAnswers(BotApiStandIn):
        unreadable = 2

        def handle_call(self, token, method, params):
            if method.lower() == "getupdates" and self.unreadable:
                self.unreadable -= 1
                return 200, {"ok": False, "description": "upstream unavailable"}
            return super().handle_call(token, method, params)

    with UnreadableAnswers() as api:
        updates = [message_update(1301, "count", update_id=72_000 + i) for i in range(3)]
        for update in updates:
            api.queue_update(update)
        process = ServeProcess(db_url, api, tmp_path, env={"HABITREWARD_POLL_TIMEOUT": "1"}, name="poll")
        process.start(wait_for="polling Telegram")
        try:
            wait_until(lambda: set(applications(db_url)) == {u["update_id"] for u in updates}, timeout=30,
                       what="every update applied after the unreadable answers")
            assert process.proc.poll() is None
            assert "getUpdates failed (KeyError" in process.logs()
            process.signal(signal.SIGTERM)
            assert process.wait(30) == 0
        finally:
            process.kill()


def test_polling_that_cannot_start_never_exits_quietly(db_url, tmp_path):
    from habitreward.testing.botapi import BotApiStandIn

    class UnreadableWebhookInfo(BotApiStandIn):
        def handle_call(self, token, method, params):
            if method.lower() == "getwebhookinfo":
                return 200, {"ok": False}
            return super().handle_call(token, method, params)

    with UnreadableWebhookInfo() as api:
        process = ServeProcess(db_url, api, tmp_path, env={"HABITREWARD_POLL_TIMEOUT": "1"}, name="poll")
        process.start(wait_for="polling Telegram")
        try:
            assert process.wait(30) == 1
            assert "Error: polling failed: KeyError: 'result'" in process.logs()
        finally:
            process.kill()


def test_getupdates_refused_for_good_stops_serve_with_exit_code_1(poller, botapi):
    """A 400 Bad Request is Telegram refusing this request for good: it used to be tried again
    forever (every 60 s), a process up that polls nothing, which `Restart=on-failure` never
    restarts."""
    botapi.fail_next("getUpdates", 400, "Bad Request: wrong parameter action in request", times=1000)
    started = poller()
    assert started.wait(30) == 1
    logs = started.logs()
    assert "polling stopped: Wrong parameter action in request" in logs
    assert "Error: Telegram refused getUpdates: Wrong parameter action in request" in logs
    assert "retrying in" not in logs
    assert len(botapi.calls_of("getUpdates")) == 1


def _polling_with_a_planted_bug(db_url, botapi, tmp_path, source: str) -> ServeProcess:
    """`serve` (polling, not started yet) with ``source`` loaded as a plugin module: how a test plants a
    bug of habitreward's own into the real process."""
    from test_serve_kit import TESTS_DIR

    (tmp_path / "plant_a_bug.py").write_text(source)
    process = ServeProcess(db_url, botapi, tmp_path, name="poll", env={
        "HABITREWARD_POLL_TIMEOUT": "1",
        "HABITREWARD_EXTRA_PLUGINS": "test_serve_kit,plant_a_bug",
        "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), str(tmp_path)]),
    })
    return process


def _assert_stopped_by_one_error(logs: str, why: str, failure: str) -> None:
    """Polling stopped on a bug: one ERROR record saying why, one traceback, and the command's
    own one-line error (its exit code is the caller's to check)."""
    errors = [line for line in logs.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and errors[0].endswith(f"polling stopped: {why}"), errors
    assert logs.count("Traceback (most recent call last)") == 1
    assert f"Error: polling failed: {failure}" in logs


def _logs_after_it_stops(process: ServeProcess) -> str:
    """Run a poller with a planted bug until it stops, which must be with exit code 1; its logs."""
    try:
        process.start(wait_for="polling Telegram")
        assert process.wait(30) == 1
        return process.logs()
    finally:
        process.kill()


def test_a_bug_of_ours_while_polling_stops_serve_with_exit_code_1(db_url, botapi, tmp_path):
    """An exception raised by habitreward's own code (not by python-telegram-bot reading an
    answer) is a bug: asking again cannot mend it, so polling stops with its traceback and exit
    code 1, where it used to be tried again forever. The bug is planted by a module loaded as a
    plugin: polling's list of update types becomes something that cannot be listed."""
    process = _polling_with_a_planted_bug(db_url, botapi, tmp_path, (
        "import habitreward.server.polling as polling\n"
        "\n"
        "class NotAList:\n"
        "    def __iter__(self):\n"
        "        raise TypeError('planted bug: not iterable')\n"
        "\n"
        "polling.ALLOWED_UPDATES = NotAList()\n"
    ))
    logs = _logs_after_it_stops(process)
    assert "ERROR habitreward.server.polling: polling failed\nTraceback" in logs
    assert "TypeError: planted bug: not iterable" in logs
    assert "Error: polling failed: TypeError: planted bug: not iterable" in logs
    assert "retrying in" not in logs


def test_getupdates_failures_that_pass_are_tried_again(poller, db_url, botapi):
    """5xx answers and a connection cut are Telegram or the way to it unwell for a while: polling
    tries again and serves everything, the process still up."""
    botapi.fail_next("getUpdates", 502, "Bad Gateway", times=2)
    botapi.cut_next("getUpdates")  # the first of them: its answer cut halfway
    started = _serve_three_updates(poller, db_url, botapi, 1401, 73_000, "every update applied after the failures")
    assert started.proc.poll() is None
    logs = started.logs()
    assert logs.count("getUpdates failed (") == 2
    assert "getUpdates failed (Bad Gateway); retrying in 2 s" in logs

    started.signal(signal.SIGTERM)
    assert started.wait(30) == 0


def test_a_handlers_bug_is_one_error_record_with_the_update_and_its_traceback(poller, db_url, botapi):
    """The bot's error handler and the runner each logged a handler's exception, traceback and all:
    two ERROR records for one bug, which an operator's alert counted twice."""
    boom, after = message_update(1501, "count boom", update_id=74_000), message_update(1501, "count", update_id=74_001)
    botapi.queue_update(boom)
    botapi.queue_update(after)
    started = poller()
    wait_until(lambda: counted(botapi).get(74_001) == 1, what="the update after the failing one answered")
    processed, attempts, error = inbox(db_url)[74_000]
    assert processed and attempts == 1 and error == "RuntimeError: boom in update 74000"
    assert_one_error_record(started.logs(), 74_000, 1501)
    assert started.proc.poll() is None


def test_a_bug_in_our_http_client_stops_polling_with_exit_code_1(db_url, botapi, tmp_path):
    """A TypeError raised inside the Bot API client (habitreward's own code) reaches polling
    as python-telegram-bot's NetworkError ("Unknown error in HTTP implementation"), which polling
    tried again forever, a `getUpdates failed` warning a minute, as if Telegram were unreachable.
    It is a bug: polling stops with its traceback in one record and exit code 1."""
    process = _polling_with_a_planted_bug(db_url, botapi, tmp_path, (
        "from habitreward.bot.request import BotApiRequest\n"
        "\n"
        "send = BotApiRequest._send\n"
        "\n"
        "async def broken(self, url, *args):\n"
        "    if url.endswith('/getUpdates'):\n"
        "        raise TypeError('planted bug in the client')\n"
        "    return await send(self, url, *args)\n"
        "\n"
        "BotApiRequest._send = broken\n"
    ))
    logs = _logs_after_it_stops(process)
    assert "retrying in" not in logs and "getUpdates failed" not in logs
    _assert_stopped_by_one_error(logs, "the Bot API client failed with TypeError: planted bug in the client"
                                       " (a bug, not a network failure)", "TypeError: planted bug in the client")


def test_a_bug_while_storing_updates_stops_polling_with_exit_code_1(db_url, botapi, tmp_path):
    """An exception storing an update that is not the database away (a TypeError of habitreward's
    own) was tried again forever, a WARNING a try, as if the database were down: a process up
    that applies nothing, which `Restart=on-failure` never restarts. It is a bug: polling stops
    with one ERROR record with its traceback and exit code 1, the update left unconfirmed."""
    botapi.queue_update(message_update(1701, "count", update_id=76_000))
    process = _polling_with_a_planted_bug(db_url, botapi, tmp_path, (
        "from habitreward.server.inbox import Inbox\n"
        "\n"
        "def broken(self, *args, **kwargs):\n"
        "    raise TypeError('planted bug in storing')\n"
        "\n"
        "Inbox.store = broken\n"
    ))
    logs = _logs_after_it_stops(process)
    assert "asking Telegram for it again" not in logs
    _assert_stopped_by_one_error(logs, "update 76000 could not be stored: TypeError: planted bug in storing"
                                       " (a bug, not the database away)", "TypeError: planted bug in storing")
    assert botapi.pending_updates() == 1  # not confirmed: Telegram serves it again after a restart


@pytest.mark.parametrize("error", [
    ("OperationalError", "connection to server at \"127.0.0.1\", port 5432 failed: Connection refused\n"
                         "\tIs the server running on that host?\n"),
    # Every pooled PostgreSQL connection busy past the pool's timeout (the database stuck, say):
    # waited out as an outage is, not taken for a bug that stops polling.
    ("MaxConnectionsExceeded", "Max connections exceeded, timed out attempting to connect."),
], ids=["unreachable", "pool-exhausted"])
def test_updates_that_cannot_be_stored_are_asked_again_with_a_growing_pause_one_line_each(tmp_path, botapi,
                                                                                          caplog, error):
    """The database unreachable while polling: each try used to be an ERROR with the driver's whole
    traceback, about once a second however long the outage (the pause went back to 1 s with every
    getUpdates answered). Now one WARNING line a try, the pause doubling up to a cap, nothing
    confirmed meanwhile, and the update applied once the database is back."""
    import logging

    import peewee
    from playhouse.pool import MaxConnectionsExceeded

    from habitreward.server.inbox import Inbox
    from habitreward.server.polling import Poller
    from habitreward.server.runner import BotRunner
    from habitreward.server.service import build_bot
    from habitreward.testing.engines import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'poll.db'}", load_entry_points=False, registration="open",
                         telegram_bot_token="123456:POLL-TEST", telegram_api_url=botapi.base_url)
    inbox = Inbox(engine)
    store, failures = inbox.store, [4]

    error_type, message = error
    raised = {"OperationalError": peewee.OperationalError, "MaxConnectionsExceeded": MaxConnectionsExceeded}[error_type]

    def store_while_the_database_is_away(*args, **kwargs):
        if failures[0]:
            failures[0] -= 1
            raise raised(message)
        return store(*args, **kwargs)

    inbox.store = store_while_the_database_is_away
    runner = BotRunner(build_bot(engine, rate_limit=False), inbox, sweep_interval=0)
    runner.start()
    botapi.queue_update(message_update(1601, "/help", update_id=75_000))
    poller = Poller(runner, inbox, timeout=1, retry_delay=0.01, store_retry_cap=0.04)
    try:
        with caplog.at_level(logging.INFO, logger="habitreward.server.polling"):
            poller.start()
            wait_until(lambda: botapi.sent(1601), what="the update applied once the database is back")
            wait_until(lambda: botapi.pending_updates() == 0, what="the update confirmed")
    finally:
        poller.stop()
        runner.stop(10)
        inbox.close()
        engine.close()

    records = [r for r in caplog.records if r.name == "habitreward.server.polling"]
    tries = [r for r in records if "could not be stored" in r.getMessage()]
    assert [(r.levelname, r.exc_info) for r in tries] == [("WARNING", None)] * 4
    first_line = message.splitlines()[0]
    assert [r.getMessage() for r in tries] == [
        f"update 75000: could not be stored ({error_type}: {first_line}); asking Telegram for it again in {pause} s,"
        " nothing is confirmed meanwhile"
        for pause in ("0.01", "0.02", "0.04", "0.04")
    ]
    assert records[-1].getMessage() == "updates stored again after 4 failed tries"
    assert len(botapi.sent(1601)) == 1
    calls = botapi.calls_of("getUpdates")
    assert [c.get("offset") for c in calls[:5]] == [None] * 5  # not confirmed until it was stored
    assert calls[5].get("offset") == 75_001
