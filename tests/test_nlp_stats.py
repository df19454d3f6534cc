"""The LLM call counter: atomic across threads (and so across processes sharing the database)."""

from __future__ import annotations

import threading

from habitreward.db import open_database
from habitreward.nlp import stats


def test_concurrent_increments_are_all_counted(engine, db_url):
    def work():
        # Each thread has its own connection, as separate bot processes would.
        database = open_database(db_url, bind=False)
        try:
            for _ in range(15):
                stats.persist(database, "llm_calls")
        finally:
            database.close()
            if hasattr(database, "close_all"):  # a PostgreSQL pool
                database.close_all()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with engine.session():
        assert stats.persisted_counts(engine.db) == {"llm_calls": 60, "llm_failures": 0}
