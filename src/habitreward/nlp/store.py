"""Reading aliases: one query for all of a message's habits."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import peewee

from habitreward.db import database_proxy
from habitreward.engine.prepared import PreparedShapes
from habitreward.nlp.normalize import normalize, words


def alias_key(alias: str) -> str:
    """What makes two aliases the same: case, accents, punctuation and spacing ignored."""
    return " ".join(words(normalize(alias)))


@contextmanager
def connected(database: peewee.Database | peewee.DatabaseProxy = database_proxy) -> Iterator[None]:
    """A connection for one read; released afterwards only if it was opened here (as ``Engine.session``)."""
    opened = database.is_closed()
    if opened:
        database.connect()
    try:
        yield
    finally:
        if opened and not database.in_transaction():
            database.close()


#: Habit ids per statement: a person who sees more habits than this (shared ones of a big bot) has
#: their aliases read in several statements, each within what any SQLite build takes (999 values
#: before SQLite 3.32, 32,766 since).
IDS_PER_STATEMENT = 500


def load_aliases(habit_ids: Iterable[int]) -> dict[int, list[str]]:
    """Aliases by habit id (habits without aliases are left out), in the order they were added."""
    ids = sorted(set(habit_ids))
    if not ids:
        return {}
    found: dict[int, list[str]] = {}
    with connected():
        for start in range(0, len(ids), IDS_PER_STATEMENT):
            chunk = ids[start:start + IDS_PER_STATEMENT]
            for habit_id, alias in _aliases_query().shape(len(chunk)).rows(database_proxy.obj, *chunk):
                found.setdefault(habit_id, []).append(alias)
    return found


@functools.cache
def _aliases_query() -> PreparedShapes:
    """Compiled once per number of habits (every free-text message runs it)."""
    from habitreward.models import HabitAlias

    return PreparedShapes(
        lambda ids: HabitAlias.select(HabitAlias.habit, HabitAlias.alias)
        .where(HabitAlias.habit.in_(list(ids)))
        .order_by(HabitAlias.id)
        .tuples()
    )
