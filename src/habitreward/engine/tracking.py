"""Completions, undo, pieces and claims: the rules of PRODUCT.md §3, each one transaction."""

from __future__ import annotations

import datetime as dt

import peewee

from habitreward.engine import validation
from habitreward.engine.base import EngineBase, to_utc_naive
from habitreward.engine.prepared import Prepared, Slot, loaded, prepared_insert
from habitreward.engine.results import CompletionResult, UndoResult
from habitreward.errors import NotClaimable, NotFound, NothingToUndo, ValidationError
from habitreward.events import CompletionUndone, HabitCompleted, RewardClaimed, StreakBroken
from habitreward.models import Habit, HabitLog, ProgressStatus, Reward, RewardProgress, User, utcnow

_LOG_FIELDS = (HabitLog.id, HabitLog.completed_on, HabitLog.streak_count)

#: Days a log can lie after the user's today: local dates of two time zones differ by up to 26
#: hours, so a user who moved west (UTC+14 -> UTC-12) may have logged up to two of their new days
#: ahead. A completion of today looks that far ahead: a later log needs its streak recomputed.
LATER_DAYS = 2

# The statements every completion runs, compiled once (see engine/prepared.py).
_LATEST_LOG = Prepared(
    lambda user_id, habit_id, until: HabitLog.select(*_LOG_FIELDS)
    .where((HabitLog.user == user_id) & (HabitLog.habit == habit_id) & (HabitLog.completed_on <= until))
    .order_by(HabitLog.completed_on.desc())
    .limit(1),
    3,
)
_Latest = HabitLog.alias("latest")


def _habit_and_latest_query(user_id: Slot, habit_id: Slot, until: Slot) -> peewee.ModelSelect:
    """The habit's current row with the user's latest log of it on or before ``until`` (its
    ``_LOG_FIELDS`` as ``log_<name>``, None when there is none); no row once the habit is deleted.

    What a completion decides on (active, owner, weight, grace) is the row as the transaction
    finds it, not the Habit object the caller loaded earlier; read in the statement that looks
    up the latest log anyway, so the check costs no round trip of its own.
    """
    latest = _Latest.select(_Latest.id).where(
        (_Latest.user == user_id) & (_Latest.habit == habit_id) & (_Latest.completed_on <= until)
    ).order_by(_Latest.completed_on.desc()).limit(1)
    logged = [field.alias(f"log_{field.name}") for field in _LOG_FIELDS]
    return (
        Habit.select(Habit, *logged)
        .join(HabitLog, peewee.JOIN.LEFT_OUTER, on=(HabitLog.id == latest))
        .where(Habit.id == habit_id)
    )


#: Flat: the log's columns land on the Habit row (see :func:`current_habit`).
_HABIT_AND_LATEST = Prepared(_habit_and_latest_query, 3, flat=True)
_INSERT_LOG_FIELDS = tuple(f for f in HabitLog._meta.sorted_fields if not f.primary_key and f.name != "airtable_id")
_INSERT_LOG = prepared_insert(HabitLog, _INSERT_LOG_FIELDS)
_INSERT_PROGRESS_FIELDS = (
    RewardProgress.user, RewardProgress.reward, RewardProgress.pieces_earned, RewardProgress.claimed,
    RewardProgress.times_claimed, RewardProgress.created_at, RewardProgress.updated_at,
)
# A row stored meanwhile by a writer that does not take the user's lock wins (no id comes back).
_INSERT_PROGRESS = prepared_insert(RewardProgress, _INSERT_PROGRESS_FIELDS,
                                   skip_if_exists=(RewardProgress.user, RewardProgress.reward))
_UPDATE_PROGRESS = Prepared(
    lambda pieces, claimed, updated_at, progress_id: RewardProgress.update(
        {RewardProgress.pieces_earned: Slot(pieces.index, RewardProgress.pieces_earned.db_value),
         RewardProgress.claimed: Slot(claimed.index, RewardProgress.claimed.db_value),
         RewardProgress.updated_at: Slot(updated_at.index, RewardProgress.updated_at.db_value)}
    ).where(RewardProgress.id == progress_id),
    4,
)


