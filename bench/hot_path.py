"""One habit completion through the server's path, in-process: SQL statements and CPU time.

    python bench/hot_path.py                       # SQLite in a temp dir
    python bench/hot_path.py --postgres postgresql://postgres@127.0.0.1:5432/test
    python bench/hot_path.py --show-sql            # list the statements of one update

The path is the one ``habitreward serve`` runs: inbox accept (committed), the bot
loop (PTB, the registration gate, free text matched to a habit, the engine's
completion with its inbox mark), the reply to a Bot API stand-in, the inbox finish.
Updates are sent one at a time, so the CPU time per update (this process, the
stand-in included) is steadier than bench/webhook.py's updates/s on a busy machine;
use it to compare two versions of the code, run alternately (the best batch varies
least from run to run).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import webhook  # noqa: E402  (the seed data and the stand-in of bench/webhook.py)

from habitreward.server import applied  # noqa: E402
from habitreward.server.inbox import Inbox  # noqa: E402
from habitreward.server.runner import BotRunner  # noqa: E402
from habitreward.server.service import build_bot  # noqa: E402
from habitreward.testing.builders import message_update  # noqa: E402
from habitreward.testing.engines import make_engine  # noqa: E402

BATCH = 25


class StatementLog(logging.Handler):
    """Collects the SQL peewee logs (its DEBUG records), with the thread that ran each."""

    def __init__(self) -> None:
        super().__init__()
        self.statements: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        sql = record.msg[0] if isinstance(record.msg, tuple) else str(record.msg)
        if not sql.startswith("Returning"):  # the pool's own notes, not statements
            self.statements.append((threading.current_thread().name, sql))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", metavar="URL", help="run on a fresh database on this server")
    parser.add_argument("--users", type=int, default=100, help="users (x3 habits = measured updates)")
    parser.add_argument("--show-sql", action="store_true", help="print the statements of one update")
    args = parser.parse_args()

    drop = None
    with tempfile.TemporaryDirectory() as tmp, webhook.TimingStandIn() as standin:
        if args.postgres:
            url, drop = webhook.fresh_postgres(args.postgres)
        else:
            url = f"sqlite:///{Path(tmp) / 'hot_path.db'}"
        try:
            webhook.seed(url, args.users)
            engine = make_engine(url, load_entry_points=False, telegram_bot_token=webhook.TOKEN,
                                 telegram_api_url=standin.base_url)
            applied.register(engine.pm)
            inbox = Inbox(engine)
            runner = BotRunner(build_bot(engine, rate_limit=False), inbox, sweep_interval=0)
            runner.start()

            def one(user_id: int, text: str) -> None:
                update = message_update(user_id, text)
                runner.receive(update["update_id"], json.dumps(update), update)
                runner.drain(30)

            first = 100_000
            for user_id in range(first, first + min(5, args.users)):  # warm up
                one(user_id, "Running")
            log, peewee_log = StatementLog(), logging.getLogger("peewee")
            peewee_log.addHandler(log)
            peewee_log.setLevel(logging.DEBUG)
            one(first + args.users - 1, "Reading")  # a user's first piece of a reward, typically
            peewee_log.setLevel(logging.WARNING)
            print(f"{len(log.statements)} SQL statements for one completion update")
            if args.show_sql:
                for thread, sql in log.statements:
                    print(f"  [{thread}] {sql[:160]}")
            # CPU per completion in batches of BATCH: on a shared machine a neighbour's burst
            # slows some batches; the best batch is the steadiest figure to compare versions by.
            batches, count, wall = [], 0, time.perf_counter()
            cpu = time.process_time()
            for text in ("Meditation", "Stretching", "Journaling"):
                for user_id in range(first, first + args.users):
                    one(user_id, text)
                    count += 1
                    if count % BATCH == 0:
                        now = time.process_time()
                        batches.append(1000 * (now - cpu) / BATCH)
                        cpu = now
            if count % BATCH:  # the last, shorter batch
                batches.append(1000 * (time.process_time() - cpu) / (count % BATCH))
            wall = time.perf_counter() - wall
            print(f"{count} completions one at a time: {1000 * wall / count:.2f} ms wall each; CPU each "
                  f"(this process, the stand-in included), {len(batches)} batches of {BATCH}: "
                  f"median {statistics.median(batches):.2f} ms, best {min(batches):.2f} ms")
            runner.stop(10)
            inbox.close()
            engine.close()
        finally:
            if drop is not None:
                drop()


if __name__ == "__main__":
    main()
