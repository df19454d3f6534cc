"""python-telegram-bot's asyncio loop on its own thread, fed from the inbox.

PTB is not thread-safe, so nothing outside this thread touches the Application:
web server threads and the poller hand over an update_id with
:meth:`BotRunner.submit`: a queue the loop empties, starting a task for each
update, woken with ``loop.call_soon_threadsafe`` once for all the updates that
arrive while it is busy (a wake-up is a system call on each side). Updates of
one user (chat) are processed one after the other, lowest update_id first
(:class:`_ChatTurns`); different users' updates run concurrently up to
``concurrency``, which is what lets one process keep many Bot API calls in flight.

Across processes (several on one PostgreSQL, ``serve --workers N``) a chat keeps
its order too: Telegram sends a chat's next update once the previous one was
answered, which is when it is stored, not processed, so it may reach another
process meanwhile. That process finds the earlier row still to process
(:meth:`Inbox.pending_before`) and waits for it, or processes it first itself
when it can claim it (the process that stored it is gone).
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import concurrent.futures
import contextlib
import datetime as dt
import json
import logging
import threading
from collections.abc import AsyncIterator, Mapping
from typing import Any

from habitreward.db import database_away, is_postgres
from habitreward.errors import UpdateAppliedElsewhere
from habitreward.models import utcnow
from habitreward.server import applied
from habitreward.server.inbox import Accepted, Inbox, processing

logger = logging.getLogger(__name__)

#: How ``processed_updates.error`` starts for an update applied whose reply failed for a network
#: reason (a timeout, a cut or refused connection): not a handler's failure.
REPLY_LOST = "reply may not have reached Telegram: "


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


class _ChatTurns:
    """Whose turn it is in each chat, among the updates handed to this loop.

    A chat's updates run one at a time, and of those waiting the lowest update_id goes
    first: not the first handed over, as two request threads may hand a chat's updates
    to the loop in either order. An update waiting for an earlier one of its chat in
    another process's hands steps out of the turn meanwhile (:meth:`BotRunner._process`)
    but stays in the line, so an earlier update reaching this process can go first while
    later ones still wait behind it; holding the turn while waiting is how two processes
    could each wait for the other until ``order_wait`` ran out.
    """

    class _Chat:
        __slots__ = ("line", "running", "waiters")

        def __init__(self) -> None:
            self.line: list[int] = []  # update_ids handed over and not finished, ascending
            self.running = False
            self.waiters: dict[int, list[asyncio.Future]] = {}

    def __init__(self) -> None:
        self._chats: dict[int, _ChatTurns._Chat] = {}

    def enter(self, key: int | None, update_id: int) -> None:
        """Put a handed-over update in its chat's line (on the loop, in the order handed over)."""
        if key is None:
            return
        chat = self._chats.get(key)
        if chat is None:
            chat = self._chats[key] = self._Chat()
        bisect.insort(chat.line, update_id)

    def leave(self, key: int | None, update_id: int) -> None:
        """Take a finished (or cancelled) update out of its chat's line."""
        chat = self._chats.get(key) if key is not None else None
        if chat is None:
            return
        index = bisect.bisect_left(chat.line, update_id)
        if index < len(chat.line) and chat.line[index] == update_id:
            del chat.line[index]
        if not chat.line and not chat.running:
            del self._chats[key]
        else:
            self._wake(chat)

    @contextlib.asynccontextmanager
    async def turn(self, key: int | None, update_id: int) -> AsyncIterator[None]:
        """Hold the chat's turn: once nothing of the chat runs and no earlier update waits here."""
        chat = self._chats.get(key) if key is not None else None
        if chat is None:  # no chat to keep in order
            yield
            return
        while chat.running or chat.line[0] != update_id:
            future = asyncio.get_running_loop().create_future()
            chat.waiters.setdefault(update_id, []).append(future)
            try:
                await future
            finally:
                waiting = chat.waiters.get(update_id)
                if waiting is not None and future in waiting:
                    waiting.remove(future)
                    if not waiting:
                        del chat.waiters[update_id]
        chat.running = True
        try:
            yield
        finally:
            chat.running = False
            if chat.line:
                self._wake(chat)
            elif self._chats.get(key) is chat:
                del self._chats[key]

    @staticmethod
    def _wake(chat: _ChatTurns._Chat) -> None:
        if chat.running or not chat.line:
            return
        for future in chat.waiters.pop(chat.line[0], ()):
            if not future.done():
                future.set_result(None)


