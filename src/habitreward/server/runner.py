"""python-telegram-bot's asyncio loop on its own thread, fed from the inbox.

PTB is not thread-safe, so nothing outside this thread touches the Application:
web server threads and the poller hand over an update_id with
:meth:`BotRunner.submit`: a queue the loop empties, starting a task for each
update, woken with ``loop.call_soon_threadsafe`` once for all the updates that
arrive while it is busy (a wake-up is a system call on each side). Updates of
one user (chat) are processed one after the other, in the order they arrived;
different users' updates run concurrently up to ``concurrency``, which is what
lets one process keep many Bot API calls in flight.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import datetime as dt
import json
import logging
import threading
from collections.abc import AsyncIterator, Mapping
from typing import Any

from habitreward.db import is_postgres
from habitreward.models import utcnow
from habitreward.server import applied
from habitreward.server.inbox import Accepted, Inbox, processing

logger = logging.getLogger(__name__)


def ordering_key(update: Mapping[str, Any]) -> int | None:
    """Whose update this is (user or chat id), to keep one person's updates in order."""
    for name, value in update.items():
        if name == "update_id" or not isinstance(value, Mapping):
            continue
        for path in (("from", "id"), ("chat", "id"), ("user", "id"), ("message", "chat", "id")):
            node: Any = value
            for step in path:
                node = node.get(step) if isinstance(node, Mapping) else None
            if isinstance(node, int):
                return node
    return None


class _KeyLocks:
    """One asyncio.Lock per ordering key, dropped when nobody holds or waits for it.

    asyncio.Lock wakes waiters first come, first served, so one user's updates run in
    the order they were handed over.
    """

    def __init__(self) -> None:
        self._locks: dict[int, list[Any]] = {}  # key -> [lock, holders and waiters]

    @contextlib.asynccontextmanager
    async def hold(self, key: int | None) -> AsyncIterator[None]:
        if key is None:
            yield
            return
        entry = self._locks.get(key)
        if entry is None:
            entry = self._locks[key] = [asyncio.Lock(), 0]
        entry[1] += 1
        try:
            async with entry[0]:
                yield
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                del self._locks[key]


