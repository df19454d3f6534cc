"""``habitreward serve --webhook`` while Telegram's Bot API misbehaves (flood control, errors, slow or
cut answers, an outage), with habit completions typed by seeded users: what a user and an operator
notice. The Bot API stand-in makes the faults (``fail_next``, ``delay_next``, ``cut_next``,
``go_down``)."""

from __future__ import annotations

import json
import re
import signal

import pytest

from habitreward.bot.app import RATE_LIMIT_RETRIES
from habitreward.testing.builders import message_update
from test_serve_kit import TOKEN, inbox, query, wait_until

pytestmark = pytest.mark.slow

# Each client's words for a refused connection (at DEBUG, or in the error once given up).
REFUSED = re.compile(r"\b(httpx\.ConnectError|aiohttp\.ClientConnectorError|CouldNotConnect)\b")


def seed_runners(engine, telegram_ids: list[int]) -> None:
    for telegram_id in telegram_ids:
        engine.register(telegram_id, f"User {telegram_id}")
        engine.activate_user(telegram_id)
    engine.add_habit("Running")
    engine.add_reward("Coffee", weight=1)


def completions(db_url: str) -> dict[int, int]:
    """telegram_id -> habit logs."""
    return dict(query(db_url, "SELECT u.telegram_id, COUNT(*) FROM habit_logs l JOIN users u ON u.id = l.user_id"
                              " GROUP BY u.telegram_id"))


def replies_to(botapi, chat_id: int) -> list[dict]:
    """Every sendMessage the stand-in was asked for in ``chat_id`` (refused ones too)."""
    return [p for p in botapi.calls_of("sendMessage") if p.get("chat_id") == chat_id]


def idle(server) -> bool:
    """No update in flight (its handlers and replies done), by /healthz."""
    status, body = server.request("GET", "/healthz")
    return status == 200 and json.loads(body)["in_flight"] == 0


def test_a_reply_flood_controlled_for_good_is_given_up_after_the_limiters_retries(serve, engine, db_url, botapi):
    """The rate limiter waits out a 429 and retries (holding that chat's replies meanwhile);
    its refusal used to be retried three more times, each with the limiter's own retries: twelve
    tries and eight pauses of every chat for one message. The completion stays saved."""
    flooded, other = 2101, 2102
    seed_runners(engine, [flooded, other])
    server = serve()
    botapi.fail_next("sendMessage", 429, retry_after=1, times=50, chat_id=flooded)

    assert server.post_update(message_update(flooded, "Running", update_id=81_001)) == 200
    wait_until(lambda: inbox(db_url).get(81_001) and idle(server), timeout=60, what="the flooded update finished")
    assert server.post_update(message_update(other, "Running", update_id=81_002)) == 200
    wait_until(lambda: replies_to(botapi, other), what="the other chat answered")

    assert len(replies_to(botapi, flooded)) == 1 + RATE_LIMIT_RETRIES
    assert completions(db_url) == {flooded: 1, other: 1}
    assert "done!" in replies_to(botapi, other)[0]["text"]
    logs = server.logs()
    assert "update 81001: Telegram kept rate limiting" in logs
    assert TOKEN not in logs


