"""``habitreward serve --webhook`` as a real subprocess, through real HTTP, on both backends.

What is observed: the rows the counting test plugin writes per *application*
(see test_serve_kit.py), the replies the Bot API stand-in received, and the
inbox table.
"""

from __future__ import annotations

import http.client
import json
import random
import signal
import threading
import time

import pytest

from habitreward.server.secrets import derive_webhook_secret
from habitreward.testing.builders import message_update
from test_serve_kit import (
    HABITREWARD_BIN,
    TOKEN,
    ServeProcess,
    applications,
    applied_in_order,
    assert_one_error_record,
    counted,
    inbox,
    query,
    wait_until,
)

pytestmark = pytest.mark.slow


def test_secret_and_every_bad_request_are_refused_and_change_nothing(serve, db_url, botapi):
    server = serve(env={"TELEGRAM_WEBHOOK_URL": "https://bot.example.org/hooks/tg-updates"}, )
    assert server.address[2] == "/hooks/tg-updates"  # the path of TELEGRAM_WEBHOOK_URL
    good = message_update(501, "count")

    status, body = server.request("GET", "/healthz")
    assert status == 200 and json.loads(body)["database"] == "ok" and json.loads(body)["bot"] == "ok"

    assert server.request("GET")[0] == 405
    assert server.request("PUT", body=b"{}", headers={"Content-Type": "application/json"})[0] == 405
    assert server.post_update(good, secret=None) == 403
    assert server.post_update(good, secret="wrong-secret") == 403
    assert server.post_update(good, secret=derive_webhook_secret(TOKEN) + "x") == 403
    assert server.post_update(good, content_type="text/plain") == 415
    assert server.post_update(good, content_type="application/x-www-form-urlencoded") == 415
    assert server.post_update(b'{"update_id": 1, "message": ') == 400
    assert server.post_update(b"\xff\xfe not utf-8") == 400
    deep = 100_000  # nested past the JSON decoder's recursion limit
    assert server.post_update(b'{"update_id": 2009, "x": ' + b"[" * deep + b"]" * deep + b"}") == 400
    assert server.post_update(b"x" * (1024 * 1024 + 1)) == 413
    assert server.post_update({**good, "padding": "y" * (1024 * 1024)}) == 413
    for not_an_update in ([1, 2], {"hello": "world"}, {"update_id": "7", "message": {}}, {"update_id": 8},
                          {"update_id": -1, "message": {}}, {"update_id": 9, "message": {"text": "no date"}}):
        assert server.post_update(not_an_update) == 400, not_an_update
    assert server.request("POST", "/elsewhere", b"{}", {"Content-Type": "application/json"})[0] == 404

    time.sleep(0.3)
    assert inbox(db_url) == {}
    assert applications(db_url) == {}
    assert botapi.calls_of("sendMessage") == []

    # The same server accepts the good update with the right secret, and applies it.
    assert server.post_update(good) == 200
    wait_until(lambda: applications(db_url) == {good["update_id"]: 1}, what="the good update applied")
    wait_until(lambda: counted(botapi) == {good["update_id"]: 1}, what="the reply")

    logs = server.logs()
    assert TOKEN not in logs and derive_webhook_secret(TOKEN) not in logs
    assert "[REDACTED]" in logs  # httpx's request lines (with the token in the URL) were logged, redacted


