"""A small HTTP/1.1 client for the Bot API's calls, on asyncio streams.

Why not aiohttp for every call: a Bot API call is one small JSON request and one small JSON
answer, and aiohttp's general machinery (request and response objects, header multidicts,
URL objects, timers, tracing, the connector) costs several times the exchange itself:
``python bench/bot_api_call.py`` measures it, and the reply is the largest step of a
completion (docs/performance.md). This client does only what those calls need:

- one request at a time per connection, its body given as bytes; connections kept alive and
  reused per origin (scheme, host, port), at most ``limit`` open at once; one the server closes
  while idle is closed at once (not left in CLOSE_WAIT until the next request);
- the answer read whole: ``Content-Length``, ``chunked``, or until the server closes;
  ``1xx`` answers skipped; ``Accept-Encoding: identity`` (and gzip or deflate undone anyway);
- https with certifi's trust store (as python-telegram-bot's httpx client), user and password
  in the URL as Basic authorization;
- no proxies, redirects (answered as they are, as httpx), cookies or uploads: the request
  object sends uploads through aiohttp and falls back to httpx when a proxy is set.

Every failure says whether the request surely was not sent: :class:`CouldNotConnect`,
:class:`PoolTimeout` and :class:`ConnectTimeout` (nothing was written), or may have been:
:class:`ReadTimeout`, :class:`WriteTimeout`, :class:`BadAnswer` (Telegram may have done it).
No message quotes a URL (its path holds the bot token): only host and port.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import ssl
import zlib
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

import certifi

__all__ = [
    "BadAnswer",
    "ConnectTimeout",
    "CouldNotConnect",
    "Http11Pool",
    "PoolTimeout",
    "ReadTimeout",
    "Timeouts",
    "WriteTimeout",
]

_DEFAULT_PORTS = {"http": 80, "https": 443}
_MAX_HEAD = 64 * 1024  # the stream reader's limit: an answer's status line and headers
_MAX_CACHED_URLS = 256
# Statuses whose answers have no body (RFC 9112, 6.3).
_NO_BODY = frozenset((204, 304))


class CouldNotConnect(ConnectionError):
    """No connection could be opened (refused, no route, no such host, TLS handshake failed):
    the request was not sent. The operating system's error is chained as the cause."""


class PoolTimeout(TimeoutError):
    """Every connection stayed busy for the pool timeout: the request was not sent."""


class ConnectTimeout(TimeoutError):
    """Opening a connection took longer than the connect timeout: the request was not sent."""


class WriteTimeout(TimeoutError):
    """Writing the request took longer than the write timeout: part of it may have been sent."""


class ReadTimeout(TimeoutError):
    """The whole answer did not arrive within the read timeout of the request being sent."""


