"""A model-based test of the engine's rules (docs/rules.md).

Hypothesis drives the real Engine through random sequences of users (time zones from UTC-12 to
UTC+14, half- and three-quarter-hour ones), shared and personal habits and rewards, completions
(today, a message's moment, backdated, and refused ones: the future, before the habit existed,
more than 7 days back, removed or someone else's habit), undos (refused for a removed habit),
claims, a moving clock, grace edits (refused for a removed habit), removals and moves east and
west. Beside it runs a plain model written from rules.md (not from the engine's code), and after
every step the database, the streaks view and the odds must agree with it. A failure prints the
steps that lead to it (``run_state_machine_as_test``).
"""

from __future__ import annotations

import datetime as dt
import os
import random
import zoneinfo
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from habitreward.errors import NotClaimable, NotFound, NothingToUndo, ValidationError
from habitreward.models import Habit, HabitLog, ProgressStatus, Reward, RewardProgress, User
from habitreward.testing.engines import FrozenClock, make_engine

UTC = dt.timezone.utc


def _offset(hours: int, minutes: int = 0) -> dt.tzinfo:
    sign = -1 if hours < 0 else 1
    return dt.timezone(sign * dt.timedelta(hours=abs(hours), minutes=minutes))


#: The zones users live in, each with the model's own idea of it (the sign of Etc/GMT is POSIX's).
ZONES: dict[str, dt.tzinfo] = {
    "UTC": UTC,
    "Pacific/Kiritimati": zoneinfo.ZoneInfo("Pacific/Kiritimati"),  # UTC+14
    "UTC+14": _offset(14),
    "Etc/GMT+12": _offset(-12),  # UTC-12
    "UTC-12": _offset(-12),
    "Pacific/Pago_Pago": _offset(-11),
    "Asia/Kolkata": _offset(5, 30),
    "+05:30": _offset(5, 30),
    "UTC-9:30": _offset(-9, 30),
    "Asia/Kathmandu": _offset(5, 45),
    "Pacific/Chatham": zoneinfo.ZoneInfo("Pacific/Chatham"),  # +13:45 / +12:45
    "America/St_Johns": zoneinfo.ZoneInfo("America/St_Johns"),  # -3:30 / -2:30
    "Australia/Adelaide": zoneinfo.ZoneInfo("Australia/Adelaide"),  # +10:30 / +9:30
    "Europe/Berlin": zoneinfo.ZoneInfo("Europe/Berlin"),
    "America/Los_Angeles": zoneinfo.ZoneInfo("America/Los_Angeles"),
}
EAST, WEST = "Pacific/Kiritimati", "Etc/GMT+12"

#: Moments the clock starts at: ordinary ones and ones near daylight saving changes.
STARTS = [
    dt.datetime(2026, 1, 5, 12, 0, tzinfo=UTC),
    dt.datetime(2026, 1, 5, 10, 30, tzinfo=UTC),  # 23:30 in UTC-11, 00:30 next day in UTC+14
    dt.datetime(2026, 3, 28, 22, 0, tzinfo=UTC),  # Europe springs forward the next night
    dt.datetime(2026, 10, 31, 20, 0, tzinfo=UTC),  # the US falls back the next night
    dt.datetime(2026, 4, 4, 15, 0, tzinfo=UTC),  # Adelaide and Chatham fall back
]

BACKDATE_DAYS = 7
MAX_USERS, MAX_HABITS, MAX_REWARDS = 4, 6, 6


@dataclass
class MUser:
    telegram_id: int
    zone: str
    id: int = 0


@dataclass
class MHabit:
    id: int
    owner: int | None  # telegram id
    grace: int
    weight: int
    created: dt.datetime
    active: bool = True


@dataclass
class MReward:
    id: int
    owner: int | None
    type: str
    weight: float
    pieces_required: int
    max_per_day: int
    active: bool = True


@dataclass
class MLog:
    seq: int  # the order completions were recorded in
    day: dt.date
    streak: int
    reward: int | None
    multiplier: float


@dataclass
class MProgress:
    live: list[int] = field(default_factory=list)  # seqs of the logs whose pieces are held now
    claimed: bool = False
    times_claimed: int = 0
    won: int = 0
    taken_back: int = 0
    spent: int = 0  # pieces_required per claim


