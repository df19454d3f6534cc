"""``habitreward serve --webhook`` while Telegram's Bot API misbehaves (flood control, errors, slow or
cut answers, an outage), with habit completions typed by seeded users: what a user and an operator
notice. The Bot API stand-in makes the faults (``fail_next``, ``delay_next``, ``cut_next``,
``go_down``)."""

from __future__ import annotations

import json
import re

import pytest

from habitreward.bot.app import RATE_LIMIT_RETRIES
from habitreward.testing.builders import message_update
from test_serve_kit import TOKEN, inbox, query, wait_until

pytestmark = pytest.mark.slow


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
    """The rate limiter waits out a 429 and retries (pausing every chat's replies meanwhile);
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


@pytest.mark.parametrize("client", ["aiohttp", "httpx"])
def test_a_reply_that_could_not_connect_is_sent_once_telegram_is_back(serve, engine, db_url, botapi, backend,
                                                                       client):
    """The Bot API unreachable for a moment (connections refused): the reply surely was not sent,
    so it is sent again a few times; the user gets it, once, when Telegram is back."""
    if backend == "postgres" and client == "httpx":
        pytest.skip("the HTTP client does not depend on the database (httpx seen on SQLite)")
    user = 2111
    seed_runners(engine, [user])
    server = serve(env={"TELEGRAM_HTTP_CLIENT": client})
    botapi.go_down()

    assert server.post_update(message_update(user, "Running", update_id=81_011)) == 200
    # The first try refused (each client's words for it, at DEBUG or in the error once given up).
    wait_until(lambda: re.search(r"\b(httpx\.ConnectError|aiohttp\.ClientConnectorError)\b", server.logs()),
               what="the first try refused")
    botapi.come_back()
    wait_until(lambda: inbox(db_url).get(81_011) and idle(server), timeout=30, what="the update finished")

    assert completions(db_url) == {user: 1}
    replies = replies_to(botapi, user)
    assert len(replies) == 1 and "done!" in replies[0]["text"]
    assert len(botapi.sent(user)) == 1
    assert inbox(db_url)[81_011] == (True, 1, None)


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
