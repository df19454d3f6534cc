"""Logging habits: /habit_done's keyboard, the "earlier day" path, free text, and Undo.

Callback data: ``done[:page[:day]]`` habit keyboard, ``ed`` earlier-day
picker, ``d:habit[:day]`` log, ``d:habit:day:+`` log one of several habits a
message was asked about (the others stay), ``d:habit:day:~`` the same for a time that
reads as a date too (that habit's other day goes), ``u:habit:log:stamp`` undo (see
:func:`undo_data`), ``fn`` "no" to a guessed habit, ``k:<data>`` a completion message's
way on (``k:done``, ``k:m``, ``k:cl:reward``: see :data:`KEEP`). Every id is checked against
the user by the engine. ``day`` is the date shown (``YYYYMMDD``), so a button
pressed after midnight logs the day its message named; buttons sent before it
was a date carry a number of days back (0..7), still read as such.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import datetime as dt
import functools
import html
import logging
from collections.abc import Callable
from typing import Any

from telegram import Update
from telegram.error import BadRequest

from habitreward.bot.context import update_received_at
from habitreward.bot.handlers.common import Screen, int_args, screen, telegram_call
from habitreward.bot.handlers.router import CALLBACKS, on_callback, on_command
from habitreward.bot.keyboards import Rows, markup, menu_row, picker
from habitreward.db import is_postgres
from habitreward.engine.results import CompletionResult, UndoResult
from habitreward.engine.validation import BACKDATE_DAYS
from habitreward.errors import NotFound, NothingToUndo, ValidationError
from habitreward.models import Habit, HabitLog, ProgressStatus, User
from habitreward.nlp.days import Days, reported_days
from habitreward.plugins.nlp import matching_may_wait

log = logging.getLogger(__name__)

_NO_DAY = dt.date.min  # callback data without a day: today, when the button is pressed
#: Last part of a habit button on a question about several habits ("d:habit:day:+"): pressed, it
#: logs that one and leaves the others on the question, as the message may report them all.
ONE_OF_SEVERAL = "+"
#: As ONE_OF_SEVERAL, on a question about a time that reads as a date too ("ran and read at
#: 10.11"): the habit's button for the other reading goes as well, as one report is one day.
ONE_READING = "~"
#: Prefix of a completion message's buttons that lead on (Log another, Claim it, Menu:
#: ``k:done``): their screen comes as a new message and the completion stays, its text (what was
#: logged, what was won) and its Undo, so someone logging several habits in a row can read and
#: undo each. Only the pressed message's ``k:`` buttons go: its next screen is below.
KEEP = "k"


def day_data(day: dt.date) -> str:
    """A day in callback data."""
    return day.strftime("%Y%m%d")


def _day_of(s: Screen, args: list[str], index: int) -> dt.date | None:
    """The day a button names: a date (``YYYYMMDD``), a number of days back on older
    buttons (0..7), :data:`_NO_DAY` for none, None for garbage."""
    if len(args) <= index:
        return _NO_DAY
    text = args[index]
    if len(text) == 8 and text.isdigit():
        try:
            return dt.datetime.strptime(text, "%Y%m%d").date()
        except ValueError:
            return None
    try:
        ago = int(text)
    except ValueError:
        return None
    if not 0 <= ago <= BACKDATE_DAYS:
        return None
    return _NO_DAY if ago == 0 else s.engine.local_date(s.user, update_received_at.get()) - dt.timedelta(days=ago)


def no_habits_rows(s: Screen) -> Rows:
    return [[(s.t._("➕ Add a habit"), "ha")], menu_row(s.t)]


def _keyboard_habits(engine: Any, user: User, day: dt.date | None) -> tuple[list[Habit], set[int]]:
    """The user's habits, and the ids of those already done today; for an earlier ``day``, the
    habits that can be logged for it (they existed then), none marked."""
    habits = engine.habits_for(user)
    if day is not None:
        return [habit for habit in habits if engine.earliest_day(user, habit) <= day], set()
    done = {info.habit.id for info in engine.streaks(user) if info.done_today} if habits else set()
    return habits, done


async def show_habit_keyboard(s: Screen, page: int = 0, day: dt.date = _NO_DAY, intro: str | None = None) -> None:
    """The habits to pick from, for today or (``day``) an earlier day."""
    t = s.t
    earlier = day != _NO_DAY
    habits, done_today = await s.run(_keyboard_habits, s.engine, s.user, day if earlier else None)
    if not habits and earlier:  # an old day picker's button: no habit can be logged that day now
        await s.refuse()
        return
    if not habits:
        await s.show(t._("You have no habits yet. Add your first one!"), no_habits_rows(s))
        return
    suffix = f":{day_data(day)}" if earlier else ""
    rows, page, pages = picker(
        t, habits, page,
        pick=lambda h: f"d:{h.id}{suffix}",
        page_data=lambda p: f"done:{p}{suffix}",
        label=lambda h: ("✔️ " if h.id in done_today else "") + h.name,
    )
    if earlier:
        # "4 января", no weekday: it reads right after "on" in every language.
        question = t._("Which habit did you do on {date}?", date=t.date(day, "d MMMM"))
        rows.append([(t._("📅 Another day"), "ed"), (t._("✅ Today"), "done")])
    else:
        question = t._("Which habit did you do today?")
        rows.append([(t._("📅 Earlier day"), "ed")])
    rows.append(menu_row(t))
    # Typed text reports today unless it names a day, and only in a private chat: the hint
    # belongs on today's keyboard there.
    chat = s.update.effective_chat
    typing_reports = not earlier and (chat is None or chat.type == "private")
    text = question + "\n" + t._("You can also type what you did.") if typing_reports else question
    if intro:
        text = intro + "\n\n" + text
    await s.show(text, rows)


@on_command("habit_done", "done")
async def habit_done_command(s: Screen, args: list[str]) -> None:
    if args:  # "/habit_done went running" reports at once
        message = s.update.effective_message
        await report(s, " ".join(args), at=message.date if message else None)
        return
    await show_habit_keyboard(s)


@on_callback("done")
async def habit_keyboard(s: Screen, args: list[str]) -> None:
    page = int_args(args, 1)
    day = _day_of(s, args, 1)
    if day is None:
        await s.refuse()
        return
    await show_habit_keyboard(s, page=page[0] if page else 0, day=day)


def _earliest_day(engine: Any, user: User) -> dt.date | None:
    """The earliest day any of the user's habits can be logged for (None: no habits)."""
    habits = engine.habits_for(user)
    return min(engine.earliest_day(user, habit) for habit in habits) if habits else None


