"""What managing habits and managing rewards share: edit and remove, and the add dialog's glue.

Habits and rewards are both things a user may change when they own them or are
an admin. Editing is a paged picker, a field menu, and a field's button starts
a dialog step that waits for the new value; removing is a picker and a
confirmation. Only the words, the fields and the engine calls differ, so
:mod:`habit_admin` and :mod:`reward_admin` each describe their kind in a
:class:`Kind` and :func:`register` adds the same screens for both.

Callback data, with ``p`` the kind's prefix (``h`` or ``r``): ``pe[:id]``/``pep:page``
edit picker and field menu, ``pf:id:field`` starts typing, ``pr[:id]``/``prp:page``/
``prx:id`` remove. The draft ``{"flow": "edit_<kind>", "<kind>": id, "field": ...}``
and the state names are stored by the bot's persistence, so they must not change.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from telegram.ext import CallbackQueryHandler, ConversationHandler, MessageHandler

from habitreward.bot.handlers.common import TEXT_INPUT, Screen, int_args, screen
from habitreward.bot.handlers.router import on_callback, on_command
from habitreward.bot.handlers.views import _page
from habitreward.bot.i18n import N_
from habitreward.bot.keyboards import Rows, menu_row, picker
from habitreward.engine import validation
from habitreward.errors import Conflict, NotFound, PermissionDenied, ValidationError


@dataclass(frozen=True)
class Field:
    """One editable field: its button, what to type, what a refused value says."""

    key: str  # in callback data and the draft
    label: str  # N_-marked, translated when shown
    prompt: str
    error: str  # may use {n}
    change: Callable[[str], dict[str, Any]]  # typed text -> keyword arguments of engine.edit_<kind>
    n: int | None = None  # the error's {n}
    named: bool = False  # a name: one with nothing visible in it gets :data:`BLANK_NAME`


#: The answer to a name of nothing but spaces and invisible characters (zero-width space, ...).
BLANK_NAME = N_("Please type a name: that one has nothing visible in it.")


@dataclass(frozen=True)
class Kind:
    """How habits (or rewards) differ on the shared screens. Messages are N_-marked English ids;
    the ones naming an item use the placeholder ``{<key>}`` (``{habit}``, ``{reward}``)."""

    key: str  # "habit" / "reward"
    prefix: str  # "h" / "r"
    fields: tuple[Field, ...]
    describe: Callable[[Screen, Any], str]
    edit_state: str
    cannot_change: str
    none_to_change: str
    which_to_change: str
    none_to_remove: str
    which_to_remove: str
    remove_question: str
    removed: str
    duplicate_name: str  # uses {name}
    add_button: str
    manage_button: str
    add_prompt: str  # the add dialog's first question
    name_state: str  # the add dialog's state that waits for the name
    added: str  # followed by the new item's description
    # The edit screen's text above "What do you want to change?" and rows below the fields.
    details: Callable[[Screen, Any], str] | None = None
    extra_rows: Callable[[Screen, Any], Rows] = field(default=lambda s, item: [])

    def items(self, s: Screen) -> list[Any]:
        return getattr(s.engine, f"{self.key}s_for")(s.user)

    def get(self, s: Screen, item_id: int) -> Any:
        return getattr(s.engine, f"get_{self.key}")(s.user, item_id)

    def named(self, s: Screen, message: str, item: Any) -> str:
        return s.t._(message, **{self.key: item.name})


def may_edit(s: Screen, item: Any) -> bool:
    return item.owner_id == s.user.id or bool(s.user.is_admin)


async def editable(s: Screen, kind: Kind) -> list[Any]:
    return [item for item in await s.run(kind.items, s) if may_edit(s, item)]


async def visible(s: Screen, kind: Kind, args: list[str]) -> Any | None:
    """The item named by the first argument, if this user may change it; else None."""
    ids = int_args(args, 1)
    if ids is None:
        return None
    try:
        item = await s.run(kind.get, s, ids[0])
    except NotFound:
        return None
    return item if may_edit(s, item) else None


# --- the add dialog's shared steps -------------------------------------------------------------


def draft(s: Screen) -> dict[str, Any]:
    """A copy of the dialog's answers so far."""
    return s.draft()


def store(s: Screen, **values: Any) -> dict[str, Any]:
    """Add answers to the draft (written to the database with the conversation)."""
    answers = draft(s)
    answers.update(values)
    s.set_draft(answers)
    return answers


async def start_add(s: Screen, kind: Kind) -> str:
    """The add dialog's first step (also where it starts over when its draft is gone)."""
    s.set_draft({"flow": f"add_{kind.key}"})
    await s.show(s.t._(kind.add_prompt), [menu_row(s.t)])
    return kind.name_state


