"""Input rules shared by every way in (CLI, bot, import). Each failure is a ValidationError
whose message a user can act on."""

from __future__ import annotations

import datetime as dt
import logging
import math
import numbers
import re
import unicodedata
import zoneinfo
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from habitreward.errors import ValidationError
from habitreward.models import RewardType
from habitreward.settings import LANGUAGES

logger = logging.getLogger(__name__)

MAX_NAME_LENGTH = 100
MAX_SKIP_DAYS = 30
BACKDATE_DAYS = 7
_OFFSET = re.compile(r"^(?:UTC|GMT)?\s*([+-])\s*(\d{1,2})(?::?(\d{2}))?$", re.IGNORECASE)
#: Files of a system's time zone folder that are no zone of the tz database, refused as unknown:
#: ``localtime`` is the machine's own zone (a user's day would be wherever the server stands) and
#: ``posixrules``, ``posix/...``, ``right/...`` (leap seconds counted) exist on some machines only.
_MACHINE_ZONES = frozenset({"localtime", "posixrules"})
#: How :func:`timezone_name` stores an offset that is not a whole hour (``UTC+05:30``).
_STORED_OFFSET = re.compile(r"UTC([+-])([0-9]{2}):([0-9]{2})")


#: Kept in a name although they are format characters: U+200D (zero-width joiner) between two
#: symbols (👨‍👩‍👧, 🏳️‍🌈) and the tag characters of a subdivision flag (🏴󠁧󠁢󠁳󠁣󠁴󠁿), where they draw one emoji.
_ZWJ, _TAGS, _BLACK_FLAG = "\u200d", range(0xE0020, 0xE0080), "\U0001F3F4"
#: Letters and symbols that draw nothing: Hangul fillers and the Braille blank, the usual way to
#: an "empty" Telegram name. Removed like format characters.
_BLANKS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def _symbol(ch: str) -> bool:
    return unicodedata.category(ch) in ("So", "Sk")


def tidy_name(name: str | None) -> str:
    """A name as it is stored: runs of whitespace become one space, none at the ends, and
    invisible characters are removed: control characters and Unicode format characters
    (category Cf: zero-width space and joiners, bidi controls such as U+202E, soft hyphen,
    BOM), except where they are part of an emoji. "\\u200bRun\\u200d" is "Run", and a name of
    nothing but such characters is empty."""
    if name is not None and not isinstance(name, str):  # 5, a list: no name, and no crash deep inside
        raise ValidationError(f"A name must be text, got {_quoted(name)}.")
    text = name or ""
    kept: list[str] = []
    for i, ch in enumerate(text):
        kind = unicodedata.category(ch)
        if (kind == "Cc" and not ch.isspace()) or ch in _BLANKS:
            continue
        if kind == "Cf" and not ch.isspace():
            previous = next((c for c in reversed(kept) if unicodedata.category(c) != "Mn"), "")  # skip U+FE0F
            after = text[i + 1:i + 2]
            if ch == _ZWJ and previous and after and _symbol(previous) and _symbol(after):
                kept.append(ch)
            elif ord(ch) in _TAGS and (previous == _BLACK_FLAG or (kept and ord(kept[-1]) in _TAGS)):
                kept.append(ch)
            continue
        kept.append(ch)
    return " ".join("".join(kept).split())


def clean_name(name: str | None, what: str = "name") -> str:
    """A name, tidied (:func:`tidy_name`): 1 to 100 characters, something visible among them."""
    cleaned = tidy_name(name)
    if not cleaned:
        raise ValidationError(f"The {what} must not be empty or invisible.")
    if len(cleaned) > MAX_NAME_LENGTH:
        raise ValidationError(f"The {what} is too long: at most {MAX_NAME_LENGTH} characters, got {len(cleaned)}.")
    return cleaned


def name_key(name: str) -> str:
    """A name as names are compared, worked out in Python (the Airtable import's checks, the
    CLI's claim): lower case, a final sigma as any sigma. The engine asks the database the same
    (catalog.sql_name_key); the two agree on the alphabets the bot speaks, not on every letter
    (PostgreSQL lowers "İ" to "i", Python to "i̇")."""
    return name.lower().replace("ς", "σ")


