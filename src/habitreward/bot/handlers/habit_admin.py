"""Add, edit and remove habits, and the way to a habit's aliases.

Adding asks for typed answers, so its steps belong to the persistent ``dialog``
conversation (see :mod:`habitreward.bot.handlers.dialog`); answers so far live in
``user_data["drafts"]``, one per chat (stored in the database), so a restart in the middle
continues where the user was. Editing and removing are the screens
:mod:`catalog_admin` builds for habits and rewards alike (``he``, ``hf``, ``hr``
...); ``hm`` is the hub, ``ha`` adds, ``hal:habit`` shows a habit's aliases
(:mod:`habit_aliases`).
"""

from __future__ import annotations

import html
from typing import Any

from telegram.ext import CallbackQueryHandler, CommandHandler, MessageHandler

from habitreward.bot.handlers import catalog_admin
from habitreward.bot.handlers.catalog_admin import (
    Field,
    Kind,
    answer_scope,
    ask_scope,
    draft,
    pressed_value,
    read_name,
    save_new,
    start_add,
    store,
    typed_scope,
    typed_value,
)
from habitreward.bot.handlers.common import TEXT_INPUT, Screen, screen
from habitreward.bot.handlers.router import on_callback, on_command
from habitreward.bot.i18n import N_
from habitreward.bot.keyboards import Rows, menu_row
from habitreward.bot.text import MAX_TEXT, MORE_LINE_ROOM, fitting, shown_units
from habitreward.engine import validation
from habitreward.models import Habit

NAME, WEIGHT, SCOPE, EDIT_VALUE = "habit_name", "habit_weight", "habit_scope", "habit_edit_value"
TEXT = TEXT_INPUT


def describe(s: Screen, habit: Habit) -> str:
    t = s.t
    parts = [
        t._("<b>{habit}</b>", habit=habit.name),
        t._("weight {weight}", weight=habit.weight),
        t.ngettext("{n} grace day", "{n} grace days", habit.allowed_skip_days),
    ]
    if habit.category:
        parts.append(t._("category {category}", category=habit.category))
    parts.append(t._("shared") if habit.is_shared else t._("personal"))
    return " · ".join(parts)


async def aliases_of(s: Screen, habit: Habit) -> list[str]:
    return (await s.run(s.engine.aliases_for, [habit]))[habit.id]


def more_aliases(s: Screen, n: int) -> str:
    return s.t.ngettext("…and {n} more alias", "…and {n} more aliases", n)


def aliases_line(s: Screen, habit: Habit, room: int = MAX_TEXT) -> str:
    """The edit screen's reminder of the habit's other words (managed in :mod:`habit_aliases`):
    as many as fit in ``room`` UTF-16 units (20 aliases of 100 emoji would not), then how many
    more. Reads them, so it runs where the database may be used (see ``Kind.details``)."""
    aliases = s.engine.aliases_for([habit])[habit.id]
    if not aliases:
        return s.t._("🏷 No aliases yet.")
    room -= shown_units(s.t._("🏷 Aliases: {aliases}", aliases="")) + MORE_LINE_ROOM
    count = fitting([html.escape(a, quote=False) + "," for a in aliases], room)  # ", " between them
    line = s.t._("🏷 Aliases: {aliases}", aliases=", ".join(aliases[:count]))
    return line if count == len(aliases) else line + " " + more_aliases(s, len(aliases) - count)


def details(s: Screen, habit: Habit) -> str:
    """The edit screen's text above "What do you want to change?" (room kept for it)."""
    described = describe(s, habit)
    return described + "\n" + aliases_line(s, habit, MAX_TEXT - shown_units(described) - 2 * MORE_LINE_ROOM)


HABITS = Kind(
    key="habit", prefix="h", describe=describe, edit_state=EDIT_VALUE,
    fields=(
        Field("name", N_("Name"), N_("Type the new name:"),
              N_("Please type a name of at most {n} characters."), lambda text: {"name": text},
              n=validation.MAX_NAME_LENGTH, named=True),
        Field("weight", N_("Weight"), N_("Type the new weight, from 1 to 100:"),
              N_("Please type a whole number from 1 to 100."), lambda text: {"weight": text}),
        Field("skip", N_("Grace days"),
              N_("How many days may be skipped without breaking the streak? Type 0 to 30:"),
              N_("Please type a whole number from 0 to {n}."), lambda text: {"allowed_skip_days": text},
              n=validation.MAX_SKIP_DAYS),
        Field("category", N_("Category"), N_("Type the category (or - for none):"),
              N_("Please type a name of at most {n} characters."),
              lambda text: {"category": None if text in ("-", "—") else text}, n=validation.MAX_NAME_LENGTH,
              named=True),
    ),
    cannot_change=N_("You cannot change that habit."),
    none_to_change=N_("You have no habits you can change."),
    which_to_change=N_("Which habit do you want to change?"),
    none_to_remove=N_("You have no habits you can remove."),
    which_to_remove=N_("Which habit do you want to remove?"),
    remove_question=N_("Remove <b>{habit}</b>? Its history stays."),
    removed=N_("🗑 <b>{habit}</b> removed."),
    duplicate_name=N_("There is already a habit called <b>{name}</b>. Type another name:"),
    add_button=N_("➕ Add a habit"),
    manage_button=N_("📝 Manage habits"),
    add_prompt=N_("What is the new habit called? Type its name (or /cancel)."),
    name_state=NAME,
    added=N_("✅ Habit added:"),
    details=details,
    extra_rows=lambda s, habit: [[(s.t._("🏷 Aliases"), f"hal:{habit.id}")]],
)
_edit_entry_points, _edit_states = catalog_admin.register(HABITS)


