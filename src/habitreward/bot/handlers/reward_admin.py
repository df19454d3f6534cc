"""Add, edit and remove rewards (the same shape as :mod:`habit_admin`).

Dialog steps: name -> type -> pieces (skipped for "no reward" entries) ->
weight -> for admins, shared or personal. Buttons: ``rm`` hub,
``re[:reward]``/``rep:page`` edit picker and field menu, ``rf:reward:field``
starts typing, ``rr[:reward]``/``rrp:page``/``rrx:reward`` remove.
"""

from __future__ import annotations

from typing import Any

from telegram.ext import CallbackQueryHandler, CommandHandler, ConversationHandler, MessageHandler

from habitreward.bot.handlers.common import TEXT_INPUT, Screen, int_args, screen
from habitreward.bot.handlers.menu import DRAFT_KEY
from habitreward.bot.handlers.rewards import reward_line
from habitreward.bot.handlers.router import on_callback, on_command
from habitreward.bot.handlers.views import _page
from habitreward.bot.keyboards import Rows, menu_row, picker
from habitreward.engine import validation
from habitreward.errors import Conflict, NotFound, PermissionDenied, ValidationError
from habitreward.models import Reward

NAME, TYPE, PIECES, WEIGHT, SCOPE, EDIT_VALUE = (
    "reward_name", "reward_type", "reward_pieces", "reward_weight", "reward_scope", "reward_edit_value")
FIELDS = ("name", "weight", "pieces", "max")
TEXT = TEXT_INPUT


def may_edit(s: Screen, reward: Reward) -> bool:
    return reward.owner_id == s.user.id or bool(s.user.is_admin)


def editable(s: Screen) -> list[Reward]:
    return [r for r in s.engine.rewards_for(s.user) if may_edit(s, r)]


def _visible(s: Screen, args: list[str]) -> Reward | None:
    ids = int_args(args, 1)
    if ids is None:
        return None
    try:
        reward = s.engine.get_reward(s.user, ids[0])
    except NotFound:
        return None
    return reward if may_edit(s, reward) else None


def describe(s: Screen, reward: Reward) -> str:
    t = s.t
    line = reward_line(t, reward, s.user.id)[2:]
    limit = t._("no daily limit") if not reward.max_per_day else \
        t.ngettext("at most {n} a day", "at most {n} a day", reward.max_per_day)
    return line + " · " + limit


@on_command("manage_rewards")
@on_callback("rm")
async def hub(s: Screen, args: list[str]) -> None:
    t = s.t
    count = len(s.engine.rewards_for(s.user))
    await s.show(
        t.ngettext("🎀 There is {n} reward.", "🎀 There are {n} rewards.", count),
        [[(t._("➕ Add a reward"), "ra")], [(t._("✏️ Edit a reward"), "re"), (t._("🗑 Remove a reward"), "rr")],
         [(t._("📋 All rewards"), "rw")], menu_row(t)],
    )


# --- add -----------------------------------------------------------------------------------


@screen()
async def add_start(s: Screen) -> str:
    s.context.user_data[DRAFT_KEY] = {"flow": "add_reward"}
    await s.show(s.t._("What is the new reward called? Type its name (or /cancel)."), [menu_row(s.t)])
    return NAME


def _draft(s: Screen) -> dict[str, Any]:
    return dict(s.context.user_data.get(DRAFT_KEY) or {})


def _store(s: Screen, **values: Any) -> dict[str, Any]:
    draft = _draft(s)
    draft.update(values)
    s.context.user_data[DRAFT_KEY] = draft
    return draft


@screen()
async def add_name(s: Screen) -> str:
    t = s.t
    try:
        name = validation.clean_name(s.update.effective_message.text or "", "reward name")
    except ValidationError:
        await s.send(t._("Please type a name of at most {n} characters.", n=validation.MAX_NAME_LENGTH))
        return NAME
    try:
        s.engine.find_reward(s.user, name)
    except NotFound:
        pass
    else:
        await s.send(t._("There is already a reward called <b>{name}</b>. Type another name:", name=name))
        return NAME
    _store(s, flow="add_reward", name=name)
    await s.send(
        t._("What kind of reward is <b>{name}</b>?", name=name),
        [[(t._("✨ Virtual"), "rt:virtual"), (t._("🎁 Real"), "rt:real")],
         [(t._("🚫 \"No reward\" entry"), "rt:none")], menu_row(t)],
    )
    return TYPE


def pieces_rows(s: Screen) -> Rows:
    return [[(str(n), f"rp:{n}") for n in (1, 3, 5, 10)], menu_row(s.t)]


def weight_rows(s: Screen) -> Rows:
    return [[(str(n), f"rwt:{n}") for n in (1, 2, 5, 10)], menu_row(s.t)]


@screen()
async def add_type(s: Screen) -> str:
    t = s.t
    kind = s.query.data.split(":", 1)[1]
    draft = _store(s, type=kind)
    if "name" not in draft:
        return await add_start.screen_func(s)  # type: ignore[attr-defined]
    if kind == "none":
        _store(s, pieces=1)
        await s.show(t._("How often should \"no reward\" come up compared with the others? Pick a weight "
                         "or type a number above 0."), weight_rows(s))
        return WEIGHT
    await s.show(t._("How many pieces make <b>{name}</b> complete? Pick or type a number.", name=draft["name"]),
                 pieces_rows(s))
    return PIECES


