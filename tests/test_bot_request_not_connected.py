"""A Bot API call that could not connect is sent again by the bot's request object, with both HTTP
clients (the builtin one, aiohttp, PTB's httpx), whoever makes the call: a screen's reply through ``telegram_call``,
a plugin's own ``bot.send_message``. A call Telegram may have done (timed out, cut) is not."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from telegram import Bot
from telegram.error import NetworkError, TimedOut

from habitreward.bot import request as request_module
from habitreward.bot.api_calls import send_html
from habitreward.bot.handlers.common import telegram_call
from habitreward.bot.request import AiohttpRequest, BotApiRequest, RetryingHTTPXRequest, make_bot_request
from habitreward.settings import Settings
from test_serve_kit import wait_until

pytestmark = pytest.mark.no_db

TOKEN = "123456:AAHsecretTOKENvalue_-x9"
PAUSES = (0.01, 0.01, 0.01)


PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


@pytest.fixture(autouse=True)
def no_proxies(monkeypatch):
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def bots_request(client: str) -> Any:
    """The request object of the bot's calls, as ``build_application`` makes it (``context.bot``)."""
    return make_bot_request(Settings.load(environ={"TELEGRAM_HTTP_CLIENT": client}, env_file=None))


def retrying(client: str, **kwargs: Any) -> Any:
    if client == "builtin":
        return BotApiRequest(retry_not_connected=True, **kwargs)
    if client == "aiohttp":
        return AiohttpRequest(retry_not_connected=True, **kwargs)
    return RetryingHTTPXRequest(**kwargs)


class Tries:
    """Stands in for the request module's logger: counts the new tries it logs (whatever the
    logging configuration an earlier test left) and calls ``on_retry(n)`` at the n-th."""

    def __init__(self, on_retry: Any = None):
        self.retries: list[str] = []
        self.on_retry = on_retry

    def debug(self, message: str, *args: Any) -> None:
        if "trying again" in message:
            self.retries.append(message % args)
            if self.on_retry is not None:
                self.on_retry(len(self.retries))


@pytest.fixture
def tries(monkeypatch):
    monkeypatch.setattr(request_module, "NOT_CONNECTED_PAUSES", PAUSES)

    def watch(on_retry: Any = None) -> Tries:
        watcher = Tries(on_retry)
        monkeypatch.setattr(request_module, "logger", watcher)
        return watcher

    return watch


def send(botapi: Any, request: Any, how: str, *, down: bool = False) -> Any:
    """sendMessage "hi" to chat 42 through ``request`` (the stand-in gone down first if ``down``),
    as a plugin does (``bot.send_message``) or a screen (``telegram_call``): the sent message, or the
    error raised."""
    base_url = botapi.base_url  # the same once it is back
    if down:
        botapi.go_down()

    async def main() -> Any:
        bot = Bot(TOKEN, base_url=base_url, request=request)
        try:
            if how == "plugin":
                return (await bot.send_message(42, "hi")).text
            return (await telegram_call(lambda: send_html(bot, 42, "hi", None)))["text"]
        except NetworkError as exc:
            return exc
        finally:
            await request.shutdown()

    return asyncio.run(main())


@pytest.mark.parametrize("how", ["plugin", "screen"])
@pytest.mark.parametrize("client", ["builtin", "aiohttp", "httpx"])
def test_a_call_that_could_not_connect_is_sent_when_telegram_is_back(botapi, client, how, tries):
    """A plugin calling ``context.bot.send_message`` itself got no second try: its message was lost
    to a moment's outage that the bot's own screens rode out."""
    watched = tries(lambda n: botapi.come_back() if n == 2 else None)
    assert send(botapi, bots_request(client), how, down=True) == "hi"
    assert len(watched.retries) == 2  # refused twice, sent on the third try
    assert watched.retries[0].startswith("sendMessage could not connect to the Bot API (")
    assert TOKEN not in "".join(watched.retries)
    assert [m["text"] for m in botapi.sent(42)] == ["hi"]


