"""``habitreward done|undo|claim|streaks|history|odds|progress``: a user's day, from a script."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import click

from habitreward.cli.app import AppContext, cli, pass_app
from habitreward.cli.output import TELEGRAM_ID, emit, emit_json, emit_table, json_option
from habitreward.engine import validation
from habitreward.engine.results import EXCLUDED_ACHIEVED, EXCLUDED_TODAY
from habitreward.errors import NotFound, ValidationError
from habitreward.models import Habit, Reward, User

if TYPE_CHECKING:
    from habitreward.engine import Engine


def _parse_date(value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValidationError(f"--date must look like 2026-01-31, got {value!r}.") from None


def _find_habit(engine: Engine, user: User, name: str) -> Habit:
    """The habit ``user`` sees by ``name``, or else by one of its aliases (as the bot reads a
    message: "jog" for Running); the engine's NotFound when neither."""
    try:
        return engine.find_habit(user, name)
    except NotFound as not_found:
        from habitreward.nlp.store import alias_key

        habits = engine.habits_for(user)
        key = alias_key(validation.tidy_name(name))
        found = [habit for habit, aliases in zip(habits, engine.aliases_for(habits).values())
                 if key and any(alias_key(alias) == key for alias in aliases)]
        if len(found) == 1:
            return found[0]
        if found:
            raise NotFound(f"{name!r} is an alias of {len(found)} habits: "
                           f"{', '.join(repr(h.name) for h in found)}; name the habit.") from None
        raise not_found from None


@cli.command()
@click.argument("telegram_id", type=TELEGRAM_ID)
@click.argument("habit")
@click.option("--date", "date_text", metavar="YYYY-MM-DD", help="Backdate to one of the user's last 7 days.")
@json_option
@pass_app
def done(app: AppContext, telegram_id: int, habit: str, date_text: str | None, as_json: bool) -> None:
    """Log HABIT (its name or one of its aliases) as done by user TELEGRAM_ID (today in their time zone,
    or --date)."""
    engine = app.engine()
    user = engine.get_user(telegram_id)
    result = engine.complete(user, _find_habit(engine, user, habit), day=_parse_date(date_text), source="cli")
    if as_json:
        emit_json(result.as_dict())
        return
    if result.already_done:
        click.echo(f"{result.habit.name} was already done on {result.day.isoformat()} (streak {result.streak}).")
        return
    click.echo(f"{result.habit.name} done on {result.day.isoformat()}: streak {result.streak}.")
    if result.reward is not None:
        progress = result.progress
        click.echo(f"Reward: {result.reward.name} ({progress.pieces_earned}/{result.reward.pieces_required})"
                   + (" - achieved, ready to claim!" if result.status and result.status.value == "achieved" else ""))
    else:
        click.echo("No reward this time.")
    for award in result.awards:
        click.echo(f"Bonus: {award.message or award.kind}")


@cli.command()
@click.argument("telegram_id", type=TELEGRAM_ID)
@click.argument("habit")
@json_option
@pass_app
def undo(app: AppContext, telegram_id: int, habit: str, as_json: bool) -> None:
    """Revert the most recently recorded completion of HABIT (a name or an alias) by user TELEGRAM_ID.

    That is the completion logged last, not the latest day: after `done --date` for an earlier
    day, undo reverts that day. Its piece is taken back unless the reward was claimed since, and
    later streaks are recomputed.
    """
    engine = app.engine()
    user = engine.get_user(telegram_id)
    result = engine.undo(user, _find_habit(engine, user, habit))
    if as_json:
        emit_json(result.as_dict())
        return
    click.echo(f"Undid {result.habit.name} on {result.day.isoformat()}; streak now {result.streak}.")
    if result.piece_taken_back:
        click.echo(f"A piece of {result.reward.name} was taken back.")


def _reward_to_claim(engine, user: User, name: str) -> Reward:  # noqa: ANN001
    """The reward called ``name`` that ``user`` would claim: an achieved one of theirs first.

    A removed reward leaves the draw but stays claimable once achieved (as the bot's
    /claim_reward offers it), so the user's achieved rewards are searched, removed ones included,
    the active one preferred. Otherwise the active reward of that name, so that the claim says
    why it is not claimable (or NotFound says there is none).
    """
    def key(text: str) -> str:  # as the engine compares names (tidied, case and final sigma aside)
        return validation.name_key(validation.tidy_name(text))

    achieved = [entry.reward for entry in engine.claimable(user) if key(entry.reward.name) == key(name)]
    if achieved:
        return min(achieved, key=lambda item: (not item.active, item.id))
    return engine.find_reward(user, name)