class BadAnswer(ConnectionError):
    """The connection was cut, or the answer was not HTTP/1.x, after the request was sent."""


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds, ``None`` for no limit: waiting for a free connection (``pool``), opening one
    (``connect``), writing the request (``write``), and receiving the whole answer once it is
    written (``read``)."""

    pool: float | None = 1.0
    connect: float | None = 5.0
    write: float | None = 5.0
    read: float | None = 5.0


@dataclass(frozen=True, slots=True)
class _Target:
    """What a URL tells about where and how to send (parsed once per URL, see ``_target``)."""

    origin: tuple[str, str, int]
    head: bytes  # request target and Host (and Authorization) lines, after the method
    where: str  # host:port, for messages


class _ClosingProtocol(asyncio.StreamReaderProtocol):
    """asyncio's stream protocol, except that the server closing the connection closes ours at
    once: HTTP/1.1 never half-closes, and an idle kept-alive socket the server closed (its
    keep-alive timeout) otherwise stays in CLOSE_WAIT, holding its descriptor, until the pool next
    takes it. No cost per request (aiohttp's client protocol does the same; over TLS asyncio
    already does it)."""

    def eof_received(self) -> bool:
        super().eof_received()  # the reader sees the end (and an answer read to the close gets it)
        return False  # the transport closes itself


class _Connection:
    __slots__ = ("idle_since", "reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer
        self.idle_since = 0.0

    def usable(self, now: float, keepalive: float) -> bool:
        return (now - self.idle_since <= keepalive and not self.unread()
                and not self.reader.at_eof() and not self.writer.is_closing())

    def unread(self) -> bool:
        """Whether bytes came that no answer framed (after a body, or while idle, a 408 say):
        the next request would read them as its answer (aiohttp and httpcore check it too)."""
        return bool(self.reader._buffer)  # StreamReader has no public way to ask

    def close(self) -> None:
        self.writer.close()


class Http11Pool:
    """Keep-alive connections and requests over them; see the module's text.

    Its connections belong to the event loop of their requests (as asyncio's streams do): a
    request on another loop starts afresh (those of the old loop, which cannot serve it, are
    let go). :meth:`close` closes the idle connections, and those in use as their requests
    end; the pool can be used again afterwards (it opens new ones).
    """

    def __init__(self, *, limit: int, keepalive: float, user_agent: str):
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        self._limit = limit
        self._keepalive = keepalive
        self._user_agent = user_agent.encode("latin-1", "replace")
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._free: asyncio.Semaphore | None = None
        self._targets: dict[str, _Target] = {}
        self._ssl: ssl.SSLContext | None = None
        self._generation = 0  # raised by close(): a connection of an older one is not kept
        self._loop: asyncio.AbstractEventLoop | None = None

    async def request(self, method: str, url: str, body: bytes | None, content_type: str | None,
                      timeouts: Timeouts) -> tuple[int, bytes]:
        """Send one request and return the answer's status and body (see the errors above)."""
        target = self._target(url)
        free = self._free
        if free is None or self._loop is not asyncio.get_running_loop():
            if free is not None:  # a new loop without close(): the old one's connections cannot serve it
                self._generation += 1
                self._idle = {}
            self._loop = asyncio.get_running_loop()
            free = self._free = asyncio.Semaphore(self._limit)
        if free.locked():
            try:
                async with asyncio.timeout(timeouts.pool):
                    await free.acquire()
            except TimeoutError:
                raise PoolTimeout(f"no free connection to {target.where} within {timeouts.pool} s "
                                  f"(all {self._limit} busy)") from None
        else:
            await free.acquire()
        try:
            generation = self._generation  # (close() may come while connecting)
            connection = self._take_idle(target.origin)
            if connection is None:
                connection = await self._connect(target, timeouts.connect)
            try:
                status, answer, keep = await self._exchange(connection, method, target, body, content_type,
                                                            timeouts)
            except BaseException:
                connection.close()  # its state is unknown: never reused
                raise
            if keep and generation == self._generation and not connection.unread():
                self._keep(target.origin, connection)
            else:
                connection.close()
            return status, answer
        finally:
            free.release()

    async def close(self) -> None:
        """Close every idle connection; those in use are closed when their requests end."""
        self._generation += 1
        self._free = None  # a new one on the loop of the next request
        idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()
        await asyncio.sleep(0)  # let the transports' close callbacks run

    def _target(self, url: str) -> _Target:
        target = self._targets.get(url)
        if target is None:
            if len(self._targets) >= _MAX_CACHED_URLS:
                self._targets.clear()
            target = self._targets[url] = _parse_target(url)
        return target

    def _keep(self, origin: tuple[str, str, int], connection: _Connection) -> None:
        """Put a connection back for reuse, closing the longest idle ones that have passed the
        keepalive (taken last-in first-out, those at the bottom would otherwise stay open)."""
        now = connection.idle_since = asyncio.get_running_loop().time()
        connections = self._idle.setdefault(origin, [])
        while connections and now - connections[0].idle_since > self._keepalive:
            connections.pop(0).close()
        connections.append(connection)

    def _take_idle(self, origin: tuple[str, str, int]) -> _Connection | None:
        connections = self._idle.get(origin)
        if not connections:
            return None
        now = asyncio.get_running_loop().time()
        while connections:
            connection = connections.pop()  # the most recently used: the likeliest still open
            if connection.usable(now, self._keepalive):
                return connection
            connection.close()
        return None

    async def _connect(self, target: _Target, timeout: float | None) -> _Connection:
        scheme, host, port = target.origin
        tls = self._ssl_context() if scheme == "https" else None
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=_MAX_HEAD, loop=loop)  # asyncio.open_connection, with our protocol
        protocol = _ClosingProtocol(reader, loop=loop)
        try:
            async with asyncio.timeout(timeout):
                transport, _ = await loop.create_connection(
                    lambda: protocol, host, port, ssl=tls, server_hostname=host if tls else None)
        except TimeoutError:
            raise ConnectTimeout(f"connecting to {target.where} took longer than {timeout} s") from None
        except OSError as err:  # refused, unreachable, DNS (gaierror), TLS (SSLError)
            raise CouldNotConnect(f"cannot connect to {target.where}: {_os_reason(err)}") from err
        return _Connection(reader, asyncio.StreamWriter(transport, protocol, reader, loop))

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context(cafile=certifi.where())  # httpx's trust store too
        return self._ssl

    async def _exchange(self, connection: _Connection, method: str, target: _Target, body: bytes | None,
                        content_type: str | None, timeouts: Timeouts) -> tuple[int, bytes, bool]:
        head = [method.encode("ascii"), b" ", target.head, b"User-Agent: ", self._user_agent,
                b"\r\nAccept-Encoding: identity\r\n"]
        if content_type is not None:
            head += [b"Content-Type: ", content_type.encode("latin-1"), b"\r\n"]
        if body is not None or method not in ("GET", "HEAD"):
            head += [b"Content-Length: ", str(len(body or b"")).encode(), b"\r\n"]
        head.append(b"\r\n")
        writer = connection.writer
        try:
            writer.write(b"".join(head) + (body or b""))
            # Only a large body waits for the socket. Over TLS never: asyncio's TLS layer hands the whole
            # write to the socket's transport and counts only its own (empty) buffer, so there the wait
            # falls under the read timeout (bodies here are small JSON; uploads go through aiohttp).
            if writer.transport.get_write_buffer_size():
                try:
                    async with asyncio.timeout(timeouts.write):
                        await writer.drain()
                except TimeoutError:
                    raise WriteTimeout(f"writing to {target.where} took longer than {timeouts.write} s") from None
            try:
                async with asyncio.timeout(timeouts.read):
                    return await _read_answer(connection.reader, method)
            except TimeoutError:
                raise ReadTimeout(f"no whole answer from {target.where} within {timeouts.read} s") from None
        except (BadAnswer, WriteTimeout, ReadTimeout):  # (TimeoutError is an OSError)
            raise
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, OSError) as err:
            raise BadAnswer(f"{target.where}: {_describe(err)}") from err