@on_callback("ed")
async def earlier_day(s: Screen, args: list[str], intro: str | None = None) -> None:
    t = s.t
    today = s.engine.today(s.user)
    earliest = await s.run(_earliest_day, s.engine, s.user)
    if earliest is None:
        await s.show(t._("You have no habits yet. Add your first one!"), no_habits_rows(s))
        return
    back = (today - earliest).days  # days before it: no habit of the user's existed yet
    if back < 1:
        text = t._("Your habits were all added today: there is no earlier day to log yet.")
        await s.show(intro + "\n\n" + text if intro else text, [menu_row(t, back="done")])
        return
    rows: Rows = []
    days = [(t._("Yesterday") if ago == 1 else t.date(today - dt.timedelta(days=ago), "EEE, d MMM"),
             f"done:0:{day_data(today - dt.timedelta(days=ago))}") for ago in range(1, back + 1)]
    for start in range(0, len(days), 2):
        rows.append(days[start:start + 2])
    rows.append(menu_row(t, back="done"))
    text = t._("Which day? You can log up to {n} days back.", n=BACKDATE_DAYS)
    await s.show(intro + "\n\n" + text if intro else text, rows)


def completion_text(s: Screen, result: CompletionResult) -> str:
    t = s.t
    habit = result.habit.name
    today = s.engine.today(s.user)
    if result.already_done:
        if result.day == today:
            return t._("☑️ You already logged <b>{habit}</b> today. One completion a day counts.", habit=habit)
        return t._("☑️ <b>{habit}</b> is already logged for {date}.", habit=habit, date=t.date(result.day))
    lines = [
        t._("✅ <b>{habit}</b> logged for {date}.", habit=habit, date=t.date(result.day)) if result.backdated
        else t._("✅ <b>{habit}</b> done!", habit=habit),
        t.ngettext("🔥 Streak: {n} day", "🔥 Streak: {n} days", result.streak),
    ]
    if result.reward is None or result.progress is None:
        lines.append(t._("No reward this time. Keep going!"))
    else:
        earned, required = result.progress.pieces_earned, result.reward.pieces_required
        if result.status is ProgressStatus.ACHIEVED:
            lines.append(t._("🎉 <b>{reward}</b> {earned}/{required}: achieved! Claim it with /claim_reward.",
                             reward=result.reward.name, earned=earned, required=required))
        else:
            lines.append(t._("🎁 You won a piece: <b>{reward}</b> {earned}/{required}",
                             reward=result.reward.name, earned=earned, required=required))
    lines += [award_line(t, award) for award in result.awards]
    return "\n".join(line for line in lines if line)