class _DoneWatch:
    """Updates waiting for inbox rows that other processes are processing: one query every
    ``tick`` seconds tells which of all the awaited rows are done, however many wait."""

    def __init__(self, still_pending: Any, read: Any, tick: float = 0.05):
        self._still_pending = still_pending  # update_ids -> those of them not processed yet
        self._read = read
        self.tick = tick
        # Waiting updates by their future (a dict: leaving is O(1), with thousands waiting).
        self._waiting: dict[asyncio.Future, frozenset[int]] = {}
        self._poller: asyncio.Task | None = None

    async def wait(self, update_ids: list[int], timeout: float) -> None:
        """Until every row of ``update_ids`` is processed, or ``timeout`` seconds."""
        future = asyncio.get_running_loop().create_future()
        self._waiting[future] = frozenset(update_ids)
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll(), name="habitreward-chat-order")
        try:
            await asyncio.wait_for(future, max(timeout, 0.0))
        except TimeoutError:
            pass
        finally:
            del self._waiting[future]

    def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()

    async def _poll(self) -> None:
        while self._waiting:
            await asyncio.sleep(self.tick)
            awaited = sorted(set().union(*self._waiting.values()))
            try:
                pending = set(await self._read(self._still_pending, awaited))
            except Exception:  # the database is away for a moment: the waiters try again later
                logger.warning("could not look at the updates other processes hold", exc_info=True)
                await asyncio.sleep(1.0)
                continue
            for future, ids in list(self._waiting.items()):
                if not future.done() and ids.isdisjoint(pending):
                    future.set_result(None)


