"""Engine writes mark their update processed in the same transaction.

Registered on the engine's plugin manager by ``habitreward serve`` only. While
an update is processed, :data:`~habitreward.server.inbox.current_update_id` is
set (it follows ``await`` and ``asyncio.to_thread``); the engine's "inside the
transaction" events then mark that inbox row processed, so a completion, an
undo or a claim and the inbox mark commit together. A process killed after that
commit does not apply the update again on restart (the reply may be lost
instead, which is the safe side); killed before it, nothing was written and
the update is applied on restart.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

import peewee

from habitreward.db import database_proxy, is_postgres
from habitreward.engine.prepared import Prepared, Slot
from habitreward.errors import UpdateAppliedElsewhere
from habitreward.hookspecs import hookimpl
from habitreward.models import ProcessedUpdate, utcnow
from habitreward.server.inbox import current_update_id

PLUGIN_NAME = "habitreward.server.applied"

# Runs in every completion's transaction (compiled once: see engine/prepared.py).
_MARK_APPLIED = Prepared(
    lambda processed_at, update_id: ProcessedUpdate.update(
        {ProcessedUpdate.processed_at: Slot(processed_at.index, ProcessedUpdate.processed_at.db_value)}
    ).where((ProcessedUpdate.update_id == update_id) & ProcessedUpdate.processed_at.is_null()),
    2,
)

#: PostgreSQL: the mark sent with the COMMIT (its row count is not read there), made to fail when
#: it finds the row processed already, so the whole transaction is rolled back: the update was
#: applied by another process (the CASE is not a constant, so the cast runs only then).
ELSEWHERE = UpdateAppliedElsewhere.MARKER
_MARK_OR_FAIL_SQL = (
    "WITH marked AS (UPDATE processed_updates SET processed_at = %s WHERE update_id = %s"
    " AND processed_at IS NULL RETURNING 1)"
    f" SELECT CAST(CASE WHEN COUNT(*) = 0 THEN '{ELSEWHERE}' ELSE '1' END AS integer) FROM marked"
)

_registered: weakref.WeakSet = weakref.WeakSet()
_marked: set[int] = set()
_marked_lock = threading.Lock()


def consume_mark(update_id: int) -> bool:
    """True when an engine write marked ``update_id`` (then the runner need not write again)."""
    with _marked_lock:
        if update_id in _marked:
            _marked.discard(update_id)
            return True
        return False


def mark_current_update_applied() -> None:
    """Mark the update being processed as done, inside the caller's open transaction.

    For plugin handlers with their own writes: call it in the same transaction,
    and a crash after the commit does not apply the update a second time.
    Outside ``habitreward serve`` (no update being processed) it does nothing.
    """
    update_id = current_update_id.get()
    if update_id is None:
        return
    with _marked_lock:
        if update_id in _marked:  # an earlier transaction of this update marked it ("ran and read")
            return
    db = database_proxy.obj
    if is_postgres(db):
        # With the COMMIT (one round trip fewer); it fails the commit if the row was marked meanwhile.
        if db not in _registered:  # prepared on the server, as the engine's statements
            _registered.add(db)
            register = getattr(db, "register_statement", None)
            if register is not None:
                register(_MARK_OR_FAIL_SQL)
        params = (ProcessedUpdate.processed_at.db_value(utcnow()), update_id)
        if not db.write_at_commit(_MARK_OR_FAIL_SQL, params):
            try:
                db.execute_sql(_MARK_OR_FAIL_SQL, params)
            except peewee.DataError as exc:
                UpdateAppliedElsewhere.raise_for(exc)
                raise
    elif not _MARK_APPLIED.write(db, utcnow(), update_id):
        raise UpdateAppliedElsewhere(f"update {update_id} was applied by another process")
    # Should the transaction roll back, the operation raised, and the runner records
    # that error with a write of its own; so the note is only used when nothing failed.
    with _marked_lock:
        _marked.add(update_id)



@hookimpl(trylast=True)
def habitreward_habit_completed(engine: Any, event: Any) -> None:
    mark_current_update_applied()


@hookimpl(trylast=True)
def habitreward_completion_undone(engine: Any, event: Any) -> None:
    mark_current_update_applied()


@hookimpl(trylast=True)
def habitreward_reward_claimed(engine: Any, event: Any) -> None:
    mark_current_update_applied()


def register(plugin_manager: Any) -> None:
    """Add these hooks to ``plugin_manager`` (once)."""
    import sys

    if not plugin_manager.has_plugin(PLUGIN_NAME):
        plugin_manager.register(sys.modules[__name__], name=PLUGIN_NAME)
