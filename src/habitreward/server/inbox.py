"""The update inbox: what makes processing exactly-once.

Every update is stored (``processed_updates``, keyed by ``update_id``) and
committed *before* the webhook answers 2xx or the poller confirms it to
Telegram. Then it is processed from the inbox:

1. **accept**: ``INSERT`` if absent, and in the same step *claim* the new row
   for this worker (``attempts = 1``). A re-delivered or concurrently
   duplicated update_id finds its row and is acknowledged without being
   processed again.
2. **claim** (for rows not claimed at accept: left over by a crash, or stored by a
   racing duplicate): ``UPDATE ... SET attempts = attempts + 1 WHERE update_id = ?
   AND processed_at IS NULL``. Who may claim: inside a process an in-flight set
   keeps two workers off one row; on PostgreSQL a session-level advisory lock on
   the update_id, held on a dedicated connection while the update is processed,
   keeps other processes off it, and dies with its process, so a crashed
   process's rows become claimable at once. On SQLite one server process uses
   a database file at a time (see ``service``), so the in-flight set suffices;
   except under ``serve --webhook --workers N``, where each worker process has a
   :class:`WorkerLock`: rows it stores or claims record its token in
   ``claimed_by``, and another worker takes such a row only when that token's
   lock file is no longer locked (the holder died; the lock died with it).
3. **apply**: python-telegram-bot runs the handlers. The engine's own writes
   (completion, undo, claim) mark the row processed *in their own
   transaction* (see :mod:`habitreward.server.applied`), so "the habit was
   logged" and "the update is done" commit together.
4. **finish**: ``processed_at`` is set (if step 3 did not already), with the
   handler's error, if any.

The guarantee, precisely: an update answered with 2xx is stored. If the
process dies before step 3 commits anything, the update is processed again on
the next start (or by another live process's sweep): applied once. If it dies
after an engine write committed, that write carried the mark, so the update is
not processed again (its reply may be lost, never doubled). What is not covered:
a handler whose database writes do not go through the engine's events and that
dies after writing but before step 4; it is run again, so such writes must be
idempotent or call ``mark_current_update_applied()`` in their transaction.
Conversation state (PTB persistence) is written right after the handlers: a
crash in between leaves the conversation at its previous step (the update is
re-run from there, or, if an engine write had marked it, the user repeats the step).

A chat's order across processes: each row records whose update it is
(``chat_key``); when other processes may hold rows (:attr:`Inbox.shared`), an
update looks for its chat's earlier rows still to process
(:meth:`Inbox.pending_before`) and waits for them, or claims and processes them
first when their process is gone (see ``server.runner``).

Inbox writes from many threads are committed together (``_GroupCommit``).
"""

from __future__ import annotations

import collections
import contextvars
import datetime as dt
import enum
import logging
import os
import re
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import peewee

from habitreward.db import database_away, is_postgres, sqlstate
from habitreward.engine.prepared import Prepared, PreparedShapes, Slot, prepared_insert
from habitreward.models import ProcessedUpdate, utcnow

logger = logging.getLogger(__name__)

#: The update being processed in this context (asyncio task, or a thread started with
#: ``asyncio.to_thread``, which copies the context). Read by the engine-write hooks.
current_update_id: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "habitreward_current_update_id", default=None
)

#: A row that has been claimed this many times without finishing is given up on
#: (recorded with an error), so an update that kills the process cannot loop forever.
MAX_ATTEMPTS = 5
#: Processed rows :meth:`Inbox.prune` deletes per transaction.
PRUNE_BATCH = 2000


@dataclass(frozen=True)
class PendingUpdate:
    update_id: int
    payload: str


class ClaimedUpdate(NamedTuple):
    """A stored update taken for processing (:meth:`Inbox.claim_update`)."""

    payload: str
    received_at: dt.datetime  # when it was stored (naive UTC): the moment the server received it


