"""habitreward plugin: a bonus piece when every habit of the day is done."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import click
import peewee

from habitreward import hookimpl, same_name
from habitreward.errors import NotFound
from habitreward.events import Award, CompletionUndone, HabitCompleted, RewardClaimed
from habitreward.models import BaseModel, HabitLog, Reward, RewardProgress, User

REWARD_ENV = "PERFECT_DAY_REWARD"
DEFAULT_REWARD_NAME = "Perfect day"


class PerfectDay(BaseModel):
    user = peewee.ForeignKeyField(User, on_delete="CASCADE")
    day = peewee.DateField()
    reward = peewee.ForeignKeyField(Reward, null=True, on_delete="SET NULL")
    # The reward's times_claimed when the piece was given: undo takes back only a piece of the
    # current cycle, as the engine does for drawn ones (NULL: given before this was recorded).
    reward_cycle = peewee.IntegerField(null=True)

    class Meta:
        table_name = "perfect_days"
        indexes = ((("user", "day"), True),)


def bonus_reward_name() -> str:
    return os.environ.get(REWARD_ENV, DEFAULT_REWARD_NAME)


@hookimpl
def habitreward_register_models(register):
    register(PerfectDay)


@hookimpl
def habitreward_register_migrations(register):
    register("perfect_day", str(Path(__file__).parent / "migrations"))


def is_bonus_reward(reward: Reward) -> bool:
    """Whether ``reward`` is the bonus: named ``bonus_reward_name()`` as ``engine.find_reward``
    compares names (case aside; names are unique among the rewards one user sees)."""
    return same_name(reward.name, bonus_reward_name())


@hookimpl(wrapper=True)
def habitreward_weigh_rewards():
    """The bonus reward comes only as the bonus: weight 0 (out of the ordinary draw, and of the
    odds) whatever weight it was added with. A wrapper, so the weights the other rewards get
    (the built-in's, or another plugin's) stay as they are."""
    weighted = yield
    if weighted is None:
        return None
    return [c.with_weight(0) if is_bonus_reward(c.reward) else c for c in weighted]


def habits_of_the_day(engine, user: User, day: dt.date) -> set[int]:
    """The habits a perfect ``day`` asks for: the user's active ones that existed that day (a
    habit added since could not be done then, so an earlier day logged afterwards ignores it)."""
    return {
        habit.id
        for habit in engine.habits_for(user)
        if engine.local_date(user, habit.created_at.replace(tzinfo=dt.timezone.utc)) <= day
    }


@hookimpl
def habitreward_habit_completed(engine, event: HabitCompleted):
    habit_ids = habits_of_the_day(engine, event.user, event.day)
    done = {
        row.habit_id
        for row in HabitLog.select(HabitLog.habit).where(
            (HabitLog.user == event.user.id) & (HabitLog.completed_on == event.day)
        )
    }
    if not habit_ids or not habit_ids <= done:
        return None
    if PerfectDay.select().where((PerfectDay.user == event.user.id) & (PerfectDay.day == event.day)).exists():
        return None
    try:
        reward = engine.find_reward(event.user, bonus_reward_name())
    except NotFound:
        return None  # no bonus reward configured: the plugin stays quiet
    progress = engine.grant_piece(event.user, reward)
    if progress is None:
        return None  # achieved and unclaimed: a piece would be lost, so none is given
    PerfectDay.create(user=event.user.id, day=event.day, reward=reward.id, reward_cycle=progress.times_claimed)
    return Award(
        kind="perfect_day",
        reward=reward,
        message=f"Perfect day: every habit done! A bonus piece of {reward.name}"
        f" ({progress.pieces_earned}/{reward.pieces_required}).",
    )


@hookimpl
def habitreward_completion_undone(engine, event: CompletionUndone):
    bonus = PerfectDay.get_or_none((PerfectDay.user == event.user.id) & (PerfectDay.day == event.day))
    if bonus is None:
        return
    if bonus.reward_id is not None:
        progress = RewardProgress.get_or_none(
            (RewardProgress.user == event.user.id) & (RewardProgress.reward == bonus.reward_id))
        # A piece claimed since is spent: taking one back would take the next cycle's.
        current = bonus.reward_cycle is None or (progress is not None and progress.times_claimed == bonus.reward_cycle)
        if progress is not None and current and not progress.claimed and progress.pieces_earned > 0:
            # The first piece of a new cycle taken back: CLAIMED again, as the engine's undo leaves it.
            back_to_claimed = progress.pieces_earned == 1 and progress.times_claimed > 0
            RewardProgress.update(
                pieces_earned=RewardProgress.pieces_earned - 1, claimed=back_to_claimed, updated_at=engine.utcnow()
            ).where(RewardProgress.id == progress.id).execute()
    bonus.delete_instance()


@hookimpl
def habitreward_reward_claimed(engine, event: RewardClaimed):
    """A claim that kept pieces (``pieces_required`` lowered meanwhile) keeps the newest: their
    bonuses join the new cycle, so undoing such a day still takes its piece back."""
    progress = event.progress
    if progress.claimed or progress.pieces_earned <= 0:
        return
    newest = (PerfectDay.select(PerfectDay.id)
              .where((PerfectDay.user == event.user.id) & (PerfectDay.reward == event.reward.id)
                     & (PerfectDay.reward_cycle == progress.times_claimed - 1))
              .order_by(PerfectDay.id.desc()).limit(progress.pieces_earned))
    PerfectDay.update(reward_cycle=progress.times_claimed).where(PerfectDay.id.in_(newest)).execute()


@hookimpl
def habitreward_register_commands(cli):
    @cli.command("perfect-days")
    @click.argument("telegram_id", type=int)
    @click.pass_obj
    def perfect_days(app, telegram_id):
        """Days on which user TELEGRAM_ID did every habit (perfect_day plugin)."""
        engine = app.engine()
        user = engine.get_user(telegram_id)
        with engine.session():
            days = [row.day for row in PerfectDay.select().where(PerfectDay.user == user.id).order_by(PerfectDay.day)]
        click.echo("\n".join(d.isoformat() for d in days) or "No perfect day yet.")
