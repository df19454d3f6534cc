"""Reading aliases: one query for all of a message's habits."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import peewee

from habitreward.db import database_proxy, id_chunks
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


def load_aliases(habit_ids: Iterable[int]) -> dict[int, list[str]]:
    """Aliases by habit id (habits without aliases are left out), in the order they were added."""
    ids = sorted(set(habit_ids))
    if not ids:
        return {}
    found: dict[int, list[str]] = {}
    with connected():
        # A person who sees more habits than IDS_PER_STATEMENT (shared ones of a big bot): several statements.
        for chunk in id_chunks(ids):
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
