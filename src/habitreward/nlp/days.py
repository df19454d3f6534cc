"""Which day a free-text report is about: "ran yesterday", "вчера бегал", "кеше жүгірдім".

Only the words that name a day: today ("today", "this morning", "сегодня", "бүгін"),
yesterday and the day before. A message naming none is about the day it was written; one
naming more than one ("ran yesterday and read today") is not certain: which habit goes
with which day is the user's to say. Normalized forms (see :mod:`habitreward.nlp.normalize`),
so Kazakh typed without its own letters reads the same.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import NamedTuple

from habitreward.nlp.normalize import normalize, words

_TODAY_WORDS = frozenset({"today", "todays", "tonight", "сегодня", "сегодняшний", "сегодняшняя", "бугин",
                          "бугинги"})
# "this morning", "this evening": today, read together ("утром" alone may be yesterday's morning).
_TODAY_PHRASES = frozenset({("this", "morning"), ("this", "afternoon"), ("this", "evening")})
_YESTERDAY_WORDS = frozenset({"yesterday", "yday", "вчера", "вчерашний", "вчерашняя", "кеше", "кешеги"})
_DAY_BEFORE_WORDS = frozenset({"позавчера", "позавчерашний"})
# "the day before yesterday", "алдыңғы күні" ("the day before"): two words read together.
_DAY_BEFORE_PHRASES = frozenset({("before", "yesterday"), ("day", "before"), ("алдынгы", "куни"),
                                 ("бурнагы", "куни")})


class Days(NamedTuple):
    """The days a message names, as days before the day it was written (0: that day)."""

    back: tuple[int, ...] = ()

    @property
    def certain(self) -> bool:
        """At most one day named: a report may be logged for it without asking."""
        return len(self.back) <= 1

    @property
    def doubt(self) -> str:
        """Why the day is not certain ("several days"), or ""."""
        return "" if self.certain else "several days"

    @property
    def days_back(self) -> int:
        """The one day a certain message is about (0: the day it was written)."""
        return self.back[0] if len(self.back) == 1 else 0


def read_days(found: Sequence[str]) -> Days:
    """The days named by the words of a normalized message."""
    named: set[int] = set()
    pairs = set(zip(found, found[1:]))
    if _DAY_BEFORE_WORDS.intersection(found) or pairs & _DAY_BEFORE_PHRASES:
        named.add(2)
    # "before yesterday" names the day before, not yesterday too.
    if any(w in _YESTERDAY_WORDS and (i == 0 or found[i - 1] != "before") for i, w in enumerate(found)):
        named.add(1)
    if _TODAY_WORDS.intersection(found) or pairs & _TODAY_PHRASES:
        named.add(0)
    return Days(tuple(sorted(named)))


def reported_days(text: str) -> Days:
    """The days ``text`` names (see :class:`Days`)."""
    # Every free-text message asks, and people send the same few words: short ones are remembered
    # (as the local matcher's answers are), long ones read afresh.
    return _reported_days(text) if len(text) <= 200 else _reported_days.__wrapped__(text)


@functools.lru_cache(maxsize=2048)
def _reported_days(text: str) -> Days:
    return read_days(words(normalize(text)))


def days_back(text: str) -> int:
    """How many days before the message the report is about: 2, 1 or 0 (also when it names
    several days: see :func:`reported_days`)."""
    return reported_days(text).days_back
