"""How long one update takes through the real Application and the Bot API stand-in,
and how many SQL statements the database persistence adds per update.

    .venv/bin/python bench/bench_botkit.py [--postgres ADMIN_URL] [--updates N]

Default: a temporary SQLite file, 200 updates; ``--postgres postgresql://postgres@127.0.0.1/test``
runs on a throwaway database created (and dropped) on that server. Prints the median
ms per update and SQL statements per update with and without persistence (the
handler itself runs 1 query; 10 users take turns).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import statistics
import tempfile
import time
import uuid
from urllib.parse import urlparse, urlunparse

from telegram import Update
from telegram.ext import CommandHandler

from habitreward import hookimpl
from habitreward.bot.app import build_application
from habitreward.testing.botapi import BotApiStandIn
from habitreward.testing.driver import BotDriver
from habitreward.testing.engines import make_engine


class Ping:
    @hookimpl
    def habitreward_register_handlers(self, register, settings):
        async def ping(update: Update, context) -> None:
            context.user_data["count"] = context.user_data.get("count", 0) + 1
            context.engine.find_user(update.effective_user.id)
            await update.message.reply_text(f"pong {context.user_data['count']}")

        register(CommandHandler("ping", ping))


class StatementCounter(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.count = 0

    def emit(self, record):
        if isinstance(record.msg, tuple):  # (sql, params); pool messages are strings
            self.count += 1


def run(url: str, updates: int, persistence: bool) -> tuple[float, float]:
    engine = make_engine(url, load_entry_points=False)
    engine.pm.register(Ping())
    counter = StatementCounter()
    peewee_log = logging.getLogger("peewee")
    peewee_log.setLevel(logging.DEBUG)
    peewee_log.addHandler(counter)
    try:
        with BotApiStandIn() as api, BotDriver(engine, api, persistence=persistence, build=lambda e, **kw:
                                               build_application(e, builtin_handlers=False, **kw)) as bot:
            bot.send(1, "/ping")  # warm up
            counter.count = 0
            timings = []
            for i in range(updates):
                start = time.perf_counter()
                bot.send(1 + i % 10, "/ping")
                timings.append(time.perf_counter() - start)
        return statistics.median(timings) * 1000, counter.count / updates
    finally:
        peewee_log.removeHandler(counter)
        engine.close()


@contextlib.contextmanager
def throwaway_postgres(admin_url: str):
    import psycopg2

    name = f"habitreward_bench_{uuid.uuid4().hex[:8]}"
    conn = psycopg2.connect(admin_url)
    conn.autocommit = True
    conn.cursor().execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunparse(urlparse(admin_url)._replace(path=f"/{name}"))
    finally:
        conn.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--postgres", metavar="ADMIN_URL")
    parser.add_argument("--updates", type=int, default=200)
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        if args.postgres:
            url = stack.enter_context(throwaway_postgres(args.postgres))
        else:
            url = f"sqlite:///{os.path.join(stack.enter_context(tempfile.TemporaryDirectory()), 'bench.db')}"
        for persistence in (False, True):
            ms, statements = run(url, args.updates, persistence)
            print(f"{url.split(':')[0]:<10} persistence={'on ' if persistence else 'off'} "
                  f"median {ms:6.2f} ms/update, {statements:4.1f} SQL statements/update")


if __name__ == "__main__":
    main()