class _AdvisoryLocks:
    """PostgreSQL session-level advisory locks on one dedicated connection.

    The two-key form ``(high 32 bits, low 32 bits)`` of the update_id is an exact,
    collision-free key that cannot clash with the single-bigint lock the schema
    upgrade uses.

    The lock of an update that is processed and marked is released by the next
    statement on this connection (:meth:`unlock_later`), usually the next update's
    :meth:`try_lock`: one round trip per update instead of two. Holding it a little
    longer changes nothing: the row is marked processed, so nobody wants to claim it.
    """

    def __init__(self, database: peewee.PostgresqlDatabase):
        self._database = database
        self._conn: Any = None
        self._session = 0  # which connection: a lock taken on an earlier one died with it
        self._held: dict[int, int] = {}  # update_id -> the session its lock was taken in
        self._mutex = threading.Lock()  # held across round trips
        # (session, keys): appended without the mutex, so the event loop never waits for a round trip
        self._unlock_later: collections.deque[tuple[int, tuple[int, int]]] = collections.deque()

    def _cursor(self) -> Any:
        if self._conn is None or self._conn.closed:
            import psycopg2

            self._session += 1
            self._conn = psycopg2.connect(dbname=self._database.database, **self._database.connect_params)
            self._conn.autocommit = True
        return self._conn.cursor()

    @staticmethod
    def _keys(update_id: int) -> tuple[int, int]:
        high, low = (update_id >> 32) & 0xFFFFFFFF, update_id & 0xFFFFFFFF
        signed = lambda v: v - (1 << 32) if v >= (1 << 31) else v  # noqa: E731 - int4 is signed
        return signed(high), signed(low)

    def _run(self, cur: Any, sql: str, params: tuple[int, ...]) -> Any:
        """``sql`` (one SELECT of one value) plus the deferred unlocks, in one round trip."""
        pending = []
        while self._unlock_later:
            session, keys = self._unlock_later.popleft()
            if session == self._session:
                pending.extend(keys)
        cur.execute(sql + ", pg_advisory_unlock(%s, %s)" * (len(pending) // 2), params + tuple(pending))
        return cur.fetchone()[0]

    def try_lock(self, update_id: int) -> bool:
        with self._mutex:
            try:
                locked = self._try_lock(update_id)
            except Exception:
                if self._conn is None or not self._conn.closed:
                    raise
                # The server ended this session (a restart, an idle timeout) and psycopg2 noticed
                # only now; its locks are gone with it. One more try, on a new connection.
                locked = self._try_lock(update_id)
            if locked:
                self._held[update_id] = self._session
            return locked

    def _try_lock(self, update_id: int) -> bool:
        with self._cursor() as cur:
            return bool(self._run(cur, "SELECT pg_try_advisory_lock(%s, %s)", self._keys(update_id)))

    def unlock(self, update_id: int) -> None:
        with self._mutex:
            if self._held.pop(update_id, None) != self._session or self._conn is None or self._conn.closed:
                return  # not held, or held by a connection that is gone (and its locks with it)
            with self._conn.cursor() as cur:
                self._run(cur, "SELECT pg_advisory_unlock(%s, %s)", self._keys(update_id))

    def unlock_later(self, update_id: int) -> None:
        """Release with the next statement (see the class's docstring); no round trip, no wait."""
        session = self._held.pop(update_id, None)
        if session is not None:
            self._unlock_later.append((session, self._keys(update_id)))

    def flush(self) -> None:
        """Release the locks :meth:`unlock_later` still holds."""
        with self._mutex:
            if self._unlock_later and self._conn is not None and not self._conn.closed:
                with self._conn.cursor() as cur:
                    self._run(cur, "SELECT true", ())

    def close(self) -> None:
        with self._mutex:
            if self._conn is not None and not self._conn.closed:
                self._conn.close()
            self._conn = None
            self._unlock_later.clear()
            self._held.clear()


class WorkerLock:
    """The identity of one worker process among several on one SQLite file.

    The worker holds an exclusive ``flock`` on ``<directory>/<token>.lock`` for its
    whole life; the kernel drops it when the process dies, however it dies (like a
    PostgreSQL advisory lock). A row whose ``claimed_by`` names a token whose file
    is missing or not locked belongs to nobody any more. Dead tokens' files are
    removed by whoever notices them.
    """

    _TOKEN = re.compile(r"^[0-9]+-[0-9a-f]{8,32}$")

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.token = f"{os.getpid()}-{secrets.token_hex(6)}"
        self._fd: int | None = None
        self._dead: set[str] = set()  # a dead token never comes back

    def path(self, token: str) -> Path:
        return self.directory / f"{token}.lock"

    def acquire(self) -> WorkerLock:
        import fcntl

        self.directory.mkdir(exist_ok=True)
        # Locked under a temporary name, then renamed: a file named *.lock is never unlocked
        # while its worker lives (another worker's clean-up would take it for a dead one's).
        provisional = self.directory / f"{self.token}.starting"
        fd = os.open(provisional, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.replace(provisional, self.path(self.token))
        except BaseException:
            os.close(fd)
            provisional.unlink(missing_ok=True)
            raise
        self._fd = fd
        self.clean()
        return self

    def alive(self, token: str) -> bool:
        """Whether the worker that wrote ``token`` still runs (its lock file is locked)."""
        if token == self.token:
            return self._fd is not None
        if token in self._dead:
            return False
        try:
            if self._TOKEN.match(token) and self._probe(self.path(token)):
                return True
        except OSError:  # cannot tell (permissions?): leave the row alone, never take it twice
            logger.warning("cannot check worker %s's lock file", token, exc_info=True)
            return True
        self._dead.add(token)
        return False

    @staticmethod
    def _probe(path: Path) -> bool:
        """True when ``path`` is locked by a live process; otherwise remove it (if it exists)."""
        import fcntl

        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return True
        try:
            path.unlink(missing_ok=True)  # locked by us now: no live worker owns it
        finally:
            os.close(fd)
        return False

    @classmethod
    def live_tokens(cls, directory: str | Path) -> list[str]:
        """Tokens of the live workers with a lock file in ``directory`` (dead ones' files are removed)."""
        directory = Path(directory)
        if not directory.is_dir():
            return []
        return [path.stem for path in directory.glob("*.lock") if cls._probe(path)]

    def clean(self) -> int:
        """Remove the lock files of dead workers; how many."""
        removed = 0
        for path in self.directory.glob("*.lock"):
            if path.name != f"{self.token}.lock" and not self._probe(path):
                removed += 1
        return removed

    def release(self) -> None:
        """Give up the identity (at the very end of the process: its rows become claimable)."""
        if self._fd is not None:
            self.path(self.token).unlink(missing_ok=True)
            os.close(self._fd)
            self._fd = None


# PostgreSQL's "deadlock detected" and "could not serialize access": the batch lost to another
# transaction because of what it held; its writes one by one do not.
_LOST_TO_ANOTHER_TRANSACTION = frozenset({"40P01", "40001"})


def _worth_trying_alone(exc: Exception) -> bool:
    """Whether the writes of a batch that failed with ``exc`` may each succeed alone: not when the
    database is away or locked (each would wait and fail again, one after the other)."""
    if database_away(exc):
        return sqlstate(exc) in _LOST_TO_ANOTHER_TRANSACTION
    return True


class _GroupCommit:
    """Inbox writes from many threads, committed together.

    Each write queues itself and waits for the commit lock; whoever gets the lock
    runs everything queued so far in one transaction. Under load one commit
    carries many updates (a commit is the expensive part: a WAL write, an fsync
    on PostgreSQL), and SQLite's busy-wait back-off (sleeps of up to 100 ms) is
    never hit between this process's own writers.

    A batch runs its writes in update_id order (``key``; writes without one last):
    two processes on one PostgreSQL storing the same updates in opposite orders
    would otherwise each wait for a row the other inserted, and PostgreSQL would
    break the deadlock by failing one batch. Should a batch fail anyway because of
    what was in it (a deadlock, a serialization conflict, one write's own error),
    each of its writes is tried again alone, so one bad write fails only itself; a
    database that is away or locked fails the batch at once.
    Each op must be correct without a transaction around it (a lone op on PostgreSQL)
    and must have no effect outside the database (a failed batch is rolled back and re-run).
    """

    class _Item:
        __slots__ = ("op", "key", "done", "result", "error")

        def __init__(self, op: Callable[[], Any], key: int | None):
            self.op, self.key, self.done, self.result, self.error = op, key, False, None, None

        def order(self) -> tuple[bool, int]:
            return self.key is None, self.key or 0

    def __init__(self, engine: Any):
        self.engine = engine
        self._lock = threading.Lock()
        self._mutex = threading.Lock()
        self._queue: list[_GroupCommit._Item] = []
        # On PostgreSQL a batch of one runs without BEGIN/COMMIT (each statement commits by
        # itself: one round trip instead of three). Every op here is correct that way; on
        # SQLite the transaction is what queues the writer (see db._WriteQueue), so it stays.
        self._lone_autocommits = is_postgres(engine.db)

    def run(self, op: Callable[[], Any], key: int | None = None) -> Any:
        """Run ``op`` (committed on return); ``key``: the update_id it writes, if one."""
        item = self._Item(op, key)
        with self._mutex:
            self._queue.append(item)
        with self._lock:
            if not item.done:
                with self._mutex:
                    batch, self._queue = self._queue, []
                try:
                    if len(batch) == 1:
                        self._commit_alone(batch[0])
                    else:
                        batch.sort(key=_GroupCommit._Item.order)
                        try:
                            self._commit(batch)
                        except Exception as exc:
                            if not _worth_trying_alone(exc):
                                raise
                            logger.debug("a batch of %s inbox writes failed (%s); each is tried alone",
                                         len(batch), exc)
                            for queued in batch:
                                self._commit_alone(queued)
                except BaseException as exc:  # not worth trying alone, or interrupted: all of the batch fail
                    for queued in batch:
                        queued.error = exc
                finally:
                    for queued in batch:
                        queued.done = True
        if item.error is not None:
            raise item.error
        return item.result

    def _commit(self, batch: list[_GroupCommit._Item]) -> None:
        with self.engine.session(), self.engine.db.atomic():
            for queued in batch:
                queued.result = queued.op()

    def _commit_alone(self, item: _GroupCommit._Item) -> None:
        try:
            if self._lone_autocommits:
                with self.engine.session():
                    item.result = item.op()
            else:
                self._commit([item])
        except BaseException as exc:
            item.result, item.error = None, exc


# Every update runs these (compiled once: see engine/prepared.py).
_STORED_FIELDS = (ProcessedUpdate.update_id, ProcessedUpdate.payload, ProcessedUpdate.received_at,
                  ProcessedUpdate.attempts, ProcessedUpdate.chat_key)


def _store_query(*fields: peewee.Field) -> Prepared:
    """INSERT of ``fields`` unless the update_id is there; with the two values after them
    (chat_key, update_id again) it also answers, in the same statement, the latest earlier
    update of the chat still to process: ``RETURNING update_id, <that id or NULL>`` (no row:
    stored before). Where the database has no RETURNING (SQLite before 3.35) the store is
    ``_STORE_PLAIN`` and the question ``_LATEST_PENDING_BEFORE``, a SELECT of its own."""
    def build(*slots: Slot) -> Any:
        query = ProcessedUpdate.insert(
            {f: Slot(slot.index, f.db_value) for f, slot in zip(fields, slots)}).on_conflict_ignore()
        earlier = ProcessedUpdate.alias("earlier")
        latest_pending = earlier.select(peewee.fn.MAX(earlier.update_id)).where(
            (earlier.chat_key == slots[-2]) & earlier.processed_at.is_null() & (earlier.update_id < slots[-1]))
        return query.returning(ProcessedUpdate.update_id, latest_pending)

    return Prepared(build, len(fields) + 2)


_STORE = _store_query(*_STORED_FIELDS)
# The same for a worker among several on one SQLite file (its token in claimed_by).
_STORE_OWNED = _store_query(*_STORED_FIELDS, ProcessedUpdate.claimed_by)
_STORE_PLAIN = prepared_insert(ProcessedUpdate, _STORED_FIELDS, on_conflict_ignore=True)
_STORE_OWNED_PLAIN = prepared_insert(ProcessedUpdate, (*_STORED_FIELDS, ProcessedUpdate.claimed_by),
                                     on_conflict_ignore=True)
# A chat's updates still to process that came before this one, oldest first (partial index of
# migration 0005).
_PENDING_BEFORE = Prepared(
    lambda chat_key, update_id: ProcessedUpdate.select(ProcessedUpdate.update_id)
    .where((ProcessedUpdate.chat_key == chat_key) & ProcessedUpdate.processed_at.is_null()
           & (ProcessedUpdate.update_id < update_id))
    .order_by(ProcessedUpdate.update_id)
    .limit(10)
    .tuples(),
    2,
)
# The latest of them (the store asks it in its own INSERT where the database has RETURNING).
_LATEST_PENDING_BEFORE = Prepared(
    lambda chat_key, update_id: ProcessedUpdate.select(peewee.fn.MAX(ProcessedUpdate.update_id))
    .where((ProcessedUpdate.chat_key == chat_key) & ProcessedUpdate.processed_at.is_null()
           & (ProcessedUpdate.update_id < update_id))
    .tuples(),
    2,
)
# Who holds an update still to process (workers on SQLite: claimed_by).
_PENDING_HOLDER = Prepared(
    lambda update_id: ProcessedUpdate.select(ProcessedUpdate.claimed_by)
    .where((ProcessedUpdate.update_id == update_id) & ProcessedUpdate.processed_at.is_null())
    .tuples(),
    1,
)
# Which of the rows other processes' updates wait for are still to process (runner._DoneWatch).
_PENDING_AMONG_MAX = 512
_PENDING_AMONG = PreparedShapes(
    lambda ids: ProcessedUpdate.select(ProcessedUpdate.update_id)
    .where(ProcessedUpdate.update_id.in_(list(ids)) & ProcessedUpdate.processed_at.is_null())
    .tuples(),
)
_MARK = Prepared(
    lambda processed_at, update_id: ProcessedUpdate.update(
        {ProcessedUpdate.processed_at: peewee.fn.COALESCE(
            ProcessedUpdate.processed_at, Slot(processed_at.index, ProcessedUpdate.processed_at.db_value))}
    ).where(ProcessedUpdate.update_id == update_id),
    2,
)
_MARK_FAILED = Prepared(
    lambda processed_at, error, update_id: ProcessedUpdate.update(
        {ProcessedUpdate.processed_at: peewee.fn.COALESCE(
            ProcessedUpdate.processed_at, Slot(processed_at.index, ProcessedUpdate.processed_at.db_value)),
         ProcessedUpdate.error: Slot(error.index, ProcessedUpdate.error.db_value)}
    ).where(ProcessedUpdate.update_id == update_id),
    3,
)


class Accepted(enum.Enum):
    """What :meth:`Inbox.accept` did with an update."""

    NEW_CLAIMED = "new, and claimed by this worker"  # process it with the payload at hand
    NEW = "new, not claimed"  # another worker raced for it; claim before processing
    DUPLICATE = "seen before"  # acknowledge, do nothing


class Stored(NamedTuple):
    """What :meth:`Inbox.store` did, and the latest earlier update of the same chat still to
    process at that moment, if any (the caller processes this one after it)."""

    accepted: Accepted
    after: int | None


class Inbox:
    """The ``processed_updates`` table, used from any thread."""

    def __init__(self, engine: Any, *, max_attempts: int = MAX_ATTEMPTS, owner: WorkerLock | None = None):
        """``owner``: this process's :class:`WorkerLock` when it is one of several worker
        processes on one SQLite file (ignored on PostgreSQL, where advisory locks do it)."""
        self.engine = engine
        self.db: peewee.Database = engine.db
        self.max_attempts = max_attempts
        self._inflight: set[int] = set()
        self._mutex = threading.Lock()
        self._locks = _AdvisoryLocks(self.db) if is_postgres(self.db) else None
        self._owner = owner if self._locks is None else None
        self._gone_workers: set[str] = set()  # workers whose rows were taken over (logged once each)
        #: Other processes may hold rows of this inbox (PostgreSQL, or one of several workers on
        #: SQLite): then a chat's update may have to wait for an earlier one (pending_before).
        self.shared = self._locks is not None or self._owner is not None
        self._commits = _GroupCommit(engine)

    # --- receiving ---------------------------------------------------------------

    def accept(self, update_id: int, payload: str, chat_key: int | None = None) -> Accepted:
        """Store the update if it is new, committed on return (``chat_key``: whose it is, see
        :meth:`pending_before`).

        A new row is normally claimed at once (``attempts = 1``, this process's
        in-flight set, and on PostgreSQL the advisory lock), which saves the
        claim's own write; the caller then processes it and calls :meth:`finish`.
        """
        return self.store(update_id, payload, chat_key).accepted

    def store(self, update_id: int, payload: str, chat_key: int | None = None,
              received_at: dt.datetime | None = None) -> Stored:
        """:meth:`accept`, also telling the latest earlier update of the chat still to process
        (only asked when other processes may hold rows: :attr:`shared`). ``received_at``: when
        the update arrived (naive UTC; default now), the moment a button press counts from."""
        claimed = self._take(update_id)
        received_at = received_at or utcnow()
        owner = self._owner
        ask = self.shared and chat_key is not None

        def store() -> tuple[bool, bool, int | None]:
            values: tuple[Any, ...] = (update_id, payload, received_at, 1 if claimed else 0, chat_key)
            if owner is not None:
                values += (owner.token if claimed else None,)
            if ask and self.db.returning_clause:  # stored and asked in one statement
                rows = (_STORE if owner is None else _STORE_OWNED).cursor(self.db, *values, chat_key, update_id) \
                    .fetchall()  # all (one or none): the statement is done before the commit
                stored, after = bool(rows), rows[0][1] if rows else None
            else:
                stored = (_STORE_PLAIN if owner is None else _STORE_OWNED_PLAIN).write(self.db, *values) == 1
                after = _LATEST_PENDING_BEFORE.first(self.db, chat_key, update_id)[0] if stored and ask else None
            if stored:
                return True, claimed, after
            if not claimed:
                return False, False, None
            # A racing delivery stored it first but could not claim it (we hold the claim):
            # take it over, or nobody would process it before the next sweep.
            changes: dict[Any, Any] = {ProcessedUpdate.attempts: ProcessedUpdate.attempts + 1}
            if owner is not None:
                changes[ProcessedUpdate.claimed_by] = owner.token
            taken = (
                ProcessedUpdate.update(changes)
                .where((ProcessedUpdate.update_id == update_id) & ProcessedUpdate.processed_at.is_null()
                       & (ProcessedUpdate.attempts == 0))
                .execute()
            )
            # Not asked: the caller looks before processing (an id no update has, below any).
            return False, taken == 1, -1 if ask else None

        try:
            inserted, owned, after = self._commits.run(store, update_id)
        except BaseException:
            if claimed:
                self._release(update_id, True)
            raise
        if owned:
            return Stored(Accepted.NEW_CLAIMED, after)
        if claimed:
            self._release(update_id, True)
        return Stored(Accepted.NEW if inserted else Accepted.DUPLICATE, after)

    # --- processing --------------------------------------------------------------

    def _take(self, update_id: int) -> bool:
        """Reserve ``update_id`` for this worker (in-process set, PostgreSQL advisory lock)."""
        with self._mutex:
            if update_id in self._inflight:
                return False
            self._inflight.add(update_id)
        if self._locks is not None:
            try:
                if not self._locks.try_lock(update_id):
                    self._release(update_id, False)  # another live process has it
                    return False
            except BaseException:
                self._release(update_id, False)
                raise
        return True

    def claim(self, update_id: int) -> str | None:
        """Take a stored update for processing; its payload, or None when it is done or taken."""
        claimed = self.claim_update(update_id)
        return claimed.payload if claimed is not None else None

    def claim_update(self, update_id: int) -> ClaimedUpdate | None:
        """:meth:`claim`, telling also when the update was received."""
        if not self.may_claim(update_id):  # a read first: the transaction below takes the write lock
            return None
        if not self._take(update_id):
            return None

        def take() -> Any:
            row = self._take_row(update_id)
            if row is not None and row.attempts > self.max_attempts:
                # Claimed this often and never finished: each try killed its process.
                self._mark(update_id, f"given up after {self.max_attempts} interrupted attempts")
                logger.error("update %s: given up after %s interrupted attempts", update_id, self.max_attempts)
                row = None
            return row

        try:
            row = self._commits.run(take, update_id)
        except BaseException:
            self._release(update_id, True)
            raise
        if row is None:
            self._release(update_id, True)
            return None
        return ClaimedUpdate(row.payload, row.received_at)

    def may_claim(self, update_id: int) -> bool:
        """False when :meth:`claim` would surely find the row done or held by a live process
        (told by a read where the database can tell: workers on a SQLite file); True otherwise."""
        return self._owner is None or self._may_take(update_id)

    def _may_take(self, update_id: int) -> bool:
        """One of several workers on a SQLite file: may the row be claimable? A read, without the
        write lock the claim's transaction takes. Most claims of another worker's row find that
        worker alive (an update waiting for an earlier one of its chat tries now and then, in case
        it died); under load thousands of such claims competed for the write lock."""
        with self.engine.session():
            row = _PENDING_HOLDER.first(self.db, update_id)
        if row is None:
            return False  # processed (or never stored)
        holder = row[0]
        assert self._owner is not None
        return holder is None or holder == self._owner.token or not self._owner.alive(holder)

    def _take_row(self, update_id: int) -> Any:
        """In a transaction: claim the row in the database; its payload and attempts, or None."""
        if self._owner is None:
            taken = (
                ProcessedUpdate.update(attempts=ProcessedUpdate.attempts + 1)
                .where((ProcessedUpdate.update_id == update_id) & ProcessedUpdate.processed_at.is_null())
                .execute()
            )
            if not taken:
                return None
            return (
                ProcessedUpdate.select(ProcessedUpdate.payload, ProcessedUpdate.attempts, ProcessedUpdate.received_at)
                .where(ProcessedUpdate.update_id == update_id)
                .first()
            )
        # One of several workers on a SQLite file: the row's holder must be nobody, this
        # worker, or a worker that is gone; then compare-and-set, so of two workers that
        # both found the holder dead only one takes the row.
        row = (
            ProcessedUpdate.select(ProcessedUpdate.payload, ProcessedUpdate.attempts, ProcessedUpdate.claimed_by,
                                   ProcessedUpdate.received_at)
            .where((ProcessedUpdate.update_id == update_id) & ProcessedUpdate.processed_at.is_null())
            .first()
        )
        if row is None:
            return None
        holder = row.claimed_by
        if holder is not None and holder != self._owner.token and self._owner.alive(holder):
            return None  # a live worker is processing it
        same_holder = ProcessedUpdate.claimed_by.is_null() if holder is None else ProcessedUpdate.claimed_by == holder
        taken = (
            ProcessedUpdate.update({ProcessedUpdate.attempts: ProcessedUpdate.attempts + 1,
                                    ProcessedUpdate.claimed_by: self._owner.token})
            .where((ProcessedUpdate.update_id == update_id) & ProcessedUpdate.processed_at.is_null() & same_holder)
            .execute()
        )
        if not taken:
            return None
        if holder is not None and holder != self._owner.token:
            # Once per gone worker at WARNING (its updates may be many), the rest at DEBUG.
            first = holder not in self._gone_workers
            self._gone_workers.add(holder)
            logger.log(logging.WARNING if first else logging.DEBUG,
                       "update %s: taking it over from worker %s, which is gone%s", update_id, holder,
                       " (its other updates are taken over too, logged at DEBUG)" if first else "")
        row.attempts += 1
        return row

    def pending_before(self, update_id: int, chat_key: int) -> list[int]:
        """The update_ids of ``chat_key``'s updates still to process that came before ``update_id``,
        oldest first (at most 10): Telegram sends a chat's next update once the previous one is
        stored, so with several processes that one may still be in another process's hands."""
        with self.engine.session():
            return [row[0] for row in _PENDING_BEFORE.rows(self.db, chat_key, update_id)]

    def still_pending(self, update_ids: list[int]) -> list[int]:
        """Those of ``update_ids`` not processed yet."""
        found: list[int] = []
        with self.engine.session():
            for start in range(0, len(update_ids), _PENDING_AMONG_MAX):
                chunk = update_ids[start:start + _PENDING_AMONG_MAX]
                # Lists padded to a power of two (repeating the last id): a few SQL shapes, each
                # compiled once, however many updates wait.
                size = 1 << (len(chunk) - 1).bit_length()
                chunk += [chunk[-1]] * (size - len(chunk))
                found += [row[0] for row in _PENDING_AMONG.shape(size).rows(self.db, *chunk)]
        return found

    def is_in_flight(self, update_id: int) -> bool:
        """Whether this process holds ``update_id`` (claimed and not finished)."""
        with self._mutex:
            return update_id in self._inflight

    def finish(self, update_id: int, error: str | None = None, *, already_marked: bool = False) -> None:
        """Mark a claimed update processed (keeping an earlier mark) and release it.

        ``already_marked``: an engine write marked it in its own transaction and
        nothing failed, so there is nothing to write, and no I/O at all (on PostgreSQL
        its advisory lock is released with the next statement on the lock connection).
        """
        try:
            if not already_marked or error is not None:
                self._commits.run(lambda: self._mark(update_id, error), update_id)
        finally:
            self._release(update_id, True, later=True)

    def release(self, update_id: int) -> None:
        """Give a claimed update back unprocessed (it is picked up by a sweep or the next start)."""
        self._release(update_id, True)

    def release_finished(self) -> None:
        """Release now what :meth:`finish` left for later (the periodic sweep calls it)."""
        if self._locks is not None:
            self._locks.flush()

    def _mark(self, update_id: int, error: str | None) -> None:
        if error is None:
            _MARK.write(self.db, utcnow(), update_id)
        else:
            _MARK_FAILED.write(self.db, utcnow(), error[:2000], update_id)

    def _release(self, update_id: int, locked: bool, *, later: bool = False) -> None:
        """Undo :meth:`_take` (only its owner may call this: the in-flight entry is shared)."""
        if locked and self._locks is not None:
            try:
                if later:
                    self._locks.unlock_later(update_id)
                else:
                    self._locks.unlock(update_id)
            except Exception:  # the lock dies with the connection anyway
                logger.warning("could not release the advisory lock of update %s", update_id, exc_info=True)
        with self._mutex:
            self._inflight.discard(update_id)

    # --- housekeeping ------------------------------------------------------------

    def unprocessed(self, *, received_before: dt.datetime | None = None, limit: int = 500) -> list[PendingUpdate]:
        """Updates still to process, oldest first (optionally only ones received before a moment);
        the first ``limit`` of them, less any this process is working on."""
        return next(self.unprocessed_pages(received_before=received_before, page=limit), [])

    def unprocessed_pages(self, *, received_before: dt.datetime | None = None,
                          page: int = 500) -> Iterator[list[PendingUpdate]]:
        """Every update still to process, oldest first, ``page`` rows at a time (less those this
        process is working on), paged by update id: a page queued for processing is still
        unprocessed when the next one is read."""
        after = None
        while True:
            query = ProcessedUpdate.select(ProcessedUpdate.update_id, ProcessedUpdate.payload).where(
                ProcessedUpdate.processed_at.is_null()
            )
            if received_before is not None:
                query = query.where(ProcessedUpdate.received_at < received_before)
            if after is not None:
                query = query.where(ProcessedUpdate.update_id > after)
            with self.engine.session():
                query = query.order_by(ProcessedUpdate.update_id).limit(page)
                rows = [PendingUpdate(r.update_id, r.payload) for r in query]
            if not rows:
                return
            after = rows[-1].update_id
            with self._mutex:
                free = [r for r in rows if r.update_id not in self._inflight]
            yield free
            if len(rows) < page:
                return

    def prune(self, *, processed_before: dt.datetime) -> int:
        """Forget processed updates older than a moment (Telegram re-delivers for 24 hours at most).

        About :data:`PRUNE_BATCH` rows per transaction, oldest first: one DELETE of a big backlog
        (an imported inbox, a long pause of the sweep) held SQLite's write lock, and this
        process's inbox writes, for seconds (4 s for 2 million rows); between batches the
        bot's writes go on.
        """
        processed_at = ProcessedUpdate.processed_at
        forgotten = 0
        after: dt.datetime | None = None  # the batches so far deleted every row up to this moment
        while True:
            # A batch is a range of processed_at (the index's order) up to the PRUNE_BATCH-th oldest
            # row, rows of the same moment with it. It starts where the last one ended: on
            # PostgreSQL deleted rows stay in the index until a vacuum, and each batch would step
            # over all of them again. One upper bound (``last`` is before ``processed_before``):
            # given two, SQLite's range scan used one and read every old row to check the other.
            since = processed_at.is_null(False) if after is None else processed_at > after
            with self.engine.session():
                last = (ProcessedUpdate.select(processed_at).where(since & (processed_at < processed_before))
                        .order_by(processed_at).offset(PRUNE_BATCH - 1).limit(1).scalar())
            batch = since & (processed_at < processed_before if last is None else processed_at <= last)
            forgotten += self._commits.run(lambda batch=batch: ProcessedUpdate.delete().where(batch).execute())
            if last is None:
                return forgotten
            after = last

    def in_flight(self) -> int:
        with self._mutex:
            return len(self._inflight)

    def close(self) -> None:
        if self._locks is not None:
            self._locks.close()


@contextmanager
def processing(update_id: int) -> Iterator[None]:
    """Mark the current context as processing ``update_id`` (for the engine-write hooks)."""
    token = current_update_id.set(update_id)
    try:
        yield
    finally:
        current_update_id.reset(token)
