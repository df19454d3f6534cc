"""Telegram's flood control (429 Too Many Requests) held per chat, not for the whole bot.

PTB's ``AIORateLimiter`` keeps the bot under Telegram's limits (30 requests a second overall,
20 a minute per group) and, when Telegram still answers 429, waits the ``retry_after`` it names
and sends the request again; but it holds *every* request of the bot meanwhile. A 429 to a
request naming a chat is that chat's limit (a busy group over its 20 messages a minute), and
Telegram asks for tens of seconds: every other user's replies stalled for as long.

:class:`ChatRateLimiter` is that limiter (the same throttling, the same number of retries) with
one change: a 429 to a request with a ``chat_id`` holds that chat's requests only, the one
refused and those that come after it, until the wait is over; then the refused one is sent again,
and those behind it one at a time, in the order they came (the chat reads them as they were sent).
A 429 to a request without a chat (setMyCommands, answerCallbackQuery) still holds every request,
as PTB does, and so do 429s in :data:`BOT_WIDE_CHATS` chats at once: that is the bot over its
overall limit (several processes sharing a token, say), where going on in other chats would only
collect more refusals.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from telegram.error import RetryAfter
from telegram.ext import AIORateLimiter

logger = logging.getLogger(__name__)

#: Chats waiting out a 429 at the same time that mean the bot as a whole is over Telegram's limit.
BOT_WIDE_CHATS = 3

#: Waited beyond ``retry_after``, as PTB's own limiter does.
EXTRA_WAIT = 0.1


def retry_after_seconds(error: RetryAfter) -> float:
    """The seconds a 429 asks to wait, without PTB 22's deprecation warning for reading
    ``retry_after`` as an int (it becomes a ``datetime.timedelta``; ``PTB_TIMEDELTA=true``
    opts in early): the timedelta PTB keeps, else the attribute, whichever type it has."""
    value = getattr(error, "_retry_after", None)  # PTB >= 22.2; its own limiter reads it so too
    if not isinstance(value, dt.timedelta):
        value = error.retry_after
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


class _ChatFlood(Exception):
    """A 429 to a chat's request, carried past ``AIORateLimiter`` so it does not hold every chat."""

    def __init__(self, error: RetryAfter):
        super().__init__(error)
        self.error = error


def _chat_of(data: dict[str, Any]) -> int | str | None:
    chat_id = data.get("chat_id")
    if chat_id is None:
        return None
    try:
        return int(chat_id)  # "42" and 42 are the same chat, as for PTB's group limits
    except (TypeError, ValueError):
        return str(chat_id)  # "@channelname"


class ChatRateLimiter(AIORateLimiter):
    """PTB's ``AIORateLimiter`` whose 429 to a chat's request holds only that chat (see the module).

    Takes AIORateLimiter's arguments, by keyword. Each try goes through AIORateLimiter (its overall and group
    limits, and any bot-wide hold); a chat's 429 is turned into an error AIORateLimiter lets
    through, and waited out and retried here, ``max_retries`` times, then raised as the
    ``RetryAfter`` it was.
    """

    __slots__ = ("_all_held_until", "_chat_retries", "_held_until", "_lines")

    def __init__(self, *, max_retries: int = 0, **limits: float):
        super().__init__(max_retries=max_retries, **limits)
        self._chat_retries = max_retries
        self._held_until: dict[int | str, float] = {}  # chat -> loop time its requests wait for
        self._all_held_until = 0.0  # every request, after 429s in BOT_WIDE_CHATS chats
        # chat -> [its line, requests in it]: while a chat waits out a 429, its requests go one at a
        # time, in the order they came, the refused one first (woken together, they went in any order)
        self._lines: dict[int | str, list[Any]] = {}

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        chat = _chat_of(data)
        if chat is None:  # PTB's way: a 429 holds every request
            await self._held(None)
            return await super().process_request(callback, args, kwargs, endpoint, data, rate_limit_args)

        async def one_try(*a: Any, **kw: Any) -> Any:
            try:
                return await callback(*a, **kw)
            except RetryAfter as exc:
                raise _ChatFlood(exc) from None

        retries = rate_limit_args or self._chat_retries
        tries = 0
        in_line = False
        try:
            while True:
                if not in_line and chat in self._lines:  # the chat waits out a 429: behind those before
                    await self._join_line(chat)
                    in_line = True
                await self._held(chat)
                try:
                    return await super().process_request(one_try, args, kwargs, endpoint, data, rate_limit_args)
                except _ChatFlood as flood:
                    if tries == retries:
                        raise flood.error from None
                    tries += 1
                    self._hold(chat, retry_after_seconds(flood.error) + EXTRA_WAIT)
                    if not in_line:  # refused: first in the chat's line, unless one is there already
                        await self._join_line(chat)
                        in_line = True
        finally:
            if in_line:
                self._leave_line(chat)

    async def _join_line(self, chat: int | str) -> None:
        """Wait for this request's turn among the chat's (FIFO: asyncio.Lock wakes its waiters in order)."""
        line = self._lines.setdefault(chat, [asyncio.Lock(), 0])
        line[1] += 1
        try:
            await line[0].acquire()
        except BaseException:  # cancelled while waiting: not in the line any more
            line[1] -= 1
            if not line[1]:
                del self._lines[chat]
            raise

    def _leave_line(self, chat: int | str) -> None:
        line = self._lines[chat]
        line[0].release()
        line[1] -= 1
        if not line[1]:  # nobody waits: the chat's requests go as they come again
            del self._lines[chat]

    async def _held(self, chat: int | str | None) -> None:
        """Wait while this chat's requests (``None``: a request without a chat) are held."""
        loop = asyncio.get_running_loop()
        while True:
            until = self._all_held_until if chat is None else max(self._all_held_until,
                                                                   self._held_until.get(chat, 0.0))
            wait = until - loop.time()
            if wait <= 0:
                return
            await asyncio.sleep(wait)

    def _hold(self, chat: int | str, seconds: float) -> None:
        now = asyncio.get_running_loop().time()
        until = max(now + seconds, self._held_until.get(chat, 0.0))
        self._held_until = {c: t for c, t in self._held_until.items() if t > now}  # the waits over
        self._held_until[chat] = until
        if len(self._held_until) >= BOT_WIDE_CHATS:
            if self._all_held_until <= now:  # once for a bot-wide hold, not for every 429 in it
                logger.warning("Telegram flood control in %d chats at once: every request waits %.1f s",
                               len(self._held_until), seconds)
            self._all_held_until = max(self._all_held_until, until)
        else:
            logger.info("Telegram flood control in chat %s: its requests wait %.1f s, other chats' go on",
                        chat, seconds)
