"""Measure the local matcher: ``python -m habitreward.nlp.evaluate tests/data/phrases.json [more.json ...]``.

A phrase set is JSON: ``users`` (per language: ``habits`` names and
``aliases`` by habit name) and ``phrases`` (``lang``, ``text``, ``expect``:
the habit names a careful reader would log, ``tags``). Printed numbers:

* settled: share of messages the local matcher answers confidently, i.e.
  without an LLM call and without asking the user;
* precision: of the habits logged that way, the share that were right
  (a miss here is a silent wrong log);
* recall: of all habits the phrases report, the share logged that way;
* guess recall: the share found at least as a suggestion (confirmed by the user).
"""

from __future__ import annotations

import json
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from habitreward.nlp.local import match_local


@dataclass
class Tally:
    messages: int = 0
    settled: int = 0
    expected: int = 0
    logged: int = 0  # habits in settled results
    logged_right: int = 0
    guessed_right: int = 0
    wrong_settled: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.logged_right / self.logged if self.logged else 1.0

    @property
    def recall(self) -> float:
        return self.logged_right / self.expected if self.expected else 1.0

    @property
    def guess_recall(self) -> float:
        return self.guessed_right / self.expected if self.expected else 1.0

    @property
    def settled_share(self) -> float:
        return self.settled / self.messages if self.messages else 0.0

    def line(self, label: str) -> str:
        return (
            f"{label:<12} messages {self.messages:>3}  settled without LLM {self.settled_share:6.1%}  "
            f"precision {self.precision:6.1%}  recall {self.recall:6.1%}  guess recall {self.guess_recall:6.1%}"
        )


@dataclass
class Report:
    total: Tally
    by_lang: dict[str, Tally]
    by_tag: dict[str, Tally]

    def text(self) -> str:
        lines = ["Local matcher on the phrase set", self.total.line("all")]
        lines += [tally.line(lang) for lang, tally in sorted(self.by_lang.items())]
        lines += [tally.line(f"#{tag}") for tag, tally in sorted(self.by_tag.items())]
        if self.total.wrong_settled:
            lines.append("Settled wrongly (logged without asking):")
            lines += [f"  {w}" for w in self.total.wrong_settled]
        return "\n".join(lines)


def catalogs(data: dict[str, Any]) -> dict[str, tuple[list[Any], dict[int, list[str]]]]:
    """Per language: stand-in habits (id, name) and aliases by id."""
    result, next_id = {}, 1
    for lang, spec in data["users"].items():
        habits = []
        for name in spec["habits"]:
            habits.append(SimpleNamespace(id=next_id, name=name))
            next_id += 1
        by_name = {h.name: h.id for h in habits}
        aliases = {by_name[name]: list(values) for name, values in spec.get("aliases", {}).items()}
        result[lang] = (habits, aliases)
    return result


def evaluate(data: dict[str, Any]) -> Report:
    books = catalogs(data)
    total, by_lang, by_tag = Tally(), defaultdict(Tally), defaultdict(Tally)
    for phrase in data["phrases"]:
        habits, aliases = books[phrase["lang"]]
        result = match_local(phrase["text"], habits, aliases)
        expected = set(phrase["expect"])
        guessed = {m.habit.name for m in result.matches}
        logged = guessed if result.confident else set()
        for tally in (total, by_lang[phrase["lang"]], *(by_tag[t] for t in phrase.get("tags", ()))):
            tally.messages += 1
            tally.settled += result.confident
            tally.expected += len(expected)
            tally.logged += len(logged)
            tally.logged_right += len(logged & expected)
            tally.guessed_right += len(guessed & expected)
            if logged - expected:
                tally.wrong_settled.append(
                    f"[{phrase['lang']}] {phrase['text']!r}: {sorted(logged)} expected {sorted(expected)}")
    return Report(total, dict(by_lang), dict(by_tag))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    for path in [Path(a) for a in args] or [Path("tests/data/phrases.json")]:
        print(f"== {path}")
        data = json.loads(path.read_text(encoding="utf-8"))
        started = time.perf_counter()
        report = evaluate(data)
        seconds = time.perf_counter() - started
        print(report.text())
        print(f"{seconds / max(len(data['phrases']), 1) * 1000:.2f} ms per message (first pass, cold caches)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
