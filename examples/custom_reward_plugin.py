"""A custom reward draw as a single-file plugin: "jackpot days".

On the 7th day of a streak, and every 7th after, the draw ignores "none" entries, so a reward is
certain (if any is left in the draw). Every other day the built-in weighted draw decides.

Run it (no Telegram, a throwaway SQLite database, a simulated month):

    python examples/custom_reward_plugin.py

To use the plugin for real, put the hook function in a module of your package and declare it as
an entry point in the `habitreward` group (see docs/plugins.md).
"""

from __future__ import annotations

import datetime as dt
import random
import tempfile
import threading
from pathlib import Path

from habitreward import hookimpl
from habitreward.draw import weighted_choice
from habitreward.testing.engines import FrozenClock, make_engine


class JackpotDays:
    """The draw hook is not told the streak, the multiplier hook is: a completion asks for its
    multiplier, then draws, in one thread, so the multiplier hook notes the streak for the draw
    in a thread-local (on PostgreSQL several completions run at once on worker threads)."""

    def __init__(self) -> None:
        self.this_completion = threading.local()

    @hookimpl
    def habitreward_draw_reward(self, candidates, rng):
        jackpot = getattr(self.this_completion, "jackpot", False)
        self.this_completion.jackpot = False  # used once
        if not candidates or not jackpot:
            return None  # not our day: the built-in draw answers
        real = [c for c in candidates if not c.reward.is_nothing]
        return weighted_choice(real, rng)

    # tryfirst: the first answer wins, so a multiplier plugin that answers before this one
    # would leave it uncalled; this one only looks, and answers None (the others decide m).
    @hookimpl(tryfirst=True)
    def habitreward_odds_multiplier(self, habit, streak, settings):
        self.this_completion.jackpot = streak > 0 and streak % 7 == 0
        return None


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        clock = FrozenClock(dt.datetime(2026, 3, 1, 9, tzinfo=dt.timezone.utc))
        engine = make_engine(f"sqlite:///{Path(tmp) / 'demo.db'}", clock=clock, rng=random.Random(5),
                             load_entry_points=False)
        engine.pm.register(JackpotDays(), name="jackpot_days")
        user = engine.add_user(1, "Ann", active=True)
        run = engine.add_habit("Morning run", weight=10)
        engine.add_reward("Coffee", weight=1, pieces_required=3, max_per_day=0)
        engine.add_reward("Nothing this time", weight=30, type="none")
        for _ in range(28):
            result = engine.complete(user, run)
            got = f"{result.reward.name} {result.progress.pieces_earned}/{result.reward.pieces_required}" \
                if result.reward else "-"
            jackpot = "  JACKPOT" if result.streak % 7 == 0 else ""
            print(f"{result.day}  streak {result.streak:2d}  {got}{jackpot}")
            if result.status and result.status.value == "achieved":
                engine.claim(user, result.reward)
                print("            claimed Coffee")
            clock.advance(days=1)
        engine.close()


if __name__ == "__main__":
    main()
