"""Long polling into the same inbox as the webhook.

Each batch from getUpdates is stored in the inbox (each row committed) before
the next getUpdates call confirms it to Telegram with ``offset``. A crash
mid-batch therefore loses nothing (unconfirmed updates are served again) and
duplicates nothing (served-again updates are already in the inbox and are
acknowledged without being applied again). No offset needs to be stored: on
start, Telegram serves every update not yet confirmed.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from typing import Any

from habitreward.db import database_away
from habitreward.server.inbox import Inbox
from habitreward.server.runner import BotRunner
from habitreward.server.webhook_admin import ALLOWED_UPDATES

logger = logging.getLogger(__name__)

#: How long getUpdates may keep answering 409 Conflict ("terminated by other getUpdates
#: request") before polling stops. A previous run's long poll stays open on Telegram's side
#: until its timeout (at most 50 s) after that process is gone, so a restart meets the conflict
#: for a while; a conflict lasting longer is another process polling with the same token.
CONFLICT_PATIENCE = 120.0

#: The longest pause between tries to store a batch while the database is unreachable: a restart
#: of the database is waited out (no restart of the bot needed), its updates stored soon after.
STORE_RETRY_CAP = 30.0


class PollingStopped(Exception):
    """Telegram refused polling for good (wrong token, a bad request, another poller, a webhook)."""


class Poller:
    """Runs getUpdates on the bot loop of ``runner``."""

    def __init__(self, runner: BotRunner, inbox: Inbox, *, timeout: int = 30, retry_delay: float = 1.0,
                 conflict_patience: float = CONFLICT_PATIENCE, store_retry_cap: float = STORE_RETRY_CAP):
        self.runner = runner
        self.inbox = inbox
        self.timeout = timeout
        self.retry_delay = retry_delay
        self.conflict_patience = conflict_patience
        self.store_retry_cap = store_retry_cap
        self.error: BaseException | None = None
        self._task: Any = None

    def start(self) -> Any:
        """Start polling; returns a concurrent Future that ends when polling ends."""
        assert self.runner.loop is not None
        self._task = asyncio.run_coroutine_threadsafe(self._poll_forever(), self.runner.loop)
        return self._task

    def stop(self) -> None:
        """Stop asking for updates (an unfinished getUpdates is dropped; its updates come again)."""
        if self._task is not None:
            self._task.cancel()

    async def _poll_forever(self) -> None:
        try:
            await self._poll()
        except PollingStopped:
            raise
        except Exception as exc:  # a bug: polling must not end without a word (and exit code 0)
            self.error = PollingStopped(f"polling failed: {type(exc).__name__}: {exc}")
            logger.error("polling failed", exc_info=True)
            raise self.error from None

    async def _poll(self) -> None:
        from telegram.error import (
            BadRequest,
            Conflict,
            EndPointNotFound,
            Forbidden,
            InvalidToken,
            NetworkError,
            RetryAfter,
            TelegramError,
        )

        from habitreward.bot.ratelimit import retry_after_seconds
        from habitreward.bot.request import client_bug

        bot = self.runner.application.bot
        # getUpdates does not work while a webhook is set: remove it (pending updates are kept).
        try:
            webhook = (await bot.get_webhook_info()).url
            if webhook:  # a deployment serving that webhook gets nothing from now on: say so
                parts = urllib.parse.urlsplit(webhook)  # no path: it may hold the token
                logger.warning("removing the webhook at %s://%s so that polling works: a webhook server"
                               " gets no updates from now on (`serve --webhook --set-webhook` sets it"
                               " again)", parts.scheme, parts.netloc)
            await bot.delete_webhook(drop_pending_updates=False)
        except (InvalidToken, Forbidden, Conflict, NetworkError) as exc:
            self.error = PollingStopped(f"Telegram refused getWebhookInfo or deleteWebhook: {exc}")
            logger.error("polling not started: %s", exc, exc_info=client_bug(exc))  # a bug's traceback
            raise self.error from None
        offset: int | None = None
        delay = self.retry_delay
        store_delay, store_failures = self.retry_delay, 0
        loop = asyncio.get_running_loop()
        conflict_since: float | None = None
        while True:
            try:
                updates = await bot.get_updates(
                    offset=offset, timeout=self.timeout, allowed_updates=list(ALLOWED_UPDATES)
                )
                delay = self.retry_delay
                conflict_since = None
            except Conflict as exc:
                # "terminated by other getUpdates request": after a restart, the previous run's
                # long poll (still open on Telegram's side) for a while; "webhook is active":
                # someone set a webhook meanwhile, which polling must not fight.
                conflict_since = loop.time() if conflict_since is None else conflict_since
                if "webhook" in exc.message.lower() or loop.time() - conflict_since > self.conflict_patience:
                    self.error = PollingStopped(f"Telegram refused getUpdates: {exc}")
                    logger.error("polling stopped: %s", exc)
                    raise self.error from None
                logger.warning("getUpdates refused (%s); another poll with this token is still open (a previous"
                               " run's stays open up to its timeout): retrying in %.0f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60.0)
                continue
            except (InvalidToken, Forbidden, BadRequest, EndPointNotFound) as exc:
                # Refused for good (a revoked token, a request Telegram will never take): asking
                # again forever would keep a process up that polls nothing, which no supervisor
                # restarts. (BadRequest is a NetworkError in PTB: it must be caught before.)
                self.error = PollingStopped(f"Telegram refused getUpdates: {exc}")
                logger.error("polling stopped: %s", exc)
                raise self.error from None
            except RetryAfter as exc:
                await asyncio.sleep(retry_after_seconds(exc))
                continue
            except TelegramError as exc:
                bug = client_bug(exc)
                if bug is not None:
                    # Raised inside the HTTP client (ours), not by the network, and handed on by
                    # python-telegram-bot as a NetworkError: asking again cannot mend it.
                    self.error = PollingStopped(f"polling failed: {type(bug).__name__}: {bug}")
                    logger.error("polling stopped: the Bot API client failed with %s: %s (a bug, not a network"
                                 " failure)", type(bug).__name__, bug, exc_info=bug)
                    raise self.error from None
                # A network error, a timeout, a 5xx, an answer that is not JSON: Telegram or the
                # way to it unwell for a while.
                logger.warning("getUpdates failed (%s); retrying in %.0f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60.0)
                continue
            except Exception as exc:
                if not _raised_reading_the_answer(exc):
                    raise  # a bug of ours: `polling failed`, exit code 1, so a supervisor restarts
                # An answer PTB could not read (JSON without a result: a proxy in the way,
                # Telegram unwell): ending the loop here would leave a process that polls no more.
                logger.warning("getUpdates failed (%s: %s); retrying in %.0f s", type(exc).__name__, exc, delay,
                               exc_info=True)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60.0)
                continue
            try:
                for update in updates:
                    await self._store(update.update_id, update.to_json(), update.to_dict())
            except Exception as exc:
                # Not confirmed: the whole batch comes again, and the stored part is skipped then.
                if not database_away(exc):
                    # A bug of ours: asking again cannot mend it, and a WARNING a try would keep up
                    # a process that applies nothing, which no supervisor restarts.
                    self.error = PollingStopped(f"polling failed: {type(exc).__name__}: {exc}")
                    logger.error("polling stopped: update %s could not be stored: %s: %s (a bug, not the database"
                                 " away)", update.update_id, type(exc).__name__, exc, exc_info=exc)
                    raise self.error from None
                # Its own pause (a getUpdates answered must not shorten it): a database outage is
                # one line a try, less and less often, not a traceback a second.
                lines = str(exc).strip().splitlines()
                logger.warning("update %s: could not be stored (%s: %s); asking Telegram for it again in %g s,"
                               " nothing is confirmed meanwhile", update.update_id, type(exc).__name__,
                               lines[0] if lines else "", store_delay)
                store_failures += 1
                await asyncio.sleep(store_delay)
                store_delay = min(store_delay * 2, self.store_retry_cap)
                continue
            if store_failures:
                logger.info("updates stored again after %d failed tries", store_failures)
                store_delay, store_failures = self.retry_delay, 0
            if updates:
                # The next call confirms this batch: only now that every update of it is committed.
                offset = max(u.update_id for u in updates) + 1

    async def _store(self, update_id: int, payload: str, data: dict[str, Any]) -> None:
        if not await asyncio.to_thread(self.runner.receive, update_id, payload, data):
            logger.info("update %s: seen before, skipped", update_id)


def _raised_reading_the_answer(exc: BaseException) -> bool:
    """Whether ``exc`` (not a TelegramError) was raised inside python-telegram-bot, which reads
    the answer there (``json_data["result"]``, the updates in it); only our own code (a bug)
    raises one elsewhere between asking and storing."""
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    module = tb.tb_frame.f_globals.get("__name__", "")
    return module == "telegram" or module.startswith("telegram.")
