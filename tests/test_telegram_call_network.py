"""``telegram_call`` when the Bot API cannot be reached or its answer is lost, with both HTTP
clients (aiohttp, PTB's httpx) against the Bot API stand-in: a call that could not connect is sent
again, a call Telegram may have done is not."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from telegram import Bot
from telegram.error import NetworkError, TimedOut
from telegram.request import HTTPXRequest

from habitreward.bot.api_calls import send_html
from habitreward.bot.handlers import common
from habitreward.bot.handlers.common import telegram_call
from habitreward.bot.request import AiohttpRequest
from test_serve_kit import wait_until

pytestmark = pytest.mark.no_db

TOKEN = "123456:AAHsecretTOKENvalue_-x9"
CLIENTS = {"aiohttp": AiohttpRequest, "httpx": HTTPXRequest}


def send_through(botapi: Any, client: str, before_each_try: Any = None, *, down: bool = False) -> tuple[Any, int]:
    """telegram_call(sendMessage "hi" to chat 42) with a 0.5 s read timeout, the stand-in gone
    down first if ``down``: (its result or the error it raised, how many times it was tried)."""
    tries = 0
    base_url = botapi.base_url  # the same once it is back
    if down:
        botapi.go_down()

    async def main() -> Any:
        request = CLIENTS[client](read_timeout=0.5)
        bot = Bot(TOKEN, base_url=base_url, request=request)

        async def send() -> Any:
            nonlocal tries
            tries += 1
            if before_each_try is not None:
                before_each_try(tries)
            return await send_html(bot, 42, "hi", None)

        try:
            return await telegram_call(send)
        except NetworkError as exc:
            return exc
        finally:
            await request.shutdown()

    return asyncio.run(main()), tries


@pytest.fixture
def quick_pauses(monkeypatch):
    monkeypatch.setattr(common, "NOT_CONNECTED_PAUSES", (0.01, 0.01, 0.01))


@pytest.mark.parametrize("client", CLIENTS)
def test_a_call_that_could_not_connect_is_sent_when_telegram_is_back(botapi, client, quick_pauses):
    result, tries = send_through(botapi, client, lambda n: botapi.come_back() if n == 3 else None, down=True)
    assert tries == 3
    assert isinstance(result, dict) and result["text"] == "hi"
    assert [m["text"] for m in botapi.sent(42)] == ["hi"]


@pytest.mark.parametrize("client", CLIENTS)
def test_a_call_that_never_connects_is_given_up_after_a_few_tries(botapi, client, quick_pauses):
    result, tries = send_through(botapi, client, down=True)
    botapi.come_back()
    assert isinstance(result, NetworkError) and not isinstance(result, TimedOut)
    assert tries == 1 + len(common.NOT_CONNECTED_PAUSES)


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("fault", ["cut", "late"])
def test_a_call_telegram_may_have_done_is_not_sent_again(botapi, client, fault, quick_pauses):
    if fault == "cut":
        botapi.cut_next("sendMessage")
    else:
        botapi.delay_next("sendMessage", 1.5)  # past the 0.5 s read timeout
    result, tries = send_through(botapi, client)
    assert isinstance(result, TimedOut if fault == "late" else NetworkError)
    assert tries == 1
    wait_until(lambda: botapi.sent(42), timeout=10, what="the late call done")
    assert [m["text"] for m in botapi.sent(42)] == ["hi"]
