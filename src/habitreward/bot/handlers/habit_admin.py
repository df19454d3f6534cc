"""Add, edit and remove habits.

Adding and editing ask for typed answers, so they are steps of the persistent
``dialog`` conversation (see :mod:`habitreward.bot.handlers.dialog`); answers so
far live in ``user_data["draft"]`` (stored in the database), so a restart in
the middle continues where the user was. Picking and removing are plain
buttons: ``hm`` hub, ``he[:habit]``/``hep:page`` edit picker and field menu,
``hf:habit:field`` starts typing a new value, ``hal:habit`` its aliases
(:mod:`habit_aliases`), ``hr[:habit]``/``hrp:page``/
``hrx:habit`` remove.
"""

from __future__ import annotations

from typing import Any

from telegram.ext import CallbackQueryHandler, CommandHandler, ConversationHandler, MessageHandler

from habitreward.bot.handlers.common import TEXT_INPUT, Screen, int_args, screen
from habitreward.bot.handlers.menu import DRAFT_KEY
from habitreward.bot.handlers.router import on_callback, on_command
from habitreward.bot.handlers.views import _page
from habitreward.bot.keyboards import Rows, menu_row, picker
from habitreward.engine import validation
from habitreward.errors import Conflict, NotFound, PermissionDenied, ValidationError
from habitreward.models import Habit

NAME, WEIGHT, SCOPE, EDIT_VALUE = "habit_name", "habit_weight", "habit_scope", "habit_edit_value"
FIELDS = ("name", "weight", "skip", "category")
TEXT = TEXT_INPUT


def may_edit(s: Screen, habit: Habit) -> bool:
    return habit.owner_id == s.user.id or bool(s.user.is_admin)


def editable(s: Screen) -> list[Habit]:
    return [h for h in s.engine.habits_for(s.user) if may_edit(s, h)]


def _visible(s: Screen, args: list[str]) -> Habit | None:
    ids = int_args(args, 1)
    if ids is None:
        return None
    try:
        habit = s.engine.get_habit(s.user, ids[0])
    except NotFound:
        return None
    return habit if may_edit(s, habit) else None


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


def aliases_of(s: Screen, habit: Habit) -> list[str]:
    return s.engine.aliases_for([habit])[habit.id]


def aliases_line(s: Screen, habit: Habit) -> str:
    """The edit screen's reminder of the habit's other words (managed in :mod:`habit_aliases`)."""
    aliases = aliases_of(s, habit)
    if not aliases:
        return s.t._("🏷 No aliases yet.")
    return s.t._("🏷 Aliases: {aliases}", aliases=", ".join(aliases))


@on_command("manage_habits")
@on_callback("hm")
async def hub(s: Screen, args: list[str]) -> None:
    t = s.t
    count = len(s.engine.habits_for(s.user))
    await s.show(
        t.ngettext("📝 You have {n} habit.", "📝 You have {n} habits.", count),
        [[(t._("➕ Add a habit"), "ha")], [(t._("✏️ Edit a habit"), "he"), (t._("🗑 Remove a habit"), "hr")],
         menu_row(t)],
    )


# --- add -----------------------------------------------------------------------------------


@screen()
async def add_start(s: Screen) -> str:
    s.context.user_data[DRAFT_KEY] = {"flow": "add_habit"}
    await s.show(s.t._("What is the new habit called? Type its name (or /cancel)."), [menu_row(s.t)])
    return NAME


def weight_rows(s: Screen) -> Rows:
    return [[(str(w), f"hw:{w}") for w in (5, 10, 20, 50)], menu_row(s.t)]


@screen()
async def add_name(s: Screen) -> str:
    t = s.t
    text = s.update.effective_message.text or ""
    try:
        name = validation.clean_name(text, "habit name")
    except ValidationError:
        await s.send(t._("Please type a name of at most {n} characters.", n=validation.MAX_NAME_LENGTH))
        return NAME
    try:
        s.engine.find_habit(s.user, name)
    except NotFound:
        pass
    else:
        await s.send(t._("There is already a habit called <b>{name}</b>. Type another name:", name=name))
        return NAME
    s.context.user_data[DRAFT_KEY] = {"flow": "add_habit", "name": name}
    await s.send(t._("How important is <b>{name}</b>? Pick a weight or type one from 1 to 100 "
                     "(10 is normal; heavier habits win rewards more often).", name=name), weight_rows(s))
    return WEIGHT