def award_line(t: Any, award: Any) -> str:
    """A plugin's award. ``data={"message_id": "...", "values": {...}}`` is translated through the
    catalogs (see register_catalog_dir); otherwise its ``message`` is shown as given."""
    data = getattr(award, "data", None) or {}
    message_id = data.get("message_id")
    if message_id:
        return "⭐ " + t._(message_id, **dict(data.get("values") or {}))
    if getattr(award, "message", ""):
        return "⭐ " + html.escape(award.message, quote=False)
    if getattr(award, "reward", None) is not None:
        return t._("⭐ A bonus piece of <b>{reward}</b>", reward=award.reward.name)
    return ""


_EPOCH = dt.datetime(1970, 1, 1)
_MICROSECOND = dt.timedelta(microseconds=1)


def undo_data(habit_id: int, log: HabitLog) -> str:
    """Callback data naming exactly one completion: ``u:habit:log:stamp``.

    The log id alone is not enough: SQLite gives a deleted row's id to the next
    row, so after an undo and a new completion a stale Undo button would revert
    the new one. The stamp is the moment the log was recorded (its ``created_at``,
    microseconds in base 36), which a newer log with the same id does not share.
    """
    micros = (log.created_at - _EPOCH) // _MICROSECOND
    return f"u:{habit_id}:{log.id}:{_base36(micros)}"


def _base36(number: int) -> str:
    """``int(text, 36)`` reads it back; short enough for Telegram's 64 bytes of callback data."""
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if not number:
            return out


def _recorded_at(stamp: str) -> dt.datetime | None:
    """The ``created_at`` a stamp of :func:`undo_data` names, or None for garbage."""
    try:
        micros = int(stamp, 36)
        return _EPOCH + micros * _MICROSECOND if micros >= 0 else None
    except (ValueError, OverflowError):
        return None


def completion_rows(s: Screen, result: CompletionResult) -> Rows:
    t = s.t
    rows: Rows = []
    if not result.already_done:
        rows.append([(t._("↩️ Undo"), undo_data(result.habit.id, result.log))])
    if result.status is ProgressStatus.ACHIEVED and result.reward is not None:
        rows.append([(t._("🎁 Claim it"), f"{KEEP}:cl:{result.reward.id}")])
    rows.append([(t._("✅ Log another"), f"{KEEP}:done"), (t._("🏠 Menu"), f"{KEEP}:m")])
    return rows