class BotRunner:
    """Owns the event loop thread and the Application's lifecycle on it."""

    def __init__(
        self,
        application: Any,
        inbox: Inbox,
        *,
        concurrency: int = 16,
        sweep_interval: float = 30.0,
        sweep_grace: float | None = None,
        keep_processed: dt.timedelta = dt.timedelta(days=3),
    ):
        self.application = application
        self.inbox = inbox
        self.concurrency = concurrency
        self.sweep_interval = sweep_interval
        # Rows younger than this are left to the process that stored them (a row stored by a
        # racing duplicate is claimed by its owner within milliseconds).
        self.sweep_grace = sweep_interval if sweep_grace is None else sweep_grace
        self.keep_processed = keep_processed
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._pending: dict[int, int] = {}  # update_id -> submitted and not finished
        self._tasks: set[asyncio.Task] = set()
        self._pending_cond = threading.Condition()
        # Updates handed over and not yet taken by the loop, and whether the loop has been told
        # (see submit: one wake-up for all that arrive while the loop is busy).
        self._handed: collections.deque[tuple[int, int | None, str | None, Any]] = collections.deque()
        self._wake_scheduled = False
        self._handler_errors: dict[int, str] = {}
        self._key_locks = _KeyLocks()
        self._semaphore: asyncio.Semaphore | None = None
        self._sweeper: asyncio.Task | None = None
        self.processed = 0

    # --- lifecycle (called from the main thread) ------------------------------------

    def start(self, timeout: float = 60.0) -> None:
        """Start the loop thread and initialize the Application; raise if that fails."""
        self.application.add_error_handler(self._on_error)
        self._thread = threading.Thread(target=self._run, name="habitreward-bot-loop", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("the bot did not start in time")
        if self._startup_error is not None:
            raise self._startup_error

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self.loop = loop
        try:
            loop.run_until_complete(self._startup())
        except BaseException as exc:  # reported to start()
            self._startup_error = exc
            try:  # e.g. the Bot API unreachable: close the HTTP sessions initialize() opened
                loop.run_until_complete(self.application.bot.shutdown())
            except Exception:
                logger.debug("could not close the bot's HTTP client after a failed start", exc_info=True)
            loop.close()  # before start() hears of the failure: its caller's stop() finds it closed
            self._ready.set()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            try:
                loop.run_until_complete(self._shutdown())
            except Exception:
                logger.exception("error while stopping the bot")
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _startup(self) -> None:
        self._semaphore = asyncio.Semaphore(self.concurrency)
        database = self.inbox.engine.db
        if not is_postgres(database):
            # Handlers hop to worker threads (asyncio.to_thread: the free-text matcher, inbox
            # claims). A SQLite connection is kept per thread (see Engine.session), so open it
            # when a worker starts: a read there must not connect, set the pragmas and close
            # again on every message. (PostgreSQL: pooled connections, borrowed per read.)
            def connect() -> None:
                try:
                    database.connect(reuse_if_open=True)
                except Exception:  # never break the pool: the first read connects by itself
                    logger.debug("worker thread could not open the database yet", exc_info=True)

            asyncio.get_running_loop().set_default_executor(
                concurrent.futures.ThreadPoolExecutor(thread_name_prefix="habitreward-worker", initializer=connect)
            )
        app = self.application
        await app.initialize()
        if app.post_init:
            await app.post_init(app)
        await app.start()
        if self.sweep_interval > 0:
            self._sweeper = asyncio.create_task(self._sweep_forever(), name="habitreward-inbox-sweep")

    async def _shutdown(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        app = self.application
        if app.running:
            await app.stop()
        if app.post_stop:
            await app.post_stop(app)
        await app.shutdown()
        if app.post_shutdown:
            await app.post_shutdown(app)

    def alive(self, timeout: float = 2.0) -> bool:
        """True when the loop thread runs and answers within ``timeout``."""
        if self.loop is None or self._thread is None or not self._thread.is_alive() or not self.loop.is_running():
            return False
        try:
            asyncio.run_coroutine_threadsafe(asyncio.sleep(0), self.loop).result(timeout)
            return True
        except Exception:
            return False

    def drain(self, timeout: float) -> bool:
        """Wait until every submitted update is finished; False on timeout."""
        with self._pending_cond:
            return self._pending_cond.wait_for(lambda: not self._pending, timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the updates in flight (up to ``timeout``), then stop the Application and the loop."""
        if self.loop is None or self.loop.is_closed() or self._thread is None or not self._thread.is_alive():
            return  # never started, or its start failed (the loop is closed already)
        if not self.drain(timeout):
            logger.warning("%d update(s) still running at shutdown; they are processed on the next start",
                           len(self._pending))
        try:
            self.loop.call_soon_threadsafe(self.loop.stop)
        except RuntimeError:  # the loop ended meanwhile
            return
        self._thread.join(timeout)

    # --- feeding updates (any thread) --------------------------------------------------

    def submit(self, update_id: int, key: int | None = None, payload: str | None = None,
               update: Any = None) -> None:
        """Process the inbox row ``update_id`` on the loop (returns at once).

        ``payload``: the row was claimed when it was stored (:attr:`Accepted.NEW_CLAIMED`);
        without it, the row is claimed first. ``update``: the payload already read into
        PTB's Update (bound to the bot), which saves reading it again.
        """
        loop = self.loop
        if loop is None:
            raise RuntimeError("the bot loop is not running")
        with self._pending_cond:
            self._pending[update_id] = self._pending.get(update_id, 0) + 1
        self._handed.append((update_id, key, payload, update))
        if self._wake_scheduled:
            return  # the loop has been told and takes this one too (it clears the flag before taking)
        self._wake_scheduled = True
        try:
            # Not run_coroutine_threadsafe: nobody waits for a result here, and its
            # cross-thread future (a Condition, chained callbacks) cost ~3% of an update.
            loop.call_soon_threadsafe(self._take_handed)
        except RuntimeError:  # the loop is closed: what was handed over will not run
            self._wake_scheduled = False
            while self._handed:
                self._done(self._handed.popleft()[0], None)
            raise

    def _take_handed(self) -> None:
        self._wake_scheduled = False
        while self._handed:
            self._spawn(*self._handed.popleft())

    def _spawn(self, update_id: int, key: int | None, payload: str | None, update: Any) -> None:
        task = asyncio.get_running_loop().create_task(self._process(update_id, key, payload, update))
        self._tasks.add(task)  # the loop keeps only a weak reference to a task
        task.add_done_callback(lambda done: self._done(update_id, done))

    def submit_pending(self, *, received_before: dt.datetime | None = None) -> int:
        """Queue the inbox rows left unprocessed (after a crash); how many were queued."""
        count = 0
        while True:
            rows = self.inbox.unprocessed(received_before=received_before)
            with self._pending_cond:
                queued = set(self._pending)
            rows = [r for r in rows if r.update_id not in queued]
            if not rows:
                return count
            for row in rows:
                try:
                    key = ordering_key(json.loads(row.payload))
                except (ValueError, AttributeError):
                    key = None
                self.submit(row.update_id, key)
                count += 1
            if len(rows) < 500:
                return count

    def _done(self, update_id: int, task: asyncio.Task | None) -> None:
        if task is not None:
            self._tasks.discard(task)
        with self._pending_cond:
            left = self._pending.get(update_id, 1) - 1
            if left > 0:
                self._pending[update_id] = left
            else:
                self._pending.pop(update_id, None)
            if not self._pending:
                self._pending_cond.notify_all()
        if task is not None and not task.cancelled() and task.exception() is not None:
            logger.error("update %s: processing failed", update_id, exc_info=task.exception())

    def receive(self, update_id: int, payload: str, data: Mapping[str, Any], update: Any = None) -> bool:
        """Store an update in the inbox (committed) and hand it to the loop; False = seen before.

        ``data``: the payload's JSON; ``update``: the same as PTB's Update, if already read.
        """
        accepted = self.inbox.accept(update_id, payload)
        if accepted is Accepted.DUPLICATE:
            return False
        try:
            if accepted is Accepted.NEW_CLAIMED:
                self.submit(update_id, ordering_key(data), payload, update)
            else:
                self.submit(update_id, ordering_key(data))
        except Exception:  # stored: the next start (or a sweep) processes it
            if accepted is Accepted.NEW_CLAIMED:
                self.inbox.release(update_id)
            logger.exception("update %s: could not be handed to the bot", update_id)
        return True

    # --- on the loop -------------------------------------------------------------------

    async def _process(self, update_id: int, key: int | None, payload: str | None = None,
                       update: Any = None) -> None:
        from telegram import Update

        async with self._key_locks.hold(key):
            assert self._semaphore is not None
            async with self._semaphore:
                if payload is None:
                    payload = await asyncio.to_thread(self.inbox.claim, update_id)
                    if payload is None:
                        return  # done already, or another worker has it
                error: str | None = None
                with processing(update_id):
                    try:
                        if update is None:
                            update = Update.de_json(json.loads(payload), self.application.bot)
                        await self.application.process_update(update)
                        error = self._handler_errors.pop(update_id, None)
                    except Exception as exc:  # a broken payload, or PTB itself failing
                        logger.exception("update %s: could not be processed", update_id)
                        error = f"{type(exc).__name__}: {exc}"
                marked = applied.consume_mark(update_id) and error is None
                if marked:
                    self.inbox.finish(update_id, already_marked=True)  # no I/O at all
                else:  # a database write
                    await asyncio.to_thread(self.inbox.finish, update_id, error, already_marked=marked)
                self.processed += 1

    async def _on_error(self, update: object, context: Any) -> None:
        """PTB's error handler: log with the update id and keep the error for the inbox row."""
        from telegram import Update

        if isinstance(update, Update):
            self._handler_errors[update.update_id] = f"{type(context.error).__name__}: {context.error}"
            logger.error("update %s: a handler failed: %s", update.update_id, context.error, exc_info=context.error)
        else:
            logger.error("bot error: %s", context.error, exc_info=context.error)

    async def _sweep_forever(self) -> None:
        """Pick up rows another (crashed) process left behind, and forget old processed rows."""
        last_prune = dt.datetime.min
        while True:
            await asyncio.sleep(self.sweep_interval)
            try:
                await asyncio.to_thread(self.inbox.release_finished)  # when no update came to do it
                cutoff = utcnow() - dt.timedelta(seconds=self.sweep_grace)
                queued = await asyncio.to_thread(self.submit_pending, received_before=cutoff)
                if queued:
                    logger.warning("picked up %d update(s) left unprocessed", queued)
                if utcnow() - last_prune > dt.timedelta(hours=1):
                    last_prune = utcnow()
                    await asyncio.to_thread(self.inbox.prune, processed_before=utcnow() - self.keep_processed)
            except Exception:
                logger.exception("inbox sweep failed (retrying later)")
