"""The builtin HTTP/1.1 client (habitreward.bot.http11) against raw local servers that answer
exactly the bytes a test scripts: the framings a server may choose, connections it closes,
answers that are cut or broken, TLS. What PTB's Bot sees through it is tested in
test_bot_request.py; this is what the wire can do to it. Nothing leaves 127.0.0.1."""

from __future__ import annotations

import asyncio
import gzip
import http.server
import shutil
import ssl
import subprocess
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from habitreward.bot.http11 import (
    BadAnswer,
    ConnectTimeout,
    CouldNotConnect,
    Http11Pool,
    PoolTimeout,
    ReadTimeout,
    Timeouts,
)

pytestmark = pytest.mark.no_db

PATH = "/bot123:secret/sendMessage"
FAST = Timeouts(pool=1, connect=2, write=2, read=2)


def answer(body: bytes, *headers: bytes, status: bytes = b"200 OK") -> bytes:
    head = [b"HTTP/1.1 " + status, *headers]
    if not any(h.lower().startswith((b"content-length", b"transfer-encoding")) for h in headers):
        head.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(head) + b"\r\n\r\n" + body


class Close(bytes):
    """Bytes a script writes before closing the connection."""


class RawServer:
    """Reads each request whole and lets ``script(number, request)`` answer it: bytes to write,
    :class:`Close` bytes to write and then close, ``None`` to close without a word, or a
    coroutine giving one of those (after waiting, say)."""

    def __init__(self, script: Callable[[int, bytes], Any], tls: ssl.SSLContext | None = None):
        self.script = script
        self.tls = tls
        self.requests: list[bytes] = []
        self.connections = 0
        self.closed = 0  # connections the client closed
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    def url(self, path: str = PATH, scheme: str = "http", host: str = "127.0.0.1") -> str:
        assert self._server is not None
        return f"{scheme}://{host}:{self._server.sockets[0].getsockname()[1]}{path}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                reply = self.script(len(self.requests), request)
                if isinstance(reply, Awaitable):
                    reply = await reply
                if reply is None:
                    break
                writer.write(reply)
                await writer.drain()
                if isinstance(reply, Close):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            self.closed += 1
        finally:
            writer.close()


def run(coroutine: Awaitable[Any]) -> Any:
    return asyncio.run(coroutine)  # type: ignore[arg-type]


def new_pool(**kwargs: Any) -> Http11Pool:
    return Http11Pool(**{"limit": 4, "keepalive": 15.0, "user_agent": "habitreward-test", **kwargs})


async def send(pool: Http11Pool, url: str, body: bytes | None = b'{"chat_id": 1}',
               timeouts: Timeouts = FAST) -> tuple[int, bytes]:
    return await pool.request("POST", url, body, "application/json" if body else None, timeouts)


# --- what is sent ---------------------------------------------------------------------------------