class Model:
    """What rules.md says, in plain Python."""

    def __init__(self, rate: float, max_streak: int):
        self.rate, self.max_streak = rate, max_streak
        self.users: dict[int, MUser] = {}
        self.habits: dict[int, MHabit] = {}
        self.rewards: dict[int, MReward] = {}
        self.logs: dict[tuple[int, int], dict[dt.date, MLog]] = {}  # (telegram id, habit id) -> day -> log
        self.progress: dict[tuple[int, int], MProgress] = {}
        self.seq = 0

    # --- days ---
    def local(self, user: MUser, moment: dt.datetime) -> dt.date:
        return moment.astimezone(ZONES[user.zone]).date()

    def created_day(self, user: MUser, habit: MHabit) -> dt.date:
        return self.local(user, habit.created)

    # --- visibility ---
    @staticmethod
    def sees(user: MUser, item: MHabit | MReward) -> bool:
        return item.owner is None or item.owner == user.telegram_id

    # --- streaks ---
    def logs_of(self, user: MUser, habit: MHabit) -> dict[dt.date, MLog]:
        return self.logs.setdefault((user.telegram_id, habit.id), {})

    @staticmethod
    def next_streak(previous: MLog | None, day: dt.date, grace: int) -> int:
        """Rules "Streaks": +1 when at most ``grace`` days were missed since the previous one."""
        if previous is None:
            return 1
        missed = (day - previous.day).days - 1
        return previous.streak + 1 if missed <= grace else 1

    @staticmethod
    def before(logs: dict[dt.date, MLog], day: dt.date) -> MLog | None:
        earlier = [d for d in logs if d < day]
        return logs[max(earlier)] if earlier else None

    def restreak(self, logs: dict[dt.date, MLog], after: dt.date, grace: int) -> None:
        """Later streaks are recomputed, with the grace of now (rules "Streaks")."""
        previous = logs.get(after) or self.before(logs, after)
        for day in sorted(d for d in logs if d > after):
            logs[day].streak = self.next_streak(previous, day, grace)
            previous = logs[day]

    def shown_streak(self, user: MUser, habit: MHabit, today: dt.date) -> tuple[int, dt.date | None]:
        logs = self.logs_of(user, habit)
        upto = [d for d in logs if d <= today]
        if not upto:
            return 0, None
        last = max(upto)
        missed = (today - last).days - 1
        return (logs[last].streak if missed <= habit.grace else 0), last

    def multiplier(self, habit: MHabit, streak: int) -> float:
        return (habit.weight / 10) * (1 + min(streak, self.max_streak) * self.rate)

    # --- the draw ---
    def drawn_on(self, user: MUser, reward: MReward, day: dt.date) -> int:
        return sum(
            1 for (tid, _), logs in self.logs.items() if tid == user.telegram_id
            for log in logs.values() if log.day == day and log.reward == reward.id
        )

    def prog(self, user: MUser, reward: MReward) -> MProgress | None:
        return self.progress.get((user.telegram_id, reward.id))

    def achieved(self, user: MUser, reward: MReward) -> bool:
        p = self.prog(user, reward)
        return p is not None and not p.claimed and len(p.live) >= reward.pieces_required

    def draw_state(self, user: MUser, day: dt.date) -> tuple[set[int], set[int], set[int]]:
        """(real rewards in the draw, "none" entries in it, rewards out of it for a reason)."""
        real, nothing, out = set(), set(), set()
        for reward in self.rewards.values():
            if not reward.active or not self.sees(user, reward):
                continue
            if self.achieved(user, reward):
                out.add(reward.id)
            elif reward.type == "none":
                nothing.add(reward.id)
            elif reward.max_per_day and self.drawn_on(user, reward, day) >= reward.max_per_day:
                out.add(reward.id)
            else:
                real.add(reward.id)
        return real, nothing, out


def _pick(items: list, index: int):
    return items[index % len(items)]


def _snapshot(engine) -> dict[str, list]:
    """Every row the rules touch, to see that a refused operation changed nothing."""
    with engine.session():
        return {
            model._meta.table_name: sorted(
                tuple(str(v) for v in row) for row in model.select().tuples()
            )
            for model in (User, Habit, Reward, RewardProgress, HabitLog)
        }


def _reset(engine) -> None:
    with engine.transaction():
        for model in reversed(engine.hooks.models()):
            model.delete().execute()


