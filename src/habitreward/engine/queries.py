"""Read-only views: streaks, history, odds and reward progress."""

from __future__ import annotations

import datetime as dt

import peewee

from habitreward.draw import probabilities
from habitreward.engine import validation
from habitreward.engine.base import EngineBase
from habitreward.engine.results import HistoryEntry, Odds, OddsRow, ProgressEntry, StreakInfo
from habitreward.engine.tracking import current_habit
from habitreward.models import Habit, HabitLog, ProgressStatus, Reward, RewardProgress, User


def shown_streak(last_day: dt.date | None, stored_streak: int, today: dt.date, allowed_skip_days: int) -> int:
    """The streak as of ``today``: 0 once more than ``allowed_skip_days`` days were missed."""
    if last_day is None:
        return 0
    missed = (today - last_day).days - 1
    return stored_streak if missed <= allowed_skip_days else 0


class QueriesMixin(EngineBase):
    def _latest_logs(self, user: User, until: dt.date, habit_ids: list[int] | None = None) -> dict[int, HabitLog]:
        """The latest completion up to ``until`` of each of the user's habits, in one query.

        ``until`` is the user's today: after a move west, logs of days ahead of it can exist
        (``tracking.LATER_DAYS``); they are not today's streak yet.
        """
        latest = (
            HabitLog.select(HabitLog.habit, peewee.fn.MAX(HabitLog.completed_on).alias("last_day"))
            .where((HabitLog.user == user.id) & (HabitLog.completed_on <= until))
            .group_by(HabitLog.habit)
        )
        if habit_ids is not None:
            latest = latest.where(HabitLog.habit.in_(habit_ids))
        latest = latest.alias("latest")
        query = (
            HabitLog.select(HabitLog.habit, HabitLog.completed_on, HabitLog.streak_count)
            .join(latest, on=((HabitLog.habit == latest.c.habit_id) & (HabitLog.completed_on == latest.c.last_day)))
            .where(HabitLog.user == user.id)
        )
        return {log.habit_id: log for log in query}

    def streaks(self, user: User) -> list[StreakInfo]:
        """The current streak of each of the user's active habits (0 when broken)."""
        today = self.today(user)
        with self.session():
            habits = self.habits_for(user)
            latest = self._latest_logs(user, today)
        infos = []
        for habit in habits:
            log = latest.get(habit.id)
            last_day = log.completed_on if log else None
            infos.append(
                StreakInfo(
                    habit=habit,
                    streak=shown_streak(last_day, log.streak_count if log else 0, today, habit.allowed_skip_days),
                    last_day=last_day,
                    done_today=last_day == today,
                )
            )
        return infos

    def current_streak(self, user: User, habit: Habit) -> int:
        """The streak of ``habit`` as of today (0 once broken), with the habit's grace as it is now."""
        today = self.today(user)
        with self.session():
            log = (
                HabitLog.select(HabitLog.completed_on, HabitLog.streak_count, Habit.allowed_skip_days)
                .join(Habit)
                .where((HabitLog.user == user.id) & (HabitLog.habit == habit.id) & (HabitLog.completed_on <= today))
                .order_by(HabitLog.completed_on.desc())
                .first()
            )
        if log is None:
            return 0
        return shown_streak(log.completed_on, log.streak_count, today, log.habit.allowed_skip_days)

    def history(self, user: User, limit: int | None = None) -> list[HistoryEntry]:
        """The user's latest completions, newest first: ``limit`` of them (None:
        ``RECENT_LOGS_LIMIT``; 0: none; a negative one is a ValidationError)."""
        limit = self.settings.recent_logs_limit if limit is None else validation.how_many(limit)
        if limit == 0:
            return []
        with self.session():
            query = (
                HabitLog.select(HabitLog, Habit, Reward)
                .join(Habit, on=(HabitLog.habit == Habit.id))
                .switch(HabitLog)
                .join(Reward, peewee.JOIN.LEFT_OUTER, on=(HabitLog.reward == Reward.id))
                .where(HabitLog.user == user.id)
                .order_by(HabitLog.completed_on.desc(), HabitLog.id.desc())
                .limit(limit)
            )
            return [
                HistoryEntry(
                    log=log,
                    habit_name=log.habit.name,
                    reward_name=log.reward.name if log.reward_id else None,
                )
                for log in query
            ]

    def odds(self, user: User, habit: Habit) -> Odds:
        """The chances the next completion of ``habit`` would have (NotFound once it is removed).

        That is today's, or tomorrow's when ``habit`` is already done today (a second completion
        today draws nothing): the streak it would then have, the multiplier for that day, and what
        is out of that day's draw. ``Odds.day`` and ``Odds.done_today`` say which.
        """
        today = self.today(user)
        with self.session():
            # The habit as it is now (NotFound once removed): its weight and grace make the odds.
            habit, latest = current_habit(self.db, user, habit, today)
            done_today = latest is not None and latest.completed_on == today
            day = today + dt.timedelta(days=1) if done_today else today
            streak = self.hooks.compute_streak(
                habit, day, latest.completed_on if latest else None, latest.streak_count if latest else 0
            )
            multiplier = self.hooks.odds_multiplier(habit, streak, self.settings, user, day)
            excluded: list[tuple[Reward, str]] = []
            candidates = self._candidates(user, day, excluded)
        weighted = self.hooks.weigh_rewards(candidates, multiplier)
        rows: list[OddsRow] = []
        nothing_probability = 0.0
        nothing_weight = 0.0
        for candidate, probability in probabilities(weighted):
            if candidate.reward.is_nothing:
                nothing_probability += probability
                nothing_weight += candidate.weight
            else:
                rows.append(OddsRow(reward=candidate.reward, probability=probability, weight=candidate.weight))
        if nothing_probability > 0 or not rows:
            rows.append(OddsRow(reward=None, probability=nothing_probability if rows else 1.0, weight=nothing_weight))
        return Odds(habit=habit, streak=streak, multiplier=multiplier, rows=tuple(rows), excluded=tuple(excluded),
                    day=day, done_today=done_today)

    def progress(self, user: User) -> list[ProgressEntry]:
        """The user's progress on every reward they have pieces of, or can still earn."""
        with self.session():
            query = (
                RewardProgress.select(RewardProgress, Reward)
                .join(Reward)
                .where(RewardProgress.user == user.id)
                .order_by(peewee.fn.LOWER(Reward.name))
            )
            entries = []
            for progress in query:
                status = progress.status_for(progress.reward.pieces_required)
                if not progress.reward.active and status is not ProgressStatus.ACHIEVED:
                    continue  # a removed reward stays only while it can still be claimed
                entries.append(
                    ProgressEntry(
                        reward=progress.reward,
                        pieces_earned=progress.pieces_earned,
                        status=status,
                        times_claimed=progress.times_claimed,
                    )
                )
            return entries

    def claimable(self, user: User) -> list[ProgressEntry]:
        return [entry for entry in self.progress(user) if entry.status is ProgressStatus.ACHIEVED]
