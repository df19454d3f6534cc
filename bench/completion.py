"""Latency and SQL query count of one completion, with a small and a huge log table.

    python bench/completion.py                       # SQLite in a temp dir, 1k and 1M log rows
    python bench/completion.py --postgres postgresql://postgres@127.0.0.1:5432/test   # same on PostgreSQL

For each size the log table is filled with synthetic history (users x 10 shared habits x days),
then one user with 100 days of history completes habits on fresh days. The report gives p50/p90
latency per completion, the SQL statements each completion runs, and the ratio of the largest to
the smallest size (goal: within 1.2x, and a query count that does not grow with history).
A benchmark, not a test: numbers vary by machine; compare ratios from one run.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import logging
import random
import statistics
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse, urlunparse

from habitreward.db import is_postgres
from habitreward.models import HabitLog
from habitreward.testing.engines import FrozenClock, make_engine

HABITS = 10
HISTORY_DAYS = 100
START = dt.datetime(2026, 1, 1, 12, tzinfo=dt.timezone.utc)


class QueryCounter(logging.Handler):
    """Counts the statements peewee executes (it logs each one at DEBUG)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


def fill_history(engine, rows: int) -> None:
    """rows = users x HABITS x HISTORY_DAYS synthetic completions, inserted in bulk SQL."""
    users = max(1, rows // (HABITS * HISTORY_DAYS))
    first_day = (START - dt.timedelta(days=HISTORY_DAYS)).date()
    with engine.transaction():
        for i in range(users):
            if i:  # user 1 (the measured one) exists already
                engine.add_user(1000 + i, f"User {i}", active=True)
        db = engine.db
        if is_postgres(db):
            db.execute_sql(
                """
                INSERT INTO habit_logs (user_id, habit_id, reward_id, got_reward, streak_count, habit_weight,
                    total_weight_applied, completed_on, timestamp, created_at, reward_cycle, source)
                SELECT u.id, h.id, NULL, false, d + 1, 10, 1.0, %s::date + d, %s::timestamp, %s::timestamp,
                    NULL, 'bench'
                FROM users u CROSS JOIN habits h CROSS JOIN generate_series(0, %s - 1) AS d
                """,
                (first_day, START.replace(tzinfo=None), START.replace(tzinfo=None), HISTORY_DAYS),
            )
        else:
            db.execute_sql(
                """
                WITH RECURSIVE days(d) AS (SELECT 0 UNION ALL SELECT d + 1 FROM days WHERE d < ? - 1)
                INSERT INTO habit_logs (user_id, habit_id, reward_id, got_reward, streak_count, habit_weight,
                    total_weight_applied, completed_on, timestamp, created_at, reward_cycle, source)
                SELECT u.id, h.id, NULL, 0, d + 1, 10, 1.0, date(?, '+' || d || ' days'), ?, ?, NULL, 'bench'
                FROM users u CROSS JOIN habits h CROSS JOIN days
                """,
                (HISTORY_DAYS, first_day.isoformat(), START.replace(tzinfo=None).isoformat(" "),
                 START.replace(tzinfo=None).isoformat(" ")),
            )
    engine.db.execute_sql("ANALYZE")  # fresh statistics, as a long-running database would have


def measure(database_url: str, rows: int, completions: int) -> dict:
    clock = FrozenClock(START - dt.timedelta(days=HISTORY_DAYS + 1))
    engine = make_engine(database_url, clock=clock, rng=random.Random(1), load_entry_points=False)
    try:
        user = engine.add_user(1, "Bench", active=True)
        habits = [engine.add_habit(f"Habit {i}") for i in range(HABITS)]
        engine.add_reward("Coffee", weight=2, pieces_required=10_000, max_per_day=0)
        engine.add_reward("Sticker", weight=1, pieces_required=10_000)
        engine.add_reward("Nothing", weight=5, type="none")
        print(f"  filling {rows:,} log rows ...", flush=True)
        started = time.perf_counter()
        fill_history(engine, rows)
        with engine.session():
            total = HabitLog.select().count()
        print(f"  {total:,} rows in {time.perf_counter() - started:.1f}s", flush=True)

        counter = QueryCounter()
        peewee_logger = logging.getLogger("peewee")
        latencies, queries = [], []
        clock.set(START)
        for i in range(completions):
            habit = habits[i % HABITS]
            if i and i % HABITS == 0:
                clock.advance(days=1)
            peewee_logger.addHandler(counter)
            peewee_logger.setLevel(logging.DEBUG)
            counter.count = 0
            t0 = time.perf_counter()
            result = engine.complete(user, habit)
            latencies.append(time.perf_counter() - t0)
            peewee_logger.removeHandler(counter)
            if i:  # the first one also opens the connection (and sets SQLite's pragmas)
                queries.append(counter.count)
            assert not result.already_done
        latencies.sort()
        return {
            "rows": total,
            "p50_ms": statistics.median(latencies) * 1000,
            "p90_ms": latencies[int(len(latencies) * 0.9)] * 1000,
            "queries": sorted(set(queries)),
        }
    finally:
        engine.close()


@contextlib.contextmanager
def throwaway_postgres(server_url: str, name: str):
    import psycopg2

    def admin(sql: str) -> None:
        conn = psycopg2.connect(server_url)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql)
        conn.close()

    admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin(f'CREATE DATABASE "{name}"')
    try:
        yield urlunparse(urlparse(server_url)._replace(path=f"/{name}"))
    finally:
        admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", metavar="URL",
                        help="A PostgreSQL server (any database on it) where a throwaway database per size is made;"
                             " default: SQLite files in a temp dir.")
    parser.add_argument("--sizes", default="1000,1000000", help="Log table sizes, comma-separated.")
    parser.add_argument("--completions", type=int, default=300, help="Completions measured per size.")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            print(f"size {size:,}:", flush=True)
            if args.postgres:
                with throwaway_postgres(args.postgres, f"habitreward_bench_{size}") as url:
                    results.append(measure(url, size, args.completions))
            else:
                results.append(measure(f"sqlite:///{Path(tmp) / f'bench-{size}.db'}", size, args.completions))
    print()
    print(f"{'log rows':>12}  {'p50 ms':>8}  {'p90 ms':>8}  queries per completion")
    for r in results:
        print(f"{r['rows']:>12,}  {r['p50_ms']:>8.3f}  {r['p90_ms']:>8.3f}  {r['queries']}")
    if len(results) > 1:
        ratio = results[-1]["p50_ms"] / results[0]["p50_ms"]
        print(f"\np50 ratio {results[-1]['rows']:,} / {results[0]['rows']:,} rows: {ratio:.2f}x (goal <= 1.2x)")


if __name__ == "__main__":
    main()
