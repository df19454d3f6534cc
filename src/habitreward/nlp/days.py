"""Which day a free-text report is about: "ran yesterday", "вчера бегал", "кеше жүгірдім".

Only the words that name a day: today ("today", "this morning", "сегодня", "бүгін"),
yesterday, the day before and "N days ago" (up to 7), and "N hours ago", whose day is the one of
that moment (sent at 00:20, "an hour ago" is yesterday). A message naming none is about the day it was written; one
naming more than one ("ran yesterday and read today") is not certain: which habit goes
with which day is the user's to say, and so is one naming an earlier day we do not resolve ("last week", "on
Monday", "on 25 November"): it is not today. Normalized forms (see :mod:`habitreward.nlp.normalize`),
so Kazakh typed without its own letters reads the same.

Dates in numbers are read day first, as in Russian, Kazakh and most of the world ("25.11", "25.11.2026",
"25/11", "2026-11-25", "on the 4th", "4-го") and put on the calendar of the day the message was written
(``today``): within the backdating window they are that day, otherwise (further back, ahead, or a slash
date that also reads month first, "11/12") an earlier day we do not resolve, as "on Monday" is.
After "в", "at"... a pair that is also a time of day ("в 10.11") is a time, unless its date is one of
the days back in the window and the message names no other day: then today at 10:11 or 10 November
is the user's to say.
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
               "ч": 60, "minute": 1, "minutes": 1, "min": 1, "mins": 1, "минут": 1, "минуту": 1, "минуты": 1,
               "мин": 1, "минот": 1,
               "полчаса": 30}
_SINGLE_UNITS = frozenset({"hour", "hr", "час", "сагат", "minute", "min", "минуту", "минот", "полчаса"})
_LONGER_UNITS = frozenset({"week", "weeks", "month", "months", "year", "years", "неделю", "недели", "недель",
                           "месяц", "месяца", "месяцев", "год", "года", "лет", "апта", "ай", "жыл"})
_NUMBERS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "один": 1, "одни": 1, "два": 2, "три": 3, "четыре": 4, "пять": 5, "шесть": 6, "семь": 7,
    "бир": 1, "еки": 2, "уш": 3, "торт": 4, "бес": 5, "алты": 6, "жети": 7,
}
# "A few hours ago", "пару часов назад", "бірнеше сағат бұрын": read as about that many, so that
# sent soon after midnight it is the day before, as "2 hours ago" is.
_A_FEW = {"few": 3, "couple": 2, "несколько": 3, "пару": 2, "пара": 2, "бирнеше": 3}
# An earlier day we do not resolve: a weekday, a month (a date), last week, the other day.
_EARLIER_WORDS = frozenset(
    "monday tuesday wednesday thursday friday saturday sunday mondays weekend "
    "january february march april june july august september october november december "
    "jan feb mar apr jun jul aug sep sept oct nov dec "
    "среда среду мая март марта днях "
    # "прошлой неделе": the adjective's forms only, "прошла 10 000 шагов" (walked) names no day
    "прошлый прошлая прошлое прошлые прошлого прошлой прошлую прошлым прошлом прошлых прошлыми прошлому "
    "жума жумада жуманы".split()
)
_EARLIER_PREFIXES = (
    "понедельн", "вторник", "четверг", "пятниц", "суббот", "воскресен",
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


# Hours that are not a whole number ("1.5 hours", "1,5 часа", "half an hour", "полтора часа",
# "жарты сағат"), spelt out in minutes before the message is cut into words (which would read
# "1.5" as two numbers, and "half an hour" as an hour).
_HOURS_NOT_WHOLE = re.compile(
    r"\b(?:(?P<whole>\d{1,3})[.,](?P<part>\d{1,2})|(?P<half>half an?|half|жарты)|(?P<one_half>полтора|полторы))"
    r"\s+(?=(?:hours?|hrs?|h|час\w*|ч|сагат)\b)"
)
_HOUR_WORD = re.compile(r"(?:hours?|hrs?|h|час\w*|ч|сагат)\b")


def _spell_out_part_hours(folded: str) -> str:
    def minutes(match: re.Match[str]) -> str:
        if match["whole"] is not None:
            hours = float(f"{match['whole']}.{match['part']}")
        else:
            hours = 0.5 if match["half"] else 1.5
        return f"{round(hours * 60)} minutes "

    spelt = _HOURS_NOT_WHOLE.sub(minutes, folded)
    if spelt == folded:
        return folded
    # "90 minutes hours ago" -> "90 minutes ago": the unit now stands for the minutes.
    return re.sub(r"(\d+ minutes )" + _HOUR_WORD.pattern, r"\1", spelt).replace("minutes  ", "minutes ")


def _minutes_ago(found: Sequence[str], i: int) -> int | None:
    """The minutes back "N hours ago" ending at ``found[i]`` names (0: a number we cannot read),
    None when it names no hours or minutes."""
    unit = found[i - 1] if i >= 1 else ""
    per = _HOUR_UNITS.get(unit)
    if per is None:
        return None
    count = found[i - 2] if i >= 2 else ""
    if count == "of" and i >= 3:  # "a couple of hours ago"
        count = found[i - 3]
    n = int(count) if count.isdigit() and len(count) <= 4 else _NUMBERS.get(count, _A_FEW.get(count))
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


# A date in numbers, day first: "25.11", "4.01.2026", "25/11", "11/12/26", "04-01-2026", "2026-01-04",
# "on the 4th", "4-го". After a dot the month has two digits (and is at most 12: see read_dates), and
# no digit, letter or separator is around it, so a decimal ("5.5 km", "2.50", "10.25"), a range
# ("5-10", "25.11-28.11") or a clock time ("10:30") is none.
_DATE = re.compile(
    r"(?<![\w.,:/-])(?:(?P<iso_year>\d{4})-(?P<iso_month>\d{1,2})-(?P<iso_day>\d{1,2})"
    r"|(?P<day3>\d{1,2})(?P<sep>[./-])(?P<month3>\d{1,2})(?P=sep)(?P<year>\d{4}|\d{2})"
    r"|(?P<day>\d{1,2})(?:\.(?P<dot_month>\d{2})|/(?P<slash_month>\d{1,2})))(?![\w:/%]|[.,/-]\d)"
    r"|\bon\s+(?:the\s+)?(?P<nth>\d{1,2})(?:st|nd|rd|th)\b|(?<![\w.,:/-])(?P<go>\d{1,2})-?го\b"
)
# Before a date without a year, a time ("в 10.11", "at 10.11", "до 10.30"); after any, an amount
# ("10.12 km", "3/3 sets", "7.05 am", "бегал 2.10 часа", "4-го подхода"): no date.
_TIME_WORDS = frozenset("at around by till until from в во к около до с со после сагат".split())
_AMOUNT_WORDS = frozenset(
    "k km kms m mi mile miles l kg lb lbs h hr hrs hour hours min mins minute minutes sec set sets rep reps "
    "times x pages page percent am pm км м мин минут минуты минуту ч час часа часов л литр литра литров кг раз "
    "раза подход подхода подходов стр страниц страницы сек шаг шагов мл утра вечера ночи минот сагат бет рет "
    "шакырым".split()
)


# From one date to another ("25.11-28.11", "1/11 - 3/11"): several days, none of them read; the
# message is asked about (an earlier day), not logged for today. Not an amount ("5.5-6.5 km").
_DATE_RANGE = re.compile(r"(?<![\w.,:/-])\d{1,2}([./])\d{2}\s*[-–—]\s*\d{1,2}\1\d{2}(?![\w:/%]|[.,/-]\d)")


def _names_a_date_range(text: str) -> bool:
    return any(not (after := words(text[match.end():])[:1]) or after[0] not in _AMOUNT_WORDS
               for match in _DATE_RANGE.finditer(text))


class DateReading(NamedTuple):
    """The days a date in numbers may mean, as (day, month, year) with the year None when not
    written and the month None for "on the 4th"; two for a slash date that also reads month first."""

    readings: tuple[tuple[int, int | None, int | None], ...]
    #: The date as written ("10.11").
    written: str = ""


def read_dates(text: str) -> tuple[DateReading, ...]:
    """The dates in numbers of a normalized message (see :data:`_DATE`), not yet put on a calendar."""
    return _read_dates(text)[0]


def _read_dates(text: str) -> tuple[tuple[DateReading, ...], tuple[DateReading, ...]]:
    """The dates in numbers of a normalized message, and apart from them the pairs after "в",
    "at"... that read as a time of day too ("в 10.11": 10:11, or 10 November)."""
    found, maybe_times = [], []
    for match in _DATE.finditer(text):
        before = words(text[:match.start()])[-1:]
        after = words(text[match.end():])[:1]
        if after and after[0] in _AMOUNT_WORDS:
            continue
        groups = match.groupdict()
        if groups["iso_year"]:
            readings = [(int(groups["iso_day"]), int(groups["iso_month"]), int(groups["iso_year"]))]
        elif groups["nth"] or groups["go"]:
            readings = [(int(groups["nth"] or groups["go"]), None, None)]
        else:
            year_text = groups["year"]
            year = None if year_text is None else int(year_text) + (2000 if len(year_text) == 2 else 0)
            first = int(groups["day3"] or groups["day"])
            second = int(groups["month3"] or groups["dot_month"] or groups["slash_month"])
            slash = groups["sep"] == "/" or groups["slash_month"] is not None
            # "в 10.11", "at 10.30": a time of day, or (10.11) a date too; "в 25.11" cannot be a
            # time (no 25 o'clock): a date
            if year is None and before and before[0] in _TIME_WORDS and first <= 23 and second <= 59:
                # "сағат 10.11" ("10.11 o'clock"): surely a time
                if before[0] != "сагат" and _calendar_day((first, second, None), dt.date(2000, 1, 31)):
                    maybe_times.append(DateReading(((first, second, None),), match.group(0)))
                continue
            # "1/2 book", "3/4 of the way" (a digit each): a fraction, unless after "on" ("ran on 3/4")
            if groups["slash_month"] and len(groups["day"] + groups["slash_month"]) == 2 and before != ["on"]:
                continue
            # "10/10", "12/12" without a year: a score ("workout 10/10"), unless after "on"
            if slash and first == second and year is None and before != ["on"]:
                continue
            readings = [(first, second, year)]
            if slash and first != second and first <= 12:  # "11/12" also reads month first (November 12)
                readings.append((second, first, year))
        # Only real days ("31.11", "12/25" day first: none): any is one on 31 January of a leap year.
        readings = [r for r in readings if _calendar_day(r, dt.date(2000, 1, 31)) is not None]
        if readings:
            found.append(DateReading(tuple(readings), match.group(0)))
    return tuple(found), tuple(maybe_times)


def _calendar_day(reading: tuple[int, int | None, int | None], today: dt.date) -> dt.date | None:
    """The date a (day, month, year) reading is as written ``today``, None when there is none
    ("31.11"). Without a month ("on the 4th"), this month's, or the last month's with that day when
    this month's is ahead. Without a year, this year's, or last year's when this year's is more than
    a month ahead ("31.12" written on 2 January); 29 February outside a leap year is the last leap
    year's."""
    day, month, year = reading
    if month is None:
        for back in range(3):  # 31st written on 1 March: 31 January
            month_index = today.year * 12 + today.month - 1 - back
            try:
                date = dt.date(month_index // 12, month_index % 12 + 1, day)
            except ValueError:
                continue
            if date <= today:
                return date
        return None
    try:
        if year is not None:
            return dt.date(year, month, day)
        if (month, day) == (2, 29):
            leap = today.year
            while leap % 4 or (leap % 100 == 0 and leap % 400):
                leap -= 1
            return dt.date(leap, 2, 29)
        date = dt.date(today.year, month, day)
    except ValueError:
        return None
    return date.replace(year=today.year - 1) if date > today + dt.timedelta(days=31) else date


class Days(NamedTuple):
    """The days a message names, as days before the day it was written (0: that day)."""

    back: tuple[int, ...] = ()
    #: An earlier day is named that we do not resolve ("last week", "on Monday", "on 25 November",
    #: a date in numbers out of the window or that reads two ways).
    unresolved: bool = False
    #: "2 hours ago", "30 минут назад": how long before the message the report is about (0: none
    #: named). Which day that is depends on when the message was written (see :meth:`day_of`).
    minutes: int = 0
    #: Dates in numbers not yet put on the calendar (read without the day written: see :meth:`on`).
    dates: tuple[DateReading, ...] = ()
    #: A slash date that also reads month first ("11/12"): which day is the user's to say.
    ambiguous: bool = False
    #: Times of day that read as a date too ("в 10.11"), not yet put on the calendar: times,
    #: unless :meth:`on` finds the date among the days back (then see ``time_or_date``).
    maybe_times: tuple[DateReading, ...] = ()
    #: "в 10.11" written on 11 November: 10:11 today, or 10 November? The pair as written (``back``
    #: then holds both days: which one is the user's to say), "" when none is in doubt.
    time_or_date: str = ""

    @property
    def certain(self) -> bool:
        """At most one day named, and known: a report may be logged for it without asking."""
        return len(self.back) + len(self.dates) <= 1 and not self.unresolved and not self.ambiguous

    @property
    def doubt(self) -> str:
        """Why the day is not certain ("an ambiguous date", "a time or a date", "an earlier day",
        "several days"), or ""."""
        if self.ambiguous:
            return "an ambiguous date"
        if self.time_or_date:
            return "a time or a date"
        if self.unresolved:
            return "an earlier day"
        return "" if self.certain else "several days"

    @property
    def days_back(self) -> int:
        """The one day a certain message is about (0: the day it was written)."""
        return self.back[0] if len(self.back) == 1 else 0

    def on(self, today: dt.date) -> Days:
        """The days named, with the dates in numbers put on the calendar as written ``today``:
        within the backdating window a day back; further back, ahead or read two ways, an earlier
        day we do not resolve (the two readings of "11/12" are weeks apart: never both in the window).
        A time that reads as a date too ("в 10.11") in a message naming no other day: when that
        date is one of the days back in the window, today or that day (``time_or_date``); else a time."""
        back, unresolved = set(self.back), self.unresolved or self.ambiguous
        for date in self.dates:
            day = _calendar_day(date.readings[0], today) if len(date.readings) == 1 else None
            ago = (today - day).days if day is not None else -1
            if 0 <= ago <= MAX_BACK_DAYS:
                back.add(ago)
            else:
                unresolved = True
        time_or_date = self.time_or_date
        if len(self.maybe_times) == 1 and not (back or unresolved or self.minutes or time_or_date):
            day = _calendar_day(self.maybe_times[0].readings[0], today)
            ago = (today - day).days if day is not None else -1
            if 1 <= ago <= MAX_BACK_DAYS:
                back, time_or_date = {0, ago}, self.maybe_times[0].written
        return self._replace(back=tuple(sorted(back)), unresolved=unresolved, dates=(), time_or_date=time_or_date)

    def day_of(self, written: dt.datetime) -> dt.date:
        """The day a certain message ``written`` at that moment (aware, in the user's time zone) is
        about: "yesterday" the day before, "an hour ago" sent at 00:20 the day before too."""
        if self.dates or (self.maybe_times and not self.time_or_date):
            return self.on(written.date())._replace(maybe_times=()).day_of(written)
        if self.back or not self.minutes:  # a day named ("today", "25.11") wins over the hours
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


def reported_days(text: str, today: dt.date | None = None) -> Days:
    """The days ``text`` names (see :class:`Days`), its dates in numbers put on the calendar when
    ``today``, the day it was written in the user's time zone, is given."""
    # Every free-text message asks, and people send the same few words: short ones are remembered
    # (as the local matcher's answers are), long ones read afresh.
    days = _reported_days(text) if len(text) <= 200 else _reported_days.__wrapped__(text)
    return days.on(today) if today is not None and (days.dates or days.maybe_times) else days


@functools.lru_cache(maxsize=2048)
def _reported_days(text: str) -> Days:
    folded = normalize(text)
    dates, maybe_times = _read_dates(folded)
    days = read_days(words(_spell_out_part_hours(folded)))
    days = days._replace(dates=dates, ambiguous=any(len(d.readings) > 1 for d in dates), maybe_times=maybe_times)
    return days._replace(unresolved=True) if _names_a_date_range(folded) else days


def days_back(text: str, today: dt.date | None = None) -> int:
    """How many days before the message, written ``today``, the report is about: 0 to 7 (0 also
    when it names several days: see :func:`reported_days`)."""
    return reported_days(text, today).days_back
