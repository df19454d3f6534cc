"""Add, edit and remove rewards (the same shape as :mod:`habit_admin`).

Dialog steps: name -> type -> pieces (skipped for "no reward" entries) ->
weight -> for admins, shared or personal. Editing and removing are the screens
:mod:`catalog_admin` builds for habits and rewards alike (``re``, ``rf``, ``rr``
...); ``rm`` is the hub, ``ra`` adds.
"""

from __future__ import annotations

from typing import Any

from telegram.ext import CallbackQueryHandler, CommandHandler, MessageHandler

from habitreward.bot.handlers import catalog_admin
from habitreward.bot.handlers.catalog_admin import (
    PRESS_A_BUTTON,
    Field,
    Kind,
    answer_scope,
    ask_scope,
    pressed_value,
    read_name,
    save_new,
    start_add,
    store,
    typed_instead,
    typed_scope,
    typed_value,
)
from habitreward.bot.handlers.common import TEXT_INPUT, Screen, screen
from habitreward.bot.handlers.rewards import reward_line
from habitreward.bot.handlers.router import on_callback, on_command
from habitreward.bot.i18n import N_
from habitreward.bot.keyboards import Rows, menu_row
from habitreward.engine import validation
from habitreward.models import Reward

NAME, TYPE, PIECES, WEIGHT, SCOPE, EDIT_VALUE = (
    "reward_name", "reward_type", "reward_pieces", "reward_weight", "reward_scope", "reward_edit_value")
TEXT = TEXT_INPUT


def describe(s: Screen, reward: Reward) -> str:
    t = s.t
    line = reward_line(t, reward, s.user.id)[2:]
    limit = t._("no daily limit") if not reward.max_per_day else \
        t.ngettext("at most {n} a day", "at most {n} a day", reward.max_per_day)
    return line + " · " + limit


REWARDS = Kind(
    key="reward", prefix="r", describe=describe, edit_state=EDIT_VALUE,
    fields=(
        Field("name", N_("Name"), N_("Type the new name:"),
              N_("Please type a name of at most {n} characters."), lambda text: {"name": text},
              n=validation.MAX_NAME_LENGTH, named=True),
        Field("weight", N_("Weight"), N_("Type the new weight, a number above 0:"),
              N_("Please type a number above 0, such as 1 or 2.5."),
              lambda text: {"weight": text.replace(",", ".")}),
        Field("pieces", N_("Pieces"), N_("Type how many pieces make it complete:"),
              N_("Please type a whole number from 1 to 10000."), lambda text: {"pieces_required": text}),
        Field("max", N_("Daily limit"), N_("Type how many pieces of it can be won per day (0 = no limit):"),
              N_("Please type a whole number from 0 to {n}: 0 means no limit."), lambda text: {"max_per_day": text},
              n=validation.MAX_PER_DAY),
    ),
    cannot_change=N_("You cannot change that reward."),
    none_to_change=N_("You have no rewards you can change."),
    which_to_change=N_("Which reward do you want to change?"),
    none_to_remove=N_("You have no rewards you can remove."),
    which_to_remove=N_("Which reward do you want to remove?"),
    remove_question=N_("Remove <b>{reward}</b>? Whoever has collected all its pieces can still claim it."),
    removed=N_("🗑 <b>{reward}</b> removed."),
    duplicate_name=N_("There is already a reward called <b>{name}</b>. Type another name:"),
    add_button=N_("➕ Add a reward"),
    manage_button=N_("🎀 Manage rewards"),
    add_prompt=N_("What is the new reward called? Type its name (or /cancel)."),
    name_state=NAME,
    added=N_("✅ Reward added:"),
)
_edit_entry_points, _edit_states = catalog_admin.register(REWARDS)


@on_command("manage_rewards")
@on_callback("rm")
async def hub(s: Screen, args: list[str]) -> None:
    t = s.t
    count = len(await s.run(s.engine.rewards_for, s.user))
    await s.show(
        t.ngettext("🎀 There is {n} reward.", "🎀 There are {n} rewards.", count),
        [[(t._("➕ Add a reward"), "ra")], [(t._("✏️ Edit a reward"), "re"), (t._("🗑 Remove a reward"), "rr")],
         [(t._("📋 All rewards"), "rw")], menu_row(t)],
    )


# --- add -----------------------------------------------------------------------------------


@screen()
async def add_start(s: Screen) -> str:
    return await start_add(s, REWARDS)


@screen()
async def add_name(s: Screen) -> str:
    name = await read_name(s, REWARDS)
    if name is None:
        return NAME
    store(s, flow="add_reward", name=name)
    await ask_type(s, name)
    return TYPE