def test_configured_secret_wins_and_set_webhook_on_start_uses_it(serve, botapi):
    secret = "my_Configured-secret_123"
    server = serve("--set-webhook", env={"TELEGRAM_WEBHOOK_SECRET": secret,
                                         "TELEGRAM_WEBHOOK_URL": "https://bot.example.org/webhook/telegram"})
    wait_until(lambda: any(line.startswith("Webhook set: ") for line in server.lines), what="the webhook set")
    registered = botapi.webhook
    assert registered["url"] == "https://bot.example.org/webhook/telegram"
    assert registered["secret_token"] == secret
    assert registered["allowed_updates"] == ["message", "callback_query"]
    update = message_update(502, "count")
    assert server.post_update(update, secret=derive_webhook_secret(TOKEN)) == 403
    assert server.post_update(update, secret=secret) == 200
    assert secret not in server.logs()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_set_webhook_on_start_is_said_after_the_server_says_it_listens(serve, backend, botapi, workers):
    """Telegram posts as soon as setWebhook is done: it is called once the server takes requests,
    and the operator reads it in that order (it said "Webhook set" first)."""
    if backend == "postgres":
        pytest.skip("the order of the start lines does not depend on the database (seen on SQLite)")
    server = serve("--set-webhook", "--workers", workers,
                   env={"TELEGRAM_WEBHOOK_URL": "https://bot.example.org/webhook/telegram"})
    wait_until(lambda: any(line.startswith("Webhook set: ") for line in server.lines), what="the webhook set")
    said = [line.split(":")[0] if line.startswith("Webhook set") else "listening"
            for line in server.lines if line.startswith("Webhook set") or "webhook listening on" in line]
    assert said == ["listening", "Webhook set"], server.lines
    assert botapi.webhook["url"] == "https://bot.example.org/webhook/telegram"
    assert server.post_update(message_update(503, "count")) == 200


@pytest.mark.parametrize("url", ["https://bot.example.org", "https://bot.example.org/"])
def test_a_webhook_url_without_a_path_is_served_where_telegram_posts(serve, backend, url):
    """Telegram posts to the URL's root; the server listened on /webhook/telegram (the default of an
    unset URL) and answered each delivery 404, forever, behind a proxy that passes paths on."""
    if backend == "postgres":
        pytest.skip("the path listened on does not depend on the database (seen on SQLite)")
    server = serve(env={"TELEGRAM_WEBHOOK_URL": url})
    assert server.address[2] == "/", server.lines
    assert server.post_update(message_update(504, "count")) == 200
    assert server.request("GET", "/healthz")[0] == 200


@pytest.mark.parametrize("workers", ["1", "2"])
def test_the_start_line_of_an_ipv6_address_is_a_url(serve, backend, workers):
    """It said http://::1:8080/webhook/telegram, which neither curl nor a proxy takes."""
    import socket

    if backend == "postgres":
        pytest.skip("the start line does not depend on the database (seen on SQLite)")
    try:
        socket.create_server(("::1", 0), family=socket.AF_INET6).close()
    except OSError:
        pytest.skip("no IPv6 loopback here")
    server = serve("--host", "::1", "--workers", workers)
    assert server.url is not None and server.url.startswith("http://[::1]:"), server.lines
    assert server.request("GET", "/healthz")[0] == 200


def test_a_webhook_path_with_the_token_in_it_is_not_shown_at_start(serve, backend):
    if backend == "postgres":
        pytest.skip("what the start line shows does not depend on the database (seen on SQLite)")
    server = serve(env={"TELEGRAM_WEBHOOK_URL": f"https://bot.example.org/hook/{TOKEN}"})
    started = "\n".join(server.lines)
    assert "webhook listening on http://127.0.0.1:" in started and "/hook/[REDACTED]" in started
    assert TOKEN not in started and TOKEN not in server.logs()


def test_handler_exception_is_logged_with_the_update_id_and_keeps_committed_data(serve, db_url, botapi):
    server = serve()
    boom = message_update(503, "count boom")
    after = message_update(503, "count")
    assert server.post_update(boom) == 200
    wait_until(lambda: inbox(db_url).get(boom["update_id"], (False,))[0], what="the failing update finished")
    assert server.post_update(after) == 200
    wait_until(lambda: counted(botapi).get(after["update_id"]) == 1, what="the next update answered")

    processed, attempts, error = inbox(db_url)[boom["update_id"]]
    assert processed and attempts == 1 and "boom" in error
    assert applications(db_url)[boom["update_id"]] == 1  # its write before the exception stays
    assert_one_error_record(server.logs(), boom["update_id"], 503)
    assert server.proc.poll() is None
    status, body = server.request("GET", "/healthz")
    assert status == 200


