"""Inline keyboards: the main menu, paged pickers and the standard way back.

Telegram limits what one message may carry (4096 UTF-16 code units of text, 64
bytes of callback data per button, about 100 buttons per keyboard), so every
list of the user's things is shown a page at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from habitreward.bot.i18n import Translator

Button = tuple[str, str]  # (label, callback data)
Rows = list[list[Button]]
T = TypeVar("T")

#: Items per page in a picker keyboard (2 per row) and lines per page in a list message.
PICKER_PAGE_SIZE = 10
LIST_PAGE_SIZE = 20
MAX_CALLBACK_DATA = 64


def markup(rows: Rows | None) -> InlineKeyboardMarkup | None:
    """The keyboard as python-telegram-bot's object, for PTB's own send methods."""
    if not rows:
        return None
    _check(rows)
    return InlineKeyboardMarkup([[InlineKeyboardButton(label, callback_data=data) for label, data in row]
                                 for row in rows])


def inline_keyboard(rows: Rows | None) -> dict[str, Any] | None:
    """The same keyboard as the Bot API's JSON (``reply_markup``), for
    :mod:`habitreward.bot.api_calls`: no objects to build and to turn back into JSON."""
    if not rows:
        return None
    _check(rows)
    return {"inline_keyboard": [[{"text": label, "callback_data": data} for label, data in row] for row in rows]}


def _check(rows: Rows) -> None:
    for row in rows:
        for _, data in row:
            # A programming error, not a user one: Telegram would reject the whole message.
            assert len(data.encode()) <= MAX_CALLBACK_DATA, data


def page_of(items: Sequence[T], page: int, size: int) -> tuple[list[T], int, int]:
    """The items on ``page`` (clamped into range), that page and the page count."""
    pages = max(1, -(-len(items) // size))
    page = min(max(0, page), pages - 1)
    return list(items[page * size:(page + 1) * size]), page, pages


def nav_row(t: Translator, page: int, pages: int, data_for: Callable[[int], str]) -> list[Button]:
    """« previous · n/m · next » (empty when everything fits on one page)."""
    if pages <= 1:
        return []
    row: list[Button] = []
    if page > 0:
        row.append((t._("« Previous"), data_for(page - 1)))
    row.append((f"{page + 1}/{pages}", data_for(page)))
    if page < pages - 1:
        row.append((t._("Next »"), data_for(page + 1)))
    return row


def menu_row(t: Translator, back: str | None = None) -> list[Button]:
    """The way out of every screen: an optional step back and the main menu."""
    row: list[Button] = []
    if back:
        row.append((t._("⬅️ Back"), back))
    row.append((t._("🏠 Menu"), "m"))
    return row


def main_menu(t: Translator) -> Rows:
    return [
        [(t._("✅ Log a habit"), "done")],
        [(t._("🔥 Streaks"), "st"), (t._("📜 History"), "hi")],
        [(t._("🏆 My rewards"), "my"), (t._("🎁 Claim a reward"), "cl")],
        [(t._("🎲 Odds"), "od"), (t._("📋 All rewards"), "rw")],
        [(t._("📝 Manage habits"), "hm"), (t._("🎀 Manage rewards"), "rm")],
        [(t._("⚙️ Settings"), "set"), (t._("❓ Help"), "help")],
    ]


def picker(
    t: Translator,
    items: Sequence[Any],
    page: int,
    pick: Callable[[Any], str],
    page_data: Callable[[int], str],
    label: Callable[[Any], str] = lambda item: item.name,
    per_row: int = 2,
    size: int = PICKER_PAGE_SIZE,
) -> tuple[Rows, int, int]:
    """A page of item buttons plus navigation; returns (rows, page, pages)."""
    shown, page, pages = page_of(items, page, size)
    rows: Rows = []
    for start in range(0, len(shown), per_row):
        rows.append([(label(item), pick(item)) for item in shown[start:start + per_row]])
    nav = nav_row(t, page, pages, page_data)
    if nav:
        rows.append(nav)
    return rows, page, pages


def progress_bar(earned: int, required: int, length: int) -> str:
    required = max(1, required)
    filled = round(length * min(earned, required) / required)
    return "█" * filled + "░" * (length - filled)