async def log_habit(s: Screen, habit: Habit, *, at: dt.datetime | None = None, day: dt.date | None = None,
                    source: str = "button", new_message: bool = False) -> None:
    try:
        outcome = await s.run(s.engine.complete, s.user, habit, at=at, day=day, source=source)
    except (NotFound, ValidationError) as exc:
        outcome = exc
    await show_completion(s, habit, outcome, new_message=new_message)


async def show_completion(s: Screen, habit: Habit, outcome: CompletionResult | Exception, *,
                          new_message: bool = False) -> None:
    """What a completion attempt shows: the result, or why it was refused (NotFound: the habit
    is gone; ValidationError: a day that cannot be logged)."""
    if isinstance(outcome, NotFound):
        await s.refuse()
        return
    if isinstance(outcome, ValidationError):
        await s.show(s.t._("That day cannot be logged for <b>{habit}</b>: only the last {n} days since the habit "
                           "was added count.", habit=habit.name, n=BACKDATE_DAYS), [menu_row(s.t, back="ed")])
        return
    assert isinstance(outcome, CompletionResult)
    text, rows = completion_text(s, outcome), completion_rows(s, outcome)
    if new_message:
        await s.send(text, rows)
    else:
        await s.show(text, rows)


@on_callback("d")
async def pick_habit(s: Screen, args: list[str]) -> None:
    ids = int_args(args, 1)
    day = _day_of(s, args, 1)
    if ids is None or day is None:
        await s.refuse()
        return
    try:
        habit = await s.run(s.engine.get_habit, s.user, ids[0])
    except NotFound:
        await s.refuse(s.t._("That habit no longer exists."))
        return
    one_of_several = args[2:] in ([ONE_OF_SEVERAL], [ONE_READING])
    if one_of_several:  # "did laps and some vinyasa": the completion comes below, the question keeps the rest
        await _keep_the_other_choices(s, habit.id if args[2:] == [ONE_READING] else None)
    # Done when pressed: when the server received the press (``serve`` may run it after
    # midnight: a backlog, a restart), or now where updates are handled as they arrive.
    await log_habit(s, habit, at=update_received_at.get(), day=None if day == _NO_DAY else day,
                    new_message=one_of_several)


async def _keep_the_other_choices(s: Screen, one_day_of: int | None = None) -> None:
    """A question about several habits loses the button pressed and its "None of these" (one was
    done); the other habits stay to be pressed. With none left it loses its keyboard.
    ``one_day_of``: the habit whose other buttons go too (a time or a date: one of its readings)."""
    query = s.query
    same_habit = f"d:{one_day_of}:" if one_day_of is not None else None

    def without_the_pressed(shown: Rows) -> Rows:
        rows = [row for row in shown
                if not any(data in (query.data, "fn") or (same_habit and (data or "").startswith(same_habit))
                           for _, data in row)]
        return rows if any((data or "").startswith("d:") for row in rows for _, data in row) else []

    await _edit_pressed_buttons(s, without_the_pressed)


async def _edit_pressed_buttons(s: Screen, change: Callable[[Rows], Rows]) -> None:
    """The pressed message's buttons as ``change`` makes them of those shown ((text, data) rows);
    nothing is sent when it changes nothing (a forged press on a message without them)."""
    query = s.query
    message = query.message if query is not None else None
    keyboard = getattr(message, "reply_markup", None)
    if message is None or keyboard is None:
        return
    shown = [[(button.text, button.callback_data) for button in row] for row in keyboard.inline_keyboard]
    rows = change(shown)
    if rows == shown:
        return
    try:
        await telegram_call(lambda: s.context.bot.edit_message_reply_markup(
            chat_id=message.chat.id, message_id=message.message_id, reply_markup=markup(rows)))
    except BadRequest as exc:  # too old to edit, deleted: what the press does next is what matters
        log.debug("could not update the pressed message's buttons (%s)", exc.message)


