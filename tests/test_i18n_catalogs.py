"""The bot's catalogs: complete in every language, placeholders intact, plural rules right.

The source messages are extracted from the code exactly as scripts/update_catalogs.py does,
so a new ``t._("...")`` without translations, or a translation that drops or renames a
``{placeholder}``, fails here.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog

from habitreward.bot import i18n
from habitreward.bot.i18n import Translator, catalog_problems, read_catalog, resolve_language
from habitreward.settings import LANGUAGES

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import update_catalogs  # noqa: E402

pytestmark = pytest.mark.no_db


@pytest.fixture(scope="module")
def template() -> Catalog:
    return update_catalogs.extract()


def test_the_code_has_many_messages(template):
    # Guards the extraction itself: if keywords broke, every other check would pass vacuously.
    assert len([m for m in template if m.id]) > 150


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_message_is_translated_with_the_same_placeholders(template, language):
    catalog = read_catalog(i18n.catalog_path(language), language)
    assert catalog_problems(template, catalog) == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_stale_messages_left_in_the_catalog(template, language):
    catalog = read_catalog(i18n.catalog_path(language), language)
    source = {m.id if isinstance(m.id, str) else m.id[0] for m in template if m.id}
    stale = [m.id for m in catalog if m.id and (m.id if isinstance(m.id, str) else m.id[0]) not in source]
    assert stale == [], "run scripts/update_catalogs.py"


def test_the_check_catches_a_missing_key_and_changed_placeholders(template):
    catalog = read_catalog(i18n.catalog_path("ru"), "ru")
    del catalog["Hi, {name}! What would you like to do?"]
    catalog["Language: {language}"].string = "Язык: {lang}"
    plural = catalog["🔥 Streak: {n} day"]
    plural.string = ("Серия: {n} день", "Серия: {n} дня")  # one form short for Russian
    problems = catalog_problems(template, catalog)
    assert any("'Hi, {name}! What would you like to do?' is missing" in p for p in problems)
    assert any("'Language: {language}'" in p and "placeholders" in p for p in problems)
    assert any("'🔥 Streak: {n} day' has 2 plural forms, ru needs 3" in p for p in problems)


@pytest.mark.parametrize(
    ("language", "n", "expected"),
    [
        ("en", 1, "🔥 Streak: 1 day"), ("en", 2, "🔥 Streak: 2 days"),
        ("ru", 1, "🔥 Серия: 1 день"), ("ru", 3, "🔥 Серия: 3 дня"), ("ru", 5, "🔥 Серия: 5 дней"),
        ("ru", 11, "🔥 Серия: 11 дней"), ("ru", 21, "🔥 Серия: 21 день"), ("ru", 22, "🔥 Серия: 22 дня"),
        ("kk", 1, "🔥 Серия: 1 күн"), ("kk", 5, "🔥 Серия: 5 күн"),
    ],
)
def test_plural_forms_follow_each_language(language, n, expected):
    assert Translator(language).ngettext("🔥 Streak: {n} day", "🔥 Streak: {n} days", n) == expected


def test_arguments_are_escaped_for_html():
    assert Translator("en")._("✅ <b>{habit}</b> done!", habit="<b>&") == "✅ <b>&lt;b&gt;&amp;</b> done!"


@pytest.mark.parametrize(
    ("chosen", "stored", "telegram", "expected"),
    [
        (True, "kk", "ru", "kk"),     # an explicit choice wins over Telegram
        (False, "en", "ru-RU", "ru"),  # no choice: Telegram's language_code
        (False, "kk", "de", "kk"),    # unsupported Telegram language: what we stored
        (False, None, None, "en"),    # nothing known: DEFAULT_LANGUAGE
    ],
)
def test_language_order(chosen, stored, telegram, expected):
    assert resolve_language(chosen, stored, telegram, LANGUAGES, "en") == expected


def test_a_plugin_adds_its_own_strings(tmp_path, monkeypatch):
    po = tmp_path / "ru" / "LC_MESSAGES" / "myplugin.po"
    po.parent.mkdir(parents=True)
    po.write_text('msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=utf-8\\n"\n\n'
                  'msgid "Bonus for {habit}!"\nmsgstr "Бонус за {habit}!"\n\n'
                  'msgid "Main menu"\nmsgstr "Plugin must not override core"\n', encoding="utf-8")
    monkeypatch.setattr(i18n, "_extra_dirs", [])
    i18n.register_catalog_dir(tmp_path, "myplugin")
    try:
        t = Translator("ru")
        assert t._("Bonus for {habit}!", habit="Бег") == "Бонус за Бег!"
        assert t._("Main menu") == "Главное меню"
        assert Translator("kk")._("Bonus for {habit}!", habit="x") == "Bonus for x!"  # no kk file: English
    finally:
        i18n.translations.cache_clear()