def test_one_chats_flood_control_holds_only_that_chats_replies(serve, engine, db_url, botapi):
    """Telegram refuses a reply in chat A with 429 retry_after=2 (that chat over its limit). Chat
    B's reply used to wait those 2 s too (the rate limiter held every chat's calls); now it goes
    out at once, and A's reply is sent again once its wait is over: delivered once."""
    flooded, other = 2141, 2142
    seed_runners(engine, [flooded, other])
    server = serve()
    botapi.fail_next("sendMessage", 429, retry_after=2, chat_id=flooded)

    assert server.post_update(message_update(flooded, "Running", update_id=81_051)) == 200
    wait_until(lambda: replies_to(botapi, flooded), what="chat A refused")
    assert server.post_update(message_update(other, "Running", update_id=81_052)) == 200
    wait_until(lambda: len(replies_to(botapi, flooded)) == 2, timeout=30, what="chat A's reply sent again")
    wait_until(lambda: all(inbox(db_url).get(u) for u in (81_051, 81_052)) and idle(server), what="both finished")

    calls = botapi.timed_calls_of("sendMessage")
    refused, retried = (at for at, params in calls if params["chat_id"] == flooded)
    [answered] = (at for at, params in calls if params["chat_id"] == other)
    assert retried - refused >= 2.0  # A waited what Telegram asked
    assert answered < retried - 1.0  # B did not wait for it
    assert "done!" in replies_to(botapi, other)[0]["text"]
    assert len(botapi.sent(flooded)) == 1 and "done!" in botapi.sent(flooded)[0]["text"]
    assert len(botapi.sent(other)) == 1
    assert completions(db_url) == {flooded: 1, other: 1}
    assert inbox(db_url)[81_051] == (True, 1, None)


@pytest.mark.parametrize("client", ["builtin", "aiohttp", "httpx"])
def test_a_reply_that_could_not_connect_is_sent_once_telegram_is_back(serve, engine, db_url, botapi, backend,
                                                                       client):
    """The Bot API unreachable for a moment (connections refused): the reply surely was not sent,
    so it is sent again a few times; the user gets it, once, when Telegram is back."""
    if backend == "postgres" and client != "builtin":
        pytest.skip("the HTTP client does not depend on the database (aiohttp and httpx seen on SQLite)")
    user = 2111
    seed_runners(engine, [user])
    server = serve(env={"TELEGRAM_HTTP_CLIENT": client})
    botapi.go_down()

    assert server.post_update(message_update(user, "Running", update_id=81_011)) == 200
    # The first try refused (each client's words for it, at DEBUG or in the error once given up).
    wait_until(lambda: REFUSED.search(server.logs()),
               what="the first try refused")
    botapi.come_back()
    wait_until(lambda: inbox(db_url).get(81_011) and idle(server), timeout=30, what="the update finished")

    assert completions(db_url) == {user: 1}
    replies = replies_to(botapi, user)
    assert len(replies) == 1 and "done!" in replies[0]["text"]
    assert len(botapi.sent(user)) == 1
    assert inbox(db_url)[81_011] == (True, 1, None)


@pytest.mark.parametrize("client", ["builtin", "aiohttp", "httpx"])
def test_a_plugins_own_call_that_could_not_connect_is_sent_once_telegram_is_back(serve, db_url, botapi, backend,
                                                                                  client):
    """A plugin's handler calling ``context.bot.send_message`` itself (the serve tests' ``count``)
    got no second try: only the bot's own screens' replies were sent again, so a moment's outage
    lost the plugin's message. Every Bot API call of the bot is now sent again."""
    if backend == "postgres":
        pytest.skip("the HTTP client does not depend on the database (seen on SQLite)")
    server = serve(env={"TELEGRAM_HTTP_CLIENT": client})
    botapi.go_down()

    assert server.post_update(message_update(2141, "count", update_id=81_051)) == 200
    wait_until(lambda: REFUSED.search(server.logs()),
               what="the first try refused")
    botapi.come_back()
    wait_until(lambda: inbox(db_url).get(81_051) and idle(server), timeout=30, what="the update finished")

    assert [m["text"] for m in botapi.sent(2141)] == ["counted 81051"]
    assert inbox(db_url)[81_051] == (True, 1, None)
    logs = server.logs()
    assert "may not have reached Telegram" not in logs
    assert "sendMessage could not connect to the Bot API (" in logs  # each new try, at DEBUG