def test_the_request_carries_host_length_type_and_body_and_keeps_the_query():
    async def scenario() -> bytes:
        async with RawServer(lambda n, r: answer(b'{"ok":true}')) as server:
            pool = new_pool()
            assert await send(pool, server.url(PATH + "?a=1&b=%20")) == (200, b'{"ok":true}')
            await pool.close()
            return server.requests[0]

    request = run(scenario())
    head, body = request.split(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /bot123:secret/sendMessage?a=1&b=%20 HTTP/1.1"
    assert lines[1].startswith(b"Host: 127.0.0.1:")
    assert {b"User-Agent: habitreward-test", b"Content-Type: application/json",
            b"Content-Length: 14", b"Accept-Encoding: identity"} <= set(lines)
    assert body == b'{"chat_id": 1}'


def test_user_and_password_in_the_url_are_sent_as_basic_authorization():
    async def scenario() -> bytes:
        async with RawServer(lambda n, r: answer(b"{}")) as server:
            pool = new_pool()
            await send(pool, server.url().replace("http://", "http://bot%20user:p%40ss@"))
            await pool.close()
            return server.requests[0]

    assert b"Authorization: Basic Ym90IHVzZXI6cEBzcw==\r\n" in run(scenario())  # "bot user:p@ss"


def test_a_path_with_spaces_or_letters_beyond_ascii_is_sent_percent_encoded():
    async def scenario() -> list[bytes]:
        async with RawServer(lambda n, r: answer(b"{}")) as server:
            pool = new_pool()
            for path in ("/file/bot1:x/my file.txt", "/file/bot1:x/ёж.txt"):
                await pool.request("GET", server.url(path), None, None, FAST)
            await pool.close()
            return [request.split(b"\r\n")[0] for request in server.requests]

    assert run(scenario()) == [b"GET /file/bot1:x/my%20file.txt HTTP/1.1",
                               b"GET /file/bot1:x/%D1%91%D0%B6.txt HTTP/1.1"]


def test_a_get_without_a_body_sends_no_length():
    async def scenario() -> bytes:
        async with RawServer(lambda n, r: answer(b"file bytes")) as server:
            pool = new_pool()
            assert await pool.request("GET", server.url("/file/bot1:x/a.txt"), None, None, FAST) == (200, b"file bytes")
            await pool.close()
            return server.requests[0]

    request = run(scenario())
    assert request.startswith(b"GET /file/bot1:x/a.txt HTTP/1.1\r\n") and b"Content-Length" not in request


# --- framings of the answer -----------------------------------------------------------------------


def test_a_chunked_answer_with_trailers_is_read_whole_and_the_connection_reused():
    chunked = answer(b"5\r\nhello\r\n1;ext=1\r\n,\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n",
                     b"Transfer-Encoding: chunked")

    async def scenario() -> tuple[list[tuple[int, bytes]], int]:
        async with RawServer(lambda n, r: chunked) as server:
            pool = new_pool()
            results = [await send(pool, server.url()) for _ in range(3)]
            await pool.close()
            return results, server.connections

    results, connections = run(scenario())
    assert results == [(200, b"hello, world")] * 3
    assert connections == 1


def test_connection_close_and_an_answer_without_length_end_the_connection():
    replies = {1: answer(b"one", b"Connection: close"), 2: Close(b"HTTP/1.1 200 OK\r\n\r\ntwo, until closed")}

    async def scenario() -> tuple[list[tuple[int, bytes]], int]:
        async with RawServer(lambda n, r: replies.get(n, answer(b"three"))) as server:
            pool = new_pool()
            results = [await send(pool, server.url()) for _ in range(3)]
            await pool.close()
            return results, server.connections

    results, connections = run(scenario())
    assert results == [(200, b"one"), (200, b"two, until closed"), (200, b"three")]
    assert connections == 3


def test_an_interim_100_answer_is_skipped_and_gzip_is_undone():
    body = '{"ok":true,"result":"бег"}'.encode()
    reply = (b"HTTP/1.1 100 Continue\r\n\r\n"
             + answer(gzip.compress(body), b"Content-Encoding: gzip", status=b"429 Too Many Requests"))

    async def scenario() -> tuple[int, bytes]:
        async with RawServer(lambda n, r: reply) as server:
            pool = new_pool()
            result = await send(pool, server.url())
            await pool.close()
            return result

    assert run(scenario()) == (429, body)


def test_an_answer_without_a_body_by_its_status():
    async def scenario() -> tuple[int, bytes]:
        async with RawServer(lambda n, r: b"HTTP/1.1 204 No Content\r\n\r\n" if n == 1 else answer(b"next")) as server:
            pool = new_pool()
            results = (await send(pool, server.url()), await send(pool, server.url()))
            await pool.close()
            return results

    assert run(scenario()) == ((204, b""), (200, b"next"))


# --- connections the server closes, the pool's limits ------------------------------------------


def test_an_idle_connection_the_server_closed_is_not_used_again():
    """The server closes after each answer without saying so: the next request notices the
    closed idle connection and opens a new one instead of failing."""

    async def scenario() -> tuple[list[tuple[int, bytes]], int]:
        async with RawServer(lambda n, r: Close(answer(b"%d" % n))) as server:
            pool = new_pool()
            results = []
            for _ in range(3):
                results.append(await send(pool, server.url()))
                await asyncio.sleep(0.05)  # the server's close reaches the idle connection
            await pool.close()
            return results, server.connections

    results, connections = run(scenario())
    assert results == [(200, b"1"), (200, b"2"), (200, b"3")]
    assert connections == 3


def test_an_idle_connection_the_server_closes_is_closed_at_once_not_left_in_close_wait():
    """A server ends an idle kept-alive connection (its keep-alive timeout): the pool's end stayed
    open (CLOSE_WAIT, a descriptor held) until the next request, hours later for a quiet bot. The
    server here sends its FIN and waits for the client's, which comes without another request."""

    async def scenario() -> tuple[tuple[int, bytes], bytes]:
        client_closed: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            await reader.readexactly(14)  # the body send() writes
            writer.write(answer(b'{"ok":true}'))  # kept alive: nothing says it will close
            await writer.drain()
            writer.write_eof()  # then the keep-alive timeout: the server's end is closed
            client_closed.set_result(await reader.read())  # b"" once the client's end is closed too
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        pool = new_pool()
        result = await send(pool, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}{PATH}")
        try:
            seen = await asyncio.wait_for(client_closed, 10)
        finally:
            await pool.close()
            server.close()
        return result, seen

    assert run(scenario()) == ((200, b'{"ok":true}'), b"")


def test_an_idle_connection_older_than_the_keepalive_is_not_used_again():
    async def scenario() -> int:
        async with RawServer(lambda n, r: answer(b"{}")) as server:
            pool = new_pool(keepalive=0.05)
            await send(pool, server.url())
            await send(pool, server.url())  # at once: the same connection
            await asyncio.sleep(0.1)
            await send(pool, server.url())
            await pool.close()
            return server.connections

    assert run(scenario()) == 2


def test_idle_connections_past_the_keepalive_are_closed_when_another_comes_back():
    """After a burst, the connections it opened wait for reuse; those never taken again (the
    most recently used go first) are closed once past the keepalive, not kept open for ever."""

    async def scenario() -> tuple[int, int]:
        async def slow(number: int, request: bytes) -> bytes:
            await asyncio.sleep(0.05)
            return answer(b"{}")

        async with RawServer(slow) as server:
            pool = new_pool(keepalive=0.4)
            await asyncio.gather(*(send(pool, server.url()) for _ in range(3)))  # three connections
            for _ in range(10):  # the last one back is used again and again, the two others wait
                await asyncio.sleep(0.05)
                await send(pool, server.url())
            closed = await closed_by_client(server, 2)
            await pool.close()
            return server.connections, closed

    assert run(scenario()) == (3, 2)


async def closed_by_client(server: RawServer, expected: int) -> int:
    for _ in range(100):
        if server.closed >= expected:
            break
        await asyncio.sleep(0.01)
    return server.closed


def test_at_most_limit_connections_and_a_full_pool_times_out_unsent():
    async def scenario() -> tuple[list[Any], int, int]:
        async def slow(number: int, request: bytes) -> bytes:
            await asyncio.sleep(0.3)
            return answer(b"%d" % number)

        async with RawServer(slow) as server:
            pool = new_pool(limit=2)
            waits = Timeouts(pool=5, connect=2, write=2, read=2)
            results = await asyncio.gather(*(send(pool, server.url(), timeouts=waits) for _ in range(4)))
            sent = len(server.requests)
            busy = [asyncio.create_task(send(pool, server.url())) for _ in range(2)]
            await asyncio.sleep(0.05)
            outcome: list[Any] = list(results)
            try:
                await send(pool, server.url(), timeouts=Timeouts(pool=0.05, connect=2, write=2, read=2))
            except PoolTimeout as err:
                outcome.append(err)
            await asyncio.gather(*busy)
            unsent = len(server.requests) - sent - 2
            await pool.close()
            return outcome, server.connections, unsent

    outcome, connections, unsent = run(scenario())
    assert sorted(status for status, _ in outcome[:4]) == [200] * 4
    assert isinstance(outcome[4], PoolTimeout) and "all 2 busy" in str(outcome[4])
    assert connections == 2 and unsent == 0


# --- failures ---------------------------------------------------------------------------------------


def test_a_refused_connection_could_not_connect():
    async def scenario() -> CouldNotConnect:
        async with RawServer(lambda n, r: answer(b"{}")) as server:
            url = server.url()
        await asyncio.sleep(0.05)
        pool = new_pool()
        with pytest.raises(CouldNotConnect) as raised:
            await send(pool, url)
        return raised.value

    error = run(scenario())
    assert str(error).startswith("cannot connect to 127.0.0.1:") and str(error).endswith(": Connection refused")
    assert "secret" not in str(error)  # never the URL's path (the bot token)


def test_a_connection_cut_in_the_answer_is_a_bad_answer_and_not_reused():
    replies = {1: Close(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"ok\""), 2: None}

    async def scenario() -> list[Any]:
        async with RawServer(lambda n, r: replies.get(n, answer(b"fine"))) as server:
            pool = new_pool()
            outcome: list[Any] = []
            for _ in range(3):
                try:
                    outcome.append(await send(pool, server.url()))
                except BadAnswer as err:
                    outcome.append(str(err))
            await pool.close()
            return outcome

    first, second, third = run(scenario())
    assert "closed in the middle of the answer (5 bytes of it)" in first
    assert "closed before an answer" in second
    assert third == (200, b"fine")


@pytest.mark.parametrize(("reply", "words"), [
    (b"SSH-2.0-OpenSSH_9.2\r\n\r\n", "not an HTTP/1.x answer"),
    (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "malformed header line"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello", "conflicting Content-Length"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "invalid chunk size"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
     "unsupported Transfer-Encoding"),
    (b"HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nContent-Length: 2\r\n\r\nxx", "unsupported Content-Encoding"),
])
def test_a_broken_answer_is_a_bad_answer(reply, words):
    async def scenario() -> str:
        async with RawServer(lambda n, r: reply) as server:
            pool = new_pool()
            with pytest.raises(BadAnswer) as raised:
                await send(pool, server.url())
            await pool.close()
            return str(raised.value)

    assert words in run(scenario())


def test_a_late_answer_times_out_and_never_answers_the_next_request():
    """The answer to a request given up arrives later on its connection: it must not be read
    as the answer to the next request (the connection is closed, not reused)."""

    async def scenario() -> tuple[tuple[int, bytes], int]:
        async def late_then_quick(number: int, request: bytes) -> bytes:
            if number == 1:
                await asyncio.sleep(0.3)
            return answer(b"answer to request %d" % number)

        async with RawServer(late_then_quick) as server:
            pool = new_pool()
            with pytest.raises(ReadTimeout):
                await send(pool, server.url(), timeouts=Timeouts(pool=1, connect=1, write=1, read=0.1))
            await asyncio.sleep(0.3)
            result = await send(pool, server.url())
            await pool.close()
            return result, server.connections

    result, connections = run(scenario())
    assert result == (200, b"answer to request 2")
    assert connections == 2


def test_a_cancelled_request_leaves_no_connection_behind_to_answer_the_next():
    async def scenario() -> tuple[int, bytes]:
        async def slow_first(number: int, request: bytes) -> bytes:
            if number == 1:
                await asyncio.sleep(0.2)
            return answer(b"answer to request %d" % number)

        async with RawServer(slow_first) as server:
            pool = new_pool(limit=1)
            task = asyncio.create_task(send(pool, server.url()))
            await asyncio.sleep(0.05)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await asyncio.sleep(0.25)
            result = await send(pool, server.url())  # limit 1: the slot was given back
            await pool.close()
            return result

    assert run(scenario()) == (200, b"answer to request 2")


@pytest.mark.parametrize("first", [
    answer(b"one") + answer(b"a stray second answer"),
    answer(b"3\r\none\r\n0\r\n\r\n", b"Transfer-Encoding: chunked") + b"HTTP/1.1 408 Request Timeout\r\n\r\n",
    b"HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\none",  # a body where none may be
], ids=["after a length", "after chunks", "after no body"])
def test_bytes_after_an_answer_are_never_read_as_the_next_answer(first):
    """A server that sends more than the answer it framed: the surplus must not become the
    answer to the next request over that connection (a new one is opened instead)."""

    async def scenario() -> tuple[int, bytes]:
        async with RawServer(lambda n, r: first if n == 1 else answer(b"answer to request %d" % n)) as server:
            pool = new_pool()
            await send(pool, server.url())
            await asyncio.sleep(0.05)
            result = await send(pool, server.url())
            await pool.close()
            return result

    assert run(scenario()) == (200, b"answer to request 2")


def test_bytes_arriving_on_an_idle_connection_are_never_read_as_the_next_answer():
    """A server may say something on a connection waiting for reuse (a 408, say, before it
    closes it): the next request must not take that as its answer."""

    async def scenario() -> tuple[int, bytes]:
        number = 0

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal number
            try:
                while True:
                    await reader.readuntil(b"\r\n\r\n")
                    await reader.readexactly(14)  # send()'s body
                    number += 1
                    writer.write(answer(b"answer to request %d" % number))
                    if number == 1:
                        await asyncio.sleep(0.05)  # the connection is idle in the pool by now
                        writer.write(b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}{PATH}"
        pool = new_pool()
        assert await send(pool, url) == (200, b"answer to request 1")
        await asyncio.sleep(0.2)
        result = await send(pool, url)
        await pool.close()
        server.close()
        return result

    assert run(scenario()) == (200, b"answer to request 2")


def test_a_connection_opened_while_the_pool_closes_is_closed_after_its_request(monkeypatch):
    """close() while a request is still connecting: that connection is not kept (nobody would
    ever use or close it: the socket would stay open as long as the loop runs)."""

    async def scenario() -> tuple[tuple[int, bytes], int]:
        loop = asyncio.get_running_loop()
        real_connect = loop.create_connection

        async def slow_connect(*args: Any, **kwargs: Any) -> Any:
            await asyncio.sleep(0.1)
            return await real_connect(*args, **kwargs)

        async with RawServer(lambda n, r: answer(b"{}")) as server:
            pool = new_pool()
            monkeypatch.setattr(loop, "create_connection", slow_connect)
            request = asyncio.create_task(send(pool, server.url()))
            await asyncio.sleep(0.02)
            await pool.close()  # as BotApiRequest.shutdown(), which then forgets the pool
            result = await request
            return result, await closed_by_client(server, 1)

    assert run(scenario()) == ((200, b"{}"), 1)


def test_a_pool_used_on_a_second_event_loop_without_close_opens_new_connections():
    """The connections of a finished loop cannot carry a request of the next one (the old
    connection took the request, and then the call failed with 'Event loop is closed')."""
    served: list[bytes] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive

        def do_POST(self) -> None:
            served.append(self.rfile.read(int(self.headers["Content-Length"])))
            body = b"answer to request %d" % len(served)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)  # outlives each loop
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}{PATH}"
        pool = new_pool()
        first = run(send(pool, url))
        second = run(send(pool, url))  # a new asyncio.run(), no close() in between
    finally:
        server.shutdown()
        server.server_close()
    assert (first, second) == ((200, b"answer to request 1"), (200, b"answer to request 2"))
    assert len(served) == 2


