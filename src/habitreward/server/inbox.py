"""The update inbox: what makes processing exactly-once.

Every update is stored (``processed_updates``, keyed by ``update_id``) and
committed *before* the webhook answers 2xx or the poller confirms it to
Telegram. Then it is processed from the inbox:

1. **accept**: ``INSERT`` if absent. A re-delivered or concurrently duplicated
   update_id finds its row and is acknowledged without being processed again.
2. **claim**: one worker, in one process, takes the row:
   ``UPDATE ... SET attempts = attempts + 1 WHERE update_id = ? AND processed_at IS NULL``.
   Inside a process an in-flight set keeps two tasks off one row. On
   PostgreSQL a session-level advisory lock on the update_id, held on a
   dedicated connection while the update is processed, keeps other processes
   off it; the lock dies with its process, so a crashed process's rows become
   claimable at once. On SQLite the database write lock makes the ``UPDATE``
   atomic, and :func:`habitreward.server.service` lets one server process use
   a SQLite file at a time.
3. **apply**: python-telegram-bot runs the handlers. The engine's own writes
   (completion, undo, claim) mark the row processed *in their own
   transaction* (see :mod:`habitreward.server.applied`), so "the habit was
   logged" and "the update is done" commit together.
4. **finish**: ``processed_at`` is set (if step 3 did not already), with the
   handler's error, if any.

A row left unprocessed (process killed after answering, or during step 3 before
any engine write committed) is processed on the next start, or by the periodic
sweep of another live process.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import peewee

from habitreward.db import is_postgres
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


@dataclass(frozen=True)
class PendingUpdate:
    update_id: int
    payload: str


class _AdvisoryLocks:
    """PostgreSQL session-level advisory locks on one dedicated connection.

    The two-key form ``(high 32 bits, low 32 bits)`` of the update_id is an exact,
    collision-free key that cannot clash with the single-bigint lock the schema
    upgrade uses.
    """

    def __init__(self, database: peewee.PostgresqlDatabase):
        self._database = database
        self._conn: Any = None
        self._mutex = threading.Lock()

    def _cursor(self) -> Any:
        if self._conn is None or self._conn.closed:
            import psycopg2

            self._conn = psycopg2.connect(dbname=self._database.database, **self._database.connect_params)
            self._conn.autocommit = True
        return self._conn.cursor()

    @staticmethod
    def _keys(update_id: int) -> tuple[int, int]:
        high, low = (update_id >> 32) & 0xFFFFFFFF, update_id & 0xFFFFFFFF
        signed = lambda v: v - (1 << 32) if v >= (1 << 31) else v  # noqa: E731 - int4 is signed
        return signed(high), signed(low)

    def try_lock(self, update_id: int) -> bool:
        with self._mutex, self._cursor() as cur:
            cur.execute("SELECT pg_try_advisory_lock(%s, %s)", self._keys(update_id))
            return bool(cur.fetchone()[0])

    def unlock(self, update_id: int) -> None:
        with self._mutex:
            if self._conn is None or self._conn.closed:
                return
            with self._conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(%s, %s)", self._keys(update_id))

    def close(self) -> None:
        with self._mutex:
            if self._conn is not None and not self._conn.closed:
                self._conn.close()
            self._conn = None


class Inbox:
    """The ``processed_updates`` table, used from any thread."""

    def __init__(self, engine: Any, *, max_attempts: int = MAX_ATTEMPTS):
        self.engine = engine
        self.db: peewee.Database = engine.db
        self.max_attempts = max_attempts
        self._inflight: set[int] = set()
        self._mutex = threading.Lock()
        self._locks = _AdvisoryLocks(self.db) if is_postgres(self.db) else None

    # --- receiving ---------------------------------------------------------------

    def accept(self, update_id: int, payload: str) -> bool:
        """Store the update if it is new, committed on return. False = seen before."""
        query = ProcessedUpdate.insert(update_id=update_id, payload=payload, received_at=utcnow()).on_conflict_ignore()
        with self.engine.session(), self.db.atomic():
            cursor = self.db.execute(query)
            return cursor.rowcount == 1

    # --- processing --------------------------------------------------------------

    def claim(self, update_id: int) -> str | None:
        """Take the update for processing; its payload, or None when it is done or taken."""
        with self._mutex:
            if update_id in self._inflight:
                return None
            self._inflight.add(update_id)
        locked = False
        try:
            if self._locks is not None:
                locked = self._locks.try_lock(update_id)
                if not locked:
                    self._release(update_id, locked)  # another live process has it
                    return None
            with self.engine.session(), self.db.atomic():
                taken = (
                    ProcessedUpdate.update(attempts=ProcessedUpdate.attempts + 1)
                    .where((ProcessedUpdate.update_id == update_id) & ProcessedUpdate.processed_at.is_null())
                    .execute()
                )
                row = (
                    ProcessedUpdate.select(ProcessedUpdate.payload, ProcessedUpdate.attempts)
                    .where(ProcessedUpdate.update_id == update_id)
                    .first()
                    if taken
                    else None
                )
                if row is not None and row.attempts > self.max_attempts:
                    # Claimed this often and never finished: each try killed its process.
                    self._mark(update_id, f"given up after {self.max_attempts} interrupted attempts")
                    logger.error("update %s: given up after %s interrupted attempts", update_id, self.max_attempts)
                    row = None
        except BaseException:
            self._release(update_id, locked)
            raise
        if row is None:
            self._release(update_id, locked)
            return None
        return row.payload

    def finish(self, update_id: int, error: str | None = None) -> None:
        """Mark a claimed update processed (keeping an earlier mark) and release it."""
        try:
            with self.engine.session(), self.db.atomic():
                self._mark(update_id, error)
        finally:
            self._release(update_id, self._locks is not None)

    def _mark(self, update_id: int, error: str | None) -> None:
        fields: dict[Any, Any] = {
            ProcessedUpdate.processed_at: peewee.fn.COALESCE(ProcessedUpdate.processed_at, utcnow())
        }
        if error is not None:
            fields[ProcessedUpdate.error] = error[:2000]
        ProcessedUpdate.update(fields).where(ProcessedUpdate.update_id == update_id).execute()

    def _release(self, update_id: int, locked: bool) -> None:
        if locked and self._locks is not None:
            try:
                self._locks.unlock(update_id)
            except Exception:  # the lock dies with the connection anyway
                logger.warning("could not release the advisory lock of update %s", update_id, exc_info=True)
        with self._mutex:
            self._inflight.discard(update_id)

    # --- housekeeping ------------------------------------------------------------

    def unprocessed(self, *, received_before: dt.datetime | None = None, limit: int = 500) -> list[PendingUpdate]:
        """Updates still to process, oldest first (optionally only ones received before a moment)."""
        query = ProcessedUpdate.select(ProcessedUpdate.update_id, ProcessedUpdate.payload).where(
            ProcessedUpdate.processed_at.is_null()
        )
        if received_before is not None:
            query = query.where(ProcessedUpdate.received_at < received_before)
        with self.engine.session():
            rows = [PendingUpdate(r.update_id, r.payload) for r in query.order_by(ProcessedUpdate.update_id).limit(limit)]
        with self._mutex:
            return [r for r in rows if r.update_id not in self._inflight]

    def prune(self, *, processed_before: dt.datetime) -> int:
        """Forget processed updates older than a moment (Telegram re-delivers for 24 hours at most)."""
        with self.engine.session(), self.db.atomic():
            return (
                ProcessedUpdate.delete()
                .where(ProcessedUpdate.processed_at.is_null(False) & (ProcessedUpdate.processed_at < processed_before))
                .execute()
            )

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