def _parse_target(url: str) -> _Target:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError(f"only http and https URLs can be requested, got a {scheme or 'relative'} URL")
    host = parts.hostname
    if not host:
        raise ValueError("the URL names no host")
    port = parts.port or _DEFAULT_PORTS[scheme]
    netloc = parts.netloc.rpartition("@")[2]
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    if not path.isascii() or any(c <= " " or c == "\x7f" for c in path):  # (a space ends the request line)
        path = quote(path, safe="/:@!$&'()*+,;=?%~")
    lines = [path.encode("ascii"), b" HTTP/1.1\r\nHost: ", netloc.encode("idna" if not netloc.isascii() else "ascii"),
             b"\r\n"]
    if parts.username is not None:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        lines += [b"Authorization: Basic ", base64.b64encode(credentials), b"\r\n"]
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return _Target((scheme, host, port), b"".join(lines), where)


async def _read_answer(reader: asyncio.StreamReader, method: str) -> tuple[int, bytes, bool]:
    """The answer's status and body, and whether the connection can carry another request."""
    while True:
        version, status, headers = _parse_head(await reader.readuntil(b"\r\n\r\n"))
        if not 100 <= status < 200 or status == 101:
            break  # 1xx answers (100 Continue, 103 Early Hints) come before the real one
    keep = version == b"HTTP/1.1" and b"close" not in headers.get(b"connection", b"").lower()
    if method == "HEAD" or status in _NO_BODY or status == 101:
        return status, b"", keep and status != 101
    encoding = headers.get(b"transfer-encoding", b"").lower()
    if encoding:
        if encoding.strip() != b"chunked":  # ("gzip, chunked" would need undoing gzip too)
            raise BadAnswer(f"unsupported Transfer-Encoding {encoding.decode('latin-1')!r}")
        body = await _read_chunked(reader)
    elif b"content-length" in headers:
        length = _content_length(headers[b"content-length"])
        body = await reader.readexactly(length)
    else:
        body, keep = await reader.read(), False  # the body runs until the server closes
    coding = headers.get(b"content-encoding", b"identity").strip().lower()
    if coding not in (b"identity", b""):
        body = _decode(body, coding)
    return status, body, keep


