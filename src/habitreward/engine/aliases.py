"""Habit aliases: other words for a habit in free text ("jog" for Running, "пробежка" for Бег).

Aliases follow the habit's edit rights: the owner (or an admin) for a
personal habit, admins for a shared one, anyone at the command line.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Iterable, Iterator

import peewee

from habitreward.engine import validation
from habitreward.engine.base import EngineBase
from habitreward.engine.results import AliasListing
from habitreward.errors import Conflict, NotFound, ValidationError
from habitreward.models import Habit, HabitAlias, User

MAX_ALIAS_LENGTH = 100
MAX_ALIASES_PER_HABIT = 20


class AliasesMixin(EngineBase):
    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002,ANN003 - passes EngineBase's arguments on
        super().__init__(*args, **kwargs)
        # The last free-text matcher needs this engine's settings (LLM) and database (counters).
        from habitreward.plugins.nlp import bind_engine

        bind_engine(self)

    def add_alias(self, habit: Habit, alias: str, *, actor: User | None = None) -> str:
        """Add ``alias`` to ``habit``; returns the alias as stored (tidied as a name is)."""
        from habitreward.nlp.store import alias_key

        self._check_may_edit(habit, actor)  # type: ignore[attr-defined] - from CatalogMixin
        text = validation.tidy_name(alias)  # as names: spacing tidied, invisible characters gone
        key = alias_key(text)
        if not key:
            raise ValidationError("An alias needs at least one letter or digit.")
        if len(text) > MAX_ALIAS_LENGTH:
            raise ValidationError(f"An alias can have at most {MAX_ALIAS_LENGTH} characters.")
        if len(key) > MAX_ALIAS_LENGTH:  # stored too, in a column of that size; "ß" is "ss" in it
            raise ValidationError(f"An alias can have at most {MAX_ALIAS_LENGTH} characters, counting ß as ss"
                                  f" and the like: this one has {len(key)}.")
        with self.transaction():
            # The habit as it is now: removed (or deleted) since the caller loaded it is NotFound,
            # as edit_habit's is, and a rename meanwhile is the name an alias may not repeat.
            habit = self._current(Habit, habit)  # type: ignore[attr-defined]
            if key == alias_key(habit.name):
                raise Conflict(f"{text!r} is already the habit's name.")
            existing = HabitAlias.select().where(HabitAlias.habit == habit.id)
            if existing.where(HabitAlias.normalized == key).exists():
                raise Conflict(f"{habit.name!r} already has the alias {text!r}.")
            if existing.count() >= MAX_ALIASES_PER_HABIT:
                raise ValidationError(f"A habit can have at most {MAX_ALIASES_PER_HABIT} aliases.")
            try:
                with self.db.atomic():
                    HabitAlias.create(habit=habit.id, alias=text, normalized=key, created_at=self.utcnow())
            except peewee.IntegrityError:  # added by someone else at the same moment
                raise Conflict(f"{habit.name!r} already has the alias {text!r}.") from None
        return text

    def remove_alias(self, habit: Habit, alias: str, *, actor: User | None = None) -> None:
        from habitreward.nlp.store import alias_key

        self._check_may_edit(habit, actor)  # type: ignore[attr-defined]
        with self.transaction():
            habit = self._current(Habit, habit)  # type: ignore[attr-defined] - NotFound once removed
            deleted = (
                HabitAlias.delete()
                .where((HabitAlias.habit == habit.id) & (HabitAlias.normalized == alias_key(alias)))
                .execute()
            )
        if not deleted:
            raise NotFound(f"{habit.name!r} has no alias {alias!r}.")

    def aliases_for(self, habits: Iterable[Habit]) -> dict[int, list[str]]:
        """Aliases by habit id, one query; habits without aliases map to an empty list."""
        from habitreward.nlp.store import load_aliases

        habits = list(habits)
        with self.session():
            found = load_aliases(h.id for h in habits)
        return {h.id: found.get(h.id, []) for h in habits}

    def alias_listing(self, user: User | None = None) -> Iterator[AliasListing]:
        """Every active habit that has aliases, with them: all habits in :meth:`all_habits`'
        order, or with ``user`` the habits they see in :meth:`habits_for`'s. One query joining
        the aliases to their habits, read as it is asked for, in one snapshot (not every habit,
        then their aliases by a list of all their ids: 2 s and a statement of 45,000 values for
        45,000 habits, more than some SQLite builds take). Write nothing while iterating (the
        snapshot is read-only: PostgreSQL refuses it); ``list()`` it first."""
        from habitreward.engine.catalog import all_habits_order

        query = (HabitAlias.select(Habit.id, Habit.name, HabitAlias.alias)
                 .join(Habit, on=(HabitAlias.habit == Habit.id))
                 .where(Habit.active))
        if user is None:
            order = all_habits_order()
        else:
            query = query.where(Habit.owner.is_null() | (Habit.owner == user.id))
            order = peewee.fn.LOWER(Habit.name), Habit.id
        query = query.order_by(*order, HabitAlias.id).tuples()
        rows = self._snapshot_rows(query)
        for (habit_id, name), group in itertools.groupby(rows, operator.itemgetter(0, 1)):
            yield AliasListing(habit_id, name, [alias for _, _, alias in group])