class TrackingMixin(EngineBase):
    # --- completion -------------------------------------------------------------------

    def complete(
        self,
        user: User,
        habit: Habit,
        *,
        at: dt.datetime | None = None,
        day: dt.date | None = None,
        source: str | None = "",
    ) -> CompletionResult:
        """Log ``habit`` as done by ``user`` and draw a reward.

        ``at`` is when the user acted (a message's date; default now) and fixes
        the local day; ``day`` backdates to one of the last 7 local days. A second
        completion of the same habit on the same day returns ``already_done``
        and draws nothing. ``source`` says where it came from (at most 16 characters kept; None is
        none).
        """
        source = validation.optional_text(source, "source")
        now = self.now()
        moment = validation.moment(at) if at is not None else now
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.timezone.utc)
        moment = min(moment, now)  # clock skew must not move a completion into the future
        today = self.local_date(user, now)
        day = validation.calendar_day(day) if day is not None else self.local_date(user, moment)
        if day != self.local_date(user, moment):
            moment = now  # a backdated entry is recorded when it was reported

        try:
            with self.transaction(lock_user=user):
                return self._complete_locked(user, habit, day, today, moment, source)
        except peewee.IntegrityError:
            # The unique (user, habit, day) index caught a race the lock did not (only possible
            # when callers bypass the lock): report, never double-log. Any other integrity error
            # (a plugin's write, say) is that error, not "already done".
            with self.session():
                log = HabitLog.get_or_none(
                    (HabitLog.user == user.id) & (HabitLog.habit == habit.id) & (HabitLog.completed_on == day)
                )
                gone = log is None and not User.select().where(User.id == user.id).exists()
                habit_gone = log is None and not Habit.select().where(Habit.id == habit.id).exists()
            if gone:  # the caller's user object outlived the user (deleted meanwhile)
                raise NotFound(f"No user with Telegram id {user.telegram_id}.") from None
            if habit_gone:  # deleted after the transaction read it (PostgreSQL: no lock on habits)
                raise NotFound("That habit no longer exists.") from None
            if log is None:
                raise
            return _already_done(habit, day, today, log)

    def earliest_day(self, user: User, habit: Habit) -> dt.date:
        """The earliest day ``habit`` can be logged for today: 7 days back, not before it was added."""
        created = self.local_date(user, habit.created_at.replace(tzinfo=dt.timezone.utc))
        return max(self.today(user) - dt.timedelta(days=validation.BACKDATE_DAYS), created)

    def _check_day(self, user: User, habit: Habit, day: dt.date, today: dt.date) -> None:
        """A day ``habit`` may be logged on: not in the future, not more than BACKDATE_DAYS ago,
        not before the habit existed."""
        if day > today:
            raise ValidationError(f"{day.isoformat()} is in the future for this user (today is {today.isoformat()}).")
        if (today - day).days > validation.BACKDATE_DAYS:
            raise ValidationError(
                f"{day.isoformat()} is more than {validation.BACKDATE_DAYS} days ago: only the last"
                f" {validation.BACKDATE_DAYS} days can be logged."
            )
        created = self.local_date(user, habit.created_at.replace(tzinfo=dt.timezone.utc))
        if day < created:
            raise ValidationError(
                f"{day.isoformat()} is before the habit {habit.name!r} existed (added {created.isoformat()})."
            )

    def _complete_locked(
        self, user: User, habit: Habit, day: dt.date, today: dt.date, moment: dt.datetime, source: str
    ) -> CompletionResult:
        # A backdated day's later logs are recomputed anyway; today's exist only after a move west.
        until = day + dt.timedelta(days=LATER_DAYS) if day == today else day
        habit, latest = current_habit(self.db, user, habit, until)  # NotFound first, as before any day rule
        self._check_day(user, habit, day, today)
        later = latest is not None and latest.completed_on > day
        if later:  # rare (see LATER_DAYS): the streak builds on the latest on or before the day
            latest = _LATEST_LOG.first(self.db, user.id, habit.id, day)
        if latest is not None and latest.completed_on == day:
            return _already_done(habit, day, today, HabitLog.get_by_id(latest.id))
        previous_day = latest.completed_on if latest else None
        previous_streak = latest.streak_count if latest else 0
        streak = self.hooks.compute_streak(habit, day, previous_day, previous_streak)
        multiplier = self.hooks.odds_multiplier(habit, streak, self.settings, user, day)

        candidates = self._candidates(user, day)
        weighted = self.hooks.weigh_rewards(candidates, multiplier)
        chosen = self.hooks.draw_reward(weighted, self.rng)
        reward = chosen.reward if chosen is not None and not chosen.reward.is_nothing else None

        progress = self._add_piece(user, reward, *_progress_read(candidates, reward, user)) \
            if reward is not None else None
        log = HabitLog(
            user=user.id,
            habit=habit.id,
            reward=reward.id if reward else None,
            got_reward=reward is not None,
            streak_count=streak,
            habit_weight=habit.weight,
            total_weight_applied=multiplier,
            completed_on=day,
            timestamp=to_utc_naive(moment),
            created_at=self.utcnow(),
            reward_cycle=progress.times_claimed if progress else None,
            source=source[:16],
        )
        log.id = _INSERT_LOG.insert(self.db, *(log.__data__[f.name] for f in _INSERT_LOG_FIELDS))
        backdated = day < today
        if backdated or later:
            self._restreak(user, habit, day, day, streak)

        if previous_day is not None and streak == 1 and previous_streak > 0:
            self.hooks.streak_broken(
                self, StreakBroken(user=user, habit=habit, previous_streak=previous_streak,
                                   last_day=previous_day, day=day)
            )
        awards = self.hooks.habit_completed(
            self,
            HabitCompleted(user=user, habit=habit, log=log, streak=streak, multiplier=multiplier,
                           reward=reward, progress=progress, day=day, backdated=backdated),
        )
        return CompletionResult(
            habit=habit, day=day, streak=streak, already_done=False, log=log, reward=reward,
            progress=progress, multiplier=multiplier, backdated=backdated, awards=awards,
        )

    def _add_piece(self, user: User, reward: Reward, read: RewardProgress | None = None,
                   absent: bool = False) -> RewardProgress:
        """One more piece of ``reward``; a claimed reward starts its next cycle at 1.

        ``read``: the user's progress row as already read in this transaction (by the
        draw's query, under the user's lock), which saves reading it again; ``absent``:
        that query found no row, so the first piece is inserted at once.
        """
        if absent:
            now = utcnow()
            progress = RewardProgress(user=user.id, reward=reward.id, pieces_earned=1, claimed=False,
                                      times_claimed=0, created_at=now, updated_at=now)
            values = (progress.__data__[f.name] for f in _INSERT_PROGRESS_FIELDS)
            progress.id = _INSERT_PROGRESS.insert(self.db, *values)
            if progress.id is not None:
                progress.reward = reward
                return progress
            read = None  # another writer stored the row meanwhile: add the piece to it
        progress = read if read is not None else RewardProgress.get_or_create(user=user.id, reward=reward.id)[0]
        if progress.claimed:
            progress.claimed = False
            progress.pieces_earned = 1
        else:
            progress.pieces_earned += 1
        if read is None:
            progress.save()
        else:  # only what changed: a narrower statement than save()'s every-column UPDATE
            progress.updated_at = utcnow()
            _UPDATE_PROGRESS.write(self.db, progress.pieces_earned, progress.claimed, progress.updated_at, progress.id)
        progress.reward = reward
        return progress

    def grant_piece(self, user: User, reward: Reward) -> RewardProgress | None:
        """Give ``user`` a piece of ``reward`` outside the draw (for plugins: bonuses).

        Returns ``None`` when the reward is ACHIEVED and unclaimed (the piece would be
        lost) or was removed since ``reward`` was loaded: no piece is granted. The reward's
        current ``pieces_required`` decides. Joins the caller's transaction.
        """
        with self.transaction(lock_user=user):
            reward, existing = self._reward_and_progress(user, reward)
            if reward is None or not reward.active:
                return None
            if existing is not None and existing.status_for(reward.pieces_required) is ProgressStatus.ACHIEVED:
                return None
            return self._add_piece(user, reward, existing, existing is None)

    def _reward_and_progress(self, user: User, reward: Reward) -> tuple[Reward | None, RewardProgress | None]:
        """``reward`` as its row is now (None once deleted), and ``user``'s progress of it (None:
        no piece yet), in one statement: a claim or a piece counts ``pieces_required`` as it is
        now, not as it was when the caller loaded the reward."""
        row = (
            Reward.select(Reward, RewardProgress)
            .join(RewardProgress, peewee.JOIN.LEFT_OUTER,
                  on=((RewardProgress.reward == Reward.id) & (RewardProgress.user == user.id)))
            .where(Reward.id == reward.id)
            .first()
        )
        if row is None:
            return None, None
        progress = vars(row).pop("rewardprogress", None)
        if progress is not None:
            progress.reward = row
        return row, progress

    def _restreak(
        self, user: User, habit: Habit, after: dt.date, previous_day: dt.date | None, previous_streak: int
    ) -> None:
        """Recompute the stored streaks of ``habit`` completions after the day ``after``."""
        later = (
            HabitLog.select(*_LOG_FIELDS)
            .where((HabitLog.user == user.id) & (HabitLog.habit == habit.id) & (HabitLog.completed_on > after))
            .order_by(HabitLog.completed_on)
        )
        for log in later:
            new_streak = self.hooks.compute_streak(habit, log.completed_on, previous_day, previous_streak)
            if new_streak != log.streak_count:
                HabitLog.update(streak_count=new_streak).where(HabitLog.id == log.id).execute()
            previous_day, previous_streak = log.completed_on, new_streak

    # --- undo --------------------------------------------------------------------------

    def undo(self, user: User, habit: Habit, *, log_id: int | None = None,
             recorded_at: dt.datetime | None = None) -> UndoResult:
        """Revert the last recorded completion of ``habit`` (or the given one of its logs).

        Its piece is taken back unless it was already claimed, and later streaks are
        recomputed. ``recorded_at`` (the log's naive UTC ``created_at``) must match too
        when given: SQLite reuses a deleted log's id, so an id alone can name a newer log.
        """
        with self.transaction(lock_user=user):
            # The habit's row comes with the log: removed meanwhile is NotFound, and the later
            # streaks are recomputed with its grace as it is now.
            query = (HabitLog.select(HabitLog, Habit).join(Habit)
                     .where((HabitLog.user == user.id) & (HabitLog.habit == habit.id)))
            if log_id is not None:
                # "abc", True or 2.5 names no log (None: IS NULL, no row), not log 1 or 2 as int() would.
                query = query.where(HabitLog.id == validation.row_id(log_id))
            if recorded_at is not None:
                query = query.where(HabitLog.created_at == recorded_at)
            log = query.order_by(_unindexed(HabitLog.id).desc()).first()
            if log is None:
                current = Habit.get_or_none(Habit.id == habit.id)
                if current is None:
                    raise NotFound("That habit no longer exists.")
                _check_visible(current, user)
                raise NothingToUndo(f"There is no completion of {current.name!r} to undo.")
            habit = log.habit
            _check_visible(habit, user)
            reward = Reward.get_by_id(log.reward_id) if log.reward_id else None
            taken_back = False
            if reward is not None:
                progress = RewardProgress.get_or_none(
                    (RewardProgress.user == user.id) & (RewardProgress.reward == reward.id)
                )
                if (
                    progress is not None
                    and not progress.claimed
                    and progress.times_claimed == log.reward_cycle
                    and progress.pieces_earned > 0
                ):
                    # The first piece of a new cycle taken back: claimed, as before it came.
                    back_to_claimed = progress.pieces_earned == 1 and progress.times_claimed > 0
                    RewardProgress.update(
                        pieces_earned=RewardProgress.pieces_earned - 1, claimed=back_to_claimed,
                        updated_at=self.utcnow(),
                    ).where(RewardProgress.id == progress.id).execute()
                    taken_back = True
            log.delete_instance()
            before = (
                HabitLog.select(*_LOG_FIELDS)
                .where((HabitLog.user == user.id) & (HabitLog.habit == habit.id)
                       & (HabitLog.completed_on < log.completed_on))
                .order_by(HabitLog.completed_on.desc())
                .first()
            )
            self._restreak(
                user, habit, log.completed_on,
                before.completed_on if before else None, before.streak_count if before else 0,
            )
            self.hooks.completion_undone(
                self, CompletionUndone(user=user, habit=habit, day=log.completed_on, reward=reward,
                                       piece_taken_back=taken_back)
            )
        current = self.current_streak(user, habit)
        return UndoResult(habit=habit, day=log.completed_on, reward=reward, piece_taken_back=taken_back,
                          streak=current)

    # --- claim ---------------------------------------------------------------------------

    def claim(self, user: User, reward: Reward) -> RewardProgress:
        """Claim an ACHIEVED reward: it becomes CLAIMED and the next piece starts a new cycle.

        A claim spends ``pieces_required`` pieces. Pieces beyond that (held when an admin
        lowered ``pieces_required``) are not lost: they begin the next cycle, so the
        progress is PENDING (or ACHIEVED again) with those pieces instead of CLAIMED.
        """
        with self.transaction(lock_user=user):
            reward, progress = self._reward_and_progress(user, reward)
            if reward is None:
                raise NotFound("That reward no longer exists.")
            status = progress.status_for(reward.pieces_required) if progress else ProgressStatus.PENDING
            if progress is None or status is not ProgressStatus.ACHIEVED:
                earned = progress.pieces_earned if progress and not progress.claimed else 0
                if status is ProgressStatus.CLAIMED:
                    raise NotClaimable(f"{reward.name!r} is already claimed; earn it again first.")
                raise NotClaimable(
                    f"{reward.name!r} is not achieved yet: {earned} of {reward.pieces_required} pieces."
                )
            surplus = progress.pieces_earned - reward.pieces_required
            progress.times_claimed += 1
            if surplus > 0:
                progress.pieces_earned = surplus
                # The pieces kept are the newest: their logs join the new cycle, so an undo of one
                # still takes its piece back (undo compares the log's cycle with the progress's).
                newest = (HabitLog.select(HabitLog.id)
                          .where((HabitLog.user == user.id) & (_unindexed(HabitLog.reward) == reward.id)
                                 & (HabitLog.reward_cycle == progress.times_claimed - 1))
                          .order_by(HabitLog.id.desc()).limit(surplus))
                HabitLog.update(reward_cycle=progress.times_claimed).where(HabitLog.id.in_(newest)).execute()
            else:
                progress.claimed = True
            progress.save()
            progress.reward = reward
            self.hooks.reward_claimed(self, RewardClaimed(user=user, reward=reward, progress=progress))
        return progress