def machine_for(engine, clock: FrozenClock):
    class EngineMachine(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            _reset(engine)
            self.model = Model(engine.settings.streak_multiplier_rate, engine.settings.streak_multiplier_max_streak)
            self.next_tid = 1000
            self.names = 0

        # --- helpers ---
        def user(self, m: MUser) -> User:
            return engine.get_user(m.telegram_id)  # fresh, as a front end reads it per update

        def habit_row(self, m: MHabit) -> Habit:
            with engine.session():
                return Habit.get_by_id(m.id)

        def reward_row(self, m: MReward) -> Reward:
            with engine.session():
                return Reward.get_by_id(m.id)

        def name(self, prefix: str) -> str:
            self.names += 1
            return f"{prefix}{self.names}"

        def today(self, m: MUser) -> dt.date:
            return self.model.local(m, clock())

        def refused(self, call, errors) -> None:
            before = _snapshot(engine)
            with pytest.raises(errors):
                call()
            assert _snapshot(engine) == before, "a refused operation changed something"

        # --- setup ---
        @initialize(seed=st.integers(0, 2**32 - 1), start=st.sampled_from(STARTS),
                    minutes=st.integers(0, 24 * 60), zone=st.sampled_from(sorted(ZONES)))
        def start(self, seed, start, minutes, zone):
            engine.rng = random.Random(seed)  # the draws of this example replay with it
            clock.set(start + dt.timedelta(minutes=minutes))
            self.add_user(zone)
            self.add_habit(None, 1, 10)
            self.add_reward(None, 1, 0, "virtual", 3.0)  # pieces often, so claims and new cycles happen
            self.add_reward(None, 1, 0, "none", 1.0)
            clock.advance(days=2)  # room to backdate

        @precondition(lambda self: len(self.model.users) < MAX_USERS)
        @rule(zone=st.sampled_from(sorted(ZONES)))
        def add_user(self, zone):
            self.next_tid += 1
            user = engine.add_user(self.next_tid, f"User {self.next_tid}", active=True, timezone=zone)
            self.model.users[user.telegram_id] = MUser(user.telegram_id, zone, user.id)

        @precondition(lambda self: len(self.model.habits) < MAX_HABITS)
        @rule(owner=st.none() | st.integers(0, 10), grace=st.integers(0, 3), weight=st.sampled_from([1, 5, 10, 30]))
        def add_habit(self, owner, grace, weight):
            tid = _pick(list(self.model.users), owner) if owner is not None else None
            habit = engine.add_habit(self.name("Habit "), weight=weight, allowed_skip_days=grace,
                                     owner=engine.get_user(tid) if tid else None)
            self.model.habits[habit.id] = MHabit(habit.id, tid, grace, weight, clock())

        @precondition(lambda self: len(self.model.rewards) < MAX_REWARDS)
        @rule(owner=st.none() | st.integers(0, 10), pieces=st.integers(1, 4), max_per_day=st.integers(0, 2),
              type=st.sampled_from(["none", "virtual", "real"]), weight=st.sampled_from([0.5, 1.0, 3.0]))
        def add_reward(self, owner, pieces, max_per_day, type, weight):
            tid = _pick(list(self.model.users), owner) if owner is not None else None
            reward = engine.add_reward(self.name("Reward "), weight=weight, type=type, pieces_required=pieces,
                                       max_per_day=max_per_day, owner=engine.get_user(tid) if tid else None)
            self.model.rewards[reward.id] = MReward(reward.id, tid, type, weight, pieces, max_per_day)

        # --- completions ---
        def doable(self) -> list[tuple[MUser, MHabit]]:
            m = self.model
            return [(mu, mh) for mu in m.users.values() for mh in m.habits.values() if mh.active and m.sees(mu, mh)]

        @precondition(lambda self: self.doable())
        @rule(i=st.integers(0, 100),
              when=st.one_of(
                  st.just(("now", 0)),
                  st.tuples(st.just("day"), st.integers(0, 3)),
                  st.tuples(st.just("at"), st.integers(0, 36 * 60)),
              ))
        def complete(self, i, when):
            """A completion that the rules mostly accept: today, a recent day or a recent message."""
            self.completion(*_pick(self.doable(), i), when)

        @precondition(lambda self: self.doable())
        @rule(i=st.integers(0, 100), days=st.integers(1, BACKDATE_DAYS))
        def complete_earlier(self, i, days):
            """An earlier day picked on the keyboard: streaks after it are recomputed."""
            self.completion(*_pick(self.doable(), i), ("day", days))

        @precondition(lambda self: self.model.habits)
        @rule(u=st.integers(0, 10), h=st.integers(0, 10),
              when=st.one_of(
                  st.just(("now", 0)),
                  st.tuples(st.just("day"), st.integers(-2, BACKDATE_DAYS + 2)),  # days back (< 0: ahead)
                  st.tuples(st.just("at"), st.integers(-180, 9 * 24 * 60)),  # the message's minutes ago
              ))
        def complete_any(self, u, h, when):
            """Any user, any habit, any day: refusals too."""
            m = self.model
            self.completion(_pick(list(m.users.values()), u), _pick(list(m.habits.values()), h), when)

        def completion(self, mu: MUser, mh: MHabit, when: tuple[str, int]) -> None:
            m = self.model
            now = clock()
            today = m.local(mu, now)
            kind, amount = when
            kwargs = {}
            if kind == "now":
                day = today
            elif kind == "day":
                day = today - dt.timedelta(days=amount)
                kwargs["day"] = day
            else:
                at = now - dt.timedelta(minutes=amount)
                day = m.local(mu, min(at, now))  # a message can't be from the future
                kwargs["at"] = at
            user, habit = self.user(mu), self.habit_row(mh)
            call = lambda: engine.complete(user, habit, **kwargs)  # noqa: E731
            if not mh.active or not m.sees(mu, mh):
                return self.refused(call, NotFound)
            if day > today or (today - day).days > BACKDATE_DAYS or day < m.created_day(mu, mh):
                return self.refused(call, ValidationError)
            logs = m.logs_of(mu, mh)
            if day in logs:
                before = _snapshot(engine)
                result = call()
                assert result.already_done and result.reward is None
                assert result.day == day and result.streak == logs[day].streak
                assert _snapshot(engine) == before, "a second completion of a day changed something"
                return

            real, nothing, _ = m.draw_state(mu, day)
            result = call()
            assert not result.already_done
            assert result.day == day
            assert result.backdated == (day < today)
            streak = m.next_streak(m.before(logs, day), day, mh.grace)
            assert result.streak == streak, "the streak of a new completion"
            assert result.multiplier == pytest.approx(m.multiplier(mh, streak))
            if result.reward is not None:
                assert result.reward.id in real, "drawn a reward that is out of the draw"
                p = m.progress.get((mu.telegram_id, result.reward.id))
                held = len(p.live) if p and not p.claimed else 0
                assert result.progress.pieces_earned == held + 1, "the piece the completion reports"
            else:
                assert not real or nothing, "no reward although only real rewards were in the draw"

            m.seq += 1
            reward_id = result.reward.id if result.reward else None
            logs[day] = MLog(m.seq, day, streak, reward_id, m.multiplier(mh, streak))
            m.restreak(logs, day, mh.grace)
            if reward_id is not None:
                p = m.progress.setdefault((mu.telegram_id, reward_id), MProgress())
                if p.claimed:  # the next piece after a claim starts a new cycle
                    p.claimed = False
                p.live.append(m.seq)
                p.won += 1

        @precondition(lambda self: self.model.habits)
        @rule(u=st.integers(0, 10), h=st.integers(0, 10))
        def undo_any(self, u, h):
            m = self.model
            self.undo_last(_pick(list(m.users.values()), u), _pick(list(m.habits.values()), h))

        @precondition(lambda self: any(self.model.logs.values()))
        @rule(i=st.integers(0, 100))
        def undo(self, i):
            m = self.model
            tid, habit_id = _pick(sorted(key for key, logs in m.logs.items() if logs), i)
            self.undo_last(m.users[tid], m.habits[habit_id])

        def undo_last(self, mu: MUser, mh: MHabit) -> None:
            user, habit = self.user(mu), self.habit_row(mh)
            logs = self.model.logs_of(mu, mh)
            if not mh.active or not self.model.sees(mu, mh):  # as a lookup of it would be
                return self.refused(lambda: engine.undo(user, habit), NotFound)
            if not logs:
                return self.refused(lambda: engine.undo(user, habit), NothingToUndo)
            log = max(logs.values(), key=lambda entry: entry.seq)  # the most recently recorded
            self.undone(mu, mh, log, engine.undo(user, habit))

        @precondition(lambda self: any(self.model.logs.values()))
        @rule(i=st.integers(0, 100))
        def undo_message(self, i):
            """The Undo button of one completion's message: that completion, whichever it is."""
            m = self.model
            keys = sorted(key for key, logs in m.logs.items() if logs)
            tid, habit_id = _pick(keys, i)
            mu, mh = m.users[tid], m.habits[habit_id]
            logs = m.logs_of(mu, mh)
            log = _pick(sorted(logs.values(), key=lambda entry: entry.seq), i // len(keys))
            with engine.session():
                row = HabitLog.get((HabitLog.user == mu.id) & (HabitLog.habit == mh.id)
                                   & (HabitLog.completed_on == log.day))
            if not mh.active:  # removed since: nothing is undone
                return self.refused(lambda: engine.undo(self.user(mu), self.habit_row(mh), log_id=row.id,
                                                        recorded_at=row.created_at), NotFound)
            self.undone(mu, mh, log, engine.undo(self.user(mu), self.habit_row(mh), log_id=row.id,
                                                 recorded_at=row.created_at))

        def undone(self, mu, mh, log, result):
            m = self.model
            logs = m.logs_of(mu, mh)
            assert result.day == log.day
            del logs[log.day]
            m.restreak(logs, log.day, mh.grace)
            taken = False
            if log.reward is not None:
                p = m.progress[(mu.telegram_id, log.reward)]
                if log.seq in p.live:  # not claimed since
                    p.live.remove(log.seq)
                    p.taken_back += 1
                    taken = True
                    if not p.live and p.times_claimed:
                        p.claimed = True  # the first piece after a claim: CLAIMED, as it was
            assert result.piece_taken_back == taken
            assert result.streak == m.shown_streak(mu, mh, self.today(mu))[0]

        def achieved(self) -> list[tuple[MUser, MReward]]:
            m = self.model
            return [(mu, mr) for mu in m.users.values() for mr in m.rewards.values() if m.achieved(mu, mr)]

        @precondition(lambda self: self.achieved())
        @rule(i=st.integers(0, 100))
        def claim(self, i):
            self.claiming(*_pick(self.achieved(), i))

        @precondition(lambda self: self.model.rewards)
        @rule(u=st.integers(0, 10), r=st.integers(0, 10))
        def claim_any(self, u, r):
            m = self.model
            self.claiming(_pick(list(m.users.values()), u), _pick(list(m.rewards.values()), r))

        def claiming(self, mu: MUser, mr: MReward) -> None:
            m = self.model
            user, reward = self.user(mu), self.reward_row(mr)
            if not m.achieved(mu, mr):
                return self.refused(lambda: engine.claim(user, reward), NotClaimable)
            engine.claim(user, reward)
            p = m.prog(mu, mr)
            p.times_claimed += 1
            p.spent += mr.pieces_required
            p.live = p.live[mr.pieces_required:]  # the oldest are spent, the newest kept
            p.claimed = not p.live

        # --- time and settings ---
        @rule(delta=st.one_of(st.integers(1, 120).map(lambda n: dt.timedelta(minutes=n)),
                              st.integers(1, 30).map(lambda n: dt.timedelta(hours=n)),
                              st.integers(1, 3).map(lambda n: dt.timedelta(days=n))))
        def advance(self, delta):
            clock.advance(seconds=delta.total_seconds())

        @precondition(lambda self: self.model.habits)
        @rule(h=st.integers(0, 10), grace=st.integers(0, 3))
        def edit_grace(self, h, grace):
            mh = _pick(list(self.model.habits.values()), h)
            if not mh.active:  # removed: not found, as a lookup of it would be
                return self.refused(lambda: engine.edit_habit(self.habit_row(mh), allowed_skip_days=grace), NotFound)
            engine.edit_habit(self.habit_row(mh), allowed_skip_days=grace)
            mh.grace = grace

        @precondition(lambda self: self.model.habits)
        @rule(h=st.integers(0, 10), weight=st.sampled_from([1, 5, 10, 30]))
        def edit_weight(self, h, weight):
            mh = _pick(list(self.model.habits.values()), h)
            if not mh.active:
                return self.refused(lambda: engine.edit_habit(self.habit_row(mh), weight=weight), NotFound)
            engine.edit_habit(self.habit_row(mh), weight=weight)
            mh.weight = weight

        def holding(self) -> list[MReward]:
            m = self.model
            return [m.rewards[reward_id] for (_, reward_id), p in m.progress.items()
                    if len(p.live) >= 2 and m.rewards[reward_id].pieces_required > 1]

        @precondition(lambda self: self.holding())
        @rule(r=st.integers(0, 10))
        def lower_pieces_required(self, r):
            """10 -> 3 while someone holds 7: a claim keeps the rest (rules "Pieces and claims")."""
            self.edit_pieces_required(r, 1, rewards=self.holding())

        @precondition(lambda self: self.model.rewards)
        @rule(r=st.integers(0, 10), pieces=st.integers(1, 4))
        def edit_pieces_required(self, r, pieces, rewards=None):
            """An admin lowers or raises pieces_required while people hold pieces (rules "Pieces and claims")."""
            mr = _pick(rewards or list(self.model.rewards.values()), r)
            if not mr.active:  # removed: not found (its achieved pieces stay claimable as they are)
                return self.refused(lambda: engine.edit_reward(self.reward_row(mr), pieces_required=pieces), NotFound)
            engine.edit_reward(self.reward_row(mr), pieces_required=pieces)
            mr.pieces_required = pieces

        @precondition(lambda self: len(self.model.habits) > 2)
        @rule(h=st.integers(0, 10))
        def remove_habit(self, h):
            mh = _pick(list(self.model.habits.values()), h)
            engine.remove_habit(self.habit_row(mh))
            mh.active = False

        @precondition(lambda self: len(self.model.rewards) > 2)
        @rule(r=st.integers(0, 10))
        def remove_reward(self, r):
            mr = _pick(list(self.model.rewards.values()), r)
            engine.remove_reward(self.reward_row(mr))
            mr.active = False

        @rule(u=st.integers(0, 10), zone=st.sampled_from(sorted(ZONES)))
        def move(self, u, zone):
            mu = _pick(list(self.model.users.values()), u)
            engine.set_timezone(self.user(mu), zone)
            mu.zone = zone

        @precondition(lambda self: self.doable())
        @rule(i=st.integers(0, 100))
        def trip_across_the_date_line(self, i):
            """Done today in UTC+14, then today again in UTC-12: the earlier day is logged after the later one."""
            mu, mh = _pick(self.doable(), i)
            for zone in (EAST, WEST):
                engine.set_timezone(self.user(mu), zone)
                mu.zone = zone
                self.completion(mu, mh, ("now", 0))

        @rule(u=st.integers(0, 10))
        def move_across_the_date_line(self, u):
            mu = _pick(list(self.model.users.values()), u)
            zone = WEST if ZONES[mu.zone].utcoffset(clock().replace(tzinfo=None)).total_seconds() > 0 else EAST
            engine.set_timezone(self.user(mu), zone)
            mu.zone = zone

        # --- invariants ---
        @invariant()
        def logs_match(self):
            m = self.model
            by_id = {mu.id: mu for mu in m.users.values()}
            with engine.session():
                rows = list(HabitLog.select())
            seen = set()
            for row in rows:
                key = (row.user_id, row.habit_id, row.completed_on)
                assert key not in seen, f"two logs of one habit on one day: {key}"
                seen.add(key)
                mu = by_id[row.user_id]
                log = m.logs_of(mu, m.habits[row.habit_id]).get(row.completed_on)
                assert log is not None, f"a log the rules do not know: {key}"
                assert row.streak_count == log.streak, f"stored streak of {key}"
                assert row.reward_id == log.reward, f"reward of {key}"
                assert row.total_weight_applied == pytest.approx(log.multiplier)
            assert len(rows) == sum(len(logs) for logs in m.logs.values()), "logs the engine lost"

        @invariant()
        def pieces_match(self):
            m = self.model
            by_id = {mu.id: mu for mu in m.users.values()}
            with engine.session():
                rows = list(RewardProgress.select())
                maxed = {}
                for log in HabitLog.select().where(HabitLog.reward.is_null(False)):
                    maxed[(log.user_id, log.reward_id, log.completed_on)] = \
                        maxed.get((log.user_id, log.reward_id, log.completed_on), 0) + 1
            for (_, reward_id, day), count in maxed.items():
                limit = m.rewards[reward_id].max_per_day
                assert not limit or count <= limit, f"max_per_day broken on {day}"
            for row in rows:
                mu, mr = by_id[row.user_id], m.rewards[row.reward_id]
                p = m.prog(mu, mr)
                assert p is not None
                held = 0 if row.claimed else row.pieces_earned
                assert held == len(p.live) == p.won - p.taken_back - p.spent >= 0, f"pieces of {mr}"
                assert row.claimed == p.claimed
                assert row.times_claimed == p.times_claimed
                expected = (ProgressStatus.CLAIMED if p.claimed else ProgressStatus.ACHIEVED
                            if len(p.live) >= mr.pieces_required else ProgressStatus.PENDING)
                assert row.status_for(mr.pieces_required) is expected
            assert len(rows) == len(m.progress)

        @invariant()
        def views_match(self):
            m = self.model
            for mu in m.users.values():
                user = self.user(mu)
                today = self.today(mu)
                shown = {info.habit.id: info for info in engine.streaks(user)}
                visible = {mh.id for mh in m.habits.values() if mh.active and m.sees(mu, mh)}
                assert set(shown) == visible
                for habit_id, info in shown.items():
                    mh = m.habits[habit_id]
                    streak, last = m.shown_streak(mu, mh, today)
                    assert (info.streak, info.last_day, info.done_today) == (streak, last, last == today), \
                        f"streak shown for {mh} of {mu} on {today}"
                    # The odds of the next completion: today's, or tomorrow's once done today.
                    odds = engine.odds(user, self.habit_row(mh))
                    day = today + dt.timedelta(days=1) if last == today else today
                    assert odds.day == day
                    next_streak = m.next_streak(m.before(m.logs_of(mu, mh), day), day, mh.grace)
                    assert odds.streak == next_streak
                    assert odds.multiplier == pytest.approx(m.multiplier(mh, next_streak))
                    real, nothing, out = m.draw_state(mu, day)
                    chances = {row.reward.id if row.reward else None: row.probability for row in odds.rows}
                    assert set(chances) - {None} == real
                    # Rules "Odds": real rewards' weights times m, "none" entries as they are.
                    weights = {r: m.rewards[r].weight * m.multiplier(mh, next_streak) for r in real}
                    weights[None] = sum(m.rewards[r].weight for r in nothing)
                    total = sum(weights.values())
                    for reward_id, chance in chances.items():
                        assert chance == pytest.approx(weights[reward_id] / total if total else 1.0), \
                            f"the chance of {reward_id}"
                    assert engine.earliest_day(user, self.habit_row(mh)) == max(
                        today - dt.timedelta(days=BACKDATE_DAYS), m.created_day(mu, mh))
                    assert {reward.id for reward, _ in odds.excluded} == out
                mine = [(habit_id, log) for (tid, habit_id), logs in m.logs.items() if tid == mu.telegram_id
                        for log in logs.values()]
                history = engine.history(user, limit=1000)
                assert [(entry.log.habit_id, entry.log.completed_on, entry.log.streak_count) for entry in history] == [
                    (habit_id, log.day, log.streak)
                    for habit_id, log in sorted(mine, key=lambda item: (item[1].day, item[1].seq), reverse=True)
                ], "history, newest first"
                assert {entry.reward.id for entry in engine.claimable(user)} == {
                    mr.id for mr in m.rewards.values() if m.achieved(mu, mr)}
                progress = {entry.reward.id: entry for entry in engine.progress(user)}
                for tid, reward_id in m.progress:
                    if tid != mu.telegram_id:
                        continue
                    mr = m.rewards[reward_id]
                    if mr.active or m.achieved(mu, mr):
                        assert reward_id in progress, "progress not shown"
                    else:
                        assert reward_id not in progress, "a removed reward that cannot be claimed shown"

    return EngineMachine


def _run(db_url: str, examples: int, explore: bool) -> None:
    clock = FrozenClock()
    # A low cap, so that streaks reach it: the odds stop growing there (rules "Odds").
    engine = make_engine(db_url, clock=clock, rng=random.Random(0), load_entry_points=False,
                         streak_multiplier_max_streak=3)
    try:
        run_state_machine_as_test(
            machine_for(engine, clock),
            settings=settings(max_examples=examples, stateful_step_count=40, deadline=None, database=None,
                              derandomize=not explore,
                              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]),
        )
    finally:
        engine.close()


def test_engine_follows_the_rules(db_url, backend):
    """The same examples on every run (derandomized); HABITREWARD_MODEL_EXAMPLES=2000 searches new ones
    (with ``--timeout 0`` for long runs)."""
    explore = os.environ.get("HABITREWARD_MODEL_EXAMPLES")
    _run(db_url, int(explore) if explore else 60 if backend == "sqlite" else 15, explore=bool(explore))