async def _after_weight(s: Screen, weight: int) -> str | int:
    draft = dict(s.context.user_data.get(DRAFT_KEY) or {})
    if "name" not in draft:  # the draft is gone (e.g. cancelled elsewhere): start over
        return await add_start.screen_func(s)  # type: ignore[attr-defined]
    draft["weight"] = weight
    s.context.user_data[DRAFT_KEY] = draft
    if s.user.is_admin:
        t = s.t
        await s.show(t._("Who is <b>{name}</b> for?", name=draft["name"]),
                     [[(t._("👤 Just me"), "hs:me"), (t._("👥 Everyone"), "hs:all")], menu_row(t)])
        return SCOPE
    return await _save_new(s, shared=False)


@screen()
async def add_weight_typed(s: Screen) -> str | int:
    try:
        weight = validation.habit_weight((s.update.effective_message.text or "").strip())
    except ValidationError:
        await s.send(s.t._("Please type a whole number from 1 to 100."), weight_rows(s))
        return WEIGHT
    return await _after_weight(s, weight)


@screen()
async def add_weight_button(s: Screen) -> str | int:
    data = s.query.data.split(":")
    try:
        weight = validation.habit_weight(data[1])
    except (ValidationError, IndexError):
        await s.refuse()
        return WEIGHT
    return await _after_weight(s, weight)


@screen()
async def add_scope(s: Screen) -> str | int:
    if not s.user.is_admin:
        await s.refuse()
        return ConversationHandler.END
    return await _save_new(s, shared=s.query.data == "hs:all")


async def _save_new(s: Screen, shared: bool) -> str | int:
    t = s.t
    draft = s.context.user_data.get(DRAFT_KEY) or {}
    try:
        habit = s.engine.add_habit(draft["name"], weight=draft.get("weight", 10),
                                   owner=None if shared else s.user, actor=s.user)
    except KeyError:
        return await add_start.screen_func(s)  # type: ignore[attr-defined]
    except Conflict:
        await s.show(t._("There is already a habit called <b>{name}</b>. Type another name:", name=draft["name"]))
        return NAME
    s.context.user_data.pop(DRAFT_KEY, None)
    await s.show(t._("✅ Habit added:") + " " + describe(s, habit),
                 [[(t._("✅ Log it now"), f"d:{habit.id}"), (t._("➕ Add another"), "ha")], menu_row(t)])
    return ConversationHandler.END


# --- edit ------------------------------------------------------------------------------------


async def edit_picker(s: Screen, page: int) -> None:
    t = s.t
    habits = editable(s)
    if not habits:
        await s.show(t._("You have no habits you can change."), [[(t._("➕ Add a habit"), "ha")], menu_row(t)])
        return
    rows, _, _ = picker(t, habits, page, pick=lambda h: f"he:{h.id}", page_data=lambda p: f"hep:{p}")
    rows.append(menu_row(t, back="hm"))
    await s.show(t._("Which habit do you want to change?"), rows)


@on_command("edit_habit")
@on_callback("he")
async def edit(s: Screen, args: list[str]) -> None:
    if not args:
        await edit_picker(s, 0)
        return
    habit = _visible(s, args)
    if habit is None:
        await s.refuse(s.t._("You cannot change that habit."))
        return
    t = s.t
    await s.show(
        describe(s, habit) + "\n" + aliases_line(s, habit) + "\n\n" + t._("What do you want to change?"),
        [[(t._("Name"), f"hf:{habit.id}:name"), (t._("Weight"), f"hf:{habit.id}:weight")],
         [(t._("Grace days"), f"hf:{habit.id}:skip"), (t._("Category"), f"hf:{habit.id}:category")],
         [(t._("🏷 Aliases"), f"hal:{habit.id}")],
         menu_row(t, back="he")],
    )


@on_callback("hep")
async def edit_page(s: Screen, args: list[str]) -> None:
    await edit_picker(s, _page(args))


@screen()
async def edit_field(s: Screen) -> str | int:
    t = s.t
    _, *args = s.query.data.split(":")
    habit = _visible(s, args[:1])
    if habit is None or len(args) < 2 or args[1] not in FIELDS:
        await s.refuse(t._("You cannot change that habit."))
        return ConversationHandler.END
    s.context.user_data[DRAFT_KEY] = {"flow": "edit_habit", "habit": habit.id, "field": args[1]}
    prompts = {
        "name": t._("Type the new name:"),
        "weight": t._("Type the new weight, from 1 to 100:"),
        "skip": t._("How many days may be skipped without breaking the streak? Type 0 to 30:"),
        "category": t._("Type the category (or - for none):"),
    }
    await s.show(describe(s, habit) + "\n\n" + prompts[args[1]], [menu_row(t, back=f"he:{habit.id}")])
    return EDIT_VALUE


