"""Telegram's flood control (429) through the bot's rate limiter (habitreward.bot.ratelimit), a real
python-telegram-bot ExtBot and the Bot API stand-in: whose requests wait, how long, how often they
are sent. (One chat's 429 not holding another chat's reply, end to end: test_serve_botapi_faults.)"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import warnings

import pytest
from telegram import BotCommand
from telegram.error import RetryAfter
from telegram.ext import ExtBot

from habitreward.bot.ratelimit import BOT_WIDE_CHATS, ChatRateLimiter, retry_after_seconds

pytestmark = pytest.mark.no_db

TOKEN = "123456:TEST"


def run_with_bot(botapi, scenario, *, max_retries: int = 2):
    async def main():
        bot = ExtBot(TOKEN, base_url=botapi.base_url, rate_limiter=ChatRateLimiter(max_retries=max_retries))
        async with bot:
            return await scenario(bot)

    return asyncio.run(main())


async def once_refused(condition, timeout: float = 5.0) -> None:
    """Wait until the stand-in got the call(s) it refuses, and a moment for its 429 to be back."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.2)  # the stand-in records a call before it answers


def sends_to(botapi, chat_id: int) -> list[float]:
    """When each sendMessage to ``chat_id`` reached the stand-in (refused ones too)."""
    return [at for at, params in botapi.timed_calls_of("sendMessage") if params["chat_id"] == chat_id]


def test_a_chats_later_requests_wait_with_it_and_other_chats_go_on(botapi):
    """A 429 in chat 1 holds chat 1's next message too (sending it would only collect another
    429); chat 2's goes out at once. Each message is delivered once."""
    botapi.fail_next("sendMessage", 429, retry_after=1, chat_id=1)

    async def scenario(bot):
        first = asyncio.create_task(bot.send_message(1, "first"))
        await once_refused(lambda: sends_to(botapi, 1))
        second = asyncio.create_task(bot.send_message(1, "second"))
        await bot.send_message(2, "other")
        await asyncio.gather(first, second)

    run_with_bot(botapi, scenario)

    refused, *sent_again = sends_to(botapi, 1)
    [other] = sends_to(botapi, 2)
    assert other - refused < 0.7
    assert len(sent_again) == 2 and min(sent_again) - refused >= 1.0
    assert sorted(m["text"] for m in botapi.sent(1)) == ["first", "second"]
    assert [m["text"] for m in botapi.sent(2)] == ["other"]


def test_a_chats_messages_held_by_a_429_arrive_in_the_order_they_were_sent(botapi):
    """The refused message first, then those that waited behind it, as they were sent: woken at the
    end of the same wait, they used to go out in any order ("second" before "first", say)."""
    botapi.fail_next("sendMessage", 429, retry_after=1, chat_id=1)

    async def scenario(bot):
        first = asyncio.create_task(bot.send_message(1, "first"))
        await once_refused(lambda: sends_to(botapi, 1))
        later = []
        for text in ("second", "third", "fourth"):
            later.append(asyncio.create_task(bot.send_message(1, text)))
            await asyncio.sleep(0.01)
        await asyncio.gather(first, *later)

    run_with_bot(botapi, scenario)

    assert [m["text"] for m in botapi.sent(1)] == ["first", "second", "third", "fourth"]
    refused, *sent_again = sends_to(botapi, 1)
    assert len(sent_again) == 4 and min(sent_again) - refused >= 1.0


def test_a_429_without_a_chat_still_holds_every_request(botapi):
    """setMyCommands names no chat: its 429 is the bot's, so chats wait too (PTB's way)."""
    botapi.fail_next("setMyCommands", 429, retry_after=1)

    async def scenario(bot):
        menu = asyncio.create_task(bot.set_my_commands([BotCommand("start", "Start")]))
        await once_refused(lambda: botapi.calls_of("setMyCommands"))
        await bot.send_message(3, "hi")
        await menu

    run_with_bot(botapi, scenario)

    refused, retried = (at for at, _ in botapi.timed_calls_of("setMyCommands"))
    [hi] = sends_to(botapi, 3)
    assert retried - refused >= 1.0
    assert hi - refused >= 1.0
    assert botapi.commands() == [{"command": "start", "description": "Start"}]


def test_429s_in_several_chats_at_once_hold_every_chat(botapi, caplog):
    """429s in BOT_WIDE_CHATS chats at once: the bot is over its overall limit, so a fourth chat
    waits as well instead of collecting a 429 of its own."""
    flooded = list(range(10, 10 + BOT_WIDE_CHATS))
    for chat in flooded:
        botapi.fail_next("sendMessage", 429, retry_after=1, chat_id=chat)

    async def scenario(bot):
        floods = [asyncio.create_task(bot.send_message(chat, "x")) for chat in flooded]
        await once_refused(lambda: all(sends_to(botapi, chat) for chat in flooded))
        await bot.send_message(99, "later")
        await asyncio.gather(*floods)

    with caplog.at_level(logging.INFO, logger="habitreward.bot.ratelimit"):
        run_with_bot(botapi, scenario)

    last_refusal = max(sends_to(botapi, chat)[0] for chat in flooded)
    [later] = sends_to(botapi, 99)
    assert later - last_refusal >= 0.9
    assert all(len(botapi.sent(chat)) == 1 for chat in [*flooded, 99])
    assert caplog.text.count(f"Telegram flood control in {BOT_WIDE_CHATS} chats at once") == 1


def test_a_chat_flooded_for_good_raises_retry_after_once_the_retries_are_spent(botapi, caplog):
    botapi.fail_next("sendMessage", 429, retry_after=1, times=5, chat_id=4)

    async def scenario(bot):
        with pytest.raises(RetryAfter):
            await bot.send_message(4, "never")

    with caplog.at_level(logging.INFO):
        run_with_bot(botapi, scenario, max_retries=1)

    assert len(sends_to(botapi, 4)) == 2
    assert "Telegram flood control in chat 4: its requests wait 1.1 s" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # the caller logs the give-up


@pytest.mark.parametrize("retry_after", [3, dt.timedelta(seconds=3)])
def test_retry_after_seconds_reads_the_wait_without_ptbs_deprecation_warning(retry_after):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PTB's RetryAfter reads its own deprecated attribute when made
        error = RetryAfter(retry_after)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert retry_after_seconds(error) == 3.0