@pytest.mark.parametrize("client", ["builtin", "aiohttp", "httpx"])
def test_a_call_that_never_connects_is_given_up_after_a_few_tries(botapi, client, tries):
    watched = tries()
    result = send(botapi, bots_request(client), "plugin", down=True)
    botapi.come_back()
    assert isinstance(result, NetworkError) and not isinstance(result, TimedOut)
    assert len(watched.retries) == len(PAUSES)


def test_no_new_try_starts_after_the_window(botapi, tries, monkeypatch):
    monkeypatch.setattr(request_module, "NOT_CONNECTED_PAUSES", (0.2, 0.2, 0.2))
    monkeypatch.setattr(request_module, "NOT_CONNECTED_WINDOW", 0.3)
    watched = tries()
    assert isinstance(send(botapi, retrying("aiohttp"), "plugin", down=True), NetworkError)
    botapi.come_back()
    assert len(watched.retries) == 1  # a second pause would start the third try after 0.4 s


@pytest.mark.parametrize("client", ["builtin", "aiohttp", "httpx"])
@pytest.mark.parametrize("fault", ["cut", "late"])
def test_a_call_telegram_may_have_done_is_not_sent_again(botapi, client, fault, tries):
    watched = tries()
    if fault == "cut":
        botapi.cut_next("sendMessage")
    else:
        botapi.delay_next("sendMessage", 1.5)  # past the 0.5 s read timeout
    result = send(botapi, retrying(client, read_timeout=0.5), "plugin")
    assert isinstance(result, TimedOut if fault == "late" else NetworkError)
    assert watched.retries == []
    wait_until(lambda: botapi.sent(42), timeout=10, what="the late call done")
    assert [m["text"] for m in botapi.sent(42)] == ["hi"]


@pytest.mark.parametrize("client", ["builtin", "aiohttp", "httpx"])
def test_the_bots_calls_are_sent_again_not_getupdates_nor_a_command_lines(botapi, client, tries, tmp_path,
                                                                          monkeypatch):
    """With Telegram back the moment anything tries again, the bot's message arrives, while its
    getUpdates fails at once (polling asks again itself, after its own pause) and so does
    `habitreward webhook info` (one call at the command line: it says so, not waits)."""
    from click.testing import CliRunner

    from habitreward.bot.app import build_application
    from habitreward.cli import cli
    from habitreward.testing.engines import make_engine

    watched = tries(lambda n: botapi.come_back())
    base_url = botapi.base_url  # the same once it is back
    engine = make_engine(f"sqlite:///{tmp_path / 'bot.db'}", load_entry_points=False, telegram_bot_token=TOKEN,
                         telegram_api_url=base_url, telegram_http_client=client)
    bot = build_application(engine, updater=False, persistence=False, rate_limiter=False).bot

    async def main() -> tuple[Any, Any]:
        async with bot:  # getMe, while Telegram is up
            # A fresh pool: no kept-alive connection that the outage cuts (sent, maybe done: not
            # sent again); this test is about connections refused.
            await bot.request.shutdown()
            await bot.request.initialize()
            botapi.go_down()
            try:
                polled: Any = await bot.get_updates(timeout=0)
            except NetworkError as exc:
                polled = exc
            return polled, (await bot.send_message(42, "hi")).text

    try:
        polled, sent = asyncio.run(main())
    finally:
        engine.close()
    assert isinstance(polled, NetworkError) and not isinstance(polled, TimedOut), polled
    assert sent == "hi" and [m["text"] for m in botapi.sent(42)] == ["hi"]
    assert len(watched.retries) == 1 and watched.retries[0].startswith("sendMessage ")
    assert botapi.calls_of("getUpdates") == []

    botapi.go_down()
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    result = CliRunner().invoke(cli, ["webhook", "info"], catch_exceptions=False, env={
        "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": base_url, "TELEGRAM_HTTP_CLIENT": client,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.db'}"})
    botapi.come_back()
    assert result.exit_code == 1 and result.output.startswith("Error: Telegram:"), result.output
    assert len(watched.retries) == 1 and botapi.calls_of("getWebhookInfo") == []
