"""The bot's HTTP client for the Bot API: python-telegram-bot's ``BaseRequest`` over aiohttp.

PTB's own client (``HTTPXRequest``, httpx + httpcore + anyio) spends about half of a
webhook update's CPU sending the reply; aiohttp (C-accelerated HTTP parser, a
simpler pool) does the same work for a fraction of it. :class:`AiohttpRequest`
keeps HTTPXRequest's contract: the same defaults (5 s read, write and connect
timeouts, 1 s pool timeout, 20 s write timeout for uploads, 256 connections), the
same parameters (as one JSON body, which the Bot API takes as well as HTTPXRequest's
form; multipart/form-data when files are uploaded) and the same errors
(:class:`~telegram.error.TimedOut`, :class:`~telegram.error.NetworkError` with the
cause chained), which PTB's retries and our error handler rely on.

:func:`make_bot_request` picks the client from ``TELEGRAM_HTTP_CLIENT``: a
:class:`BotApiRequest` (the default: its own HTTP/1.1 client, :mod:`habitreward.bot.http11`,
for every call but uploads), an :class:`AiohttpRequest`, or for httpx a
:class:`RetryingHTTPXRequest` (``None`` means "let PTB build its own HTTPXRequest").

:func:`surely_not_sent` tells, for every client, a call that could not connect (so was
certainly not sent: safe to send again) from one that may have reached Telegram. The bot's
request objects send such a call again themselves (``retry_not_connected``), so every Bot API
call of the bot gets it: the screens' replies and a plugin's own ``context.bot.send_message``.
A timeout or a connection cut once open is never sent again (Telegram may have done it).

The URL of every Bot API call contains the bot token, so nothing here logs a URL,
and aiohttp errors that quote one (``Connection timeout to host http://.../bot<token>/...``)
reach PTB with the token replaced by ``<token>``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import urllib.request
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx  # python-telegram-bot's own HTTP client, always installed with it
from telegram.error import NetworkError, TelegramError, TimedOut
from telegram.request import BaseRequest, HTTPXRequest, RequestData

try:
    import aiohttp
except ImportError:  # an optional speed-up: without it the bot uses PTB's httpx client
    aiohttp = None  # type: ignore[assignment]

from habitreward.bot import http11
from habitreward.bot.http11 import Http11Pool, Timeouts

if TYPE_CHECKING:
    from habitreward.settings import Settings

logger = logging.getLogger(__name__)

#: PTB's defaults for its two request objects (ApplicationBuilder): the bot's calls, getUpdates.
DEFAULT_POOL_SIZE = 256
DEFAULT_UPDATES_POOL_SIZE = 1

#: Pauses before each new try of a Bot API call that could not connect (it surely was not sent):
#: about 3.5 s in all, so a short outage costs no reply, while the chat's next updates, which
#: wait for this one, are not held long.
NOT_CONNECTED_PAUSES = (0.5, 1.0, 2.0)
#: No new try starts later than this many seconds after the first (a failure that itself takes
#: long, such as a slow DNS answer, is not tried four times).
NOT_CONNECTED_WINDOW = 5.0

_JSON_HEADERS = {"Content-Type": "application/json"}
# The token is the path segment after ".../bot" (Bot API calls) or ".../file/bot" (downloads).
_TOKEN_IN_URL = re.compile(r"/bot([^/?#]+)")
_TOKEN_PLACEHOLDER = "<token>"
# aiohttp >= 3.10 tells a timeout getting a connection apart from one waiting for the answer.
_CONNECTION_TIMEOUT: Any = getattr(aiohttp, "ConnectionTimeoutError", ())
_MAX_CACHED_TIMEOUTS = 64
# Bot methods pass BaseRequest.DEFAULT_NONE (a DefaultValue) for a timeout they were not given.
_DefaultValue = type(BaseRequest.DEFAULT_NONE)


def _token_of(url: str) -> str | None:
    match = _TOKEN_IN_URL.search(url)
    return match.group(1) if match else None


def _redact(text: str, token: str | None) -> str:
    if token:
        text = text.replace(token, _TOKEN_PLACEHOLDER).replace(quote(token, safe=""), _TOKEN_PLACEHOLDER)
    return text


class RedactedClientError(Exception):
    """Stands in for an aiohttp error whose message (or a cause's) showed the bot token;
    its message is the original type and text with the token replaced by ``<token>``."""


def _safe_cause(err: BaseException, token: str | None) -> BaseException:
    """``err`` itself, unless it or an exception chained to it shows the token in its text
    (a traceback prints every one of them): then a :class:`RedactedClientError`."""
    if not token:
        return err
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        text = f"{current!s} {current!r}"
        if token in text or quote(token, safe="") in text:
            name = f"{type(err).__module__}.{type(err).__qualname__}"
            return RedactedClientError(f"{name}: {_redact(str(err), token)}")
        current = current.__cause__ or current.__context__
    return err


def _endpoint(url: str) -> str:
    """The Bot API method a URL calls (``.../bot<token>/sendMessage``), never the token."""
    return url.rsplit("/", 1)[-1] or "a Bot API call"


async def _send_again_while_not_connected(send: Callable[[], Awaitable[tuple[int, bytes]]], url: str,
                                          error: NetworkError, started: float) -> tuple[int, bytes]:
    """After ``send()``, started at loop time ``started``, failed with ``error``: ``send()`` again
    after each of :data:`NOT_CONNECTED_PAUSES` while it could not connect (:func:`surely_not_sent`);
    any other failure, or the last one, is raised."""
    loop = asyncio.get_running_loop()
    pauses = iter(NOT_CONNECTED_PAUSES)
    while True:
        if not surely_not_sent(error):
            raise error
        pause = next(pauses, None)
        if pause is None or loop.time() - started + pause > NOT_CONNECTED_WINDOW:
            raise error
        logger.debug("%s could not connect to the Bot API (%s); trying again in %.1f s",
                     _endpoint(url), error.message, pause)
        await asyncio.sleep(pause)
        try:
            return await send()
        except NetworkError as exc:
            error = exc


class AiohttpRequest(BaseRequest):
    """A :class:`telegram.request.BaseRequest` on one :class:`aiohttp.ClientSession`.

    Use it like PTB's ``HTTPXRequest``: ``ApplicationBuilder().request(AiohttpRequest())``
    (and ``.get_updates_request(AiohttpRequest(connection_pool_size=1))``). PTB calls
    :meth:`initialize` and :meth:`shutdown`; the session (with its connection pool,
    connections kept alive between calls) is opened on the running loop by
    :meth:`initialize`, or by the first request if that comes first, and stays bound
    to that loop.

    Args:
        connection_pool_size: at most this many connections at a time (HTTPXRequest's
            meaning); a request waits up to ``pool_timeout`` for a free one.
        read_timeout, write_timeout, connect_timeout, pool_timeout: seconds, ``None``
            for no limit; used when a call does not pass its own.
        media_write_timeout: the write timeout of calls that upload files.
        keepalive_timeout: seconds an idle connection stays open for reuse.
        retry_not_connected: send a call that could not connect again, after each of
            :data:`NOT_CONNECTED_PAUSES` (see :func:`surely_not_sent`); off by default, as
            in HTTPXRequest.

    aiohttp measures time differently from httpx: ``read_timeout`` is the longest
    wait for the server's next bytes once the request is sent, ``connect_timeout``
    bounds opening a connection and ``pool_timeout + connect_timeout`` getting one
    (from the pool or new). It has no per-write timeout, so the write timeout bounds
    the call as a whole instead: no call takes longer than pool + connect + write +
    read timeouts together (when none of them is ``None``).
    """

    __slots__ = (
        "_connect_timeout",
        "_keepalive_timeout",
        "_media_write_timeout",
        "_pool_size",
        "_pool_timeout",
        "_read_timeout",
        "_retry_not_connected",
        "_session",
        "_timeouts",
        "_write_timeout",
    )

    def __init__(
        self,
        connection_pool_size: int = DEFAULT_POOL_SIZE,
        read_timeout: float | None = 5.0,
        write_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
        media_write_timeout: float | None = 20.0,
        keepalive_timeout: float = 15.0,
        retry_not_connected: bool = False,
    ):
        if aiohttp is None:
            raise RuntimeError("AiohttpRequest needs aiohttp: pip install aiohttp (or use PTB's HTTPXRequest)")
        if connection_pool_size < 1:
            raise ValueError(f"connection_pool_size must be at least 1, got {connection_pool_size}")
        self._pool_size = connection_pool_size
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._media_write_timeout = media_write_timeout
        self._keepalive_timeout = keepalive_timeout
        self._retry_not_connected = retry_not_connected
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[tuple[float | None, ...], aiohttp.ClientTimeout] = {}

    @property
    def read_timeout(self) -> float | None:
        """See :attr:`telegram.request.BaseRequest.read_timeout`: the default read timeout."""
        return self._read_timeout

    @property
    def connection_pool_size(self) -> int:
        return self._pool_size

    @property
    def is_open(self) -> bool:
        """Whether the session (and so its connection pool) is open."""
        return self._session is not None and not self._session.closed

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=self._pool_size, keepalive_timeout=self._keepalive_timeout)
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers={"User-Agent": self.USER_AGENT},
            cookie_jar=aiohttp.DummyCookieJar(),  # the Bot API sets no cookies; skip the jar's work
            timeout=self._client_timeout(
                self._read_timeout, self._write_timeout, self._connect_timeout, self._pool_timeout
            ),
        )
        logger.debug("aiohttp session opened (at most %d connections)", self._pool_size)
        return self._session

    async def initialize(self) -> None:
        """See :meth:`telegram.request.BaseRequest.initialize`: opens the session."""
        if not self.is_open:
            self._open()

    async def shutdown(self) -> None:
        """See :meth:`telegram.request.BaseRequest.shutdown`: closes the session and its
        connections. :meth:`initialize` opens a new one."""
        session, self._session = self._session, None
        if session is None or session.closed:  # (not self.is_open: BotApiRequest's means its own pool)
            logger.debug("This AiohttpRequest is already shut down. Returning.")
            return
        await session.close()
        logger.debug("aiohttp session closed")

    def _resolve_timeouts(self, files: bool, read: Any, write: Any, connect: Any,
                          pool: Any) -> tuple[float | None, float | None, float | None, float | None]:
        """A call's read, write, connect and pool timeouts: its own, or this object's defaults."""
        if isinstance(read, _DefaultValue):
            read = self._read_timeout
        if isinstance(write, _DefaultValue):
            write = self._media_write_timeout if files else self._write_timeout
        if isinstance(connect, _DefaultValue):
            connect = self._connect_timeout
        if isinstance(pool, _DefaultValue):
            pool = self._pool_timeout
        return read, write, connect, pool

    def _client_timeout(
        self, read: float | None, write: float | None, connect: float | None, pool: float | None
    ) -> aiohttp.ClientTimeout:
        key = (read, write, connect, pool)
        timeout = self._timeouts.get(key)
        if timeout is None:
            parts = (pool, connect, write, read)
            timeout = aiohttp.ClientTimeout(
                total=None if None in parts else sum(parts),  # type: ignore[arg-type]
                connect=None if pool is None or connect is None else pool + connect,
                sock_connect=connect,
                sock_read=read,
            )
            if len(self._timeouts) >= _MAX_CACHED_TIMEOUTS:
                self._timeouts.clear()
            self._timeouts[key] = timeout
        return timeout

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """See :meth:`telegram.request.BaseRequest.do_request`; with ``retry_not_connected``, a
        call that could not connect is sent again."""
        started = asyncio.get_running_loop().time() if self._retry_not_connected else 0.0
        try:
            return await self._send(url, method, request_data, read_timeout, write_timeout, connect_timeout,
                                    pool_timeout)
        except NetworkError as exc:
            if not self._retry_not_connected:
                raise
            return await _send_again_while_not_connected(
                lambda: self._send(url, method, request_data, read_timeout, write_timeout, connect_timeout,
                                   pool_timeout),
                url, exc, started)

    async def _send(self, url: str, method: str, request_data: RequestData | None, read_timeout: Any,
                    write_timeout: Any, connect_timeout: Any, pool_timeout: Any) -> tuple[int, bytes]:
        """One try of :meth:`do_request` (the body is built for each try: a form is read once)."""
        session = self._session
        if session is None or session.closed:
            session = self._open()

        files = request_data is not None and request_data.contains_files
        timeout = self._client_timeout(
            *self._resolve_timeouts(files, read_timeout, write_timeout, connect_timeout, pool_timeout))

        data: Any = None
        headers: dict[str, str] | None = None
        if request_data is not None:
            if files:
                data = self._multipart(request_data)
            else:
                parameters = request_data.parameters
                if parameters:
                    # One JSON document: one encoder pass, where a form needs each value
                    # JSON-encoded and then the whole percent-encoded (the Bot API takes both).
                    data, headers = json.dumps(parameters, ensure_ascii=False).encode(), _JSON_HEADERS

        try:
            async with session.request(
                method, url, data=data, headers=headers, timeout=timeout, allow_redirects=False  # as httpx
            ) as response:
                return response.status, await response.read()
        except TimeoutError as err:  # aiohttp's own timeout errors are TimeoutErrors too
            if isinstance(err, _CONNECTION_TIMEOUT):
                raise TimedOut(
                    "Timed out getting a connection to the Bot API (connect or pool timeout; with every"
                    " pooled connection busy, consider a bigger pool). The request was *not* sent."
                ) from _safe_cause(err, _token_of(url))
            raise TimedOut from _safe_cause(err, _token_of(url))
        except aiohttp.ClientError as err:
            token = _token_of(url)
            # Like HTTPXRequest: the class name helps when the message is empty.
            raise NetworkError(f"aiohttp.{type(err).__name__}: {_redact(str(err), token)}") from _safe_cause(
                err, token
            )

    @staticmethod
    def _multipart(request_data: RequestData) -> aiohttp.FormData:
        """multipart/form-data: the JSON-encoded parameters, then the files, as HTTPXRequest sends them."""
        # quote_fields=False: file names go out as UTF-8 in quotes (as browsers and httpx send
        # them), not percent-encoded, which Telegram would show as the file's name.
        form = aiohttp.FormData(quote_fields=False)
        for name, value in request_data.json_parameters.items():
            form.add_field(name, value)
        for name, (filename, content, mimetype) in request_data.multipart_data.items():
            form.add_field(name, content, filename=filename, content_type=mimetype)
        return form


class BotApiRequest(AiohttpRequest):
    """The bot's default request object (``TELEGRAM_HTTP_CLIENT=builtin``): an
    :class:`AiohttpRequest` whose calls without files go through :mod:`habitreward.bot.http11`,
    a small HTTP/1.1 client on asyncio streams that spends a fraction of aiohttp's CPU on a
    call (``python bench/bot_api_call.py``). Uploads still go through aiohttp.

    Same arguments, defaults, errors and retries as :class:`AiohttpRequest`. The timeouts mean
    what :class:`~habitreward.bot.http11.Timeouts` says: ``read_timeout`` bounds the wait for the
    whole answer once the request is written, ``write_timeout`` writing it, ``connect_timeout``
    opening a connection and ``pool_timeout`` waiting for a free one. The connection limit is
    shared by every origin (as in aiohttp), counted apart from the uploads' connections.
    """

    __slots__ = ("_pool",)

    def __init__(self, *args: Any, **kwargs: Any):  # AiohttpRequest's arguments: its defaults in one place
        super().__init__(*args, **kwargs)
        self._pool: Http11Pool | None = None

    @property
    def is_open(self) -> bool:
        """Whether the client is open (by :meth:`initialize` or a first call)."""
        return self._pool is not None

    async def initialize(self) -> None:
        """See :meth:`telegram.request.BaseRequest.initialize`. aiohttp's session, for uploads,
        is opened by the first upload."""
        if self._pool is None:
            self._pool = self._new_pool()

    async def shutdown(self) -> None:
        """See :meth:`telegram.request.BaseRequest.shutdown`: closes the connections (and
        aiohttp's session, if an upload opened it). :meth:`initialize` opens anew."""
        pool, self._pool = self._pool, None
        if pool is None and not super().is_open:  # (an upload may open aiohttp's session alone)
            logger.debug("This BotApiRequest is already shut down. Returning.")
            return
        if pool is not None:
            await pool.close()
        if super().is_open:
            await super().shutdown()

    def _new_pool(self) -> Http11Pool:
        return Http11Pool(limit=self._pool_size, keepalive=self._keepalive_timeout, user_agent=self.USER_AGENT)

    async def _send(self, url: str, method: str, request_data: RequestData | None, read_timeout: Any,
                    write_timeout: Any, connect_timeout: Any, pool_timeout: Any) -> tuple[int, bytes]:
        if request_data is not None and request_data.contains_files:
            return await super()._send(url, method, request_data, read_timeout, write_timeout, connect_timeout,
                                       pool_timeout)
        pool = self._pool
        if pool is None:
            pool = self._pool = self._new_pool()
        read, write, connect, wait = self._resolve_timeouts(False, read_timeout, write_timeout, connect_timeout,
                                                            pool_timeout)
        body = content_type = None
        if request_data is not None and request_data.parameters:
            # One JSON document, as AiohttpRequest sends it.
            body, content_type = json.dumps(request_data.parameters, ensure_ascii=False).encode(), "application/json"
        try:
            return await pool.request(method, url, body, content_type, Timeouts(wait, connect, write, read))
        except (http11.PoolTimeout, http11.ConnectTimeout) as err:
            raise TimedOut(
                f"Timed out getting a connection to the Bot API ({err}). The request was *not* sent."
            ) from _safe_cause(err, _token_of(url))
        except TimeoutError as err:  # read or write: Telegram may have done it
            raise TimedOut from _safe_cause(err, _token_of(url))
        except OSError as err:  # CouldNotConnect, BadAnswer
            raise NetworkError(f"{type(err).__name__}: {_redact(str(err), _token_of(url))}") from _safe_cause(
                err, _token_of(url))


class RetryingHTTPXRequest(HTTPXRequest):
    """python-telegram-bot's :class:`~telegram.request.HTTPXRequest` (same arguments) that sends a
    call that could not connect again, as :class:`AiohttpRequest` with ``retry_not_connected``."""

    __slots__ = ()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        send = super().do_request
        started = asyncio.get_running_loop().time()
        try:
            return await send(url, method, request_data, read_timeout, write_timeout, connect_timeout, pool_timeout)
        except NetworkError as exc:
            return await _send_again_while_not_connected(
                lambda: send(url, method, request_data, read_timeout, write_timeout, connect_timeout, pool_timeout),
                url, exc, started)


def surely_not_sent(error: BaseException) -> bool:
    """Whether a Bot API call that raised ``error`` surely never reached Telegram: no connection
    could be opened (refused, no route, no such host), so the request was not written and
    sending it again cannot make a duplicate. Tells the three clients' errors apart: the builtin
    client's :class:`~habitreward.bot.http11.CouldNotConnect`, aiohttp's ``ClientConnectorError``
    and httpx's ``ConnectError``, chained by :class:`BotApiRequest`, :class:`AiohttpRequest` and
    PTB's ``HTTPXRequest`` as the cause of a :class:`~telegram.error.NetworkError` (their texts
    name the host and port, never the URL, so the token redaction leaves them as they are).

    A timeout is not such a case (the request may have been sent and done; a connect or pool
    timeout has already waited seconds), nor a connection cut or reset once open.
    """
    if not isinstance(error, NetworkError) or isinstance(error, TimedOut):
        return False
    cause = error.__cause__
    if isinstance(cause, http11.CouldNotConnect):
        return True
    if aiohttp is not None and isinstance(cause, aiohttp.ClientConnectorError):
        return True
    return isinstance(cause, httpx.ConnectError)


#: What the HTTP clients raise for a failure of the network or of the other side (their own
#: errors, the operating system's, timeouts, an answer cut short).
_NETWORK_FAILURES: tuple[type[BaseException], ...] = (
    OSError, TimeoutError, EOFError, httpx.HTTPError, RedactedClientError, TelegramError,
) + ((aiohttp.ClientError,) if aiohttp is not None else ())


def client_bug(error: BaseException | None) -> BaseException | None:
    """The exception a request object raised that is no failure of the network (a bug of ours,
    say a ``TypeError`` in :class:`AiohttpRequest`, or a plugin's bad parameters), or ``None``.

    python-telegram-bot hands such an exception on as a plain
    :class:`~telegram.error.NetworkError` ("Unknown error in HTTP implementation", the exception
    chained as its cause), which reads as a network failure that passes: a poll would be tried
    again forever and a reply counted as lost to the network. Asking again cannot mend a bug.
    """
    if type(error) is not NetworkError:  # its subclasses (BadRequest, TimedOut) are Telegram's word
        return None
    cause = error.__cause__
    if cause is None or isinstance(cause, _NETWORK_FAILURES):
        return None
    return cause


def _aiohttp_importable() -> bool:
    return aiohttp is not None


def _environment_proxies() -> list[str]:
    """The proxy variables set in the environment that httpx would use (HTTPS_PROXY, ...)."""
    proxies = urllib.request.getproxies()
    return sorted(f"{scheme.upper()}_PROXY" for scheme in ("http", "https", "all") if proxies.get(scheme))


_said: set[str] = set()


def _say_once(message: str, *args: Any) -> None:
    key = message % args
    if key not in _said:
        _said.add(key)
        logger.info(message, *args)


def make_bot_request(
    settings: Settings, *, pool_size: int | None = None, for_updates: bool = False, retry_not_connected: bool = True
) -> BaseRequest | None:
    """The request object for the bot's Bot API calls (``for_updates``: for getUpdates),
    or ``None`` to let python-telegram-bot build its own HTTPXRequest.

    ``TELEGRAM_HTTP_CLIENT=builtin`` (the default) gives a :class:`BotApiRequest` and
    ``TELEGRAM_HTTP_CLIENT=aiohttp`` an :class:`AiohttpRequest`, with ``pool_size``
    connections (default: PTB's, 256 for the bot's calls and 1 for getUpdates), unless
    aiohttp is not installed or a proxy is set in the environment (``HTTPS_PROXY``,
    ``ALL_PROXY``, ``HTTP_PROXY``: httpx honours them, these clients do not): then httpx,
    said once in the log. ``TELEGRAM_HTTP_CLIENT=httpx`` gives httpx.

    ``retry_not_connected``: a call that could not connect is sent again (see
    :func:`surely_not_sent`); httpx is then a :class:`RetryingHTTPXRequest`. Never for
    getUpdates, which polling tries again itself, nor where it is ``False``: then httpx
    is ``None``.
    """
    retry = retry_not_connected and not for_updates
    size = pool_size or (DEFAULT_UPDATES_POOL_SIZE if for_updates else DEFAULT_POOL_SIZE)

    def httpx_request() -> BaseRequest | None:
        return RetryingHTTPXRequest(connection_pool_size=size) if retry else None

    client = settings.telegram_http_client
    if client == "httpx":
        return httpx_request()
    if not _aiohttp_importable():
        _say_once("TELEGRAM_HTTP_CLIENT=%s but aiohttp is not installed: using httpx (pip install aiohttp)", client)
        return httpx_request()
    proxies = _environment_proxies()
    if proxies:
        _say_once("%s is set: Bot API calls go through httpx, which uses it (TELEGRAM_HTTP_CLIENT=%s does not)",
                  " and ".join(proxies), client)
        return httpx_request()
    kind = BotApiRequest if client == "builtin" else AiohttpRequest
    return kind(connection_pool_size=size, retry_not_connected=retry)