@pytest.mark.parametrize("fault", ["cut", "late"])
def test_a_reply_telegram_may_have_is_not_sent_again(serve, engine, db_url, botapi, backend, fault):
    """A connection cut on the way back, or an answer later than the client waits: Telegram
    has done the call, so sending it again would show the message twice."""
    if backend == "postgres":
        pytest.skip("what is sent again does not depend on the database (seen on SQLite)")
    user = 2112
    seed_runners(engine, [user])
    server = serve()
    if fault == "cut":
        botapi.cut_next("sendMessage")
    else:
        botapi.delay_next("sendMessage", 6.0)  # past the client's 5 s read timeout

    assert server.post_update(message_update(user, "Running", update_id=81_021)) == 200
    wait_until(lambda: inbox(db_url).get(81_021) and idle(server), timeout=30, what="the update finished")
    wait_until(lambda: botapi.sent(user), timeout=10, what="the late call done")

    assert completions(db_url) == {user: 1}
    assert len(replies_to(botapi, user)) == 1
    assert len(botapi.sent(user)) == 1


def test_a_reply_lost_to_the_network_is_one_warning_line_not_a_handler_failure(serve, engine, db_url, botapi,
                                                                               backend):
    """A reply cut on the way back, then Telegram unreachable past the retries: each is one WARNING
    line naming the update and the chat (an outage used to log a traceback and "a handler failed",
    which operators alert on, for every update). A 400 is the bot's bug and stays an ERROR."""
    if backend == "postgres":
        pytest.skip("what is logged does not depend on the database (seen on SQLite)")
    cut, unreachable, refused = 2121, 2122, 2123
    seed_runners(engine, [cut, unreachable, refused])
    server = serve()

    botapi.cut_next("sendMessage")
    assert server.post_update(message_update(cut, "Running", update_id=81_031)) == 200
    wait_until(lambda: inbox(db_url).get(81_031) and idle(server), timeout=30, what="the cut update finished")
    botapi.go_down()
    assert server.post_update(message_update(unreachable, "Running", update_id=81_032)) == 200
    wait_until(lambda: inbox(db_url).get(81_032) and idle(server), timeout=30, what="the unreachable one finished")
    botapi.come_back()
    before_the_bug = server.logs()
    botapi.fail_next("sendMessage", 400, description="Bad Request: chat not found", chat_id=refused)
    assert server.post_update(message_update(refused, "Running", update_id=81_033)) == 200
    wait_until(lambda: inbox(db_url).get(81_033) and idle(server), timeout=30, what="the refused one finished")

    assert completions(db_url) == {cut: 1, unreachable: 1, refused: 1}
    logs = server.logs()
    warnings = [line for line in logs.splitlines() if " WARNING " in line and "may not have reached" in line]
    assert len(warnings) == 2
    assert "update 81031: the reply to chat 2121 may not have reached Telegram (NetworkError: " in warnings[0]
    assert "update 81032: the reply to chat 2122 may not have reached Telegram (NetworkError: " in warnings[1]
    assert all(line.endswith("what the user did is saved") for line in warnings)
    assert " ERROR " not in before_the_bug and "Traceback" not in before_the_bug
    # A bug: with its traceback, logged once.
    assert "update 81033 (user 2123): a handler failed: BadRequest: Chat not found\nTraceback" in logs
    assert logs.count(" ERROR ") == 1
    assert TOKEN not in logs
    rows = inbox(db_url)
    assert rows[81_031][2].startswith("reply may not have reached Telegram: NetworkError: ")
    assert rows[81_032][2].startswith(
        "reply may not have reached Telegram: NetworkError: CouldNotConnect: cannot connect to")
    assert rows[81_033][2] == "BadRequest: Chat not found"


