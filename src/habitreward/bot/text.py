"""Telegram's 4096 limit on a message, measured as Telegram measures it.

Telegram counts the text a user reads (tags removed, ``&amp;`` as one character) in UTF-16
code units: an emoji outside the Basic Multilingual Plane (🏃, 🎉) is two. A name of 100
such emoji is 200 units, so "20 lines of 100-character names" no longer fit, and a list is
paged by size (:func:`pages`) as well as by count; what a user typed is echoed shortened
(:func:`shorten`); and :func:`fit`, the last line of defence, cuts by the same measure.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Sequence

log = logging.getLogger(__name__)

MAX_TEXT = 4096
#: How much of what a user typed an answer quotes back (a time zone, ...), in UTF-16 units.
MAX_ECHO = 64
#: Room kept for a "…and n more" line (its longest translation is well under this).
MORE_LINE_ROOM = 64
_TAG = re.compile(r"<[^>]*>")
_MORE = "\n…"


def units(text: str) -> int:
    """Length in UTF-16 code units, as Telegram counts it."""
    return len(text.encode("utf-16-le")) // 2


def shown_units(text: str) -> int:
    """The UTF-16 length of what a user reads of an HTML message (tags removed, entities decoded)."""
    return units(html.unescape(_TAG.sub("", text)))


def _cut(plain: str, limit: int) -> str:
    """The longest start of ``plain`` of at most ``limit`` UTF-16 units (never half an emoji)."""
    total = 0
    for i, ch in enumerate(plain):
        total += 2 if ord(ch) > 0xFFFF else 1
        if total > limit:
            return plain[:i]
    return plain


def shorten(plain: str, limit: int = MAX_ECHO) -> str:
    """Typed text to quote in an answer: at most ``limit`` units, with "…" when cut."""
    return plain if units(plain) <= limit else _cut(plain, limit - 1) + "…"


def fit(text: str) -> str:
    """Keep an HTML message inside Telegram's limit without cutting a tag in half.

    Screens page their lists by size, so this never triggers; if it does, it is a bug (logged),
    and the user still gets the first lines that fit (each line is self-contained HTML) and a
    "…"; when not even the first line fits, its text without formatting, cut.
    """
    if shown_units(text) <= MAX_TEXT:
        return text
    log.error("message of %d UTF-16 units cut to Telegram's limit", shown_units(text))
    kept: list[str] = []
    used = units(_MORE)
    for line in text.split("\n"):
        size = shown_units(line) + (1 if kept else 0)
        if used + size > MAX_TEXT:
            break
        kept.append(line)
        used += size
    if any(line.strip() for line in kept):
        return "\n".join(kept) + _MORE
    plain = html.unescape(_TAG.sub("", text))
    return html.escape(_cut(plain, MAX_TEXT - 1), quote=False) + "…"


def pages(lines: Sequence[str], per_page: int, room: int) -> list[list[str]]:
    """``lines`` in pages of at most ``per_page`` lines and ``room`` UTF-16 units (a line and its
    newline), every line on one page, in order. A line larger than ``room`` gets a page of its own."""
    result: list[list[str]] = []
    page: list[str] = []
    used = 0
    for line in lines:
        size = shown_units(line) + 1
        if page and (len(page) >= per_page or used + size > room):
            result.append(page)
            page, used = [], 0
        page.append(line)
        used += size
    if page or not result:
        result.append(page)
    return result


def fitting(lines: Sequence[str], room: int) -> int:
    """How many of ``lines``, from the first, fit in ``room`` UTF-16 units (with their newlines)."""
    used = 0
    for count, line in enumerate(lines):
        used += shown_units(line) + 1
        if used > room:
            return count
    return len(lines)