@on_callback(KEEP)
async def keep_and_go_on(s: Screen, args: list[str]) -> None:
    """A completion message's Log another, Claim it or Menu: the screen it names as a new message;
    the completion keeps its text and Undo (see :data:`KEEP`)."""
    entry = CALLBACKS.get(args[0]) if args else None
    if entry is None or args[0] == KEEP:
        await s.refuse()
        return
    await _drop_keep_buttons(s)
    s.keep_pressed = True
    await entry[0](s, args[1:])


async def _drop_keep_buttons(s: Screen) -> None:
    """The pressed message loses its ``k:`` buttons (the next screen comes below it), keeps the rest."""
    await _edit_pressed_buttons(s, lambda shown: [
        kept for kept in ([b for b in row if not (b[1] or "").startswith(f"{KEEP}:")] for row in shown) if kept])


def _undo(engine: Any, user: User, habit_id: int, log_id: int, recorded_at: dt.datetime) -> tuple[Habit, UndoResult]:
    habit = engine.get_habit(user, habit_id)
    # A stale button (its log undone, the id reused by a newer one) finds nothing here.
    return habit, engine.undo(user, habit, log_id=log_id, recorded_at=recorded_at)


@on_callback("u")
async def undo(s: Screen, args: list[str]) -> None:
    t = s.t
    ids = int_args(args, 2)
    recorded_at = _recorded_at(args[2]) if len(args) == 3 else None
    if ids is None or recorded_at is None:
        await s.refuse()
        return
    try:
        habit, result = await s.run(_undo, s.engine, s.user, ids[0], ids[1], recorded_at)
    except (NotFound, NothingToUndo):
        await s.refuse(t._("There is nothing to undo here."))
        return
    lines = [t._("↩️ Undone: <b>{habit}</b> on {date}.", habit=habit.name, date=t.date(result.day))]
    if result.piece_taken_back and result.reward is not None:
        lines.append(t._("The piece of <b>{reward}</b> was taken back.", reward=result.reward.name))
    lines.append(t.ngettext("🔥 Streak now: {n} day", "🔥 Streak now: {n} days", result.streak))
    await s.show("\n".join(lines), [[(t._("✅ Log a habit"), "done"), (t._("🏠 Menu"), "m")]])


@on_callback("fn")
async def not_this_one(s: Screen, args: list[str]) -> None:
    await s.show(s.t._("OK, nothing was logged."), [[(s.t._("✅ Log a habit"), "done"), (s.t._("🏠 Menu"), "m")]])


def _exact_matches(text: str, habits: list[Habit]) -> list[Habit]:
    wanted = " ".join(text.split()).casefold()
    return [h for h in habits if " ".join(h.name.split()).casefold() == wanted]


def _matched(text: str, habits: list[Habit], result: Any) -> tuple[list[Habit], bool]:
    """The habits the matchers' ``result`` names (only the user's own, each once) and whether
    it is certain; without any matcher (``result`` None), an exact name is certain."""
    if result is None:
        return _exact_matches(text, habits), True
    visible = {h.id: h for h in habits}  # a matcher may only pick the user's own habits
    matches, seen = [], set()
    for match in getattr(result, "matches", ()) or ():
        habit_id = getattr(match.habit, "id", None)
        if habit_id in visible and habit_id not in seen:
            seen.add(habit_id)
            matches.append(visible[habit_id])
    return matches, bool(getattr(result, "confident", False))


def _written(engine: Any, user: Any, at: dt.datetime | None) -> dt.datetime:
    """The moment a message was written (``at``, or now), in the user's time zone."""
    moment = at or engine.now()
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)).astimezone(engine.user_zone(user))


def _reported_days(engine: Any, user: Any, text: str, at: dt.datetime | None) -> Days:
    """The days ``text`` names, its dates in numbers ("25.11") read on the day it was written."""
    return reported_days(text, _written(engine, user, at).date())