def test_sigterm_while_a_saved_completion_still_replies_does_not_promise_to_run_it_again(serve, engine, db_url,
                                                                                         botapi, backend):
    """Telegram slow to take a reply when the shutdown timeout is up: the completion is committed,
    only the reply is cut short. The shutdown line used to say the update would be processed on the
    next start; it is not (and must not be: it is saved)."""
    if backend == "postgres":
        pytest.skip("what is logged at shutdown does not depend on the database (seen on SQLite)")
    user = 2131
    seed_runners(engine, [user])
    server = serve("--shutdown-timeout", "0.5")
    botapi.delay_next("sendMessage", 4.0)  # under the client's 5 s read timeout: still waiting at the stop

    assert server.post_update(message_update(user, "Running", update_id=81_041)) == 200
    wait_until(lambda: inbox(db_url).get(81_041, (False,))[0], what="the completion committed")
    server.signal(signal.SIGTERM)
    assert server.wait(30) == 0

    logs = server.logs()
    assert "still running at shutdown; they are processed on the next start" not in logs
    assert "1 update(s) applied and still sending their replies at shutdown" in logs
    for noise in ("Traceback", "a handler failed", "Task was destroyed", "Event loop is closed"):
        assert noise not in logs, noise
    assert completions(db_url) == {user: 1}
    assert inbox(db_url)[81_041][0]  # done for good: the next start does not run it again


MODES = {"polling": [], "webhook": ["--webhook", "--port", "0"],
         "workers": ["--webhook", "--port", "0", "--workers", "2"]}


def run_serve(botapi, tmp_path, mode: str, **env: str):
    """``serve`` in ``mode`` to its end (a refused start): its exit code, stdout and the stderr lines
    other than the migrations it applied."""
    import subprocess

    from test_serve_kit import HABITREWARD_BIN, ServeProcess

    process = ServeProcess(f"sqlite:///{tmp_path / 'serve.db'}", botapi, tmp_path, env=env)
    result = subprocess.run([HABITREWARD_BIN, "serve", *MODES[mode]], cwd=tmp_path, env=process.environment(),
                            capture_output=True, text=True, timeout=120)
    said = [line for line in result.stderr.splitlines()
            if line.strip() and not re.search(r" WARNING habitreward.serve: applied \d+ migration", line)]
    return result.returncode, result.stdout, said


@pytest.mark.parametrize("mode", MODES)
def test_a_bot_api_nobody_answers_at_start_is_one_error_naming_it(botapi, tmp_path, mode):
    """TELEGRAM_API_URL on a closed port: the operator read "stopped; database closed" (with
    --workers, each worker's "stopped" and error, then "worker 1 could not start"), then an
    error that did not say which Bot API. Now: one line naming it, exit code 1."""
    from test_serve_kit import free_port

    api = f"http://127.0.0.1:{free_port()}/bot"  # bound and closed again: nothing listens there
    code, out, said = run_serve(botapi, tmp_path, mode, TELEGRAM_API_URL=api)
    assert code == 1 and out == ""
    assert len(said) == 1, said
    assert said[0].startswith(f"Error: the Bot API at {api} could not be reached (CouldNotConnect: cannot connect to"
                              f" {api[7:-4]}: Connection refused)"), said
    assert said[0].endswith("; check the network or TELEGRAM_API_URL") and TOKEN not in said[0]


@pytest.mark.parametrize("mode", MODES)
def test_a_token_the_bot_api_refuses_at_start_is_one_error_naming_it(botapi, tmp_path, mode):
    """getMe answered 401 (with --workers: to one worker, the other starts and stops without a word)."""
    botapi.fail_next("getMe", 401, "Unauthorized")
    code, out, said = run_serve(botapi, tmp_path, mode)
    assert code == 1 and out == ""
    assert said == [f"Error: the Bot API at {botapi.base_url} refused TELEGRAM_BOT_TOKEN (invalid token);"
                    " check the token"]


def test_a_bot_api_url_named_in_the_start_error_hides_its_password(botapi, tmp_path):
    """TELEGRAM_API_URL with a user and a short password (a proxy's): the error named the URL as
    configured, password and all (the redaction of messages only replaces passwords of 8
    characters or more)."""
    from test_serve_kit import free_port

    port = free_port()  # bound and closed again: nothing listens there
    code, out, said = run_serve(botapi, tmp_path, "polling", TELEGRAM_API_URL=f"http://bot:pw12@127.0.0.1:{port}/bot")
    assert code == 1 and len(said) == 1, said
    assert said[0].startswith(f"Error: the Bot API at http://[REDACTED]@127.0.0.1:{port}/bot could not be reached")
    assert "pw12" not in said[0]
