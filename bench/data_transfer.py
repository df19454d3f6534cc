"""``habitreward export`` and ``import`` of many habit logs: seconds each, and their ratio.

    python bench/data_transfer.py                     # 300,000 logs, SQLite
    python bench/data_transfer.py --logs 50000 --postgres postgresql://postgres@127.0.0.1:5432/test

A SQLite database is filled with users, habits, rewards and ``--logs`` habit logs (written
straight through sqlite3: the filling is not measured), then exported to JSON (and with
``--csv`` to a CSV directory). Each export is imported into a fresh SQLite file and, with
``--postgres``, into a fresh PostgreSQL database made next to the one the URL names (dropped
at the end); the database imported into is exported again, so each line compares an import
with an export of the same rows on the same database, measured in the same run: wall-clock
seconds, and this process's CPU seconds (steadier on a machine other work shares; PostgreSQL's
own CPU is not in them). The numbers depend on the machine: compare two versions of the code by
their ratios, run alternately.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse, urlunparse

from habitreward.data.exporter import Exporter
from habitreward.data.importer import Importer, open_export
from habitreward.models import HabitLog
from habitreward.testing.engines import make_engine

USERS, HABITS = 100, 5


def fill(url: str, logs: int) -> None:
    """USERS people, HABITS shared habits, two rewards and ``logs`` habit logs (one per person,
    habit and day, as the unique index wants), some with a reward."""
    engine = make_engine(url, load_entry_points=False)
    try:
        users = [engine.add_user(1000 + n, f"Person {n}", active=True).id for n in range(USERS)]
        habits = [engine.add_habit(f"Habit {n}", weight=10 + n).id for n in range(HABITS)]
        rewards = [engine.add_reward("Coffee", weight=3.3, type="real").id,
                   engine.add_reward("Sticker", weight=0.7, type="virtual").id]
        columns = ("user_id", "habit_id", "reward_id", "got_reward", "streak_count", "habit_weight",
                   "total_weight_applied", "completed_on", "timestamp", "created_at", "reward_cycle", "source")
        start = dt.date(2020, 1, 1)

        def rows() -> Iterator[tuple]:
            for n in range(logs):
                day, pair = divmod(n, USERS * HABITS)
                user, habit = users[pair // HABITS], habits[pair % HABITS]
                reward = rewards[n % 2] if n % 7 == 0 else None
                at = dt.datetime(2020, 1, 1, 8) + dt.timedelta(days=day, seconds=n % 3600, microseconds=n)
                yield (user, habit, reward, reward is not None, 1 + day % 30, 10, 1.25,
                       str(start + dt.timedelta(days=day)), str(at), str(at), 0 if reward else None, "text")

        with engine.session(), engine.db.atomic():
            engine.db.cursor().executemany(
                f"INSERT INTO habit_logs ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", rows())
        with engine.session():
            assert HabitLog.select().count() == logs
    finally:
        engine.close()


@contextlib.contextmanager
def timer() -> Iterator[list[float]]:
    """[wall seconds, this process's CPU seconds] of the block, once it ends."""
    took: list[float] = []
    wall, cpu = time.perf_counter(), time.process_time()
    yield took
    took += [time.perf_counter() - wall, time.process_time() - cpu]


def timed_export(url: str, path: Path, fmt: str) -> list[float]:
    engine = make_engine(url, load_entry_points=False, upgrade=False)
    try:
        exporter = Exporter(engine, show_progress=False)
        with timer() as took:
            exporter.write_json(path) if fmt == "json" else exporter.write_csv(path)
        return took
    finally:
        engine.close()


def timed_import(url: str, path: Path) -> list[float]:
    engine = make_engine(url, load_entry_points=False)
    try:
        with timer() as took, open_export(path, show_progress=False) as document:
            result = Importer(engine, show_progress=False).run(document)
        assert sum(t.inserted for t in result.tables) == sum(t.rows for t in result.tables)
        return took
    finally:
        engine.close()


@contextlib.contextmanager
def fresh_postgres(url: str) -> Iterator[str]:
    """A new database on the server of ``url``, dropped afterwards."""
    import psycopg2

    name = f"habitreward_bench_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(url)
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        try:
            yield urlunparse(urlparse(url)._replace(path=f"/{name}"))
        finally:
            with admin.cursor() as cursor:
                cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logs", type=int, default=300_000, help="habit logs to export and import")
    parser.add_argument("--postgres", metavar="URL", help="also import into (and export from) a fresh PostgreSQL"
                                                          " database on this server")
    parser.add_argument("--csv", action="store_true", help="also a CSV export, imported too")
    args = parser.parse_args()
    os.environ.setdefault("HABITREWARD_LOAD_PLUGINS", "")

    with tempfile.TemporaryDirectory() as tmp:
        source = f"sqlite:///{Path(tmp) / 'source.db'}"
        fill(source, args.logs)
        formats = ["json", "csv"] if args.csv else ["json"]
        files = {fmt: Path(tmp) / ("export.json" if fmt == "json" else "export-csv") for fmt in formats}
        print(f"{args.logs} habit logs, {USERS} users, {HABITS} habits (python {sys.version.split()[0]})")
        print(f"{'database':<11} {'format':<6} {'export s':>9} {'import s':>9} {'import/export':>14}"
              f" {'export cpu s':>13} {'import cpu s':>13} {'import/export':>14}")
        for fmt, path in files.items():
            timed_export(source, path, fmt)
            targets = [("sqlite", lambda: contextlib.nullcontext(f"sqlite:///{Path(tmp) / f'{uuid.uuid4().hex}.db'}"))]
            if args.postgres:
                targets.append(("postgresql", lambda: fresh_postgres(args.postgres)))
            for name, target in targets:
                with target() as url:
                    imported = timed_import(url, path)
                    again = Path(tmp) / f"again-{uuid.uuid4().hex[:6]}{'.json' if fmt == 'json' else ''}"
                    exported = timed_export(url, again, fmt)
                print(f"{name:<11} {fmt:<6} {exported[0]:>9.2f} {imported[0]:>9.2f} {imported[0] / exported[0]:>14.1f}"
                      f" {exported[1]:>13.2f} {imported[1]:>13.2f} {imported[1] / exported[1]:>14.1f}")


if __name__ == "__main__":
    main()