async def save_new(s: Screen, kind: Kind, create: Callable[[dict[str, Any]], Any],
                   rows: Callable[[Any], Rows]) -> str | int:
    """The add dialog's end: ``create(answers)`` calls the engine; a name taken meanwhile is
    asked again, a lost draft starts over."""
    t = s.t
    answers = draft(s)
    try:
        item = await s.run(create, answers)
    except KeyError:
        return await start_add(s, kind)
    except Conflict:
        await s.show(t._(kind.duplicate_name, name=answers["name"]), [menu_row(t)])
        return kind.name_state
    s.drop_draft()
    await s.show(t._(kind.added) + " " + kind.describe(s, item), rows(item))
    return ConversationHandler.END


#: Put before a buttons-only question asked again after typed text (see :func:`typed_instead`).
PRESS_A_BUTTON = N_("Please press one of the buttons below.")


async def ask_scope(s: Screen, kind: Kind, name: str, again: bool = False) -> None:
    """The admin's last question when adding: just for them, or shared with everyone."""
    t = s.t
    question = t._("Who is <b>{name}</b> for?", name=name)
    await s.show(t._(PRESS_A_BUTTON) + "\n" + question if again else question,
                 [[(t._("👤 Just me"), f"{kind.prefix}s:me"), (t._("👥 Everyone"), f"{kind.prefix}s:all")],
                  menu_row(t)])


async def typed_instead(s: Screen, kind: Kind, state: str, ask: Callable[[str], Awaitable[None]]) -> str:
    """Text typed at a step only buttons answer (a reward's type, "just me / everyone"): the
    question again, under "press a button". Without this the text left the dialog's hands and
    was taken as a habit report: "I could not tell which habit that was", or a habit logged."""
    answers = draft(s)
    if "name" not in answers:
        return await start_add(s, kind)
    await ask(answers["name"])
    return state


async def typed_scope(s: Screen, kind: Kind, state: str) -> str:
    return await typed_instead(s, kind, state, lambda name: ask_scope(s, kind, name, again=True))


async def read_name(s: Screen, kind: Kind) -> str | None:
    """The typed name of a new item, tidied; None (the user was told why) when it is too long,
    has nothing visible in it or the user already has one called that."""
    t = s.t
    typed = s.update.effective_message.text or ""
    if not validation.tidy_name(typed):
        await s.send(t._(BLANK_NAME), [menu_row(t)])
        return None
    try:
        name = validation.clean_name(typed, f"{kind.key} name")
    except ValidationError:
        await s.send(t._("Please type a name of at most {n} characters.", n=validation.MAX_NAME_LENGTH),
                     [menu_row(t)])
        return None
    try:
        await s.run(getattr(s.engine, f"find_{kind.key}"), s.user, name)
    except NotFound:
        return name
    await s.send(t._(kind.duplicate_name, name=name), [menu_row(t)])
    return None


async def typed_value(s: Screen, parse: Callable[[str], Any], error: str, rows: Rows) -> Any | None:
    """A typed answer through ``parse`` (an engine validator); None after asking again."""
    try:
        return parse((s.update.effective_message.text or "").strip())
    except ValidationError:
        await s.send(s.t._(error), rows)
        return None


async def pressed_value(s: Screen, parse: Callable[[str], Any]) -> Any | None:
    """A pressed answer (``prefix:value``) through ``parse``; None after refusing forged data."""
    try:
        return parse(s.query.data.split(":", 1)[1])
    except (ValidationError, IndexError):
        await s.refuse()
        return None


async def answer_scope(s: Screen, kind: Kind, save_new: Callable[..., Awaitable[str | int]]) -> str | int:
    """The admin's answer to :func:`ask_scope`; anyone else pressing it is refused."""
    if not s.user.is_admin:
        await s.refuse()
        return ConversationHandler.END
    return await save_new(s, shared=s.query.data == f"{kind.prefix}s:all")


# --- edit and remove -----------------------------------------------------------------------------


