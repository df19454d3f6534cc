"""Which day a free-text report is about: "ran yesterday", "вчера бегал", "кеше жүгірдім".

Only the words that name a day: today ("today", "this morning", "сегодня", "бүгін"),
yesterday, the day before and "N days ago" (up to 7), and "N hours ago", whose day is the one of
that moment (sent at 00:20, "an hour ago" is yesterday). A message naming none is about the day it was written; one
naming more than one ("ran yesterday and read today") is not certain: which habit goes
with which day is the user's to say, and so is one naming an earlier day we do not resolve ("last week", "on
Monday", "on 25 November"): it is not today. Normalized forms (see :mod:`habitreward.nlp.normalize`),
so Kazakh typed without its own letters reads the same.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Sequence
from typing import NamedTuple

from habitreward.nlp.normalize import normalize, words

_TODAY_WORDS = frozenset({"today", "todays", "tonight", "сегодня", "бугин"})
# "this morning", "this evening": today, read together ("утром" alone may be yesterday's morning).
_TODAY_PHRASES = frozenset({("this", "morning"), ("this", "afternoon"), ("this", "evening")})
_YESTERDAY_WORDS = frozenset({"yesterday", "yesterdays", "yday", "вчера", "кеше"})
_DAY_BEFORE_WORDS = frozenset({"позавчера"})
# The adjectives, in every form ("вчерашнюю пробежку", "позавчерашняя", "бүгінгі", "кешегіні"):
# a word starting with one of these names that day.
_TODAY_STEMS = ("сегодняшн", "бугинги")
_YESTERDAY_STEMS = ("вчерашн", "кешеги")
_DAY_BEFORE_STEMS = ("позавчерашн",)
# "the day before yesterday", "алдыңғы күні" ("the day before"): two words read together.
_DAY_BEFORE_PHRASES = frozenset({("before", "yesterday"), ("day", "before"), ("алдынгы", "куни"),
                                 ("бурнагы", "куни")})

#: "3 days ago", "3 дня назад", "3 күн бұрын": a day resolved when it is at most a week back.
MAX_BACK_DAYS = 7
_AGO_WORDS = frozenset({"ago", "назад", "бурын"})
_DAY_UNITS = frozenset({"day", "days", "день", "дня", "дней", "суток", "кун"})
# "2 hours ago", "час назад", "2 сағат бұрын": the moment that long before the message, whose day
# is the day written unless the message came soon after midnight ("бұрын" is also "before").
# Minutes per unit; a unit that reads as one ("hour", "час") counts once without a number.
_HOUR_UNITS = {"hour": 60, "hours": 60, "hr": 60, "hrs": 60, "час": 60, "часа": 60, "часов": 60, "сагат": 60,
               "minute": 1, "minutes": 1, "min": 1, "mins": 1, "минут": 1, "минуту": 1, "минуты": 1, "минот": 1,
               "полчаса": 30}
_SINGLE_UNITS = frozenset({"hour", "hr", "час", "сагат", "minute", "min", "минуту", "минот", "полчаса"})
_LONGER_UNITS = frozenset({"week", "weeks", "month", "months", "year", "years", "неделю", "недели", "недель",
                           "месяц", "месяца", "месяцев", "год", "года", "лет", "апта", "ай", "жыл"})
_NUMBERS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "один": 1, "одни": 1, "два": 2, "три": 3, "четыре": 4, "пять": 5, "шесть": 6, "семь": 7,
    "бир": 1, "еки": 2, "уш": 3, "торт": 4, "бес": 5, "алты": 6, "жети": 7,
}
# An earlier day we do not resolve: a weekday, a month (a date), last week, the other day.
_EARLIER_WORDS = frozenset(
    "monday tuesday wednesday thursday friday saturday sunday mondays weekend "
    "january february march april june july august september october november december "
    "jan feb mar apr jun jul aug sep sept oct nov dec "
    "среда среду мая март марта днях "
    "жума жумада жуманы".split()
)
_EARLIER_PREFIXES = (
    "понедельн", "вторник", "четверг", "пятниц", "суббот", "воскресен", "прошл",
    "январ", "феврал", "апрел", "июн", "июл", "август", "сентябр", "октябр", "ноябр", "декабр",
    # kk (folded): дүйсенбі ... жексенбі, өткен ("last"), the months
    "дуйсенб", "сейсенб", "сарсенб", "бейсенб", "сенби", "жексенб", "откен",
    "кантар", "акпан", "наурыз", "сауир", "мамыр", "маусым", "шилде", "тамыз", "кыркуйек", "казан",
    "караша", "желтоксан",
)
# "last week", "the other day" (but "last night" is yesterday).
_EARLIER_PHRASES = frozenset({("last", "week"), ("last", "month"), ("last", "year"), ("other", "day"),
                              ("this", "week"), ("last", "time")})
_YESTERDAY_PHRASES = frozenset({("last", "night")})


def _minutes_ago(found: Sequence[str], i: int) -> int | None:
    """The minutes back "N hours ago" ending at ``found[i]`` names (0: a number we cannot read,
    "a few hours ago"), None when it names no hours or minutes."""
    unit = found[i - 1] if i >= 1 else ""
    per = _HOUR_UNITS.get(unit)
    if per is None:
        return None
    count = found[i - 2] if i >= 2 else ""
    n = int(count) if count.isdigit() and len(count) <= 4 else _NUMBERS.get(count)
    if n is None:
        n = 1 if unit in _SINGLE_UNITS else 0
    return n * per


def _ago(found: Sequence[str], i: int) -> int | None:
    """The days back "N days ago" ending at ``found[i]`` names: N, None for an earlier day we do
    not resolve (a week ago, 10 days ago)."""
    unit = found[i - 1] if i >= 1 else ""
    if unit not in _DAY_UNITS:
        return None
    count = found[i - 2] if i >= 2 else "a"
    n = int(count) if count.isdigit() and len(count) <= 2 else _NUMBERS.get(count, 1 if unit in ("day", "день",
                                                                                           "кун") else None)
    return n if n is not None and 1 <= n <= MAX_BACK_DAYS else None


class Days(NamedTuple):
    """The days a message names, as days before the day it was written (0: that day)."""

    back: tuple[int, ...] = ()
    #: An earlier day is named that we do not resolve ("last week", "on Monday", "on 25 November").
    unresolved: bool = False
    #: "2 hours ago", "30 минут назад": how long before the message the report is about (0: none
    #: named). Which day that is depends on when the message was written (see :meth:`day_of`).
    minutes: int = 0

    @property
    def certain(self) -> bool:
        """At most one day named, and known: a report may be logged for it without asking."""
        return len(self.back) <= 1 and not self.unresolved

    @property
    def doubt(self) -> str:
        """Why the day is not certain ("an earlier day", "several days"), or ""."""
        if self.unresolved:
            return "an earlier day"
        return "" if self.certain else "several days"

    @property
    def days_back(self) -> int:
        """The one day a certain message is about (0: the day it was written)."""
        return self.back[0] if len(self.back) == 1 else 0

    def day_of(self, written: dt.datetime) -> dt.date:
        """The day a certain message ``written`` at that moment (aware, in the user's time zone) is
        about: "yesterday" the day before, "an hour ago" sent at 00:20 the day before too."""
        if self.back or not self.minutes:  # a day named ("today") wins over the hours
            return written.date() - dt.timedelta(days=self.days_back)
        earlier = written.astimezone(dt.timezone.utc) - dt.timedelta(minutes=self.minutes)
        return earlier.astimezone(written.tzinfo).date()


def read_days(found: Sequence[str]) -> Days:
    """The days named by the words of a normalized message."""
    named: set[int] = set()
    pairs = set(zip(found, found[1:]))
    if any(w in _DAY_BEFORE_WORDS or w.startswith(_DAY_BEFORE_STEMS) for w in found) or pairs & _DAY_BEFORE_PHRASES:
        named.add(2)
    # "before yesterday" names the day before, not yesterday too.
    if any((w in _YESTERDAY_WORDS or w.startswith(_YESTERDAY_STEMS)) and (i == 0 or found[i - 1] != "before")
           for i, w in enumerate(found)):
        named.add(1)
    if pairs & _YESTERDAY_PHRASES:
        named.add(1)
    if any(w in _TODAY_WORDS or w.startswith(_TODAY_STEMS) for w in found) or pairs & _TODAY_PHRASES:
        named.add(0)
    unresolved = bool(_EARLIER_WORDS.intersection(found) or pairs & _EARLIER_PHRASES) or any(
        w.startswith(_EARLIER_PREFIXES) for w in found)
    minutes = 0
    for i, w in enumerate(found):
        if w in _AGO_WORDS:
            span = _minutes_ago(found, i)
            if span is not None:
                if span > MAX_BACK_DAYS * 24 * 60:  # "200 hours ago": an earlier day we do not resolve
                    unresolved = True
                minutes = minutes or span
                continue
            back = _ago(found, i)
            if back is None:
                # "бұрын" is also "before" ("таңғы астан бұрын": before breakfast)
                unresolved = unresolved or w != "бурын" or (i >= 1 and found[i - 1] in _LONGER_UNITS)
            elif back:
                named.add(back)
    return Days(tuple(sorted(named)), unresolved, minutes)


def reported_days(text: str) -> Days:
    """The days ``text`` names (see :class:`Days`)."""
    # Every free-text message asks, and people send the same few words: short ones are remembered
    # (as the local matcher's answers are), long ones read afresh.
    return _reported_days(text) if len(text) <= 200 else _reported_days.__wrapped__(text)


# A date in numbers is an earlier day we do not resolve too: "04.01", "4/01", "25.11.2025",
# "2026-01-04", "on the 4th", "4-го". Day 1-31 and a two-digit month 01-12 (in either order), so
# a decimal ("5.5 km", "2.50 l", "10.25"), a fraction ("1/2"), a range ("5-10") or an amount
# ("3.10 km") is no date.
_UNIT_AFTER = r"(?!\s*(?:k|km|км|mi|miles?|l|л|kg|кг|m|м|h|ч|hours?|hrs?|час\w*|min\w*|мин\w*)\b)"
_NUMERIC_DATE = re.compile(
    r"(?<![\d.,/-])(?:\d{4}-\d{1,2}-\d{1,2}|\d{1,2}([./-])\d{1,2}\1(?:\d{4}|\d{2})"
    r"|(?P<a>\d{1,2})(?P<sep>[./])(?P<b>\d{2})" + _UNIT_AFTER + r")(?![\d.,/-]?\d)"
    r"|\bon\s+(?:the\s+)?\d{1,2}(?:st|nd|rd|th)\b|(?<!\d)\d{1,2}-?го\b"
)


def _names_a_date(text: str) -> bool:
    for match in _NUMERIC_DATE.finditer(text):
        if match.group("a") is None:
            return True
        a, b = int(match.group("a")), int(match.group("b"))
        if (1 <= a <= 31 and 1 <= b <= 12) or (1 <= a <= 12 and 1 <= b <= 31 and match.group("sep") == "/"):
            return True
    return False


@functools.lru_cache(maxsize=2048)
def _reported_days(text: str) -> Days:
    folded = normalize(text)
    days = read_days(words(folded))
    return days._replace(unresolved=True) if not days.unresolved and _names_a_date(folded) else days


def days_back(text: str) -> int:
    """How many days before the message the report is about: 2, 1 or 0 (also when it names
    several days: see :func:`reported_days`)."""
    return reported_days(text).days_back
