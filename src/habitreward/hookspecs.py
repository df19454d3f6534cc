"""Hook specifications: the only contract between habitreward and its plugins.

A plugin is a module (or object) with functions named like these and decorated
with ``@hookimpl`` (``from habitreward import hookimpl``). Hooks marked
"first answer wins" stop at the first plugin that returns something other than
``None``; the built-in implementation is ``trylast``, so every plugin gets the
first word. Hooks called "inside the transaction" run in the same database
transaction as the operation: raising aborts the whole operation.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from habitreward.draw import Candidate
    from habitreward.engine import Engine
    from habitreward.events import Award, CompletionUndone, HabitCompleted, RewardClaimed, StreakBroken
    from habitreward.models import Habit, User
    from habitreward.settings import Settings

PROJECT_NAME = "habitreward"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


# --- rules -----------------------------------------------------------------


@hookspec(firstresult=True)
def habitreward_compute_streak(
    habit: Habit, day: dt.date, previous_day: dt.date | None, previous_streak: int
) -> int | None:
    """The streak of a completion of ``habit`` on ``day``. First answer wins.

    ``previous_day``/``previous_streak`` describe the latest earlier completion
    of the same habit by the same user (``None``/0 when there is none). The
    built-in continues the streak across at most ``habit.allowed_skip_days``
    missed days and restarts it at 1 otherwise.
    """


@hookspec(firstresult=True)
def habitreward_odds_multiplier(habit: Habit, streak: int, settings: Settings, user: User,
                                day: dt.date) -> float | None:
    """The multiplier applied to real rewards' weights for this completion. First answer wins.

    ``day`` is the completion's day in ``user``'s time zone (a backdated one, too; for the odds
    shown beforehand, the user's today, or tomorrow for a habit already done today): a rule about
    days uses it, not the server's clock.
    Take only the arguments you need. A finite number from 0 (anything else fails the completion).
    Built-in: ``(habit.weight / 10) * (1 + min(streak, STREAK_MULTIPLIER_MAX_STREAK) * STREAK_MULTIPLIER_RATE)``.
    """


@hookspec(firstresult=True)
def habitreward_weigh_rewards(candidates: Sequence[Candidate], multiplier: float) -> Sequence[Candidate] | None:
    """Give each candidate reward its effective weight in the draw. First answer wins.

    ``candidates`` are the rewards still allowed in the draw, each with its base
    weight. Return new :class:`~habitreward.draw.Candidate` objects (use
    ``candidate.with_weight(w)``); a weight is a finite number from 0, and 0
    leaves the reward out of this draw. Built-in: real rewards' weights times
    ``multiplier``; "none" rewards keep theirs. The result is also what
    ``odds`` reports.
    """


@hookspec(firstresult=True)
def habitreward_draw_reward(candidates: Sequence[Candidate], rng: random.Random) -> Candidate | None:
    """Pick the reward of a completion among weighted candidates. First answer wins.

    Replaces the draw as a whole. Return the chosen candidate; return
    ``NO_REWARD`` (from :mod:`habitreward.draw`) for "nothing this
    time". Built-in: weighted random with ``rng``.
    """


# --- events (inside the transaction) ------------------------------------------


@hookspec
def habitreward_habit_completed(engine: Engine, event: HabitCompleted) -> Sequence[Award] | Award | None:
    """After a completion was logged and its reward drawn, inside the transaction.

    Return :class:`~habitreward.events.Award` objects for anything extra the
    plugin granted (e.g. through ``engine.grant_piece``); they are shown with
    the completion.
    """


@hookspec
def habitreward_completion_undone(engine: Engine, event: CompletionUndone) -> None:
    """After a completion was reverted, inside the transaction."""


@hookspec
def habitreward_reward_claimed(engine: Engine, event: RewardClaimed) -> None:
    """After a reward was claimed, inside the transaction."""


@hookspec
def habitreward_user_deleted(engine: Engine, user: User) -> None:
    """A user is being deleted (``habitreward users delete``), inside the transaction.

    Called before the rows of registered models that point at the user are
    removed; delete whatever else the plugin keeps about the person (state
    keyed by their Telegram id, files, caches). Raising aborts the deletion.
    """


@hookspec
def habitreward_streak_broken(engine: Engine, event: StreakBroken) -> None:
    """When a completion restarts a streak because the previous one lapsed, inside the transaction."""


# --- contributions -----------------------------------------------------------


@hookspec
def habitreward_register_models(register: Callable[..., None]) -> None:
    """Register Peewee model classes of the plugin: ``register(Model, ...)``.

    Subclass ``habitreward.models.BaseModel`` so they use the bot's database;
    create their tables with a migration (see
    :func:`habitreward_register_migrations`). Registered models travel with
    ``habitreward export``/``import`` and are removed with their user.
    """


@hookspec
def habitreward_register_migrations(register: Callable[[str, str], None]) -> None:
    """Register a folder of migrations: ``register(namespace, directory)``.

    Files named ``0001_xxx.py`` with ``up(migrator, db)`` (see
    ``playhouse.migrations``), applied by ``habitreward db upgrade`` in order
    and recorded under ``namespace`` in the database.
    """


@hookspec
def habitreward_register_commands(cli: click.Group) -> None:
    """Add click commands to the ``habitreward`` command line: ``@cli.command()``.

    Should this hook raise, the commands it added are taken off again and every command line
    run says so in one warning line naming the plugin; every other command works (``habitreward
    plugins`` too). An exception from one of its commands is one line naming the plugin."""


@hookspec
def habitreward_register_handlers(register: Callable[..., None], settings: Settings) -> None:
    """Add python-telegram-bot handlers to the bot: ``register(handler, group=0, description=None)``.

    Called once when the Application is built (``habitreward.bot.app.build_application``).
    A ``CommandHandler`` registered with a ``description`` also appears in Telegram's command
    menu (setMyCommands) and in /help, after the built-in commands, in every language (the
    description translated through the plugin's catalogs, see docs/bot.md). Handlers reach the
    engine as ``context.engine`` and run its calls with ``await habitreward.bot.run_engine(
    context.engine, function, *args)``: on PostgreSQL on a worker thread, so the event loop
    never waits for the database while other users' updates queue. Register a command with a
    ``CommandHandler`` (in any group): a private chat's command that none answers is told "I
    don't know the command", which a ``MessageHandler`` matching the command's text would not
    prevent. A ``CallbackQueryHandler`` with a ``pattern``
    gets the presses it matches, in any group, also during a dialog (pick a prefix of your own:
    the bot's buttons use short ones such as ``d:``); so does a ``ConversationHandler`` started by
    a button or a command, and while it waits for a user's text in a private chat, that text
    is its answer, not a habit report (its ``per_*`` settings, and PTB's warning about
    ``per_message``: docs/plugins.md, "A conversation started by a button").
    ``await habitreward.bot.translator(update, context)``
    is the user's Translator. A button that logs a completion passes
    ``at=habitreward.bot.context.update_received_at.get()`` to ``engine.complete``: the moment
    ``serve`` received the press (None elsewhere: now), so a press just before midnight handled
    after it counts for its day, as the bot's own buttons do.
    """


@hookspec(firstresult=True)
def habitreward_match_habits(user: User, text: str, habits: Sequence[Habit]) -> Any | None:
    """Turn free text into the user's habits it reports. First answer wins.

    Return a :class:`habitreward.nlp.MatchResult` (or ``None`` to let the next
    matcher try). Matchers may only return habits from ``habits``: any other is dropped (in the
    bot and in ``habitreward match``); an answer that is not a ``MatchResult`` fails with
    ``PluginError`` naming the plugin.
    """
