"""Refresh the bot's gettext catalogs from the source: ``python scripts/update_catalogs.py``.

Extracts every ``t._("...")``, ``t.ngettext(...)`` and ``N_("...")`` string under
``src/habitreward/bot`` (the same keywords the catalog tests use), writes the
template ``locales/habitreward.pot`` and merges it into each language's ``.po``:
new messages appear untranslated, vanished ones are dropped, existing
translations are kept. The English catalog is filled with the source text, so a
translator can also polish the English wording. Then translate the empty
``msgstr`` entries of ru and kk and run the tests (tests/test_i18n_catalogs.py fails
while a message is missing or its ``{placeholders}`` differ).
"""

from __future__ import annotations

import sys

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from habitreward import __version__
from habitreward.bot.i18n import DOMAIN, KEYWORDS, LOCALE_DIR, catalog_path, read_catalog
from habitreward.settings import LANGUAGES

SOURCE_DIR = LOCALE_DIR.parent / "bot"


def extract() -> Catalog:
    template = Catalog(project="habitreward", domain=DOMAIN, charset="utf-8")
    for filename, lineno, message, comments, context in extract_from_dir(
        str(SOURCE_DIR), method_map=[("**.py", "python")], keywords=KEYWORDS, comment_tags=("Translators:",)
    ):
        template.add(message, None, [(f"bot/{filename}", lineno)], auto_comments=comments, context=context)
    return template


def main() -> int:
    template = extract()
    pot = LOCALE_DIR / f"{DOMAIN}.pot"
    if pot.exists():  # keep the header date, so a run that changes nothing changes no file
        with open(pot, "rb") as handle:
            template.creation_date = read_po(handle).creation_date
    with open(pot, "wb") as handle:
        write_po(handle, template, width=100, omit_header=False)
    for language in LANGUAGES:
        path = catalog_path(language)
        path.parent.mkdir(parents=True, exist_ok=True)
        catalog = read_catalog(path, language) if path.exists() else Catalog(locale=language, domain=DOMAIN)
        fresh = extract()  # a fresh template each time: update() shares its message objects
        fresh.creation_date = template.creation_date
        catalog.update(fresh, no_fuzzy_matching=True)
        catalog.fuzzy = False  # the header is maintained by this script, not a translator's guess
        catalog.project, catalog.version = "habitreward", __version__
        if language == "en":
            for message in catalog:
                if message.id and not (message.string and all(message.string)):
                    message.string = message.id
        with open(path, "wb") as handle:
            write_po(handle, catalog, width=100, ignore_obsolete=True)
        missing = sum(1 for m in catalog if m.id and not (m.string and all(m.string)))
        print(f"{path.relative_to(LOCALE_DIR.parent.parent)}: {len(catalog)} messages, {missing} untranslated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