@screen()
async def edit_value(s: Screen) -> str | int:
    t = s.t
    draft = s.context.user_data.get(DRAFT_KEY) or {}
    habit = _visible(s, [str(draft.get("habit", ""))])
    field = draft.get("field")
    if habit is None or field not in FIELDS:
        s.context.user_data.pop(DRAFT_KEY, None)
        await s.refuse(t._("You cannot change that habit."))
        return ConversationHandler.END
    text = (s.update.effective_message.text or "").strip()
    errors = {
        "name": t._("Please type a name of at most {n} characters.", n=validation.MAX_NAME_LENGTH),
        "weight": t._("Please type a whole number from 1 to 100."),
        "skip": t._("Please type a whole number from 0 to {n}.", n=validation.MAX_SKIP_DAYS),
        "category": t._("Please type a name of at most {n} characters.", n=validation.MAX_NAME_LENGTH),
    }
    changes: dict[str, Any] = {
        "name": {"name": text},
        "weight": {"weight": text},
        "skip": {"allowed_skip_days": text},
        "category": {"category": None if text in ("-", "—") else text},
    }[field]
    try:
        habit = s.engine.edit_habit(habit, actor=s.user, **changes)
    except ValidationError:
        await s.send(errors[field])
        return EDIT_VALUE
    except Conflict:
        await s.send(t._("There is already a habit called <b>{name}</b>. Type another name:", name=text))
        return EDIT_VALUE
    except PermissionDenied:
        await s.refuse(t._("You cannot change that habit."))
        return ConversationHandler.END
    s.context.user_data.pop(DRAFT_KEY, None)
    await s.send(t._("✅ Saved.") + "\n" + describe(s, habit),
                 [[(t._("✏️ Change more"), f"he:{habit.id}")], menu_row(t)])
    return ConversationHandler.END


# --- remove ----------------------------------------------------------------------------------


async def remove_picker(s: Screen, page: int) -> None:
    t = s.t
    habits = editable(s)
    if not habits:
        await s.show(t._("You have no habits you can remove."), [menu_row(t)])
        return
    rows, _, _ = picker(t, habits, page, pick=lambda h: f"hr:{h.id}", page_data=lambda p: f"hrp:{p}")
    rows.append(menu_row(t, back="hm"))
    await s.show(t._("Which habit do you want to remove?"), rows)


@on_command("remove_habit")
@on_callback("hr")
async def remove(s: Screen, args: list[str]) -> None:
    if not args:
        await remove_picker(s, 0)
        return
    t = s.t
    habit = _visible(s, args)
    if habit is None:
        await s.refuse(t._("You cannot change that habit."))
        return
    await s.show(t._("Remove <b>{habit}</b>? Its history stays.", habit=habit.name),
                 [[(t._("🗑 Yes, remove it"), f"hrx:{habit.id}"), (t._("⬅️ Back"), "hr")]])


@on_callback("hrp")
async def remove_page(s: Screen, args: list[str]) -> None:
    await remove_picker(s, _page(args))


@on_callback("hrx")
async def remove_confirmed(s: Screen, args: list[str]) -> None:
    t = s.t
    habit = _visible(s, args)
    if habit is None:
        await s.refuse(t._("You cannot change that habit."))
        return
    try:
        s.engine.remove_habit(habit, actor=s.user)
    except PermissionDenied:
        await s.refuse(t._("You cannot change that habit."))
        return
    await s.show(t._("🗑 <b>{habit}</b> removed.", habit=habit.name), [[(t._("📝 Manage habits"), "hm")], menu_row(t)])


# --- the dialog's part -------------------------------------------------------------------------


def entry_points() -> list[Any]:
    return [
        CommandHandler("add_habit", add_start),
        CallbackQueryHandler(add_start, pattern=r"^ha$"),
        CallbackQueryHandler(edit_field, pattern=r"^hf:\d+:\w+$"),
    ]


def states() -> dict[str, list[Any]]:
    return {
        NAME: [MessageHandler(TEXT, add_name)],
        WEIGHT: [MessageHandler(TEXT, add_weight_typed), CallbackQueryHandler(add_weight_button, pattern=r"^hw:")],
        SCOPE: [CallbackQueryHandler(add_scope, pattern=r"^hs:(me|all)$")],
        EDIT_VALUE: [MessageHandler(TEXT, edit_value)],
    }
