"""``habitreward serve --webhook`` while Telegram's Bot API misbehaves (flood control, errors, slow or
cut answers, an outage), with habit completions typed by seeded users: what a user and an operator
notice. The Bot API stand-in makes the faults (``fail_next``, ``delay_next``, ``cut_next``,
``go_down``)."""

from __future__ import annotations

import json

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
