"""Read-only screens: /streaks, /history and /odds (all paged to stay inside Telegram's limits).

Callback data: ``st[:page]``, ``hi[:page]``, ``od[:page]`` (habit picker), ``o:habit``.
"""

from __future__ import annotations

from typing import Any

from habitreward.bot.handlers.common import Screen, int_args
from habitreward.bot.handlers.completion import no_habits_rows
from habitreward.bot.handlers.router import on_callback, on_command
from habitreward.bot.keyboards import LIST_PAGE_SIZE, Rows, menu_row, nav_row, picker
from habitreward.bot.text import MAX_TEXT, MORE_LINE_ROOM, fitting, pages, shown_units
from habitreward.engine.results import EXCLUDED_TODAY, Odds, ProgressEntry
from habitreward.errors import NotFound
from habitreward.models import Habit, User

MAX_ODDS_LINES = 20  # and no more than fit (a name of 100 emoji is 200 of Telegram's 4096 units)
MAX_WAITING_LINES = 3


def _page(args: list[str]) -> int:
    page = int_args(args, 1)
    return page[0] if page else 0


def paged(s: Screen, title: str, lines: list[str], page: int, prefix: str, extra: Rows | None = None
          ) -> tuple[str, Rows]:
    """A page of a list screen: at most LIST_PAGE_SIZE lines and as many as fit in one message
    under ``title`` (long names make shorter pages), so every line is on some page."""
    split = pages(lines, LIST_PAGE_SIZE, MAX_TEXT - shown_units(title) - 2)
    page = min(max(0, page), len(split) - 1)
    rows: Rows = list(extra or [])
    nav = nav_row(s.t, page, len(split), lambda p: f"{prefix}:{p}")
    if nav:
        rows.append(nav)
    rows.append(menu_row(s.t))
    return "\n".join([title, "", *split[page]]), rows


@on_command("streaks")
@on_callback("st")
async def streaks(s: Screen, args: list[str]) -> None:
    t = s.t
    infos = await s.run(s.engine.streaks, s.user)
    if not infos:
        await s.show(t._("You have no habits yet. Add your first one!"), no_habits_rows(s))
        return
    lines = []
    for info in infos:
        if info.streak:
            line = t.ngettext("🔥 <b>{habit}</b>: {n} day", "🔥 <b>{habit}</b>: {n} days", info.streak,
                              habit=info.habit.name)
        else:
            line = t._("▫️ <b>{habit}</b>: no streak yet", habit=info.habit.name)
        if info.done_today:
            line += " " + t._("(done today)")
        lines.append(line)
    text, rows = paged(s, t._("<b>Your streaks</b>"), lines, _page(args), "st",
                       extra=[[(t._("✅ Log a habit"), "done")]])
    await s.show(text, rows)


@on_command("history")
@on_callback("hi")
async def history(s: Screen, args: list[str]) -> None:
    t = s.t
    entries = await s.run(s.engine.history, s.user, s.settings.recent_logs_limit)
    if not entries:
        await s.show(t._("Nothing logged yet."), [[(t._("✅ Log a habit"), "done")], menu_row(t)])
        return
    lines = []
    for entry in entries:
        line = t._("{date} · <b>{habit}</b> · 🔥 {streak}", date=t.date(entry.log.completed_on),
                   habit=entry.habit_name, streak=entry.log.streak_count)
        if entry.reward_name:
            line += " · " + t._("🎁 {reward}", reward=entry.reward_name)
        lines.append(line)
    title = t.ngettext("<b>Your last {n} completion</b>", "<b>Your last {n} completions</b>", len(entries))
    text, rows = paged(s, title, lines, _page(args), "hi")
    await s.show(text, rows)


@on_command("odds")
@on_callback("od")
async def odds_picker(s: Screen, args: list[str]) -> None:
    t = s.t
    habits = await s.run(s.engine.habits_for, s.user)
    if not habits:
        await s.show(t._("You have no habits yet. Add your first one!"), no_habits_rows(s))
        return
    rows, _, _ = picker(t, habits, _page(args), pick=lambda h: f"o:{h.id}", page_data=lambda p: f"od:{p}")
    rows.append(menu_row(t))
    await s.show(t._("Your chances of a reward for the next completion. Which habit?"), rows)


def _odds(engine: Any, user: User, habit_id: int) -> tuple[Habit, Odds, list[ProgressEntry]]:
    """A habit of the user's, its odds, and the rewards waiting to be claimed (out of the draw)."""
    habit = engine.get_habit(user, habit_id)
    return habit, engine.odds(user, habit), engine.claimable(user)


@on_callback("o")
async def odds(s: Screen, args: list[str]) -> None:
    t = s.t
    ids = int_args(args, 1)
    try:
        habit, result, waiting = await s.run(_odds, s.engine, s.user, ids[0]) if ids else (None, None, [])
    except NotFound:
        habit = None
    if habit is None:
        await s.refuse(t._("That habit no longer exists."))
        return
    lines = [t._("🎲 <b>Odds for {habit}</b>", habit=habit.name)]
    if result.done_today:  # a second completion today draws nothing: the next one is tomorrow's
        lines.append(t._("Done today: these are the odds for tomorrow's completion."))
    lines += [
        t.ngettext("Streak: {n} day", "Streak: {n} days", result.streak)
        + " · " + t._("multiplier ×{value}", value=t.number(result.multiplier, ".2f")),
        "",
    ]
    rewards = sorted((row for row in result.rows if row.reward is not None), key=lambda row: -row.probability)
    reward_lines = [t._("• <b>{reward}</b> — {percent}", reward=row.reward.name, percent=t.percent(row.probability))
                    for row in rewards[:MAX_ODDS_LINES]]
    rest: list[str] = []
    for row in result.rows:
        if row.reward is None:
            rest.append(t._("• No reward — {percent}", percent=t.percent(row.probability)))
    for entry in waiting[:MAX_WAITING_LINES]:
        # An achieved reward is out of the draw until claimed (a piece is never lost): say why.
        rest.append(t._("⏸ <b>{reward}</b> is out of the draw until you claim it.", reward=entry.reward.name))
    if len(waiting) > MAX_WAITING_LINES:
        rest.append(t.ngettext("…and {n} more reward", "…and {n} more rewards", len(waiting) - MAX_WAITING_LINES))
    used_up = [reward for reward, why in result.excluded if why == EXCLUDED_TODAY]
    for reward in used_up[:MAX_WAITING_LINES]:
        rest.append(t._("⏸ <b>{reward}</b> came out as often as it may today: back in the draw tomorrow.",
                        reward=reward.name))
    if len(used_up) > MAX_WAITING_LINES:
        rest.append(t.ngettext("…and {n} more reward", "…and {n} more rewards", len(used_up) - MAX_WAITING_LINES))
    rest += ["", t._("A longer streak and a heavier habit raise the odds of a real reward.")]
    # As many of the likeliest rewards as fit beside the rest (long names: fewer), then how many more.
    room = MAX_TEXT - shown_units("\n".join(lines + rest)) - 1 - MORE_LINE_ROOM
    shown = reward_lines[:fitting(reward_lines, room)]
    lines += shown
    if len(rewards) > len(shown):
        lines.append(t.ngettext("…and {n} more reward", "…and {n} more rewards", len(rewards) - len(shown)))
    lines += rest
    await s.show("\n".join(lines), [[(t._("🎲 Another habit"), "od")], menu_row(t)])