def habit_weight(value: int | str) -> int:
    weight = whole_number(value)  # not int(): True is no weight of 1, nor 12.5 one of 12
    if weight is None:
        raise ValidationError(f"The habit weight must be a whole number from 1 to 100, got {_quoted(value)}.")
    if not 1 <= weight <= 100:
        raise ValidationError(f"The habit weight must be from 1 to 100, got {weight}.")
    return weight


def skip_days(value: int | str) -> int:
    days = whole_number(value)
    if days is None:
        raise ValidationError(f"Allowed skip days must be a whole number, got {_quoted(value)}.")
    if not 0 <= days <= MAX_SKIP_DAYS:
        raise ValidationError(f"Allowed skip days must be from 0 to {MAX_SKIP_DAYS}, got {days}.")
    return days


#: A reward weight no one needs more than; far larger ones overflow once the draw multiplies
#: them (1e308 became infinite, and the reward silently left every draw).
MAX_REWARD_WEIGHT = 1_000_000_000


def reward_weight(value: float | str) -> float:
    try:
        if isinstance(value, bool):  # True is no weight of 1.0
            raise TypeError
        weight = float(value)
    except (TypeError, ValueError):
        raise ValidationError(f"The reward weight must be a number above 0, got {value!r}.") from None
    if not (math.isfinite(weight) and 0 < weight <= MAX_REWARD_WEIGHT):
        raise ValidationError(f"The reward weight must be above 0 and at most {MAX_REWARD_WEIGHT:,}, got {value}.")
    return weight


def reward_type(value: str) -> str:
    """A reward type: its name as text or a ``RewardType``. Nothing else: ``str(None)`` would be the
    type "none" (the reward that gives nothing), and ``str(RewardType.REAL)`` is no type name."""
    kind = value.strip().lower() if isinstance(value, str) else None  # a RewardType is a str
    if kind not in {t.value for t in RewardType}:
        raise ValidationError(f"The reward type must be virtual, real or none, got {value!r}.")
    return kind


def pieces_required(value: int | str) -> int:
    pieces = whole_number(value)
    if pieces is None:
        raise ValidationError(f"Pieces required must be a whole number of at least 1, got {_quoted(value)}.")
    if not 1 <= pieces <= 10_000:
        raise ValidationError(f"Pieces required must be from 1 to 10000, got {pieces}.")
    return pieces


#: More draws of one reward a day than anyone completes habits; the column is a 32-bit integer
#: on PostgreSQL, where 3,000,000,000 was a DataError instead of a message.
MAX_PER_DAY = 1000


def max_per_day(value: int | str) -> int:
    cap = whole_number(value)
    if cap is None:
        raise ValidationError(f"Max per day must be a whole number (0 = no limit), got {_quoted(value)}.")
    if not 0 <= cap <= MAX_PER_DAY:
        raise ValidationError(f"Max per day must be from 0 (no limit) to {MAX_PER_DAY}, got {cap}.")
    return cap


def piece_value(value: Decimal | float | str | None) -> Decimal | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValidationError(f"The piece value must be a number such as 2.50, got {value!r}.") from None
    if not amount.is_finite() or amount < 0 or amount >= Decimal("1e10"):
        raise ValidationError(f"The piece value must be between 0 and 9999999999.99, got {value!r}.")
    if amount != amount.quantize(Decimal("0.01")):  # 0.005 was stored as 0.00 without a word
        raise ValidationError(f"The piece value has at most two decimals (2.50), got {value!r}.")
    return amount.quantize(Decimal("0.01"))


def language(value: str) -> str:
    code = str(value).strip().lower()
    if code not in LANGUAGES:
        raise ValidationError(f"The language must be one of {', '.join(LANGUAGES)}, got {value!r}.")
    return code


#: Telegram's user ids are positive and fit in 64 bits (the column is a BIGINT).
MAX_TELEGRAM_ID = 2**63 - 1
#: No database's row ids go past 64 bits (SQLite cannot even be asked for a bigger one).
MAX_ROW_ID = 2**63 - 1
#: What a 64-bit column can hold: a number outside it is in no row (and SQLite cannot be asked).
_BIGINT = range(-(2**63), 2**63)