def current_habit(db: peewee.Database, user: User, habit: Habit, until: dt.date) -> tuple[Habit, HabitLog | None]:
    """``habit`` as its row is now, and ``user``'s latest log of it on or before ``until``.

    NotFound when the habit was removed (or deleted, or is another user's) since the caller
    loaded it; changed weight and grace are the row's. One statement (see _HABIT_AND_LATEST).
    """
    row = _HABIT_AND_LATEST.first(db, user.id, habit.id, until)
    if row is None:  # deleted: with its owner, perhaps the very user completing it
        if not User.select().where(User.id == user.id).exists():
            raise NotFound(f"No user with Telegram id {user.telegram_id}.")
        raise NotFound("That habit no longer exists.")
    _check_visible(row, user)
    columns = vars(row)
    data = {field.name: columns.pop(f"log_{field.name}") for field in _LOG_FIELDS}
    return row, (loaded(HabitLog, data) if data["id"] is not None else None)


def _check_visible(habit: Habit, user: User) -> None:
    """NotFound unless ``habit`` (as read now) is active and ``user``'s to log."""
    if not habit.active:
        raise NotFound(f"The habit {habit.name!r} was removed.")
    if habit.owner_id is not None and habit.owner_id != user.id:
        raise NotFound("That habit no longer exists.")


