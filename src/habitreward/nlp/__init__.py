"""Free-text habit matching: "went for a run and read 20 pages" -> Running, Reading.

The bot calls ``engine.hooks.match_habits(user, text, habits)`` and gets a
:class:`MatchResult`. Built-in matchers (see :mod:`habitreward.plugins.nlp`):
the local matcher (:mod:`.local`, exact / alias / word form / typo) answers
when it is sure; otherwise the LLM matcher (:mod:`.llm`, through litellm,
only when ``LLM_MODEL`` is set) is asked once, and its picks are cross-checked
against the message. Nothing here imports litellm or Telegram at import time.
"""

from habitreward.nlp.local import match_local
from habitreward.nlp.results import EMPTY, HabitMatch, MatchResult

__all__ = ["EMPTY", "HabitMatch", "MatchResult", "match_local"]
