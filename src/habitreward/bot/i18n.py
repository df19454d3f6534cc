"""Translations for the bot: gettext ``.po`` catalogs read with Babel, no build step.

The catalogs live in ``habitreward/locales/<lang>/LC_MESSAGES/habitreward.po``
with English source strings as message ids (the gettext convention, so a
translator sees the English next to their text). They are read directly with
``babel.messages.pofile.read_po`` and turned into ``babel.support.Translations``
in memory, so a source checkout or an edited ``.po`` works without compiling
``.mo`` files. Plural forms come from each catalog's ``Plural-Forms`` header
(Russian has three forms, Kazakh and English two).

Messages use ``str.format`` placeholders (``{name}``). :meth:`Translator._`
HTML-escapes text arguments, because every bot message is sent with
``parse_mode=HTML``: a habit called ``<b>&`` shows literally.

Plugins add their own strings with :func:`register_catalog_dir` (a directory
laid out like ours, with its own domain); their messages are merged in, and
ours win on a clash.
"""

from __future__ import annotations

import html
import io
import string
import threading
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

from babel.dates import format_date
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import get_decimal_symbol
from babel.support import Translations

DOMAIN = "habitreward"
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locales"
#: Keywords marking translatable strings, for ``babel.messages.extract`` (see scripts/update_catalogs.py).
KEYWORDS: dict[str, Any] = {"_": None, "ngettext": (1, 2), "N_": None}
#: Languages shown in the language picker, by their own name (never translated).
LANGUAGE_NAMES = {"en": "English", "ru": "Русский", "kk": "Қазақша"}

_extra_dirs: list[tuple[Path, str]] = []
_lock = threading.Lock()


def N_(message: str) -> str:
    """Mark a string for extraction without translating it yet (translated later with ``t._``)."""
    return message


def catalog_path(language: str, directory: Path = LOCALE_DIR, domain: str = DOMAIN) -> Path:
    return directory / language / "LC_MESSAGES" / f"{domain}.po"


def read_catalog(path: Path, language: str) -> Catalog:
    with open(path, "rb") as handle:
        return read_po(handle, locale=language, domain=path.stem)


def _to_translations(catalog: Catalog) -> Translations:
    buffer = io.BytesIO()
    # use_fuzzy=False: a fuzzy entry is a translator's unfinished guess; English is shown instead.
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return Translations(buffer, domain=catalog.domain)


@cache
def translations(language: str) -> Translations:
    """The merged translations (ours, then plugins') for ``language``; English ids as fallback."""
    merged: Translations | None = None
    with _lock:
        sources = [(LOCALE_DIR, DOMAIN), *_extra_dirs]
    for directory, domain in sources:
        path = catalog_path(language, directory, domain)
        if not path.exists():
            continue
        loaded = _to_translations(read_catalog(path, language))
        if merged is None:
            merged = loaded
        else:
            # Ours win: only add plugin messages we do not have.
            for key, value in loaded._catalog.items():
                merged._catalog.setdefault(key, value)
    if merged is None:
        merged = Translations()
    return merged


def register_catalog_dir(directory: str | Path, domain: str) -> None:
    """Add a plugin's catalogs: ``<directory>/<lang>/LC_MESSAGES/<domain>.po``.

    Call it at import time of the plugin (or from ``habitreward_register_handlers``).
    Use ``t._("...")`` in the plugin's handlers as the core does.
    """
    entry = (Path(directory), domain)
    with _lock:
        if entry not in _extra_dirs:
            _extra_dirs.append(entry)
    translations.cache_clear()


def placeholders(text: str) -> set[str]:
    """The ``{name}`` fields of a format string (used by the catalog tests)."""
    return {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}


def _escaped(values: dict[str, Any]) -> dict[str, Any]:
    return {k: html.escape(v, quote=False) if isinstance(v, str) else v for k, v in values.items()}


class Translator:
    """Messages in one language. ``t._("Hi {name}", name=user.name)`` escapes ``name`` for HTML."""

    def __init__(self, language: str):
        self.language = language
        self._translations = translations(language)

    def _(self, message: str, **values: Any) -> str:
        text = self._translations.gettext(message)
        return text.format(**_escaped(values)) if values else text

    def ngettext(self, singular: str, plural: str, n: int, **values: Any) -> str:
        """A plural-aware message; ``{n}`` is filled with ``n`` unless given."""
        text = self._translations.ngettext(singular, plural, n)
        values.setdefault("n", n)
        return text.format(**_escaped(values))

    def date(self, day: Any, format: str = "medium") -> str:
        """A date the way this language writes it (``5 янв. 2026 г.``)."""
        return format_date(day, format=format, locale=self.language)

    def number(self, value: float, spec: str = "g") -> str:
        """``value`` formatted with ``spec`` (as in ``f"{value:.2f}"``), with this language's
        decimal sign: ``2,5`` in Russian and Kazakh, where the bot asks for "2,5" too."""
        return format(value, spec).replace(".", get_decimal_symbol(self.language))

    def percent(self, fraction: float) -> str:
        value = fraction * 100
        return f"{self.number(value, '.1f')}%" if value < 99.95 else "100%"


def resolve_language(
    chosen: bool,
    stored: str | None,
    telegram_code: str | None,
    supported: Iterable[str],
    default: str,
) -> str:
    """The user's explicit choice, else Telegram's language_code, else the stored one, else the default."""
    supported = tuple(supported)
    if chosen and stored in supported:
        return str(stored)
    code = (telegram_code or "").split("-")[0].lower()
    if code in supported:
        return code
    if stored in supported:
        return str(stored)
    return default if default in supported else (supported[0] if supported else "en")


def catalog_problems(template: Catalog, catalog: Catalog) -> list[str]:
    """What is wrong with ``catalog`` against the source messages in ``template``.

    A message that is missing or untranslated (any plural form), a translation whose
    ``{placeholders}`` differ from the English, or a plural with the wrong number of
    forms for the language. Plugin authors can run it on their own catalogs too.
    """
    problems: list[str] = []
    forms = catalog.num_plurals
    for message in template:
        if not message.id:
            continue
        key = message.id if isinstance(message.id, str) else message.id[0]
        translated = catalog.get(key)
        where = f"{catalog.locale}: {key!r}"
        if translated is None:
            problems.append(f"{where} is missing")
            continue
        if translated.fuzzy:
            problems.append(f"{where} is marked fuzzy (unfinished)")
        ids = [message.id] if isinstance(message.id, str) else list(message.id)
        strings = [translated.string] if isinstance(translated.string, str) else list(translated.string or ())
        if not strings or not all(strings):
            problems.append(f"{where} is not translated")
            continue
        if not isinstance(message.id, str) and len(strings) != forms:
            problems.append(f"{where} has {len(strings)} plural forms, {catalog.locale} needs {forms}")
        expected = set().union(*(placeholders(text) for text in ids))
        for text in strings:
            if placeholders(text) != expected:
                problems.append(f"{where}: placeholders {sorted(placeholders(text))} differ from {sorted(expected)}")
    return problems