def _unindexed(column: peewee.Field) -> peewee.Expression:
    """``column + 0``: the same value, but no index serves it, so the planner cannot pick an index
    of the column for it.

    Where a user's own logs are wanted newest first, SQLite (and PostgreSQL, with some statistics)
    preferred walking an index that yields the ORDER BY (the primary key, or a shared habit's or
    reward's index, which holds every user's logs of it) and filtering on the user, over the user's
    index and a sort: that read every later log of every user (seconds on a big database), where
    the user's index reads only the user's rows.
    """
    return column + 0


def _already_done(habit: Habit, day: dt.date, today: dt.date, log: HabitLog) -> CompletionResult:
    """A completion of a day already logged: nothing drawn, the stored log's streak and multiplier."""
    return CompletionResult(habit=habit, day=day, streak=log.streak_count, already_done=True, log=log,
                            multiplier=log.total_weight_applied, backdated=day < today)


_UNREAD = object()


def _progress_read(candidates: list, reward: Reward, user: User) -> tuple[RewardProgress | None, bool]:
    """``user``'s progress of ``reward`` as the draw's candidate query read it: (row, absent).

    (None, False) when that query did not cover ``reward`` (a plugin's own pick).
    """
    for candidate in candidates:
        if candidate.reward.id == reward.id:
            progress = getattr(candidate.reward, "rewardprogress", _UNREAD)
            if progress is _UNREAD:
                return None, False
            if progress is None:
                return None, True  # the LEFT JOIN found no row
            if progress.user_id == user.id:
                return progress, False
            return None, False
    return None, False