@cli.command()
@click.argument("telegram_id", type=TELEGRAM_ID)
@click.argument("reward")
@json_option
@pass_app
def claim(app: AppContext, telegram_id: int, reward: str, as_json: bool) -> None:
    """Claim the achieved REWARD for user TELEGRAM_ID.

    A removed reward stays claimable while it is achieved: pieces already earned are not lost.
    """
    engine = app.engine()
    user = engine.get_user(telegram_id)
    item = _reward_to_claim(engine, user, reward)
    progress = engine.claim(user, item)
    if as_json:
        emit_json({"reward": item.name, "status": "claimed", "times_claimed": progress.times_claimed})
        return
    click.echo(f"Claimed {item.name} (claimed {progress.times_claimed} time(s) so far).")


@cli.command()
@click.argument("telegram_id", type=TELEGRAM_ID)
@json_option
@pass_app
def streaks(app: AppContext, telegram_id: int, as_json: bool) -> None:
    """Current streak of each habit of user TELEGRAM_ID (0 once broken)."""
    engine = app.engine()
    infos = engine.streaks(engine.get_user(telegram_id))
    emit(as_json, [i.as_dict() for i in infos], lambda: emit_table(
        ["habit", "streak", "last done", "today"],
        [(i.habit.name, i.streak, i.last_day.isoformat() if i.last_day else "never", "done" if i.done_today else "")
         for i in infos],
        empty="No habits yet.",
    ))


@cli.command()
@click.argument("telegram_id", type=TELEGRAM_ID)
@click.option("--limit", type=click.IntRange(1, 10_000), help="How many (default: RECENT_LOGS_LIMIT).")
@json_option
@pass_app
def history(app: AppContext, telegram_id: int, limit: int | None, as_json: bool) -> None:
    """Latest completions of user TELEGRAM_ID, newest first."""
    engine = app.engine()
    entries = engine.history(engine.get_user(telegram_id), limit)
    emit(as_json, [e.as_dict() for e in entries], lambda: emit_table(
        ["date", "habit", "streak", "reward"],
        [(e.log.completed_on.isoformat(), e.habit_name, e.log.streak_count, e.reward_name or "-") for e in entries],
        empty="No completions yet.",
    ))


@cli.command()
@click.argument("telegram_id", type=TELEGRAM_ID)
@click.argument("habit")
@json_option
@pass_app
def odds(app: AppContext, telegram_id: int, habit: str, as_json: bool) -> None:
    """Chance of each reward at user TELEGRAM_ID's next completion of HABIT (a name or an alias).

    That is a completion now, or tomorrow's when HABIT is already done today (a second completion
    today draws nothing). Shows the streak and the multiplier that completion would have, each
    reward's chance and the rewards out of the draw, with why. --json prints the same as {"habit",
    "for_day", "done_today", "streak", "multiplier", "rewards": [{"reward", "probability",
    "weight"}], "excluded": [{"reward", "reason"}]}; "reward": null is "no reward"; a reason is
    "achieved" (waiting to be claimed) or "max_per_day" (came out as often as it may that day).
    """
    engine = app.engine()
    user = engine.get_user(telegram_id)
    result = engine.odds(user, _find_habit(engine, user, habit))

    def table() -> None:
        if result.done_today:
            click.echo(f"{result.habit.name} is done today: odds for tomorrow's completion ({result.day.isoformat()}).")
        click.echo(f"{result.habit.name}: streak {result.streak}, multiplier x{result.multiplier:.2f}")
        emit_table(["reward", "chance"],
                   [(r.reward.name if r.reward else "(no reward)", f"{r.probability:.1%}") for r in result.rows])
        why = {EXCLUDED_ACHIEVED: "achieved, waiting to be claimed", EXCLUDED_TODAY: "came out its max_per_day today"}
        for reward, reason in result.excluded:
            click.echo(f"Out of the draw: {reward.name} ({why.get(reason, reason)})")

    emit(as_json, result.as_dict(), table)


@cli.command()
@click.argument("telegram_id", type=TELEGRAM_ID)
@json_option
@pass_app
def progress(app: AppContext, telegram_id: int, as_json: bool) -> None:
    """Reward pieces of user TELEGRAM_ID and what can be claimed."""
    engine = app.engine()
    entries = engine.progress(engine.get_user(telegram_id))
    emit(as_json, [e.as_dict() for e in entries], lambda: emit_table(
        ["reward", "pieces", "status", "claimed"],
        [(e.reward.name, f"{e.pieces_earned}/{e.pieces_required}", e.status.value, e.times_claimed) for e in entries],
        empty="No reward pieces yet.",
    ))
