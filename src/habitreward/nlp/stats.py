"""Counting what free-text matching costs: in this process, and across processes in ``KeyValue``.

The process counters are plain integers behind a lock (cheap, per message).
LLM calls are also added to the ``stats`` namespace of ``KeyValue`` with one
atomic ``UPDATE``, so ``habitreward stats`` sees the calls of every bot
process; a message the local matcher settles writes nothing.
"""

from __future__ import annotations

import threading
from collections import Counter

import peewee

from habitreward.models import KeyValue, utcnow
from habitreward.nlp.store import connected

NAMESPACE = "stats"
#: Persisted counters shown by ``habitreward stats``.
PERSISTED = ("llm_calls", "llm_failures")

_lock = threading.Lock()
_process: Counter[str] = Counter()


def count(name: str, amount: int = 1) -> None:
    """Add to a counter of this process (``messages``, ``settled_locally``, ``llm_calls``...)."""
    with _lock:
        _process[name] += amount


def process_counts() -> dict[str, int]:
    with _lock:
        return dict(_process)


def reset_process_counts() -> None:
    """For tests."""
    with _lock:
        _process.clear()


def persist(database: peewee.Database, name: str, amount: int = 1) -> None:
    """Add ``amount`` to the persisted counter ``name`` (atomic, safe from several processes).

    Queries run on ``database`` explicitly, not through the models' proxy, so
    a counter lands in the engine's own database.
    """
    with connected(database), database.atomic():
        KeyValue.insert(namespace=NAMESPACE, key=name, value="0", updated_at=utcnow()).on_conflict_ignore().execute(
            database
        )
        # The value column holds JSON text; an integer's JSON is its decimal form.
        new_value = peewee.Cast(peewee.Cast(KeyValue.value, "INTEGER") + amount, "TEXT")
        KeyValue.update(value=new_value, updated_at=utcnow()).where(
            (KeyValue.namespace == NAMESPACE) & (KeyValue.key == name)
        ).execute(database)


def persisted_counts(database: peewee.Database) -> dict[str, int]:
    """The persisted counters (missing ones are 0)."""
    counts = dict.fromkeys(PERSISTED, 0)
    with connected(database):
        query = KeyValue.select(KeyValue.key, KeyValue.value).where(KeyValue.namespace == NAMESPACE)
        for key, value in query.tuples().execute(database):
            try:
                counts[key] = int(value)
            except ValueError:
                continue
    return counts


__all__ = ["NAMESPACE", "count", "persist", "persisted_counts", "process_counts", "reset_process_counts"]