def _parse_head(head: bytes) -> tuple[bytes, int, dict[bytes, bytes]]:
    lines = head.split(b"\r\n")
    version, _, rest = lines[0].partition(b" ")
    code = rest[:3]
    if not version.startswith(b"HTTP/1.") or len(code) != 3 or not code.isdigit():
        raise BadAnswer(f"not an HTTP/1.x answer: {lines[0][:80]!r}")
    headers: dict[bytes, bytes] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip():
            raise BadAnswer(f"malformed header line {line[:80]!r}")
        name = name.lower()
        value = value.strip()
        if name in headers:  # repeated headers join with commas (RFC 9110, 5.3)
            value = headers[name] + b", " + value
        headers[name] = value
    return version, int(code), headers


def _content_length(raw: bytes) -> int:
    values = {part.strip() for part in raw.split(b",")}  # "5, 5" from a repeated header is one length
    if len(values) != 1:
        raise BadAnswer(f"conflicting Content-Length {raw.decode('latin-1')!r}")
    value = values.pop()
    if not value.isdigit():
        raise BadAnswer(f"invalid Content-Length {raw.decode('latin-1')!r}")
    return int(value)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks = []
    while True:
        size_line = (await reader.readuntil(b"\r\n"))[:-2].split(b";", 1)[0].strip()
        try:
            size = int(size_line, 16)
        except ValueError:
            raise BadAnswer(f"invalid chunk size {size_line[:20]!r}") from None
        if size < 0:
            raise BadAnswer(f"invalid chunk size {size_line[:20]!r}")
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailer fields, if any
                pass
            return b"".join(chunks)
        chunks.append(await reader.readexactly(size))
        if await reader.readexactly(2) != b"\r\n":
            raise BadAnswer("a chunk did not end with CRLF")


def _decode(body: bytes, coding: bytes) -> bytes:
    try:
        if coding in (b"gzip", b"x-gzip"):
            return zlib.decompress(body, 16 + zlib.MAX_WBITS)
        if coding == b"deflate":
            try:
                return zlib.decompress(body)
            except zlib.error:  # some servers send raw deflate without the zlib wrapper
                return zlib.decompress(body, -zlib.MAX_WBITS)
    except zlib.error as err:
        name = coding.decode("latin-1")
        raise BadAnswer(f"an answer said Content-Encoding {name} but did not decode: {err}") from err
    raise BadAnswer(f"unsupported Content-Encoding {coding.decode('latin-1')!r}")


def _os_reason(err: OSError) -> str:
    """'Connection refused' rather than asyncio's "[Errno 111] Connect call failed ('1.2.3.4', 443)"."""
    if isinstance(err, socket.gaierror) or isinstance(err, ssl.SSLError) or not err.errno:
        return err.strerror or str(err) or type(err).__name__
    return os.strerror(err.errno)


def _describe(err: BaseException) -> str:
    if isinstance(err, asyncio.IncompleteReadError):
        if not err.partial:
            return "the connection was closed before an answer"
        return f"the connection was closed in the middle of the answer ({len(err.partial)} bytes of it)"
    if isinstance(err, asyncio.LimitOverrunError):
        return f"an answer's headers were longer than {_MAX_HEAD} bytes"
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
