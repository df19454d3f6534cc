"""Which day a free-text report is about: "ran yesterday", "вчера бегал", "кеше жүгірдім".

Only the words that name a day just past; anything else (no such word) is the day the
message was written. Normalized forms (see :mod:`habitreward.nlp.normalize`), so Kazakh
typed without its own letters reads the same.
"""

from __future__ import annotations

import functools

from habitreward.nlp.normalize import normalize, words

_YESTERDAY_WORDS = frozenset({"yesterday", "yday", "вчера", "вчерашний", "вчерашняя", "кеше", "кешеги"})
_DAY_BEFORE_WORDS = frozenset({"позавчера", "позавчерашний"})
# "the day before yesterday", "алдыңғы күні" ("the day before"): two words read together.
_DAY_BEFORE_PHRASES = (("before", "yesterday"), ("алдынгы", "куни"), ("бурнагы", "куни"))


def days_back(text: str) -> int:
    """How many days before the message the report is about: 2, 1 or 0."""
    # Every free-text message asks, and people send the same few words: short ones are remembered
    # (as the local matcher's answers are), long ones read afresh.
    return _days_back(text) if len(text) <= 200 else _days_back.__wrapped__(text)


@functools.lru_cache(maxsize=2048)
def _days_back(text: str) -> int:
    found = words(normalize(text))
    if _DAY_BEFORE_WORDS.intersection(found) or any(
            pair in zip(found, found[1:]) for pair in _DAY_BEFORE_PHRASES):
        return 2
    return 1 if _YESTERDAY_WORDS.intersection(found) else 0