async def visible_habit(s: Screen, args: list[str]) -> Habit | None:
    """The habit named by ``args[0]`` if this user may change it (its owner, or an admin)."""
    return await catalog_admin.visible(s, HABITS, args)


@on_command("manage_habits")
@on_callback("hm")
async def hub(s: Screen, args: list[str]) -> None:
    t = s.t
    count = len(await s.run(s.engine.habits_for, s.user))
    await s.show(
        t.ngettext("📝 You have {n} habit.", "📝 You have {n} habits.", count),
        [[(t._("➕ Add a habit"), "ha")], [(t._("✏️ Edit a habit"), "he"), (t._("🗑 Remove a habit"), "hr")],
         menu_row(t)],
    )


# --- add -----------------------------------------------------------------------------------


@screen()
async def add_start(s: Screen) -> str:
    return await start_add(s, HABITS)


def weight_rows(s: Screen) -> Rows:
    return [[(str(w), f"hw:{w}") for w in (5, 10, 20, 50)], menu_row(s.t)]


@screen()
async def add_name(s: Screen) -> str:
    t = s.t
    name = await read_name(s, HABITS)
    if name is None:
        return NAME
    s.set_draft({"flow": "add_habit", "name": name})
    await s.send(t._("How important is <b>{name}</b>? Pick a weight or type one from 1 to 100 "
                     "(10 is normal; heavier habits win rewards more often).", name=name), weight_rows(s))
    return WEIGHT


async def _after_weight(s: Screen, weight: int) -> str | int:
    if "name" not in draft(s):  # the draft is gone (e.g. cancelled elsewhere): start over
        return await start_add(s, HABITS)
    answers = store(s, weight=weight)
    if s.user.is_admin:
        await ask_scope(s, HABITS, answers["name"])
        return SCOPE
    return await _save_new(s, shared=False)


@screen()
async def add_weight_typed(s: Screen) -> str | int:
    weight = await typed_value(s, validation.habit_weight, N_("Please type a whole number from 1 to 100."),
                               weight_rows(s))
    return WEIGHT if weight is None else await _after_weight(s, weight)


@screen()
async def add_weight_button(s: Screen) -> str | int:
    weight = await pressed_value(s, validation.habit_weight)
    return WEIGHT if weight is None else await _after_weight(s, weight)


@screen()
async def scope_typed(s: Screen) -> str:
    return await typed_scope(s, HABITS, SCOPE)


@screen()
async def add_scope(s: Screen) -> str | int:
    return await answer_scope(s, HABITS, _save_new)


async def _save_new(s: Screen, shared: bool) -> str | int:
    t = s.t
    return await save_new(
        s, HABITS,
        lambda answers: s.engine.add_habit(answers["name"], weight=answers.get("weight", 10),
                                           owner=None if shared else s.user, actor=s.user),
        lambda habit: [[(t._("✅ Log it now"), f"d:{habit.id}"), (t._("➕ Add another"), "ha")], menu_row(t)],
    )


# --- the dialog's part -------------------------------------------------------------------------


def entry_points() -> list[Any]:
    return [
        CommandHandler("add_habit", add_start),
        CallbackQueryHandler(add_start, pattern=r"^ha$"),
        *_edit_entry_points,
    ]


def states() -> dict[str, list[Any]]:
    return {
        NAME: [MessageHandler(TEXT, add_name)],
        WEIGHT: [MessageHandler(TEXT, add_weight_typed), CallbackQueryHandler(add_weight_button, pattern=r"^hw:")],
        SCOPE: [CallbackQueryHandler(add_scope, pattern=r"^hs:(me|all)$"), MessageHandler(TEXT, scope_typed)],
        **_edit_states,
    }