class _OrderWait:
    """One update's wait for earlier updates of its chat in other processes' hands: when it
    gives up (``order_wait``), and when it next tries to claim them (their process may have
    died): after a second, then less and less often (a claim almost always finds it alive)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, order_wait: float):
        self._loop = loop
        self.deadline = loop.time() + order_wait
        self._next_claim, self._claim_every = loop.time() + 1.0, 2.0

    def claim_due(self) -> bool:
        now = self._loop.time()
        if now < self._next_claim:
            return False
        self._next_claim, self._claim_every = now + self._claim_every, min(self._claim_every * 2, 30.0)
        return True

    def expired(self) -> bool:
        return self._loop.time() >= self.deadline

    def pause(self) -> float:
        """How long to wait before looking again (unless the awaited rows are done sooner)."""
        return max(min(self._next_claim, self.deadline) - self._loop.time(), 0.0)


def _cancel_what_is_left(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel the tasks still pending on a stopped loop and let them end, as asyncio.run does
    before it closes its loop (a task destroyed pending is logged as an error)."""
    tasks = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))


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
        order_wait: float = 60.0,
    ):
        self.application = application
        self.inbox = inbox
        self.concurrency = concurrency
        self.sweep_interval = sweep_interval
        # Rows younger than this are left to the process that stored them (a row stored by a
        # racing duplicate is claimed by its owner within milliseconds).
        self.sweep_grace = sweep_interval if sweep_grace is None else sweep_grace
        self.keep_processed = keep_processed
        # The longest an update waits for an earlier one of its chat in another process's hands
        # (then it goes ahead, out of order, with a warning: a stuck process must not stop a chat).
        self.order_wait = order_wait
        # Rows an update already waited ``order_wait`` for (their process is stuck): later updates of
        # the chat do not wait for them again, or a stuck process would slow its chats to one update
        # a minute. Bounded: the oldest are forgotten first.
        self._given_up: dict[int, None] = {}
        self._local_reads = not is_postgres(inbox.engine.db)  # SQLite: a read is a local call
        self._done_watch = _DoneWatch(inbox.still_pending, self._read)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._pending: dict[int, int] = {}  # update_id -> submitted and not finished
        self._tasks: set[asyncio.Task] = set()
        self._pending_cond = threading.Condition()
        # Updates handed over and not yet taken by the loop, and whether the loop has been told
        # (see submit: one wake-up for all that arrive while the loop is busy).
        self._handed: collections.deque[tuple[int, int | None, str | None, Any, bool, dt.datetime | None]] = \
            collections.deque()
        self._wake_scheduled = False
        self._handler_errors: dict[int, str] = {}
        self._log_bugs = True  # see start()
        self._turns = _ChatTurns()
        self._semaphore: asyncio.Semaphore | None = None
        self._sweeper: asyncio.Task | None = None
        self.processed = 0
        # Set by stop(): an update whose turn comes after it is left in the inbox for the next
        # start (a backlog of thousands would otherwise hold the stop for --shutdown-timeout).
        self._stopping = False
        self._left_at_stop = 0

    # --- lifecycle (called from the main thread) ------------------------------------

    def start(self, timeout: float = 60.0) -> None:
        """Start the loop thread and initialize the Application; raise if that fails."""
        from habitreward.bot.app import log_error

        # The bot's own error handler logs a handler's bug (with the update, the user and the
        # plugin); one record of it is enough. An Application without it gets one from here.
        self._log_bugs = log_error not in self.application.error_handlers
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
            _cancel_what_is_left(loop)
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
        self._done_watch.close()
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
        """Finish the updates being processed (up to ``timeout``), then stop the Application and
        the loop. Updates received but not started yet (waiting for a free slot of ``concurrency``
        or for their chat's turn) are not started now: the inbox keeps them for the next start."""
        if self.loop is None or self.loop.is_closed() or self._thread is None or not self._thread.is_alive():
            return  # never started, or its start failed (the loop is closed already)
        self._stopping = True
        finished = self.drain(timeout)
        if self._left_at_stop:
            logger.warning("%d update(s) received and not started yet at shutdown; they are processed on the"
                           " next start", self._left_at_stop)
        if not finished:
            self._say_what_is_cut_short()
            self._cancel_updates()
        try:
            self.loop.call_soon_threadsafe(self.loop.stop)
        except RuntimeError:  # the loop ended meanwhile
            return
        self._thread.join(timeout)

    def _say_what_is_cut_short(self) -> None:
        """Log the updates still running when the shutdown timeout is up. Those not applied yet
        run at the next start; those applied (their completion committed, the reply still on its
        way, e.g. to a slow Telegram) are done for good: only their replies are cut short. The
        inbox says which is which (an applied update's row is marked in its own transaction)."""
        with self._pending_cond:
            running = sorted(self._pending)
        try:
            unapplied = len(self.inbox.still_pending(running))
        except Exception:  # the database is away: say what is true either way
            logger.warning("%d update(s) still running at shutdown; those not applied yet are processed on"
                           " the next start", len(running))
            return
        if unapplied:
            logger.warning("%d update(s) still running at shutdown; they are processed on the next start", unapplied)
        if len(running) > unapplied:
            logger.warning("%d update(s) applied and still sending their replies at shutdown; those replies"
                           " may not arrive (the updates are saved and not run again)", len(running) - unapplied)

    def _cancel_updates(self, grace: float = 5.0) -> None:
        """Cancel the updates still running, and let them unwind, before the bot stops: stopping
        it under them closes their HTTP sessions (each would fail, and be recorded as failed)
        and leaves their tasks to be destroyed pending. A cancelled update is not finished in
        the inbox (unless its engine write had marked it), so the next start runs it."""
        async def cancel() -> None:
            tasks = [task for task in self._tasks if not task.done()]
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=grace)

        assert self.loop is not None
        try:
            asyncio.run_coroutine_threadsafe(cancel(), self.loop).result(grace + 1.0)
        except Exception:  # the loop is gone or stuck: stopping it is all that is left
            logger.debug("could not cancel the updates still running", exc_info=True)

    # --- feeding updates (any thread) --------------------------------------------------

    def submit(self, update_id: int, key: int | None = None, payload: str | None = None,
               update: Any = None, *, behind: bool | None = None, received_at: dt.datetime | None = None) -> None:
        """Process the inbox row ``update_id`` on the loop (returns at once).

        ``payload``: the row was claimed when it was stored (:attr:`Accepted.NEW_CLAIMED`);
        without it, the row is claimed first. ``update``: the payload already read into
        PTB's Update (bound to the bot), which saves reading it again. ``behind``: an
        earlier update of the same chat (``key``) may still be in another process's hands,
        so look before processing (default: whenever other processes may hold rows).
        ``received_at``: when the row was stored (with ``payload``; a claim reads it).
        """
        if behind is None:
            behind = self.inbox.shared and key is not None
        loop = self.loop
        if loop is None:
            raise RuntimeError("the bot loop is not running")
        with self._pending_cond:
            self._pending[update_id] = self._pending.get(update_id, 0) + 1
        self._handed.append((update_id, key, payload, update, behind, received_at))
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

    def _spawn(self, update_id: int, key: int | None, payload: str | None, update: Any, behind: bool,
               received_at: dt.datetime | None) -> None:
        task = asyncio.get_running_loop().create_task(
            self._process(update_id, key, payload, update, behind, received_at))
        self._tasks.add(task)  # the loop keeps only a weak reference to a task
        self._turns.enter(key, update_id)
        task.add_done_callback(lambda done: self._finished(update_id, key, done))

    def _finished(self, update_id: int, key: int | None, task: asyncio.Task) -> None:
        self._turns.leave(key, update_id)
        self._done(update_id, task)

    def submit_pending(self, *, received_before: dt.datetime | None = None) -> int:
        """Queue the inbox rows left unprocessed (after a crash); how many were queued."""
        count = 0
        for rows in self.inbox.unprocessed_pages(received_before=received_before):
            with self._pending_cond:
                queued = set(self._pending)
            for row in rows:
                if row.update_id in queued:
                    continue
                try:
                    key = ordering_key(json.loads(row.payload))
                except (ValueError, AttributeError):
                    key = None
                self.submit(row.update_id, key)
                count += 1
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
        key = ordering_key(data)
        # Whether an earlier update of this chat is still to process is asked with the store
        # (one statement), so the loop asks again only when the answer is yes and this process
        # does not hold that update (if it does, it is ahead in the chat's line here, and
        # ordered after anything earlier itself).
        received_at = utcnow()  # what the handlers count a button press from (see _apply)
        accepted, after = self.inbox.store(update_id, payload, key, received_at)
        if accepted is Accepted.DUPLICATE:
            return False
        behind = after is not None and not self.inbox.is_in_flight(after)
        try:
            if accepted is Accepted.NEW_CLAIMED:
                self.submit(update_id, key, payload, update, behind=behind, received_at=received_at)
            else:
                self.submit(update_id, key, behind=behind)
        except Exception:  # stored: the next start (or a sweep) processes it
            if accepted is Accepted.NEW_CLAIMED:
                self.inbox.release(update_id)
            logger.exception("update %s: could not be handed to the bot", update_id)
        return True

    # --- on the loop -------------------------------------------------------------------

    async def _process(self, update_id: int, key: int | None, payload: str | None = None,
                       update: Any = None, behind: bool = False, received_at: dt.datetime | None = None) -> None:
        order = _OrderWait(asyncio.get_running_loop(), self.order_wait) if behind and key is not None else None
        while True:
            async with self._turns.turn(key, update_id):
                if self._stopping:  # not started: the inbox keeps it for the next start
                    await self._leave_for_next_start(update_id, claimed=payload is not None)
                    return
                awaited = await self._after_earlier(update_id, key, order) if order is not None else []
                if not awaited:
                    assert self._semaphore is not None
                    async with self._semaphore:
                        if self._stopping:  # its turn came after the stop: the same
                            await self._leave_for_next_start(update_id, claimed=payload is not None)
                            return
                        if payload is None:
                            claimed = await asyncio.to_thread(self.inbox.claim_update, update_id)
                            if claimed is None:
                                return  # done already, or another worker has it
                            payload, received_at = claimed
                        await self._apply(update_id, payload, update, received_at)
                    return
            # Out of the chat's turn while waiting (see _ChatTurns), then look again.
            assert order is not None
            await self._done_watch.wait(awaited, order.pause())

    async def _leave_for_next_start(self, update_id: int, *, claimed: bool) -> None:
        """Leave an update that was not started unprocessed at a stop (``claimed``: this process
        holds its row, given back so that another worker may take it)."""
        self._left_at_stop += 1
        if claimed:
            try:
                await asyncio.to_thread(self.inbox.release, update_id)
            except Exception:  # the claim ends with the process anyway
                logger.debug("could not give update %s back at shutdown", update_id, exc_info=True)

    async def _after_earlier(self, update_id: int, key: int, order: _OrderWait) -> list[int]:
        """The earlier updates of chat ``key`` other processes hold, to wait for before this one
        (none: its turn has come).

        Rows this process holds are in their turn already (the chat's line, see
        :class:`_ChatTurns`). A row nobody holds (its process died, or the sweep queued it here
        behind this one) is claimed and processed first, right here. For a row another live
        process holds, the caller waits until it is done (one poll for every waiting update, see
        :class:`_DoneWatch`), and this tries to claim it after a second, then less and less often,
        in case that process died.
        Gives up after ``order_wait`` seconds, with a warning; later updates of the chat do
        not wait for the rows given up on again (that process is stuck, not gone).
        """
        while True:
            earlier = await self._read(self.inbox.pending_before, update_id, key)
            if not earlier:
                return []
            # Claimed by this process: in their turn (whether handed to the loop yet or not).
            held_here = {i for i in earlier if self.inbox.is_in_flight(i)}
            with self._pending_cond:
                mine = {i for i in earlier if i in self._pending}  # queued here
            try_others = order.claim_due()
            adopted, held_elsewhere = False, set()
            for earlier_id in earlier:  # oldest first
                if earlier_id in held_here:
                    continue
                if earlier_id not in mine:
                    if not try_others:
                        continue
                    try_others = False  # of other processes' rows, the oldest only
                    # Workers on SQLite: whether its worker lives is a local read, no hop needed.
                    if self._local_reads and not self.inbox.may_claim(earlier_id):
                        held_elsewhere.add(earlier_id)
                        continue
                claimed = await asyncio.to_thread(self.inbox.claim_update, earlier_id)
                if claimed is None:  # queued here, but another process has it (or it is done)
                    held_elsewhere.add(earlier_id)
                    continue
                logger.info("update %s: processing update %s of the same chat first (left unprocessed)",
                            update_id, earlier_id)
                assert self._semaphore is not None
                async with self._semaphore:
                    await self._apply(earlier_id, claimed.payload, None, claimed.received_at)
                adopted = True
                break  # look again: what is left may have changed meanwhile
            if adopted:
                continue
            others = [i for i in earlier if i not in held_here and (i not in mine or i in held_elsewhere)
                      and i not in self._given_up]
            if others and order.expired():
                logger.warning("update %s: update(s) %s of the same chat still unfinished after %.0f s;"
                               " going ahead (later updates of the chat will not wait for them)",
                               update_id, ", ".join(map(str, others)), self.order_wait)
                self._give_up(others)
                return []
            return others

    def _give_up(self, update_ids: list[int], keep: int = 10_000) -> None:
        for update_id in update_ids:
            self._given_up[update_id] = None
        while len(self._given_up) > keep:
            del self._given_up[next(iter(self._given_up))]

    async def _read(self, read: Any, *args: Any) -> Any:
        """A database read from the loop: in place on SQLite, on a worker thread on PostgreSQL."""
        return read(*args) if self._local_reads else await asyncio.to_thread(read, *args)

    async def _apply(self, update_id: int, payload: str, update: Any, received_at: dt.datetime | None) -> None:
        """Run the handlers on a claimed update, then finish its inbox row."""
        from telegram import Update

        from habitreward.bot.context import update_received_at

        error: str | None = None
        # A button press counts from when the server received it, not from when it is run here
        # (a backlog, a restart, the sweep): pressed at 23:59:55, it is that day's.
        received = received_at.replace(tzinfo=dt.timezone.utc) if received_at is not None else None
        received_token = update_received_at.set(received)
        with processing(update_id):
            try:
                if update is None:
                    update = Update.de_json(json.loads(payload), self.application.bot)
                await self.application.process_update(update)
                error = self._handler_errors.pop(update_id, None)
            except Exception as exc:  # a broken payload, or PTB itself failing
                logger.exception("update %s: could not be processed", update_id)
                error = f"{type(exc).__name__}: {exc}"
            finally:
                update_received_at.reset(received_token)
        marked = applied.consume_mark(update_id) and error is None
        if marked:
            self.inbox.finish(update_id, already_marked=True)  # no I/O at all
        else:  # a database write
            await asyncio.to_thread(self.inbox.finish, update_id, error, already_marked=marked)
        self.processed += 1

    async def _on_error(self, update: object, context: Any) -> None:
        """PTB's error handler: keep the error for the inbox row (and log it, unless the bot's own
        error handler, :func:`habitreward.bot.app.log_error`, does)."""
        from telegram import Update

        from habitreward.bot.app import reply_lost

        if isinstance(update, Update) and isinstance(context.error, UpdateAppliedElsewhere):
            # Another process applied it (this one's lock on it was lost with a connection):
            # this run's writes were rolled back; the row is the other's, nothing to record. This
            # is the one line of it (the bot's error handler says nothing: it is no handler's bug).
            logger.warning("update %s: applied by another process meanwhile; this run's writes rolled back",
                           update.update_id)
        elif isinstance(update, Update) and reply_lost(context.error):
            # Not a handler's bug: the bot's error handler logs it in one line (no traceback, which
            # an outage would repeat for every update), and the row says what it was.
            self._handler_errors[update.update_id] = f"{REPLY_LOST}{type(context.error).__name__}: {context.error}"
        elif isinstance(update, Update):
            self._handler_errors[update.update_id] = f"{type(context.error).__name__}: {context.error}"
            if self._log_bugs:
                logger.error("update %s: a handler failed: %s: %s", update.update_id, type(context.error).__name__,
                             context.error, exc_info=context.error)
        elif self._log_bugs:
            logger.error("bot error: %s: %s", type(context.error).__name__, context.error, exc_info=context.error)

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
            except Exception as exc:
                if not database_away(exc):  # a bug: its traceback
                    logger.exception("inbox sweep failed (retrying later)")
                    continue
                # One line: a restart of the database server is news, its driver's stack is not.
                first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                logger.warning("inbox sweep failed (retrying later): %s", first_line)
