"""A habit's aliases: other words for it in free text ("jog" for Running, "пробежка" for Бег).

Reached from a habit's edit screen, with the same rights as editing the habit
(its owner or an admin for a personal habit, admins for a shared one; the
engine checks again). Buttons: ``hal:habit`` lists the aliases, ``haa:habit``
asks for a new one (a step of the persistent ``dialog``, so a restart keeps
waiting for it), ``hax:habit:key`` removes one.

An alias can be 100 characters, more than callback data holds (64 bytes), so a
remove button names its alias by a short hash of the alias's normalized form:
a stale button (the alias is already gone) matches nothing and is refused,
it can never remove another alias.
"""

from __future__ import annotations

import hashlib
import html
from typing import Any

from telegram.ext import CallbackQueryHandler, ConversationHandler, MessageHandler

from habitreward.bot.handlers.common import TEXT_INPUT, Screen, screen
from habitreward.bot.handlers.habit_admin import aliases_of, more_aliases
from habitreward.bot.handlers.habit_admin import visible_habit as _visible
from habitreward.bot.handlers.router import on_callback
from habitreward.bot.keyboards import Rows, menu_row
from habitreward.bot.text import MAX_TEXT, MORE_LINE_ROOM, fitting, shown_units
from habitreward.engine.aliases import MAX_ALIAS_LENGTH, MAX_ALIASES_PER_HABIT
from habitreward.errors import Conflict, NotFound, PermissionDenied, ValidationError
from habitreward.models import Habit
from habitreward.nlp.store import alias_key

ALIAS = "habit_alias"


def alias_token(alias: str) -> str:
    """8 hex digits naming an alias in callback data (same for every spelling of the same alias)."""
    return hashlib.sha1(alias_key(alias).encode()).hexdigest()[:8]


async def show_aliases(s: Screen, habit: Habit, intro: str | None = None, new_message: bool = False) -> None:
    t = s.t
    aliases = await aliases_of(s, habit)
    lines = [t._("🏷 Other words for <b>{habit}</b>: typing one of them in a message counts as this habit.",
                 habit=habit.name)]
    if intro:
        lines.insert(0, intro + "\n")
    if aliases:
        # As many as fit in the message (20 of 100 emoji would not); every one is on a ✖️ button.
        listed = ["• " + html.escape(a, quote=False) for a in aliases]
        count = fitting(listed, MAX_TEXT - shown_units("\n".join(lines)) - MORE_LINE_ROOM)
        lines += listed[:count]
        if count < len(listed):
            lines.append(more_aliases(s, len(listed) - count))
    else:
        lines.append(t._("No aliases yet."))
    rows: Rows = []
    if len(aliases) < MAX_ALIASES_PER_HABIT:
        rows.append([(t._("➕ Add an alias"), f"haa:{habit.id}")])
    removes = [("✖️ " + a, f"hax:{habit.id}:{alias_token(a)}") for a in aliases]
    rows += [removes[i:i + 2] for i in range(0, len(removes), 2)]
    rows.append(menu_row(t, back=f"he:{habit.id}"))
    text = "\n".join(lines)
    await (s.send(text, rows) if new_message else s.show(text, rows))


@on_callback("hal")
async def aliases_screen(s: Screen, args: list[str]) -> None:
    habit = await _visible(s, args)
    if habit is None:
        await s.refuse(s.t._("You cannot change that habit."))
        return
    await show_aliases(s, habit)


@on_callback("hax")
async def remove_alias(s: Screen, args: list[str]) -> None:
    t = s.t
    habit = await _visible(s, args)
    if habit is None:
        await s.refuse(t._("You cannot change that habit."))
        return
    token = args[1] if len(args) > 1 else ""
    alias = next((a for a in await aliases_of(s, habit) if alias_token(a) == token), None)
    if alias is None:
        await s.refuse(t._("That alias is already gone."))
        return
    try:
        await s.run(s.engine.remove_alias, habit, alias, actor=s.user)
    except PermissionDenied:
        await s.refuse(t._("You cannot change that habit."))
        return
    except NotFound:  # the alias, or its habit, removed by someone else a moment ago
        gone = await _visible(s, args) is None
        await s.refuse(t._("You cannot change that habit.") if gone else t._("That alias is already gone."))
        return
    await show_aliases(s, habit, intro=t._("🗑 Alias <b>{alias}</b> removed.", alias=alias))


# --- adding: a step of the dialog --------------------------------------------------------------


@screen()
async def add_start(s: Screen) -> str | int:
    t = s.t
    habit = await _visible(s, s.query.data.split(":")[1:])
    if habit is None:
        await s.refuse(t._("You cannot change that habit."))
        return ConversationHandler.END
    s.set_draft({"flow": "habit_alias", "habit": habit.id})
    await s.show(t._("Type another word for <b>{habit}</b>, as you would write it in a message (or /cancel):",
                     habit=habit.name), [menu_row(t, back=f"hal:{habit.id}")])
    return ALIAS


@screen()
async def add_value(s: Screen) -> str | int:
    t = s.t
    draft = s.draft()
    habit = await _visible(s, [str(draft.get("habit", ""))])
    if habit is None:
        s.drop_draft()
        await s.refuse(t._("You cannot change that habit."))
        return ConversationHandler.END
    text = " ".join((s.update.effective_message.text or "").split())
    back = [menu_row(t, back=f"hal:{habit.id}")]  # as on the first prompt: asked again, a way out stays
    # The engine checks these too; asking first gives each mistake its own message in the user's language.
    if not alias_key(text):
        await s.send(t._("An alias needs at least one letter or digit. Type another:"), back)
        return ALIAS
    if max(len(text), len(alias_key(text))) > MAX_ALIAS_LENGTH:  # "ß" is "ss" in the stored key
        await s.send(t._("Please type an alias of at most {n} characters.", n=MAX_ALIAS_LENGTH), back)
        return ALIAS
    try:
        alias = await s.run(s.engine.add_alias, habit, text, actor=s.user)
    except Conflict:
        await s.send(t._("<b>{alias}</b> is already the name or an alias of <b>{habit}</b>. Type another:",
                         alias=text, habit=habit.name), back)
        return ALIAS
    except (PermissionDenied, NotFound):  # NotFound: removed by someone else a moment ago
        s.drop_draft()
        await s.refuse(t._("You cannot change that habit."))
        return ConversationHandler.END
    except ValidationError:  # the most a habit can have (someone else added the last one)
        s.drop_draft()
        await show_aliases(s, habit, new_message=True, intro=t.ngettext(
            "<b>{habit}</b> already has {n} alias, the most a habit can have.",
            "<b>{habit}</b> already has {n} aliases, the most a habit can have.",
            MAX_ALIASES_PER_HABIT, habit=habit.name))
        return ConversationHandler.END
    s.drop_draft()
    await show_aliases(s, habit, new_message=True, intro=t._(
        "✅ Typing <b>{alias}</b> now logs <b>{habit}</b>.", alias=alias, habit=habit.name))
    return ConversationHandler.END


def entry_points() -> list[Any]:
    return [CallbackQueryHandler(add_start, pattern=r"^haa:\d+$")]


def states() -> dict[str, list[Any]]:
    return {ALIAS: [MessageHandler(TEXT_INPUT, add_value)]}