def _reported_day(engine: Any, user: Any, text: str, at: dt.datetime | None) -> dt.date | None:
    """The day a report is about when it names one just past ("ran yesterday", "25.11", "an hour
    ago" sent soon after midnight); None: the day it was written (``at``)."""
    written = _written(engine, user, at)
    day = reported_days(text, written.date()).day_of(written)
    return day if day != written.date() else None


def _read_match_and_log(engine: Any, user: Any, text: str, at: dt.datetime | None, log: bool) -> tuple[
        list[Habit], list[Habit], bool, list[CompletionResult | Exception]]:
    """The user's habits, what ``text`` matches, whether that is certain, and when it is and
    ``log`` asks, each match logged (its result, or the NotFound / ValidationError that
    refused it), on the day the text names ("yesterday") or the day it was written."""
    habits = engine.habits_for(user)
    if not habits:
        return habits, [], False, []
    matches, confident = _matched(text, habits, engine.hooks.match_habits(user, text, habits))
    # A message naming several days ("ran yesterday and read today") or an earlier one we do not
    # resolve ("last week") is never logged at once, whatever matcher answered: which habit goes
    # with which day is the user's to say.
    confident = confident and _reported_days(engine, user, text, at).certain
    outcomes: list[CompletionResult | Exception] = []
    if matches and confident and log:
        day = _reported_day(engine, user, text, at)
        for habit in matches:
            try:
                outcomes.append(engine.complete(user, habit, at=at, day=day, source="text"))
            except (NotFound, ValidationError) as exc:
                outcomes.append(exc)
    return habits, matches, confident, outcomes


@functools.cache
def _waiting_matches() -> concurrent.futures.ThreadPoolExecutor:
    """Threads for matches that may wait on an LLM (or another plugin's matcher), apart from
    asyncio's default ones; as many as LLM calls may run at once."""
    from habitreward.nlp.llm import LLM_CALLS_AT_ONCE

    return concurrent.futures.ThreadPoolExecutor(LLM_CALLS_AT_ONCE, thread_name_prefix="habitreward-match")


async def report(s: Screen, text: str, at: dt.datetime | None) -> None:
    """Free text: log what is certain, confirm what is not, offer the keyboard otherwise."""
    t = s.t
    on_postgres = is_postgres(s.engine.db)
    may_wait = matching_may_wait(s.engine.pm)
    if on_postgres or may_wait:
        # An LLM, another plugin's matcher or database round trips: keep the event loop free,
        # with one thread hop for the habits, the match and, on PostgreSQL, the completion (a
        # SQLite write stays on the loop: see run_engine). A match that may wait on an LLM runs
        # on threads of its own: slow calls must not take the threads every other update's
        # database work (and the server's inbox claims) hop to.
        run = functools.partial(_read_match_and_log, s.engine, s.user, text, at, on_postgres)
        if may_wait:
            context = contextvars.copy_context()  # as asyncio.to_thread: the update being processed
            habits, matches, confident, outcomes = await asyncio.get_running_loop().run_in_executor(
                _waiting_matches(), context.run, run)
        else:
            habits, matches, confident, outcomes = await asyncio.to_thread(run)
    else:  # the built-in local matcher on SQLite: a thread hop would cost more than the match
        habits, matches, confident, outcomes = _read_match_and_log(s.engine, s.user, text, at, True)
    if not habits:
        await s.send(t._("You have no habits yet. Add your first one!"), no_habits_rows(s))
        return
    if matches and confident:
        if not outcomes:  # matched on a worker thread, logged here (SQLite)
            day = _reported_day(s.engine, s.user, text, at)
            for habit in matches:
                await log_habit(s, habit, at=at, day=day, source="text", new_message=True)
        for habit, outcome in zip(matches, outcomes):
            await show_completion(s, habit, outcome, new_message=True)
        return
    days = _reported_days(s.engine, s.user, text, at)
    # "ran last week", "on Monday", "ran 12.11" out of the window, "ran 11/12" that reads two ways:
    # which day is the user's to say, not today
    if days.unresolved:
        await earlier_day(s, [], intro=t._("I could not tell which day that was."))
        return
    if matches and not days.certain:
        await _ask_habit_and_day(s, matches, days, at)
        return
    named = _reported_day(s.engine, s.user, text, at)  # "yesterday"
    # The keyboard offered instead is the day the message is about ("yesterday", or the day it
    # was written when that is over: sent at 23:58, handled at 00:03), unless no habit existed
    # then (today's).
    today = s.engine.today(s.user)
    about = named or (s.engine.local_date(s.user, at) if at else today)
    keyboard_day = about if about < today and any(
        s.engine.earliest_day(s.user, habit) <= about for habit in habits) else None
    if matches:
        # The answer logs the day the message is about, even if it comes after midnight.
        day = named or (s.engine.local_date(s.user, at) if at else None)
        on = f":{day_data(day)}" if day is not None else ""
        if len(matches) == 1:
            question = t._("Did you mean <b>{habit}</b>?", habit=matches[0].name)
            rows: Rows = [[(t._("✅ Yes, log it"), f"d:{matches[0].id}{on}"), (t._("❌ No"), "fn")]]
        else:
            question = t._("Which of these did you do? Press each one.")
            several = f":{day_data(day)}" if day is not None else ":0"  # 0 days back: today when pressed
            rows = [[(h.name, f"d:{h.id}{several}:{ONE_OF_SEVERAL}")] for h in matches[:8]]
            rows.append([(t._("❌ None of these"), "fn")])
        rows.append([(t._("📋 Pick another habit"), f"done:0:{day_data(keyboard_day)}" if keyboard_day else "done")])
        await s.send(question, rows)
        return
    await show_habit_keyboard(s, day=keyboard_day if keyboard_day is not None else _NO_DAY,
                              intro=t._("I could not tell which habit that was."))