async def _after_pieces(s: Screen, pieces: int) -> str:
    _store(s, pieces=pieces)
    await s.show(s.t._("How likely is it to be drawn? Pick a weight or type a number above 0 "
                       "(a bigger weight comes up more often)."), weight_rows(s))
    return WEIGHT


@screen()
async def add_pieces_typed(s: Screen) -> str:
    try:
        pieces = validation.pieces_required((s.update.effective_message.text or "").strip())
    except ValidationError:
        await s.send(s.t._("Please type a whole number from 1 to 10000."), pieces_rows(s))
        return PIECES
    return await _after_pieces(s, pieces)


@screen()
async def add_pieces_button(s: Screen) -> str:
    try:
        pieces = validation.pieces_required(s.query.data.split(":", 1)[1])
    except (ValidationError, IndexError):
        await s.refuse()
        return PIECES
    return await _after_pieces(s, pieces)


async def _after_weight(s: Screen, weight: float) -> str | int:
    draft = _store(s, weight=weight)
    if "name" not in draft:
        return await add_start.screen_func(s)  # type: ignore[attr-defined]
    if s.user.is_admin:
        t = s.t
        await s.show(t._("Who is <b>{name}</b> for?", name=draft["name"]),
                     [[(t._("👤 Just me"), "rs:me"), (t._("👥 Everyone"), "rs:all")], menu_row(t)])
        return SCOPE
    return await _save_new(s, shared=False)


@screen()
async def add_weight_typed(s: Screen) -> str | int:
    try:
        weight = validation.reward_weight((s.update.effective_message.text or "").strip().replace(",", "."))
    except ValidationError:
        await s.send(s.t._("Please type a number above 0, such as 1 or 2.5."), weight_rows(s))
        return WEIGHT
    return await _after_weight(s, weight)


@screen()
async def add_weight_button(s: Screen) -> str | int:
    try:
        weight = validation.reward_weight(s.query.data.split(":", 1)[1])
    except (ValidationError, IndexError):
        await s.refuse()
        return WEIGHT
    return await _after_weight(s, weight)


@screen()
async def add_scope(s: Screen) -> str | int:
    if not s.user.is_admin:
        await s.refuse()
        return ConversationHandler.END
    return await _save_new(s, shared=s.query.data == "rs:all")


async def _save_new(s: Screen, shared: bool) -> str | int:
    t = s.t
    draft = _draft(s)
    try:
        reward = s.engine.add_reward(
            draft["name"], weight=draft.get("weight", 1.0), type=draft.get("type", "virtual"),
            pieces_required=draft.get("pieces", 1), owner=None if shared else s.user, actor=s.user,
        )
    except KeyError:
        return await add_start.screen_func(s)  # type: ignore[attr-defined]
    except Conflict:
        await s.show(t._("There is already a reward called <b>{name}</b>. Type another name:", name=draft["name"]))
        return NAME
    s.context.user_data.pop(DRAFT_KEY, None)
    await s.show(t._("✅ Reward added:") + " " + describe(s, reward),
                 [[(t._("➕ Add another"), "ra"), (t._("📋 All rewards"), "rw")], menu_row(t)])
    return ConversationHandler.END


# --- edit ------------------------------------------------------------------------------------


async def edit_picker(s: Screen, page: int) -> None:
    t = s.t
    rewards = editable(s)
    if not rewards:
        await s.show(t._("You have no rewards you can change."), [[(t._("➕ Add a reward"), "ra")], menu_row(t)])
        return
    rows, _, _ = picker(t, rewards, page, pick=lambda r: f"re:{r.id}", page_data=lambda p: f"rep:{p}")
    rows.append(menu_row(t, back="rm"))
    await s.show(t._("Which reward do you want to change?"), rows)


@on_command("edit_reward")
@on_callback("re")
async def edit(s: Screen, args: list[str]) -> None:
    if not args:
        await edit_picker(s, 0)
        return
    reward = _visible(s, args)
    t = s.t
    if reward is None:
        await s.refuse(t._("You cannot change that reward."))
        return
    await s.show(
        describe(s, reward) + "\n\n" + t._("What do you want to change?"),
        [[(t._("Name"), f"rf:{reward.id}:name"), (t._("Weight"), f"rf:{reward.id}:weight")],
         [(t._("Pieces"), f"rf:{reward.id}:pieces"), (t._("Daily limit"), f"rf:{reward.id}:max")],
         menu_row(t, back="re")],
    )


@on_callback("rep")
async def edit_page(s: Screen, args: list[str]) -> None:
    await edit_picker(s, _page(args))


