"""Embedding the engine in another program: no Telegram, just Python.

Shows the engine API a web app, another chat platform or a script would use: users, habits,
rewards, a completion with its reward draw, streaks, odds and history. The calls, the errors and
how to use the engine from many threads are in docs/embedding.md.

    python examples/embed_engine.py            # uses a throwaway SQLite database
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from habitreward.engine import Engine
from habitreward.settings import Settings


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.load(environ={}, env_file=None, database_url=f"sqlite:///{Path(tmp) / 'app.db'}")
        engine = Engine(settings)
        engine.upgrade_schema()

        user = engine.add_user(1001, "Ann", active=True, timezone="Europe/Berlin")
        reading = engine.add_habit("Reading", weight=15)
        engine.add_reward("Cinema", weight=2, pieces_required=3)
        engine.add_reward("Nothing", weight=5, type="none")

        result = engine.complete(user, reading)
        print("completed:", result.as_dict())
        print("again:", engine.complete(user, reading).already_done)  # one per local day
        print("streaks:", [s.as_dict() for s in engine.streaks(user)])
        print("odds:", engine.odds(user, reading).as_dict())  # done today: tomorrow's completion's
        print("history:", [entry.as_dict() for entry in engine.history(user)])
        engine.close()


if __name__ == "__main__":
    main()