async def ask_type(s: Screen, name: str, again: bool = False) -> None:
    t = s.t
    question = t._("What kind of reward is <b>{name}</b>?", name=name)
    await s.send(
        t._(PRESS_A_BUTTON) + "\n" + question if again else question,
        [[(t._("✨ Virtual"), "rt:virtual"), (t._("🎁 Real"), "rt:real")],
         [(t._("🚫 \"No reward\" entry"), "rt:none")], menu_row(t)],
    )


@screen()
async def type_typed(s: Screen) -> str:
    return await typed_instead(s, REWARDS, TYPE, lambda name: ask_type(s, name, again=True))


@screen()
async def scope_typed(s: Screen) -> str:
    return await typed_scope(s, REWARDS, SCOPE)


def pieces_rows(s: Screen) -> Rows:
    return [[(str(n), f"rp:{n}") for n in (1, 3, 5, 10)], menu_row(s.t)]


def weight_rows(s: Screen) -> Rows:
    return [[(str(n), f"rwt:{n}") for n in (1, 2, 5, 10)], menu_row(s.t)]


@screen()
async def add_type(s: Screen) -> str:
    t = s.t
    kind = s.query.data.split(":", 1)[1]
    answers = store(s, type=kind)
    if "name" not in answers:
        return await start_add(s, REWARDS)
    if kind == "none":
        store(s, pieces=1)
        await s.show(t._("How often should \"no reward\" come up compared with the others? Pick a weight "
                         "or type a number above 0."), weight_rows(s))
        return WEIGHT
    await s.show(t._("How many pieces make <b>{name}</b> complete? Pick or type a number.", name=answers["name"]),
                 pieces_rows(s))
    return PIECES


async def _after_pieces(s: Screen, pieces: int) -> str:
    store(s, pieces=pieces)
    await s.show(s.t._("How likely is it to be drawn? Pick a weight or type a number above 0 "
                       "(a bigger weight comes up more often)."), weight_rows(s))
    return WEIGHT


@screen()
async def add_pieces_typed(s: Screen) -> str:
    pieces = await typed_value(s, validation.pieces_required, N_("Please type a whole number from 1 to 10000."),
                               pieces_rows(s))
    return PIECES if pieces is None else await _after_pieces(s, pieces)


@screen()
async def add_pieces_button(s: Screen) -> str:
    pieces = await pressed_value(s, validation.pieces_required)
    return PIECES if pieces is None else await _after_pieces(s, pieces)


async def _after_weight(s: Screen, weight: float) -> str | int:
    answers = store(s, weight=weight)
    if "name" not in answers:
        return await start_add(s, REWARDS)
    if s.user.is_admin:
        await ask_scope(s, REWARDS, answers["name"])
        return SCOPE
    return await _save_new(s, shared=False)


@screen()
async def add_weight_typed(s: Screen) -> str | int:
    weight = await typed_value(s, lambda text: validation.reward_weight(text.replace(",", ".")),
                               N_("Please type a number above 0, such as 1 or 2.5."), weight_rows(s))
    return WEIGHT if weight is None else await _after_weight(s, weight)


@screen()
async def add_weight_button(s: Screen) -> str | int:
    weight = await pressed_value(s, validation.reward_weight)
    return WEIGHT if weight is None else await _after_weight(s, weight)


@screen()
async def add_scope(s: Screen) -> str | int:
    return await answer_scope(s, REWARDS, _save_new)


async def _save_new(s: Screen, shared: bool) -> str | int:
    t = s.t
    return await save_new(
        s, REWARDS,
        lambda answers: s.engine.add_reward(
            answers["name"], weight=answers.get("weight", 1.0), type=answers.get("type", "virtual"),
            pieces_required=answers.get("pieces", 1), owner=None if shared else s.user, actor=s.user,
        ),
        lambda reward: [[(t._("➕ Add another"), "ra"), (t._("📋 All rewards"), "rw")], menu_row(t)],
    )


# --- the dialog's part -------------------------------------------------------------------------


def entry_points() -> list[Any]:
    return [
        CommandHandler("add_reward", add_start),
        CallbackQueryHandler(add_start, pattern=r"^ra$"),
        *_edit_entry_points,
    ]


def states() -> dict[str, list[Any]]:
    return {
        NAME: [MessageHandler(TEXT, add_name)],
        TYPE: [CallbackQueryHandler(add_type, pattern=r"^rt:(virtual|real|none)$"), MessageHandler(TEXT, type_typed)],
        PIECES: [MessageHandler(TEXT, add_pieces_typed), CallbackQueryHandler(add_pieces_button, pattern=r"^rp:")],
        WEIGHT: [MessageHandler(TEXT, add_weight_typed), CallbackQueryHandler(add_weight_button, pattern=r"^rwt:")],
        SCOPE: [CallbackQueryHandler(add_scope, pattern=r"^rs:(me|all)$"), MessageHandler(TEXT, scope_typed)],
        **_edit_states,
    }