@screen()
async def edit_field(s: Screen) -> str | int:
    t = s.t
    _, *args = s.query.data.split(":")
    reward = _visible(s, args[:1])
    if reward is None or len(args) < 2 or args[1] not in FIELDS:
        await s.refuse(t._("You cannot change that reward."))
        return ConversationHandler.END
    s.context.user_data[DRAFT_KEY] = {"flow": "edit_reward", "reward": reward.id, "field": args[1]}
    prompts = {
        "name": t._("Type the new name:"),
        "weight": t._("Type the new weight, a number above 0:"),
        "pieces": t._("Type how many pieces make it complete:"),
        "max": t._("Type how many pieces of it can be won per day (0 = no limit):"),
    }
    await s.show(describe(s, reward) + "\n\n" + prompts[args[1]], [menu_row(t, back=f"re:{reward.id}")])
    return EDIT_VALUE


@screen()
async def edit_value(s: Screen) -> str | int:
    t = s.t
    draft = s.context.user_data.get(DRAFT_KEY) or {}
    reward = _visible(s, [str(draft.get("reward", ""))])
    field = draft.get("field")
    if reward is None or field not in FIELDS:
        s.context.user_data.pop(DRAFT_KEY, None)
        await s.refuse(t._("You cannot change that reward."))
        return ConversationHandler.END
    text = (s.update.effective_message.text or "").strip()
    errors = {
        "name": t._("Please type a name of at most {n} characters.", n=validation.MAX_NAME_LENGTH),
        "weight": t._("Please type a number above 0, such as 1 or 2.5."),
        "pieces": t._("Please type a whole number from 1 to 10000."),
        "max": t._("Please type a whole number: 0 means no limit."),
    }
    changes: dict[str, Any] = {
        "name": {"name": text},
        "weight": {"weight": text.replace(",", ".")},
        "pieces": {"pieces_required": text},
        "max": {"max_per_day": text},
    }[field]
    try:
        reward = s.engine.edit_reward(reward, actor=s.user, **changes)
    except ValidationError:
        await s.send(errors[field])
        return EDIT_VALUE
    except Conflict:
        await s.send(t._("There is already a reward called <b>{name}</b>. Type another name:", name=text))
        return EDIT_VALUE
    except PermissionDenied:
        await s.refuse(t._("You cannot change that reward."))
        return ConversationHandler.END
    s.context.user_data.pop(DRAFT_KEY, None)
    await s.send(t._("✅ Saved.") + "\n" + describe(s, reward),
                 [[(t._("✏️ Change more"), f"re:{reward.id}")], menu_row(t)])
    return ConversationHandler.END


# --- remove ----------------------------------------------------------------------------------


async def remove_picker(s: Screen, page: int) -> None:
    t = s.t
    rewards = editable(s)
    if not rewards:
        await s.show(t._("You have no rewards you can remove."), [menu_row(t)])
        return
    rows, _, _ = picker(t, rewards, page, pick=lambda r: f"rr:{r.id}", page_data=lambda p: f"rrp:{p}")
    rows.append(menu_row(t, back="rm"))
    await s.show(t._("Which reward do you want to remove?"), rows)


@on_command("remove_reward")
@on_callback("rr")
async def remove(s: Screen, args: list[str]) -> None:
    if not args:
        await remove_picker(s, 0)
        return
    t = s.t
    reward = _visible(s, args)
    if reward is None:
        await s.refuse(t._("You cannot change that reward."))
        return
    await s.show(t._("Remove <b>{reward}</b>? Pieces already earned can still be claimed.", reward=reward.name),
                 [[(t._("🗑 Yes, remove it"), f"rrx:{reward.id}"), (t._("⬅️ Back"), "rr")]])


@on_callback("rrp")
async def remove_page(s: Screen, args: list[str]) -> None:
    await remove_picker(s, _page(args))


@on_callback("rrx")
async def remove_confirmed(s: Screen, args: list[str]) -> None:
    t = s.t
    reward = _visible(s, args)
    if reward is None:
        await s.refuse(t._("You cannot change that reward."))
        return
    try:
        s.engine.remove_reward(reward, actor=s.user)
    except PermissionDenied:
        await s.refuse(t._("You cannot change that reward."))
        return
    await s.show(t._("🗑 <b>{reward}</b> removed.", reward=reward.name),
                 [[(t._("🎀 Manage rewards"), "rm")], menu_row(t)])


# --- the dialog's part -------------------------------------------------------------------------


def entry_points() -> list[Any]:
    return [
        CommandHandler("add_reward", add_start),
        CallbackQueryHandler(add_start, pattern=r"^ra$"),
        CallbackQueryHandler(edit_field, pattern=r"^rf:\d+:\w+$"),
    ]


def states() -> dict[str, list[Any]]:
    return {
        NAME: [MessageHandler(TEXT, add_name)],
        TYPE: [CallbackQueryHandler(add_type, pattern=r"^rt:(virtual|real|none)$")],
        PIECES: [MessageHandler(TEXT, add_pieces_typed), CallbackQueryHandler(add_pieces_button, pattern=r"^rp:")],
        WEIGHT: [MessageHandler(TEXT, add_weight_typed), CallbackQueryHandler(add_weight_button, pattern=r"^rwt:")],
        SCOPE: [CallbackQueryHandler(add_scope, pattern=r"^rs:(me|all)$")],
        EDIT_VALUE: [MessageHandler(TEXT, edit_value)],
    }

