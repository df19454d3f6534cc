"""The Bot API clients (habitreward.bot.request: the builtin one and aiohttp's) under a real python-telegram-bot
Bot/Application, against the in-process Bot API stand-in and tiny local servers that
misbehave (never answer, refuse connections). Nothing leaves 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut
from telegram.ext import Application, ApplicationBuilder, MessageHandler, filters

from habitreward.bot import request as request_module
from habitreward.bot.request import AiohttpRequest, BotApiRequest, RetryingHTTPXRequest, make_bot_request
from habitreward.errors import ConfigError
from habitreward.settings import Settings

pytestmark = pytest.mark.no_db

TOKEN = "123456:AAHsecretTOKENvalue_-x9"
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


def run(coroutine: Awaitable[Any]) -> Any:
    return asyncio.run(coroutine)  # type: ignore[arg-type]


def message_update(text: str, chat_id: int = 42, update_id: int = 1) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id, "date": int(time.time()), "text": text,
            "chat": {"id": chat_id, "type": "private", "first_name": "Ann"},
            "from": {"id": chat_id, "is_bot": False, "first_name": "Ann"},
        },
    }


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalServer:
    """A raw HTTP/1.1 server on the test's own loop: it answers every request with
    ``answer`` (None: never answers) and counts connections opened and closed by the client."""

    def __init__(self, answer: bytes | None):
        self.answer = answer
        self.opened = 0
        self.closed_by_client = 0
        self.requests: list[bytes] = []
        self._server: asyncio.Server | None = None
        self._stop = asyncio.Event()

    async def __aenter__(self) -> LocalServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._server is not None
        self._server.close()
        await asyncio.sleep(0)

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/bot"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.opened += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                self.requests.append(head + await reader.readexactly(length))
                if self.answer is None:
                    await self._stop.wait()
                    return
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(self.answer), self.answer))
                await writer.drain()
        except asyncio.IncompleteReadError:
            self.closed_by_client += 1
        finally:
            writer.close()


OK_MESSAGE = (b'{"ok": true, "result": {"message_id": 1, "date": 0, "text": "hi",'
              b' "chat": {"id": 42, "type": "private"}}}')


async def eventually(check: Callable[[], bool], seconds: float = 2.0) -> bool:
    deadline = time.monotonic() + seconds
    while not check() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    return check()


@pytest.fixture(params=[BotApiRequest, AiohttpRequest], ids=["builtin", "aiohttp"])
def client(request: pytest.FixtureRequest) -> type[AiohttpRequest]:
    """Each test runs with both request classes: the same contract, two HTTP clients."""
    return request.param


# --- through python-telegram-bot, against the Bot API stand-in ---------------------------------


def test_an_application_replies_through_the_client(client, botapi):
    async def echo(update: Update, context: Any) -> None:
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Done ✅", callback_data="done:1")]])
        await update.effective_message.reply_text(f"<b>{update.effective_message.text}</b> logged",
                                                  parse_mode=ParseMode.HTML, reply_markup=keyboard)

    async def scenario() -> None:
        application = (ApplicationBuilder().token(TOKEN).base_url(botapi.base_url)
                       .request(client()).get_updates_request(client(connection_pool_size=1))
                       .updater(None).build())
        application.add_handler(MessageHandler(filters.TEXT, echo))
        async with application:
            await application.process_update(Update.de_json(message_update("Running"), application.bot))
            assert application.bot.username == botapi.bot_username  # getMe went through it too

    run(scenario())
    assert botapi.last_text(42) == "<b>Running</b> logged"  # the stand-in checked the HTML parses
    assert botapi.last_buttons(42) == [[("Done ✅", "done:1")]]
    (call,) = botapi.calls_of("sendMessage")
    assert call["chat_id"] == 42 and call["parse_mode"] == "HTML"


def test_a_document_upload_arrives_with_its_name_type_and_bytes(client, botapi, tmp_path):
    content = "date,habit\n2024-05-01,Бег\n".encode() + bytes(range(256))
    on_disk = tmp_path / "backup.bin"
    on_disk.write_bytes(b"\x00\x01 a file handle \xff" * 1000)

    async def scenario() -> None:
        async with Bot(TOKEN, base_url=botapi.base_url, request=client()) as bot:
            await bot.send_document(42, InputFile(content, filename="отчёт май.csv"), caption="Your export")
            with on_disk.open("rb") as handle:  # streamed from the handle, not read first
                await bot.send_document(42, InputFile(handle, filename="backup.bin", read_file_handle=False))

    run(scenario())
    first, second = botapi.calls_of("sendDocument")
    assert first["chat_id"] == 42 and first["caption"] == "Your export"
    assert first["document"]["filename"] == "отчёт май.csv"
    assert first["document"]["content"] == content
    assert first["document"]["content_type"] == "text/csv"
    assert second["document"]["filename"] == "backup.bin"
    assert second["document"]["content"] == on_disk.read_bytes()
    assert [m["text"] for m in botapi.sent(42)] == ["Your export", None]


@pytest.mark.parametrize(("code", "error"), [(400, BadRequest), (403, Forbidden), (429, RetryAfter)])
def test_telegram_refusals_become_ptbs_errors(client, botapi, code, error):
    botapi.fail_next("sendMessage", code, retry_after=7 if code == 429 else None)

    async def scenario() -> Exception:
        async with Bot(TOKEN, base_url=botapi.base_url, request=client()) as bot:
            with pytest.raises(error) as raised:
                await bot.send_message(42, "hi")
            await bot.send_message(42, "again")  # the connection is still good
            return raised.value

    refusal = run(scenario())
    assert refusal.message == {
        400: "Message is not modified",
        403: "Forbidden: bot was blocked by the user",
        429: "Flood control exceeded. Retry in 7 seconds",
    }[code]
    assert botapi.last_text(42) == "again"


def test_long_polling_waits_longer_than_the_read_timeout(client, botapi):
    """PTB adds getUpdates' timeout to the request's read timeout: a poll that waits for
    updates is not a read timeout."""
    botapi.queue_update(message_update("hi", update_id=5))

    async def scenario() -> tuple[list, list, float]:
        updates_request = client(connection_pool_size=1, read_timeout=0.3)
        async with Bot(TOKEN, base_url=botapi.base_url, get_updates_request=updates_request) as bot:
            first = await bot.get_updates(timeout=0)
            started = time.monotonic()
            empty = await bot.get_updates(offset=6, timeout=1)
            return first, empty, time.monotonic() - started

    first, empty, waited = run(scenario())
    assert [u.update_id for u in first] == [5] and list(empty) == []
    assert waited >= 0.9


# --- failures: timeouts, refused connections, the pool ------------------------------------------


def test_a_server_that_never_answers_is_a_read_timeout(client):
    async def scenario() -> tuple[TimedOut, float]:
        async with LocalServer(answer=None) as server:
            request = client(read_timeout=0.3)
            bot = Bot(TOKEN, base_url=server.base_url, request=request)
            started = time.monotonic()
            with pytest.raises(TimedOut) as raised:
                await bot.send_message(42, "hi")
            elapsed = time.monotonic() - started
            await request.shutdown()
            return raised.value, elapsed

    error, elapsed = run(scenario())
    assert 0.25 <= elapsed < 2
    assert error.message == "Timed out"
    assert isinstance(error.__cause__, TimeoutError)


def test_a_per_call_read_timeout_wins_over_the_default(client):
    async def scenario() -> float:
        async with LocalServer(answer=None) as server:
            request = client(read_timeout=30)
            bot = Bot(TOKEN, base_url=server.base_url, request=request)
            started = time.monotonic()
            with pytest.raises(TimedOut):
                await bot.send_message(42, "hi", read_timeout=0.2)
            await request.shutdown()
            return time.monotonic() - started

    assert run(scenario()) < 2


def test_a_closed_port_is_a_network_error(client):
    async def scenario() -> NetworkError:
        request = client()
        bot = Bot(TOKEN, base_url=f"http://127.0.0.1:{closed_port()}/bot", request=request)
        with pytest.raises(NetworkError) as raised:
            await bot.send_message(42, "hi")
        await request.shutdown()
        return raised.value

    error = run(scenario())
    assert not isinstance(error, TimedOut)
    assert error.message.startswith({
        BotApiRequest: "CouldNotConnect: cannot connect to 127.0.0.1:",
        AiohttpRequest: "aiohttp.ClientConnectorError: Cannot connect to host 127.0.0.1",
    }[client])
    if client is BotApiRequest:
        assert error.message.endswith(": Connection refused")
    assert isinstance(error.__cause__, OSError)  # aiohttp's error, chained as HTTPXRequest does


def test_a_full_pool_times_out_without_sending(client):
    async def scenario() -> tuple[TimedOut, int]:
        async with LocalServer(answer=None) as server:
            request = client(connection_pool_size=1, read_timeout=2, pool_timeout=0.1, connect_timeout=0.1)
            bot = Bot(TOKEN, base_url=server.base_url, request=request)
            stuck = asyncio.create_task(bot.send_message(42, "first"))
            assert await eventually(lambda: len(server.requests) == 1)
            with pytest.raises(TimedOut) as raised:
                await bot.send_message(42, "second")
            sent = len(server.requests)
            stuck.cancel()
            await asyncio.gather(stuck, return_exceptions=True)
            await request.shutdown()
            return raised.value, sent

    error, sent = run(scenario())
    assert sent == 1
    assert "not* sent" in error.message


# --- lifecycle ----------------------------------------------------------------------------------


def test_connections_are_reused_and_shutdown_closes_them(client):
    async def scenario() -> None:
        async with LocalServer(answer=OK_MESSAGE) as server:
            request = client()
            bot = Bot(TOKEN, base_url=server.base_url, request=request)
            await request.initialize()
            for text in ("one", "two", "three"):
                await bot.send_message(42, text)
            assert server.opened == 1  # kept alive between calls
            assert b"User-Agent: python-telegram-bot" in server.requests[0]

            await request.shutdown()
            assert not request.is_open
            assert await eventually(lambda: server.closed_by_client == 1)
            await request.shutdown()  # twice is harmless

            await request.initialize()  # an Application can be started again
            await bot.send_message(42, "four")
            assert server.opened == 2
            await request.shutdown()
            assert await eventually(lambda: server.closed_by_client == 2)

    run(scenario())


def test_a_call_before_initialize_opens_the_session(client, botapi):
    async def scenario() -> None:
        request = client()
        assert not request.is_open
        bot = Bot(TOKEN, base_url=botapi.base_url, request=request)
        await bot.send_message(42, "no initialize() first")
        assert request.is_open
        await request.shutdown()
        assert not request.is_open

    run(scenario())
    assert botapi.last_text(42) == "no initialize() first"


def test_shutdown_closes_the_connection_an_upload_opened(client, tmp_path):
    """Uploads go through aiohttp's session in the builtin client too: shutdown() closes it,
    after an initialize() as after an upload made before any (an Application's export)."""

    async def scenario() -> None:
        async with LocalServer(answer=OK_MESSAGE) as server:
            request = client()
            bot = Bot(TOKEN, base_url=server.base_url, request=request)
            await request.initialize()
            await bot.send_message(42, "one")
            await bot.send_document(42, b'{"habits": []}', filename="export.json")
            await request.shutdown()
            assert await eventually(lambda: server.closed_by_client == server.opened)

            await bot.send_document(42, b'{"habits": []}', filename="export.json")  # no initialize()
            await request.shutdown()
            assert await eventually(lambda: server.closed_by_client == server.opened)
            assert server.opened >= 2

    run(scenario())


# --- the token stays out of logs and error messages -----------------------------------------------


def test_the_token_never_shows_in_logs_or_errors(client, botapi, caplog):
    log = logging.getLogger("habitreward.test")
    errors: list[BaseException] = []

    async def scenario() -> None:
        # Bot() itself logs its URL (with the token) at DEBUG: PTB's, and built before capturing.
        fine = Bot(TOKEN, base_url=botapi.base_url, request=client())
        refused = Bot(TOKEN, base_url=f"http://127.0.0.1:{closed_port()}/bot", request=client())
        async with LocalServer(answer=None) as silent:
            tight = client(connection_pool_size=1, read_timeout=0.5, pool_timeout=0.05, connect_timeout=0.05)
            hanging = Bot(TOKEN, base_url=silent.base_url, request=tight)
            with caplog.at_level(logging.DEBUG):
                async with fine:
                    await fine.send_message(42, "hi")
                    botapi.fail_next("sendMessage", 400, description="Bad Request: chat not found")
                    calls = [fine.send_message(42, "hi"), refused.send_message(42, "hi")]
                    stuck = asyncio.create_task(hanging.send_message(42, "first"))
                    await eventually(lambda: len(silent.requests) == 1)
                    calls.append(hanging.send_message(42, "second"))  # "Connection timeout to host <url>"
                    for call in [*calls, stuck]:
                        try:
                            await call
                        except Exception as exc:  # logged with its traceback, as the bot's error handler does
                            errors.append(exc)
                            log.error("Network problem talking to Telegram: %s", exc, exc_info=exc)
                    await refused.shutdown()
                    await tight.shutdown()
                    await refused._request[1].shutdown()  # never initialized as a Bot

    run(scenario())
    assert [type(e) for e in errors] == [BadRequest, NetworkError, TimedOut, TimedOut]
    everything = caplog.text + "".join("".join(traceback.format_exception(e)) for e in errors)
    if client is AiohttpRequest:  # aiohttp quotes the URL: the token in it is replaced
        assert "Connection timeout to host" in everything and "/bot<token>/sendMessage" in everything
    else:  # the builtin client names only host and port
        assert "Timed out getting a connection to the Bot API" in everything
    assert TOKEN not in everything
    assert TOKEN.split(":")[1] not in everything


# --- make_bot_request and TELEGRAM_HTTP_CLIENT ------------------------------------------------------


@pytest.fixture
def no_proxies(monkeypatch):
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(request_module, "_said", set())


def test_the_builtin_client_is_the_default_and_aiohttp_can_be_chosen(no_proxies):
    settings = Settings.load(environ={}, env_file=None)
    assert settings.telegram_http_client == "builtin"
    calls = make_bot_request(settings)
    updates = make_bot_request(settings, for_updates=True)
    sized = make_bot_request(settings, pool_size=32)
    assert isinstance(calls, BotApiRequest) and calls.connection_pool_size == 256
    assert isinstance(updates, BotApiRequest) and updates.connection_pool_size == 1
    assert isinstance(sized, BotApiRequest) and sized.connection_pool_size == 32
    assert calls.read_timeout == 5.0
    chosen = make_bot_request(Settings.load(environ={"TELEGRAM_HTTP_CLIENT": "aiohttp"}, env_file=None))
    assert type(chosen) is AiohttpRequest and chosen.connection_pool_size == 256


def test_httpx_is_ptbs_client_sending_again_what_could_not_connect(no_proxies):
    settings = Settings.load(environ={"TELEGRAM_HTTP_CLIENT": " HTTPX "}, env_file=None)
    calls = make_bot_request(settings)
    assert isinstance(calls, RetryingHTTPXRequest) and calls.read_timeout == 5.0
    assert make_bot_request(settings, for_updates=True) is None  # PTB's own: polling tries again itself


def test_a_bad_client_name_names_the_variable():
    with pytest.raises(ConfigError,
                       match="TELEGRAM_HTTP_CLIENT must be one of builtin, aiohttp, httpx, got 'requests'"):
        Settings.load(environ={"TELEGRAM_HTTP_CLIENT": "requests"}, env_file=None)


def test_without_aiohttp_it_falls_back_to_httpx_saying_so_once(no_proxies, monkeypatch, caplog):
    monkeypatch.setattr(request_module, "aiohttp", None)
    with pytest.raises(RuntimeError, match="pip install aiohttp"):
        AiohttpRequest()
    settings = Settings.load(environ={}, env_file=None)
    with caplog.at_level(logging.INFO, logger="habitreward.bot.request"):
        assert isinstance(make_bot_request(settings), RetryingHTTPXRequest)
        assert make_bot_request(settings, for_updates=True) is None
    assert [r.getMessage() for r in caplog.records] == [
        "TELEGRAM_HTTP_CLIENT=builtin but aiohttp is not installed: using httpx (pip install aiohttp)"
    ]


def test_a_proxy_in_the_environment_keeps_httpx(no_proxies, monkeypatch, caplog):
    monkeypatch.setenv("HTTPS_PROXY", "http://user:password@proxy.invalid:3128")
    settings = Settings.load(environ={}, env_file=None)
    with caplog.at_level(logging.INFO, logger="habitreward.bot.request"):
        assert isinstance(make_bot_request(settings), RetryingHTTPXRequest)
        assert make_bot_request(settings, for_updates=True) is None
    (line,) = [r.getMessage() for r in caplog.records]
    assert "HTTPS_PROXY is set" in line and "password" not in line


def test_the_builder_takes_both_request_objects(no_proxies, botapi):
    settings = Settings.load(environ={}, env_file=None)
    application: Application = (
        ApplicationBuilder().token(TOKEN).base_url(botapi.base_url).updater(None)
        .request(make_bot_request(settings)).get_updates_request(make_bot_request(settings, for_updates=True))
        .build()
    )

    async def scenario() -> None:
        async with application:
            await application.bot.send_message(42, "via the builder")
            assert all(r.is_open for r in application.bot._request)
        assert not any(r.is_open for r in application.bot._request)

    run(scenario())
    assert botapi.last_text(42) == "via the builder"
