"""Habits and rewards: shared (no owner, admins edit) or personal (one owner).

Names are unique, case-insensitively, among what one user sees: a personal
name may not repeat a shared one, and a shared name may not repeat anybody's
personal one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any, TypeVar

import peewee

from habitreward.db import id_chunks, is_postgres
from habitreward.draw import Candidate
from habitreward.engine import validation
from habitreward.engine.base import EngineBase
from habitreward.engine.prepared import Prepared
from habitreward.engine.results import HabitListing, RewardListing
from habitreward.errors import Conflict, NotFound, PermissionDenied
from habitreward.models import Habit, Reward, User

ItemT = TypeVar("ItemT", Habit, Reward)

_UNSET: Any = object()

T = TypeVar("T")


def _or_default(value: T | None, default: T) -> T:
    """An optional setting of a new habit or reward: None is its default, as if left out (an
    embedder's "not given"). Edits keep their own rule: None there leaves the setting as it is."""
    return default if value is None else value

_HABITS_OF_USER = Prepared(
    lambda user_id: Habit.select()
    .where(Habit.active & (Habit.owner.is_null() | (Habit.owner == user_id)))
    .order_by(peewee.fn.LOWER(Habit.name), Habit.id),
    1,
)


# PostgreSQL advisory locks (any constants) that take turns among the writes giving a habit or
# a reward a name: checking a name and inserting it are two statements, and in READ COMMITTED two
# transactions both saw the name free and both wrote it. (SQLite's writers queue at BEGIN.)
_NAME_LOCK_KEYS = {Habit: 0x6861626974_0001, Reward: 0x6861626974_0002}


def sql_name_key(value: Any) -> peewee.Expression:
    """A name (a column or a text) as names are compared, worked out by the database for both
    sides: Python's lower() is not PostgreSQL's LOWER ("ΔΡΟΜΟΣ" is "δρομος" in Python,
    "δρομοσ" in PostgreSQL), so a name lowered in Python could miss itself. A final sigma
    counts as any sigma (as casefold has it), so both backends see the same names as one
    (validation.name_key is the same in Python)."""
    return peewee.fn.REPLACE(peewee.fn.LOWER(value), "ς", "σ")


def all_habits_order() -> tuple[peewee.Node, ...]:
    """The order of every habit (all_habits, habit_listing, alias_listing): shared ones first, by
    name; habits of one name (of different owners) by id, the same on every run and database."""
    return Habit.owner.is_null().desc(), peewee.fn.LOWER(Habit.name), Habit.id


def all_rewards_order() -> tuple[peewee.Node, ...]:
    """The order of every reward (all_rewards, reward_listing): as :func:`all_habits_order`."""
    return Reward.owner.is_null().desc(), peewee.fn.LOWER(Reward.name), Reward.id


def _visible_to(model: type[ItemT], user: User | None) -> peewee.Expression:
    if user is None:
        return model.owner.is_null()
    return model.owner.is_null() | (model.owner == user.id)


class CatalogMixin(EngineBase):
    # --- shared helpers ------------------------------------------------------------

    def _check_unique(self, model: type[ItemT], name: str, owner: User | None, exclude_id: int | None = None) -> None:
        """Conflict if ``name`` is taken; called in the transaction that then writes the name,
        which on PostgreSQL it makes wait for any other such transaction to end."""
        if is_postgres(self.db):
            self.db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (_NAME_LOCK_KEYS[model],))
        query = model.select(model.id).where(model.active & (sql_name_key(model.name) == sql_name_key(name)))
        if owner is not None:
            query = query.where(_visible_to(model, owner))
        if exclude_id is not None:
            query = query.where(model.id != exclude_id)
        if query.exists():
            what = "habit" if model is Habit else "reward"
            raise Conflict(f"There is already a {what} called {name!r}.")

    def _check_may_edit(self, item: Habit | Reward, actor: User | None) -> None:
        if actor is None:  # the operator at the command line
            return
        if item.owner_id is None and not actor.is_admin:
            raise PermissionDenied("Only an admin can change a shared one.")
        if item.owner_id is not None and item.owner_id != actor.id and not actor.is_admin:
            raise PermissionDenied("That belongs to someone else.")

    def _get_visible(self, model: type[ItemT], user: User | None, item_id: int) -> ItemT:
        # "abc" from a URL, True, 2.5 or an id past the column's range: no such item either.
        wanted = validation.row_id(item_id)
        item = None
        if wanted is not None:
            with self.session():
                query = model.select().where((model.id == wanted) & model.active)
                if user is not None:
                    query = query.where(_visible_to(model, user))
                item = query.first()
        if item is None:
            raise NotFound("That habit no longer exists." if model is Habit else "That reward no longer exists.")
        return item

    def _current(self, model: type[ItemT], item: ItemT) -> ItemT:
        """``item``'s row as it is now, to change: NotFound once it was removed (or deleted)
        since the caller loaded it, as a lookup would be."""
        current = model.get_or_none((model.id == item.id) & model.active)
        if current is None:
            raise NotFound("That habit no longer exists." if model is Habit else "That reward no longer exists.")
        return current

    def _find_by_name(self, model: type[ItemT], user: User | None, name: str) -> ItemT:
        wanted = validation.tidy_name(name)  # tidied as names are stored: "R\u200bun" finds "Run"
        with self.session():
            query = model.select().where(model.active & (sql_name_key(model.name) == sql_name_key(wanted)))
            query = query.where(_visible_to(model, user)) if user is not None else query
            # A personal item shadows nothing (names are unique) but prefer it if data is odd.
            item = query.order_by(model.owner.is_null(), model.id).first()
        if item is None:
            what = "habit" if model is Habit else "reward"
            raise NotFound(f"No {what} called {name!r}.")
        return item

    # --- habits ----------------------------------------------------------------------

    def habits_for(self, user: User | None) -> list[Habit]:
        """Active habits ``user`` sees (all shared ones when ``user`` is None), by name."""
        with self.session():
            if user is not None:  # every free-text message: compiled once
                return list(_HABITS_OF_USER.rows(self.db, user.id))
            query = Habit.select().where(Habit.active & _visible_to(Habit, user))
            return list(query.order_by(peewee.fn.LOWER(Habit.name), Habit.id))

    def all_habits(self, include_inactive: bool = False) -> list[Habit]:
        with self.session():
            query = Habit.select(Habit, User).join(User, peewee.JOIN.LEFT_OUTER, on=(Habit.owner == User.id))
            if not include_inactive:
                query = query.where(Habit.active)
            return list(query.order_by(*all_habits_order()))

    def has_habits(self) -> bool:
        """Whether there is any active habit, shared or personal (one row looked at, not
        :meth:`all_habits` read)."""
        with self.session():
            return Habit.select().where(Habit.active).exists()

    def habit_listing(self, include_inactive: bool = False) -> Iterator[HabitListing]:
        """:meth:`all_habits` as plain rows, read as they are asked for, in one snapshot: a
        listing of tens of thousands of habits builds no model instances and holds no list of
        them (on PostgreSQL a server-side cursor hands them out a batch at a time). Reading
        stops, and the snapshot ends, where the caller stops. The snapshot is a read-only
        transaction: write nothing while iterating (PostgreSQL refuses it); ``list()`` it first."""
        query = (Habit.select(Habit.id, Habit.name, Habit.weight, Habit.category, Habit.allowed_skip_days,
                              User.telegram_id, Habit.active)
                 .join(User, peewee.JOIN.LEFT_OUTER, on=(Habit.owner == User.id)))
        if not include_inactive:
            query = query.where(Habit.active)
        query = query.order_by(*all_habits_order()).tuples()
        for row in self._snapshot_rows(query):
            yield HabitListing(*row)

    def get_habit(self, user: User | None, habit_id: int) -> Habit:
        """A habit ``user`` may see; NotFound for another user's, a removed or a made-up id."""
        return self._get_visible(Habit, user, habit_id)

    def find_habit(self, user: User | None, name: str) -> Habit:
        return self._find_by_name(Habit, user, name)

    def add_habit(
        self,
        name: str,
        *,
        weight: int | None = 10,
        category: str | None = None,
        allowed_skip_days: int | None = 0,
        owner: User | None = None,
        actor: User | None = None,
    ) -> Habit:
        """A habit; None for a setting is its default, as leaving it out (docs/embedding.md)."""
        name = validation.clean_name(name, "habit name")
        weight = validation.habit_weight(_or_default(weight, 10))
        skip = validation.skip_days(_or_default(allowed_skip_days, 0))
        category = validation.clean_name(category, "category") if category else None
        if actor is not None and owner is None and not actor.is_admin:
            raise PermissionDenied("Only an admin can add a shared habit.")
        with self.transaction():
            self._check_unique(Habit, name, owner)
            return Habit.create(
                name=name,
                weight=weight,
                category=category,
                allowed_skip_days=skip,
                owner=owner,
                created_at=self.utcnow(),
            )

    def edit_habit(
        self,
        habit: Habit,
        *,
        name: str | None = None,
        weight: int | None = None,
        category: str | None = _UNSET,
        allowed_skip_days: int | None = None,
        actor: User | None = None,
    ) -> Habit:
        self._check_may_edit(habit, actor)
        with self.transaction():
            habit = self._current(Habit, habit)
            if name is not None:
                habit.name = validation.clean_name(name, "habit name")
                self._check_unique(Habit, habit.name, habit.owner, exclude_id=habit.id)
            if weight is not None:
                habit.weight = validation.habit_weight(weight)
            if category is not _UNSET:
                habit.category = validation.clean_name(category, "category") if category else None
            if allowed_skip_days is not None:
                habit.allowed_skip_days = validation.skip_days(allowed_skip_days)
            habit.save()
        return habit

    def remove_habit(self, habit: Habit, *, actor: User | None = None) -> Habit:
        """Soft delete: the habit disappears from menus, its history stays."""
        self._check_may_edit(habit, actor)
        with self.transaction():
            Habit.update(active=False, updated_at=self.utcnow()).where(Habit.id == habit.id).execute()
        habit.active = False
        return habit

    # --- rewards ----------------------------------------------------------------------

    def rewards_for(self, user: User | None) -> list[Reward]:
        with self.session():
            query = Reward.select().where(Reward.active & _visible_to(Reward, user))
            return list(query.order_by(peewee.fn.LOWER(Reward.name), Reward.id))

    def all_rewards(self, include_inactive: bool = False) -> list[Reward]:
        with self.session():
            query = Reward.select(Reward, User).join(User, peewee.JOIN.LEFT_OUTER, on=(Reward.owner == User.id))
            if not include_inactive:
                query = query.where(Reward.active)
            return list(query.order_by(*all_rewards_order()))

    def reward_listing(self, include_inactive: bool = False) -> Iterator[RewardListing]:
        """:meth:`all_rewards` as plain rows, read as they are asked for, in one read-only snapshot
        (as :meth:`habit_listing`: write nothing while iterating)."""
        query = (Reward.select(Reward.id, Reward.name, Reward.weight, Reward.type, Reward.pieces_required,
                               Reward.piece_value, Reward.max_per_day, User.telegram_id, Reward.active)
                 .join(User, peewee.JOIN.LEFT_OUTER, on=(Reward.owner == User.id)))
        if not include_inactive:
            query = query.where(Reward.active)
        query = query.order_by(*all_rewards_order()).tuples()
        for row in self._snapshot_rows(query):
            yield RewardListing(*row)

    def rewards_out_of_draw(self, rewards: Iterable[Reward | RewardListing]) -> set[int]:
        """The ids of those of ``rewards`` that a plugin keeps out of the random draw, whatever
        weight they were added with: ``habitreward_weigh_rewards`` gives them the weight 0 (or
        leaves them out), as perfect-day does its bonus reward, whose pieces it gives itself. A
        completion never draws them and ``odds`` leaves them out, so a listing shows that instead
        of their weight. ``rewards`` are weighed as one draw's candidates are, at the multiplier 1
        (a ``RewardListing`` row is read as its Reward first)."""
        rewards = list(rewards)
        models = [reward for reward in rewards if isinstance(reward, Reward)]
        ids = [reward.id for reward in rewards if not isinstance(reward, Reward)]
        with self.session():
            for chunk in id_chunks(ids):
                models.extend(Reward.select().where(Reward.id.in_(chunk)))
        if not models:
            return set()
        weighted = self.hooks.weigh_rewards([Candidate(reward=r, weight=float(r.weight)) for r in models], 1.0)
        return {reward.id for reward in models} - {c.reward.id for c in weighted if c.weight > 0}

    def get_reward(self, user: User | None, reward_id: int) -> Reward:
        return self._get_visible(Reward, user, reward_id)

    def find_reward(self, user: User | None, name: str) -> Reward:
        return self._find_by_name(Reward, user, name)

    def add_reward(
        self,
        name: str,
        *,
        weight: float | None = 1.0,
        type: str | None = "virtual",
        pieces_required: int | None = 1,
        piece_value: Decimal | float | str | None = None,
        max_per_day: int | None = 1,
        owner: User | None = None,
        actor: User | None = None,
    ) -> Reward:
        """A reward; None for a setting is its default, as leaving it out (docs/embedding.md): a
        ``type`` of None is "virtual", never the type "none"."""
        name = validation.clean_name(name, "reward name")
        fields = {
            "weight": validation.reward_weight(_or_default(weight, 1.0)),
            "type": validation.reward_type(_or_default(type, "virtual")),
            "pieces_required": validation.pieces_required(_or_default(pieces_required, 1)),
            "piece_value": validation.piece_value(piece_value),
            "max_per_day": validation.max_per_day(_or_default(max_per_day, 1)),
        }
        if actor is not None and owner is None and not actor.is_admin:
            raise PermissionDenied("Only an admin can add a shared reward.")
        with self.transaction():
            self._check_unique(Reward, name, owner)
            return Reward.create(name=name, owner=owner, created_at=self.utcnow(), **fields)

    def edit_reward(
        self,
        reward: Reward,
        *,
        name: str | None = None,
        weight: float | None = None,
        type: str | None = None,
        pieces_required: int | None = None,
        piece_value: Decimal | float | str | None = _UNSET,
        max_per_day: int | None = None,
        actor: User | None = None,
    ) -> Reward:
        self._check_may_edit(reward, actor)
        with self.transaction():
            reward = self._current(Reward, reward)
            if name is not None:
                reward.name = validation.clean_name(name, "reward name")
                self._check_unique(Reward, reward.name, reward.owner, exclude_id=reward.id)
            if weight is not None:
                reward.weight = validation.reward_weight(weight)
            if type is not None:
                reward.type = validation.reward_type(type)
            if pieces_required is not None:
                reward.pieces_required = validation.pieces_required(pieces_required)
            if piece_value is not _UNSET:
                reward.piece_value = validation.piece_value(piece_value)
            if max_per_day is not None:
                reward.max_per_day = validation.max_per_day(max_per_day)
            reward.save()
        return reward

    def remove_reward(self, reward: Reward, *, actor: User | None = None) -> Reward:
        """Soft delete: no longer drawn; earned progress stays visible and claimable."""
        self._check_may_edit(reward, actor)
        with self.transaction():
            Reward.update(active=False, updated_at=self.utcnow()).where(Reward.id == reward.id).execute()
        reward.active = False
        return reward
