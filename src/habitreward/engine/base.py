"""What every part of the engine shares: settings, database, plugins, clock and randomness."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import peewee
import pluggy

from habitreward.db import database_proxy, is_postgres, open_database, read_snapshot, stream_rows
from habitreward.draw import Candidate
from habitreward.engine.prepared import Prepared, Slot, loaded
from habitreward.engine.results import EXCLUDED_ACHIEVED, EXCLUDED_TODAY
from habitreward.engine.validation import stored_zone
from habitreward.hooks import Hooks
from habitreward.models import HabitLog, ProgressStatus, Reward, RewardProgress, User
from habitreward.plugins import make_plugin_manager
from habitreward.settings import Settings

Clock = Callable[[], dt.datetime]


def system_clock() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def to_utc_naive(moment: dt.datetime) -> dt.datetime:
    """The naive UTC form the tables store (a naive input is taken as UTC)."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(dt.timezone.utc).replace(tzinfo=None)


# Every completion, undo and claim on PostgreSQL starts with it (see Engine.transaction).
_LOCK_USER = Prepared(lambda user_id: User.select(peewee.SQL("1")).where(User.id == user_id).for_update().tuples(), 1)


class EngineBase:
    def __init__(
        self,
        settings: Settings | None = None,
        *,
        database: peewee.Database | None = None,
        plugin_manager: pluggy.PluginManager | None = None,
        rng: random.Random | None = None,
        clock: Clock | None = None,
    ):
        self.settings = settings or Settings.load()
        self.db = database or open_database(self.settings.database_url)
        self.pm = plugin_manager or make_plugin_manager()
        self.hooks = Hooks(self.pm)
        self.rng = rng or random.Random()
        self._clock = clock or system_clock
        # A pooled PostgreSQL connection goes back to the pool after each operation;
        # a SQLite connection is cheap to keep for the thread's lifetime.
        self._release_connections = is_postgres(self.db)

    # --- time ------------------------------------------------------------------

    def now(self) -> dt.datetime:
        """The current moment, timezone-aware (injectable for tests and simulations)."""
        moment = self._clock()
        return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)

    def utcnow(self) -> dt.datetime:
        """The current moment as the naive UTC datetime the tables store."""
        return to_utc_naive(self.now())

    def user_zone(self, user: User) -> dt.tzinfo:
        return stored_zone(user.timezone)

    def local_date(self, user: User, moment: dt.datetime | None = None) -> dt.date:
        """The user's calendar date at ``moment`` (default: now)."""
        moment = moment or self.now()
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.timezone.utc)
        return moment.astimezone(self.user_zone(user)).date()

    def today(self, user: User) -> dt.date:
        return self.local_date(user)

    # --- database sessions ---------------------------------------------------------

    @contextmanager
    def session(self) -> Iterator[None]:
        """A connection for the duration of an operation (reentrant).

        The models reach the database through one process-wide proxy. An engine
        points it at its own database when an operation starts, so engines used
        one after the other in a process (export from one database, import into
        another) each work on theirs. Two engines on different databases used
        from concurrent threads are not supported.
        """
        if database_proxy.obj is not self.db:
            database_proxy.initialize(self.db)
        opened = self.db.is_closed()
        if opened:
            self.db.connect()
        try:
            yield
        finally:
            if opened and self._release_connections and not self.db.in_transaction():
                self.db.close()

    def _snapshot_rows(self, query: peewee.Query) -> Iterator[tuple]:
        """The rows of ``query`` (``.tuples()``) as they are asked for, in one read-only snapshot
        (a server-side cursor on PostgreSQL): what the listings of every user, habit, reward
        and alias are read with. Write nothing while iterating."""
        with self.session(), read_snapshot(self.db):
            yield from stream_rows(self.db, query)

    @contextmanager
    def transaction(self, lock_user: User | None = None) -> Iterator[None]:
        """One atomic unit of work. ``lock_user`` serialises work on that user's data.

        SQLite transactions take the write lock at BEGIN (see db.py); on
        PostgreSQL the user's row is locked, so two completions by one person
        never interleave, while different people never wait on each other.
        """
        with self.session(), self.db.atomic():
            if lock_user is not None and is_postgres(self.db) and self.db.transaction_depth() == 1:
                _LOCK_USER.cursor(self.db, lock_user.id)
            yield

    def close(self) -> None:
        if not self.db.is_closed():
            self.db.close()
        if hasattr(self.db, "close_all"):
            self.db.close_all()

    # --- the draw's candidates (shared by completions and odds) -------------------------

    def _candidates(self, user: User, day: dt.date,
                    excluded: list[tuple[Reward, str]] | None = None) -> list[Candidate]:
        """Rewards that may still come out of a draw for ``user`` on ``day``, by id.

        Out: inactive ones, ACHIEVED-but-unclaimed ones (a piece must never be
        lost) and ones that reached ``max_per_day`` on that day; the last two are
        appended to ``excluded``, if given, as (reward, EXCLUDED_ACHIEVED or
        EXCLUDED_TODAY). One query; each reward carries the user's progress row as
        ``reward.rewardprogress`` (None when there is none yet) and ``drawn_today``.
        """
        candidates = []
        for reward in _CANDIDATES.rows(self.db, user.id, day):
            columns = vars(reward)
            progress_data = {name: columns.pop(alias) for name, alias in _PROGRESS_COLUMNS}
            progress = loaded(RewardProgress, progress_data) if progress_data["id"] is not None else None
            reward.rewardprogress = progress
            if progress is not None and progress.status_for(reward.pieces_required) is ProgressStatus.ACHIEVED:
                if excluded is not None:
                    excluded.append((reward, EXCLUDED_ACHIEVED))
                continue
            if reward.max_per_day and not reward.is_nothing and (reward.drawn_today or 0) >= reward.max_per_day:
                if excluded is not None:
                    excluded.append((reward, EXCLUDED_TODAY))
                continue
            candidates.append(Candidate(reward=reward, weight=float(reward.weight)))
        return candidates


#: The user's reward_progress columns in the candidates' query: (field name, column alias).
_PROGRESS_COLUMNS = [(field.name, f"progress_{field.name}") for field in RewardProgress._meta.sorted_fields]


def _candidates_query(user_id: Slot, day: Slot) -> peewee.ModelSelect:
    """Every reward ``user_id`` may draw, with the user's progress and what was drawn on ``day``."""
    drawn_today = (
        HabitLog.select(peewee.fn.COUNT(HabitLog.id))
        .where((HabitLog.user == user_id) & (HabitLog.completed_on == day) & (HabitLog.reward == Reward.id))
    )
    progress = [getattr(RewardProgress, name).alias(alias) for name, alias in _PROGRESS_COLUMNS]
    return (
        Reward.select(Reward, *progress, drawn_today.alias("drawn_today"))
        .join(
            RewardProgress,
            peewee.JOIN.LEFT_OUTER,
            on=((RewardProgress.reward == Reward.id) & (RewardProgress.user == user_id)),
        )
        .where(Reward.active & (Reward.owner.is_null() | (Reward.owner == user_id)))
        .order_by(Reward.id)
    )


#: Flat: the progress columns land on the Reward rows, and _candidates builds the progress.
_CANDIDATES = Prepared(_candidates_query, 2, flat=True)
