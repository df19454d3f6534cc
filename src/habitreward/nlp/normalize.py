"""Text to comparable word forms: case, accents, punctuation and word endings ignored.

Three steps, each applied the same way to the message and to habit names:

1. :func:`normalize` folds case, drops accents (but keeps Cyrillic ``й``),
   turns ``ё`` into ``е`` and Kazakh-specific letters into their Russian
   keyboard look-alikes (``қ`` -> ``к``, ``і`` -> ``и``...), because people
   often type Kazakh without them.
2. :func:`words` splits on anything that is not a letter or digit
   (apostrophes inside a word are dropped: ``didn't`` -> ``didnt``).
3. :func:`stem` cuts inflectional endings: Snowball for English (Latin
   script) and Russian (Cyrillic), plus a small Kazakh suffix stripper,
   because Kazakh is agglutinative and has no Snowball stemmer.
"""

from __future__ import annotations

import functools
import re
import unicodedata

_BREVE = "\u0306"  # keeps "й" (и + breve) apart from "и"
_KAZAKH_FOLD = str.maketrans({"ә": "а", "ғ": "г", "қ": "к", "ң": "н", "ө": "о", "ұ": "у", "ү": "у", "һ": "х", "і": "и"})
_APOSTROPHES = re.compile(r"(?<=\w)['’`ʼ](?=\w)")
_WORD = re.compile(r"[^\W_]+")
_CYRILLIC = re.compile(r"[а-я]")



@functools.cache
def _stemmer(language: str):  # noqa: ANN202 - snowballstemmer has no types
    # Imported on first use: snowballstemmer loads every language, which `habitreward --help` need not pay for.
    import snowballstemmer

    return snowballstemmer.stemmer(language)

# Kazakh endings, longest first: case, possessive, plural, tense and person
# markers. Stripped repeatedly (a word can stack several) while at least
# three letters remain. Written in the folded alphabet (і -> и, қ -> к, ...).
_KAZAKH_SUFFIXES = tuple(
    sorted(
        {
            # past tense + person: жүгірдім, оқыдық, ішті
            "дым", "дим", "тым", "тим", "дык", "дик", "тык", "тик", "дын", "дин", "тын", "тин",
            "ды", "ди", "ты", "ти",
            # participles / gerunds: оқыған, жүгіріп, жүзу
            "ган", "ген", "кан", "кен", "ып", "ип",
            # cases: -ға/-ге, -да/-де, -дан/-ден, -ны/-ні, -мен, -нын/-нин
            "га", "ге", "ка", "ке", "на", "не", "да", "де", "та", "те",
            "дан", "ден", "тан", "тен", "нан", "нен",
            "ны", "ни", "нын", "нин", "мен", "бен", "пен",
            # plural and possessive
            "лар", "лер", "дар", "дер", "тар", "тер", "ым", "им", "ын", "ин", "сы", "си",
            # present/future person: барамын, жасаймын
            "мын", "мин", "пын", "пин", "бын", "бин", "мыз", "миз",
            # verbal noun (the usual habit name form): жүгіру, оқу
            "у",
        },
        key=len,
        reverse=True,
    )
)


def normalize(text: str) -> str:
    """Casefolded text without accents; Kazakh letters folded to their Russian look-alikes."""
    text = unicodedata.normalize("NFKD", (text or "").casefold())
    text = "".join(ch for ch in text if ch == _BREVE or not unicodedata.combining(ch))
    text = unicodedata.normalize("NFC", text).replace("ё", "е").translate(_KAZAKH_FOLD)
    return _APOSTROPHES.sub("", text)


def words(text: str) -> list[str]:
    """The words of already-normalized text."""
    return _WORD.findall(text)


# Verbal-noun and gerund endings may leave a two-letter root (оқу, оқып -> оқ; ішу -> іш).
_SHORT_ROOT_SUFFIXES = frozenset({"у", "ып", "ип"})

# English past forms Snowball cannot know (irregular verbs common in habit reports).
_ENGLISH_IRREGULAR = {
    "ran": "run", "swam": "swim", "drank": "drink", "drunk": "drink", "wrote": "write", "written": "write",
    "ate": "eat", "eaten": "eat", "slept": "sleep", "rode": "ride", "ridden": "ride", "did": "do", "done": "do",
    "went": "go", "gone": "go", "took": "take", "taken": "take", "studied": "studi", "taught": "teach",
    "spoke": "speak", "spoken": "speak", "sang": "sing", "sung": "sing", "drew": "draw", "drawn": "draw",
    "lifted": "lift", "meditated": "medit", "practised": "practic",
}


def _kazakh_stem(word: str) -> str:
    changed = True
    while changed:
        changed = False
        for suffix in _KAZAKH_SUFFIXES:
            keep = 2 if suffix in _SHORT_ROOT_SUFFIXES else 3
            if word.endswith(suffix) and len(word) - len(suffix) >= keep:
                word = word[: -len(suffix)]
                changed = True
                break
    return word


@functools.lru_cache(maxsize=8192)
def stems(word: str) -> frozenset[str]:
    """The stems a normalized word may have (Cyrillic words get a Russian and a Kazakh one)."""
    if word.isdigit():
        return frozenset({word})
    if _CYRILLIC.search(word):
        return frozenset({_stemmer("russian").stemWord(word), _kazakh_stem(word)})
    return frozenset({_stemmer("english").stemWord(_ENGLISH_IRREGULAR.get(word, word))})


__all__ = ["normalize", "stems", "words"]