def test_a_connect_that_hangs_is_a_connect_timeout(monkeypatch):
    async def scenario() -> None:
        async def hang(*args: Any, **kwargs: Any) -> Any:
            await asyncio.sleep(10)

        monkeypatch.setattr(asyncio.get_running_loop(), "create_connection", hang)
        pool = new_pool()
        with pytest.raises(ConnectTimeout, match="connecting to 127.0.0.1:9 took longer than 0.05 s"):
            await send(pool, "http://127.0.0.1:9/x", timeouts=Timeouts(pool=1, connect=0.05, write=1, read=1))

    run(scenario())


def test_only_http_and_https_urls():
    with pytest.raises(ValueError, match="only http and https URLs"):
        run(send(new_pool(), "ftp://127.0.0.1/x"))


# --- TLS ------------------------------------------------------------------------------------------------


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


def test_https_checks_the_certificate_and_talks_tls(certificate):
    cert, key = certificate
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)

    async def scenario() -> tuple[str, tuple[int, bytes]]:
        async with RawServer(lambda n, r: answer(b'{"ok":true}'), tls=server_tls) as server:
            untrusting = new_pool()
            with pytest.raises(CouldNotConnect) as raised:  # self-signed: not in certifi's store
                await send(untrusting, server.url(scheme="https", host="localhost"))
            trusting = new_pool()
            trusting._ssl = ssl.create_default_context(cafile=str(cert))
            result = await send(trusting, server.url(scheme="https", host="localhost"))
            await trusting.close()
            return str(raised.value), result

    refused, result = run(scenario())
    assert refused.startswith("cannot connect to localhost:") and "certificate" in refused.lower()
    assert result == (200, b'{"ok":true}')