def test_one_update_delivered_ten_times_at_once_is_applied_once(serve, db_url, botapi):
    server = serve()
    updates = [message_update(600 + i, "count") for i in range(3)]
    barrier = threading.Barrier(30)
    statuses: list[int] = []

    def deliver(update: dict) -> None:
        barrier.wait()
        statuses.append(server.post_update(update))

    threads = [threading.Thread(target=deliver, args=(u,)) for u in updates for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 30  # every delivery acknowledged

    ids = {u["update_id"] for u in updates}
    wait_until(lambda: set(counted(botapi)) == ids, what="all three applied")
    time.sleep(0.5)  # a duplicate application would show up by now
    assert applications(db_url) == {i: 1 for i in ids}
    assert counted(botapi) == {i: 1 for i in ids}
    assert all(processed and attempts == 1 for processed, attempts, _ in inbox(db_url).values())

    # A later re-delivery (Telegram retrying) is acknowledged and not applied again.
    assert server.post_update(updates[0]) == 200
    time.sleep(0.3)
    assert counted(botapi)[updates[0]["update_id"]] == 1


def test_sigkill_right_after_the_answer_then_restart_applies_once(serve, db_url, botapi):
    server = serve(name="first")
    slow = message_update(701, "count 1.5")  # still being processed when the process dies
    assert server.post_update(slow) == 200
    server.kill()
    assert applications(db_url) == {}  # answered 200, nothing applied yet
    assert inbox(db_url)[slow["update_id"]][0] is False

    restarted = serve(name="second")
    wait_until(lambda: counted(botapi) == {slow["update_id"]: 1}, what="applied after restart")
    assert applications(db_url) == {slow["update_id"]: 1}
    assert "left unprocessed" in restarted.logs()
    assert inbox(db_url)[slow["update_id"]][0] is True


def test_sigkill_at_any_moment_of_processing_never_applies_twice(serve, db_url, botapi):
    """Kill while a burst is half processed: whatever stage each update was at, after a
    restart each is applied exactly once (the write and the inbox mark commit together)."""
    server = serve(name="first")
    updates = [message_update(710 + (i % 4), "count 0.05", update_id=90_000 + i) for i in range(24)]
    for update in updates:
        assert server.post_update(update) == 200
    wait_until(lambda: len(applications(db_url)) >= 3, what="part of the burst applied")
    server.kill()
    applied_before = len(applications(db_url))
    assert applied_before < len(updates)  # the kill really happened mid-way

    serve(name="second")
    wait_until(lambda: len(applications(db_url)) == len(updates), what="the rest applied after restart")
    time.sleep(0.3)
    assert applications(db_url) == {u["update_id"]: 1 for u in updates}
    assert all(count == 1 for count in counted(botapi).values())  # a reply is never sent twice


def test_sigterm_finishes_the_updates_in_flight_and_closes(serve, db_url, botapi):
    server = serve()
    updates = [message_update(800 + i, "count 1.5") for i in range(5)]  # five users, processed concurrently
    for update in updates:
        assert server.post_update(update) == 200
    server.signal(signal.SIGTERM)
    assert applications(db_url) == {}  # all five were in flight when the signal came

    def refused() -> bool:
        try:
            server.request("GET", "/healthz")
        except OSError:
            return True
        return False

    wait_until(refused, timeout=10, what="the listener closed")  # while the five still run
    assert server.proc.poll() is None
    assert server.wait(30) == 0
    assert applications(db_url) == {u["update_id"]: 1 for u in updates}
    assert counted(botapi) == {u["update_id"]: 1 for u in updates}
    assert all(processed for processed, _, _ in inbox(db_url).values())
    assert "database closed" in server.logs()


@pytest.mark.parametrize("first", [signal.SIGINT, signal.SIGTERM])
def test_sigint_stops_gracefully_too_and_a_second_signal_does_not_cut_it_short(serve, db_url, botapi, first):
    """A second SIGTERM while it waits for the update in flight (an impatient operator, systemd
    repeating itself) changes nothing: exit code 0, the update finished."""
    server = serve()
    update = message_update(850, "count 1.5")
    assert server.post_update(update) == 200
    server.signal(first)
    wait_until(lambda: "stopping after the updates in flight" in server.logs(), timeout=10,
               what="the graceful stop under way")
    server.signal(signal.SIGTERM)
    assert server.wait(30) == 0
    assert applications(db_url) == {update["update_id"]: 1}
    assert "database closed" in server.logs()


def test_sigterm_past_the_shutdown_timeout_stops_cleanly_and_the_rest_runs_at_the_next_start(serve, db_url,
                                                                                             botapi):
    server = serve("--shutdown-timeout", "0.5", name="first")
    updates = [message_update(870 + i, "count 3") for i in range(6)]  # still running when the time is up
    for update in updates:
        assert server.post_update(update) == 200
    server.signal(signal.SIGTERM)
    assert server.wait(30) == 0
    logs = server.logs()
    assert "6 update(s) still running at shutdown; they are processed on the next start" in logs
    for noise in ("Traceback", "Task was destroyed", "a handler failed", "Unclosed", "Event loop is closed"):
        assert noise not in logs, noise
    assert applications(db_url) == {}
    assert all(not processed and error is None for processed, _, error in inbox(db_url).values())

    serve(name="second")
    wait_until(lambda: len(applications(db_url)) == len(updates), what="the interrupted updates applied")
    # Each reply goes out after its update's commit: the last may still be on its way.
    wait_until(lambda: len(counted(botapi)) == len(updates), what="the replies")
    assert applications(db_url) == {u["update_id"]: 1 for u in updates}
    assert counted(botapi) == {u["update_id"]: 1 for u in updates}


def test_with_an_llm_configured_serve_imports_litellm_as_it_starts(serve, db_url, botapi):
    """litellm's import takes seconds: done at the start, not by the first message that needs the
    model (which would give up within LLM_TIMEOUT and show the keyboard)."""
    server = serve(env={"LLM_MODEL": "openai/some-model", "LLM_API_BASE": "http://127.0.0.1:9/v1"})
    wait_until(lambda: "litellm imported for the LLM matcher" in server.logs(), timeout=60,
               what="litellm imported in the background")
    assert server.post_update(message_update(890, "count")) == 200  # serving all the while
    wait_until(lambda: len(counted(botapi)) == 1, what="the update answered")


def test_sigterm_leaves_a_backlog_not_started_to_the_next_start(serve, db_url, botapi):
    """Eight updates, two processed at a time: SIGTERM waits for the two being processed, not for
    the six still waiting their turn (a backlog of thousands would hold the stop until the
    shutdown timeout, then be cut short). The six stay in the inbox and run at the next start."""
    server = serve("--concurrency", "2", name="first")
    updates = [message_update(880 + i, "count 1") for i in range(8)]
    for update in updates:
        assert server.post_update(update) == 200
    server.signal(signal.SIGTERM)
    assert server.wait(30) == 0
    applied = applications(db_url)
    assert len(applied) <= 2 and all(count == 1 for count in applied.values())
    logs = server.logs()
    assert f"{8 - len(applied)} update(s) received and not started yet at shutdown; they are processed on the" \
           " next start" in logs
    assert "still running at shutdown" not in logs and "Traceback" not in logs
    left = {update_id for update_id, (processed, _, error) in inbox(db_url).items() if not processed and not error}
    assert left == {u["update_id"] for u in updates} - set(applied)

    serve(name="second")
    wait_until(lambda: len(counted(botapi)) == len(updates), what="the backlog applied and answered")
    assert applications(db_url) == {u["update_id"]: 1 for u in updates}
    assert counted(botapi) == {u["update_id"]: 1 for u in updates}


@pytest.mark.postgres_only
def test_two_processes_on_postgresql_share_a_stream_with_duplicates(serve, db_url, botapi):
    first, second = serve(name="first"), serve(name="second")
    updates = [message_update(900 + i % 7, "count", update_id=95_000 + i) for i in range(40)]
    deliveries = [(u, (first, second)[(i + k) % 2]) for i, u in enumerate(updates) for k in range(1 + i % 3)]
    statuses: list[int] = []

    def deliver(batch: list) -> None:
        for update, server in batch:
            statuses.append(server.post_update(update))

    threads = [threading.Thread(target=deliver, args=(deliveries[n::6],)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * len(deliveries)

    ids = {u["update_id"] for u in updates}
    wait_until(lambda: set(counted(botapi)) == ids, what="every update applied")
    time.sleep(0.5)
    assert applications(db_url) == {i: 1 for i in ids}
    assert counted(botapi) == {i: 1 for i in ids}
    rows = inbox(db_url)
    assert set(rows) == ids and all(processed for processed, _, _ in rows.values())


@pytest.mark.postgres_only
def test_two_processes_on_postgresql_keep_a_chats_order(serve, db_url, botapi):
    """As Telegram does: a chat's next update is sent once the previous one is answered (stored,
    not yet processed); here to the other process, while the first is still handling its own."""
    first, second = serve(name="first"), serve(name="second")
    slow, quick = message_update(920, "count 1.5", update_id=97_001), message_update(920, "count", update_id=97_002)
    other_chat = message_update(921, "count", update_id=97_003)
    assert first.post_update(slow) == 200
    sent = time.monotonic()
    assert second.post_update(quick) == 200
    assert second.post_update(other_chat) == 200
    wait_until(lambda: set(counted(botapi)) == {97_001, 97_002, 97_003}, what="every update applied")
    # The chat's order across processes is its handlers' (the second starts once the first's
    # writes are committed); their replies, sent after the commits, may still cross on a busy
    # machine (docs/deployment.md, Several processes).
    order = applied_in_order(db_url)
    assert order.index(97_001) < order.index(97_002)  # the chat's order, across processes
    assert order.index(97_003) < order.index(97_001)  # another chat does not wait
    assert time.monotonic() - sent >= 1.0
    assert applications(db_url) == {97_001: 1, 97_002: 1, 97_003: 1}


def test_real_habit_completions_each_applied_once(serve, engine, db_url, botapi):
    """The bot's own flow: typed habit names, each update delivered twice at once. A second
    application would log nothing (one completion a day) but would answer "already logged"."""
    users = [1100 + i for i in range(6)]
    for telegram_id in users:
        engine.register(telegram_id, f"User {telegram_id}")
        engine.activate_user(telegram_id)
    engine.add_habit("Running")
    engine.add_reward("Coffee", weight=1)
    server = serve()
    updates = [message_update(u, "Running") for u in users]
    statuses: list[int] = []
    threads = [threading.Thread(target=lambda u=u: statuses.append(server.post_update(u)))
               for u in updates for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * len(threads)

    def replies() -> list[str]:
        return [str(p.get("text")) for p in botapi.calls_of("sendMessage")]

    wait_until(lambda: sum("done!" in t for t in replies()) == len(users), what="every completion answered")
    time.sleep(0.5)
    assert not [t for t in replies() if "already logged" in t]
    logs = query(db_url, "SELECT u.telegram_id, COUNT(*) FROM habit_logs l JOIN users u ON u.id = l.user_id"
                         " GROUP BY u.telegram_id")
    assert dict(logs) == {u: 1 for u in users}


def test_a_second_server_on_the_same_sqlite_file_is_refused(serve, backend, db_url, botapi, tmp_path):
    if backend != "sqlite":
        pytest.skip("separate serve processes share PostgreSQL by design (see the test above)")
    import subprocess

    first = serve()
    second = ServeProcess(db_url, botapi, tmp_path, "--webhook", "--port", "0")
    result = subprocess.run([HABITREWARD_BIN, "serve", "--webhook", "--port", "0"], cwd=tmp_path,
                            env=second.environment(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    database = db_url.split("sqlite:///", 1)[1]
    assert f"another `habitreward serve` is running on this SQLite database ({database});" in result.stderr
    assert "Traceback" not in result.stderr
    assert first.post_update(message_update(1200, "count")) == 200  # the first one is unaffected
    # Another file of the same name but its extension is another database: not refused.
    other = ServeProcess(db_url.rsplit(".", 1)[0] + ".sqlite", botapi, tmp_path, "--webhook", "--port", "0",
                         name="other-file").start()
    try:
        assert other.url is not None
    finally:
        other.kill()


@pytest.mark.postgres_only
def test_a_survivor_finishes_what_a_killed_process_had_accepted(serve, db_url, botapi):
    """Two processes on PostgreSQL: one dies right after answering 200; the other one's sweep
    applies the update without any restart, once."""
    doomed = serve("--sweep-interval", "1", name="doomed")
    survivor = serve("--sweep-interval", "1", name="survivor")
    update = message_update(1300, "count 2")
    assert doomed.post_update(update) == 200
    doomed.kill()
    assert applications(db_url) == {}
    wait_until(lambda: applications(db_url) == {update["update_id"]: 1}, timeout=30, what="the survivor's sweep")
    wait_until(lambda: counted(botapi) == {update["update_id"]: 1}, what="the reply")
    assert "left unprocessed" in survivor.logs()


def test_a_process_killed_mid_stream_loses_and_repeats_nothing(serve, backend, db_url, botapi):
    """Two processes (two ``serve`` on PostgreSQL, ``--workers 2`` on SQLite) under a stream of
    updates with duplicates, posted from eight connections that retry elsewhere until answered
    200, as Telegram does; one process is SIGKILLed in the middle and started again."""
    pick = random.Random(20261130)
    if backend == "postgres":
        servers = [serve(name="first"), serve(name="second")]
    else:
        servers = [serve("--workers", "2", name="workers")]
    updates = [message_update(1400 + i % 11, "count", update_id=96_000 + i) for i in range(300)]
    deliveries = sorted((u for u in updates for _ in range(1 + pick.randrange(2))),
                        key=lambda u: u["update_id"] + pick.randrange(20))
    answered: set[int] = set()

    def deliver(batch: list[dict]) -> None:
        for update in batch:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if pick.choice(servers).post_update(update) == 200:
                        answered.add(update["update_id"])
                        break
                except (OSError, http.client.HTTPException):  # the killed one (also mid-answer:
                    pass  # IncompleteRead): not answered, so sent again, as Telegram does
                time.sleep(0.02)

    threads = [threading.Thread(target=deliver, args=(deliveries[n::8],)) for n in range(8)]
    for thread in threads:
        thread.start()
    wait_until(lambda: len(applications(db_url)) >= 30, what="part of the stream applied")
    servers[-1].kill()
    time.sleep(0.3)
    servers[-1].start()
    for thread in threads:
        thread.join()
    ids = {u["update_id"] for u in updates}
    assert answered == ids
    wait_until(lambda: set(applications(db_url)) == ids, timeout=60, what="every update applied")
    time.sleep(0.5)
    assert applications(db_url) == {i: 1 for i in ids}
    assert all(processed for processed, _, _ in inbox(db_url).values())
    assert all(count == 1 for count in counted(botapi).values())  # a reply is never sent twice


def test_healthz_says_503_while_postgresql_is_unreachable_and_recovers(serve, backend, db_url, botapi):
    if backend != "postgres":
        pytest.skip("taking the database away from a live server is a PostgreSQL scenario")
    from urllib.parse import urlparse, urlunparse

    import psycopg2

    server = serve()
    assert server.request("GET", "/healthz")[0] == 200
    name = urlparse(db_url).path.lstrip("/")
    admin = psycopg2.connect(urlunparse(urlparse(db_url)._replace(path="/postgres")))
    admin.autocommit = True
    try:
        with admin.cursor() as cur:  # the server's pooled connections die, and no new one is let in
            cur.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        status, body = server.request("GET", "/healthz")
        assert status == 503
        details = json.loads(body)
        assert details["ok"] is False and details["database"].startswith("error") and details["bot"] == "ok"
        # an update cannot be stored now: not acknowledged, so Telegram delivers it again later
        update = message_update(5, "Running", update_id=9_000_001)
        assert server.post_update(update) == 503
    finally:
        with admin.cursor() as cur:
            cur.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
        admin.close()
    assert wait_until(lambda: server.request("GET", "/healthz")[0] == 200, what="healthz back to 200")
    assert server.post_update(update) == 200  # the redelivery is stored and applied
    wait_until(lambda: inbox(db_url).get(9_000_001, (False,))[0], what="the update processed")
    assert server.proc.poll() is None