def whole_number(value: object) -> int | None:
    """``value`` as a whole number, None when it is none: an int, the digits of one as text (a
    query string's ``"12"``), or a float, Decimal or Fraction that is whole (``12.0``). Not a bool
    (``True`` is no id 1) and not a fraction (2.5 is not 2, as ``int()`` would make it)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    if isinstance(value, (numbers.Real, Decimal)):  # Decimal is no numbers.Real
        try:
            number = int(value)
        except (ValueError, OverflowError):  # NaN, infinity
            return None
        return number if number == value else None
    return None


def row_id(value: object) -> int | None:
    """The id of a row (a habit, reward or log) to look up, None when no row can have it: no whole
    number (``"abc"`` from a URL, ``True``, ``2.5``) or outside the ids a table gives out."""
    number = whole_number(value)
    return number if number is not None and 1 <= number <= MAX_ROW_ID else None


def telegram_id(value: int | str) -> int:
    """A Telegram user id: a whole number from 1 to 2**63-1."""
    number = whole_number(value)
    if number is None or not 1 <= number <= MAX_TELEGRAM_ID:
        raise ValidationError(f"A Telegram user id is a whole number from 1 to {MAX_TELEGRAM_ID},"
                              f" got {_quoted(value)}.")
    return number


def lookup_telegram_id(value: int | str) -> int | None:
    """A Telegram user id to look someone up by: any whole number (an unknown one is NotFound);
    None for one past 64 bits, which no user has."""
    number = whole_number(value)
    if number is None:
        raise ValidationError(f"A Telegram user id is a whole number, got {_quoted(value)}.")
    return number if number in _BIGINT else None


def optional_text(value: str | None, what: str) -> str:
    """Text a caller may leave out: None is none (""), anything else must be text."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationError(f"The {what} must be text, got {_quoted(value)}.")
    return value


def how_many(value: int, what: str = "limit") -> int:
    """A count a caller asks for (``history(limit=...)``): a whole number, 0 or more (0: none)."""
    number = whole_number(value)
    if number is None or number < 0:
        raise ValidationError(f"The {what} must be a whole number, 0 or more, got {_quoted(value)}.")
    return min(number, 2**63 - 1)  # more than any table holds: all of them, not an overflow


def calendar_day(value: dt.date) -> dt.date:
    """A day to log (``complete(day=...)``): a ``datetime.date``. A ``datetime`` is refused, as
    its day depends on a time zone: the moment goes in ``at`` and the user's zone picks the day."""
    if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
        raise ValidationError(f"The day must be a date (datetime.date), got {_quoted(value)}; pass a moment as"
                              " at= and the user's time zone decides its day.")
    return value


def moment(value: dt.datetime) -> dt.datetime:
    """When a user acted (``complete(at=...)``): a ``datetime.datetime`` (naive: UTC). A date or
    text is refused: a day to log goes in ``day=``."""
    if not isinstance(value, dt.datetime):
        raise ValidationError(f"The moment must be a datetime (datetime.datetime), got {_quoted(value)}; pass a"
                              " day to log as day=.")
    return value