async def _ask_habit_and_day(s: Screen, matches: list[Habit], days: Days, at: dt.datetime | None) -> None:
    """A report naming several days, or a time that reads as a date too ("в 10.11": today or 10
    November): a button for each habit on each day (that the habit existed on), pressed one at a time."""
    t = s.t
    today = s.engine.today(s.user)
    written = s.engine.local_date(s.user, at) if at else today
    rows: Rows = []
    # Each button is pressed with the others left (the message may report them all), but a time
    # or a date ("в 10.11 бегал") is one report read two ways: a habit's two buttons are its two
    # readings, so one pressed takes the other (for one habit, the question) away.
    if days.time_or_date:
        several = "" if len(matches) == 1 else f":{ONE_READING}"
    else:
        several = f":{ONE_OF_SEVERAL}"
    for habit in matches:
        earliest = s.engine.earliest_day(s.user, habit)
        for back in days.back:
            day = written - dt.timedelta(days=back)
            if day < earliest or len(rows) >= 8:
                continue
            # Named as seen now: the "today" of a message written before midnight is yesterday.
            ago = (today - day).days
            label = t._("Today") if ago == 0 else t._("Yesterday") if ago == 1 else t.date(day, "EEE, d MMM")
            rows.append([(f"{habit.name} · {label}", f"d:{habit.id}:{day_data(day)}{several}")])
    rows.append([(t._("❌ None of these"), "fn")])
    rows.append([(t._("📋 Pick another habit"), "done")])
    if days.time_or_date:  # "в 10.11": 10:11 today, or 10 November
        question = t._("Is {time_or_date} a time today or a date? Which habit, on which day?",
                       time_or_date=days.time_or_date)
    else:
        question = t._("Your message names more than one day. Which habit, on which day?")
    await s.send(question, rows)


@screen()
async def _free_text(s: Screen) -> None:
    message = s.update.effective_message
    if message is None or not message.text:
        return
    await report(s, message.text, at=message.date)


async def free_text(update: Update, context: Any) -> None:
    """Text from an active user outside a conversation is a habit report."""
    await _free_text(update, context)