def register(kind: Kind) -> tuple[list[Any], dict[str, list[Any]]]:
    """Add the kind's edit and remove screens to the router; returns the dialog's part for them
    (entry points, states)."""
    p, t_ = kind.prefix, kind.key
    fields = {f.key: f for f in kind.fields}

    async def refuse(s: Screen) -> None:
        await s.refuse(s.t._(kind.cannot_change))

    async def pick(s: Screen, page: int, action: str, question: str, nothing: str, nothing_rows: Rows) -> None:
        """A page of the items this user may change; a button opens ``<action>:id``."""
        t = s.t
        items = await editable(s, kind)
        if not items:
            await s.show(t._(nothing), nothing_rows + [menu_row(t)])
            return
        rows, _, _ = picker(t, items, page, pick=lambda i: f"{action}:{i.id}", page_data=lambda n: f"{action}p:{n}")
        rows.append(menu_row(t, back=f"{p}m"))
        await s.show(t._(question), rows)

    async def chosen(s: Screen, args: list[str], show_picker: Callable[[Screen, int], Awaitable[None]]) -> Any:
        """The item a button names; None after showing the picker (no id) or refusing."""
        if not args:
            await show_picker(s, 0)
            return None
        item = await visible(s, kind, args)
        if item is None:
            await refuse(s)
        return item

    async def edit_picker(s: Screen, page: int) -> None:
        await pick(s, page, f"{p}e", kind.which_to_change, kind.none_to_change,
                   [[(s.t._(kind.add_button), f"{p}a")]])

    @on_command(f"edit_{t_}")
    @on_callback(f"{p}e")
    async def edit(s: Screen, args: list[str]) -> None:
        item = await chosen(s, args, edit_picker)
        if item is None:
            return
        t = s.t
        buttons = [(t._(f.label), f"{p}f:{item.id}:{f.key}") for f in kind.fields]
        details = await s.run(kind.details, s, item) if kind.details else kind.describe(s, item)
        await s.show(
            details + "\n\n" + t._("What do you want to change?"),
            [buttons[i:i + 2] for i in range(0, len(buttons), 2)] + kind.extra_rows(s, item)
            + [menu_row(t, back=f"{p}e")],
        )

    @on_callback(f"{p}ep")
    async def edit_page(s: Screen, args: list[str]) -> None:
        await edit_picker(s, _page(args))

    @screen()
    async def edit_field(s: Screen) -> str | int:
        _, *args = s.query.data.split(":")
        item = await visible(s, kind, args[:1])
        if item is None or len(args) < 2 or args[1] not in fields:
            await refuse(s)
            return ConversationHandler.END
        s.set_draft({"flow": f"edit_{t_}", t_: item.id, "field": args[1]})
        await s.show(kind.describe(s, item) + "\n\n" + s.t._(fields[args[1]].prompt),
                     [menu_row(s.t, back=f"{p}e:{item.id}")])
        return kind.edit_state

    @screen()
    async def edit_value(s: Screen) -> str | int:
        t = s.t
        answers = draft(s)
        item = await visible(s, kind, [str(answers.get(t_, ""))])
        chosen = fields.get(answers.get("field"))  # type: ignore[arg-type]
        if item is None or chosen is None:
            s.drop_draft()
            await refuse(s)
            return ConversationHandler.END
        text = (s.update.effective_message.text or "").strip()
        # Asked again with the question's own way back: to this item's fields, not only the menu.
        again = [menu_row(t, back=f"{p}e:{item.id}")]
        if chosen.named and not validation.tidy_name(text):
            await s.send(t._(BLANK_NAME), again)
            return kind.edit_state
        try:
            item = await s.run(getattr(s.engine, f"edit_{t_}"), item, actor=s.user, **chosen.change(text))
        except ValidationError:
            await s.send(t._(chosen.error, n=chosen.n) if chosen.n is not None else t._(chosen.error), again)
            return kind.edit_state
        except Conflict:  # the name as stored (the typed text may be thousands of spaces longer)
            await s.send(t._(kind.duplicate_name, name=validation.tidy_name(text)), again)
            return kind.edit_state
        except PermissionDenied:
            await refuse(s)
            return ConversationHandler.END
        except NotFound:  # removed by someone else since it was looked up
            s.drop_draft()
            await refuse(s)
            return ConversationHandler.END
        s.drop_draft()
        await s.send(t._("✅ Saved.") + "\n" + kind.describe(s, item),
                     [[(t._("✏️ Change more"), f"{p}e:{item.id}")], menu_row(t)])
        return ConversationHandler.END

    async def remove_picker(s: Screen, page: int) -> None:
        await pick(s, page, f"{p}r", kind.which_to_remove, kind.none_to_remove, [])

    @on_command(f"remove_{t_}")
    @on_callback(f"{p}r")
    async def remove(s: Screen, args: list[str]) -> None:
        item = await chosen(s, args, remove_picker)
        if item is None:
            return
        t = s.t
        await s.show(kind.named(s, kind.remove_question, item),
                     [[(t._("🗑 Yes, remove it"), f"{p}rx:{item.id}"), (t._("⬅️ Back"), f"{p}r")]])

    @on_callback(f"{p}rp")
    async def remove_page(s: Screen, args: list[str]) -> None:
        await remove_picker(s, _page(args))

    @on_callback(f"{p}rx")
    async def remove_confirmed(s: Screen, args: list[str]) -> None:
        item = await visible(s, kind, args)
        if item is None:
            await refuse(s)
            return
        try:
            await s.run(getattr(s.engine, f"remove_{t_}"), item, actor=s.user)
        except PermissionDenied:
            await refuse(s)
            return
        await s.show(kind.named(s, kind.removed, item),
                     [[(s.t._(kind.manage_button), f"{p}m")], menu_row(s.t)])

    entry_points = [CallbackQueryHandler(edit_field, pattern=rf"^{p}f:\d+:\w+$")]
    states = {kind.edit_state: [MessageHandler(TEXT_INPUT, edit_value)]}
    return entry_points, states