def timezone_name(value: str, *, exact: bool = False) -> str:
    """An IANA name (``Asia/Almaty``) or a UTC offset (``+5``, ``UTC-10``, ``+05:30``), normalised.

    A name as people type it is taken too (not with ``exact``, for stored data): in any case
    (``asia/almaty``), with spaces (``America/New York``), or the city alone (``Almaty``)."""
    text = str(value or "").strip()
    match = _OFFSET.match(text)
    if match:
        sign, hours, minutes = match.group(1), int(match.group(2)), int(match.group(3) or 0)
        if _offset_minutes(sign, hours, minutes) is None:  # the offsets the world uses (Etc/GMT too)
            raise ValidationError(f"A UTC offset must be between -12:00 and +14:00, got {value!r}.")
        if minutes == 0:
            # Etc/GMT names have the sign inverted (POSIX style): UTC+5 is Etc/GMT-5.
            return "UTC" if hours == 0 else f"Etc/GMT{'-' if sign == '+' else '+'}{hours}"
        return f"UTC{sign}{hours:02d}:{minutes:02d}"
    if text.upper() in ("UTC", "GMT", "Z"):
        return "UTC"
    try:
        if text in _MACHINE_ZONES or text.startswith(("posix/", "right/")):
            raise ValueError(f"not a zone of the tz database: {text!r}")
        zone_of(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        spelled = None if exact else _zone_spellings().get(_spelling_key(text))
        if spelled is not None:
            return spelled
        raise ValidationError(
            f"Unknown time zone {_quoted(value)}: use an IANA name such as Europe/Berlin or an offset such as"
            " UTC+5."
        ) from None
    return text


#: First parts of the tz database's names whose last part is a city (``Europe/Moscow``), so the
#: city alone names the zone; ``Etc/GMT-5`` or ``US/Eastern`` are no cities.
_CITY_REGIONS = frozenset({"Africa", "America", "Antarctica", "Arctic", "Asia", "Atlantic", "Australia",
                           "Europe", "Indian", "Pacific"})


def _spelling_key(text: str) -> str:
    return re.sub(r"[\s_]+", " ", text).strip().lower()


@lru_cache(maxsize=1)
def _zone_spellings() -> dict[str, str]:
    """What people type for a zone (see :func:`_spelling_key`) -> its name in the tz database: the
    name in any case, and a city alone. A city under two names (``Europe/Istanbul``,
    ``Asia/Istanbul``) is one zone with a link: the shorter name is taken."""
    spellings: dict[str, str] = {}
    for name in sorted(zoneinfo.available_timezones() - _MACHINE_ZONES, key=lambda n: (len(n), n)):
        spellings.setdefault(_spelling_key(name), name)
        region, _, city = name.rpartition("/")
        if region.split("/")[0] in _CITY_REGIONS:
            spellings.setdefault(_spelling_key(city), name)
    return spellings


def _offset_minutes(sign: str, hours: int, minutes: int) -> int | None:
    """The offset in minutes, or None outside the offsets the world uses (-12:00 to +14:00)."""
    offset = (hours * 60 + minutes) * (1 if sign == "+" else -1)
    return offset if minutes < 60 and -12 * 60 <= offset <= 14 * 60 else None


def _quoted(value: object, most: int = 64) -> str:
    """``value`` as an error message quotes it: a long one cut (a pasted page is no zone name)."""
    text = repr(value)
    return text if len(text) <= most else text[:most - 1] + "…"


def zone_label(name: str) -> str:
    """How a stored zone is shown: ``Etc/GMT-5`` (POSIX signs are inverted) reads as ``UTC+5``."""
    if name.startswith("Etc/GMT") and len(name) > len("Etc/GMT") + 1:
        sign, hours = name[len("Etc/GMT")], name[len("Etc/GMT") + 1:]
        return "UTC" if hours.strip("0") == "" else f"UTC{'+' if sign == '-' else '-'}{hours}"
    return name


def zone_of(name: str) -> dt.tzinfo:
    """The tzinfo for a time zone name (IANA, or ``UTC+05:30`` for odd offsets); ValueError or
    ZoneInfoNotFoundError for an unknown one (see :func:`stored_zone` for a stored name).

    Only the names :func:`timezone_name` stores pass: ``UTC`` with a real sign, two-digit hours
    and minutes inside -12:00..+14:00, or a file of the tz database. Anything else is unknown,
    however the lookup fails: ``Europe`` is a directory of the database (IsADirectoryError), a
    300-character name is too long for a file name (OSError), ``a\\0b`` has a NUL (ValueError).
    """
    if name.startswith("UTC") and len(name) > 3:
        match = _STORED_OFFSET.fullmatch(name)
        offset = _offset_minutes(match.group(1), int(match.group(2)), int(match.group(3))) if match else None
        if offset is None:
            raise ValueError(f"not a UTC offset from -12:00 to +14:00: {name!r}")
        return dt.timezone(dt.timedelta(minutes=offset))
    try:
        return zoneinfo.ZoneInfo(name)
    except OSError as exc:  # a directory, a name too long for a file, ...
        raise zoneinfo.ZoneInfoNotFoundError(f"No time zone found with key {name!r}") from exc


@lru_cache(maxsize=512)
def stored_zone(name: str) -> dt.tzinfo:
    """The tzinfo of a user's stored time zone; UTC, with a warning, for one this machine does
    not know (stored by an older version that let ``UTC-13`` through, or a tz database without
    it): every screen of that user would fail otherwise, the one to change it included."""
    try:
        return zone_of(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        logger.warning("unknown time zone %r stored for a user: UTC is used until it is changed", name)
        return dt.timezone.utc
