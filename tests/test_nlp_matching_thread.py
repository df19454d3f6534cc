"""Where the bot runs a free-text match: on the event loop when it cannot wait on anything
(the built-in local matcher on SQLite), on a worker thread when it may (an LLM, another
plugin's matcher, PostgreSQL round trips). Either way the report is logged."""

from __future__ import annotations

import asyncio
import threading

import pytest

from habitreward import hookimpl
from habitreward.plugins import nlp
from habitreward.testing.builders import message_update
from habitreward.testing.engines import make_engine


class SlowService:
    """A third-party matcher (it could call anything): it only notes where it ran."""

    def __init__(self) -> None:
        self.threads: list[str] = []

    @hookimpl(tryfirst=True)
    def habitreward_match_habits(self, user, text, habits):
        self.threads.append(threading.current_thread().name)
        return None  # let the built-in matchers answer


def test_only_builtin_matchers_without_an_llm_never_wait(engine, db_url, tmp_path):
    assert nlp.matching_may_wait(engine.pm) is False
    engine.pm.register(SlowService(), name="slow-service")
    assert nlp.matching_may_wait(engine.pm) is True
    with_llm = make_engine(f"sqlite:///{tmp_path / 'llm.db'}", load_entry_points=False,
                           llm_model="openai/some-model", llm_api_base="http://127.0.0.1:9/v1")
    try:
        assert nlp.matching_may_wait(with_llm.pm) is True
    finally:
        with_llm.close()


def test_the_local_match_runs_on_the_loop_on_sqlite_and_in_a_worker_on_postgres(bot, engine, backend, monkeypatch):
    ann = engine.add_user(5, "Ann", active=True)
    engine.add_habit("Running", owner=ann)
    threads: list[str] = []
    real = nlp.match_local

    def spy(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(nlp, "match_local", spy)
    reply = bot.send(5, "went for a run")
    assert "<b>Running</b> done!" in "\n".join(reply.texts)
    assert threads and all((name == "BotDriver") == (backend == "sqlite") for name in threads), threads


def test_another_plugins_matcher_runs_on_a_worker_thread(bot, engine):
    service = SlowService()
    engine.pm.register(service, name="slow-service")
    ann = engine.add_user(6, "Ann", active=True)
    engine.add_habit("Reading", owner=ann)
    reply = bot.send(6, "read a book")
    assert "<b>Reading</b> done!" in "\n".join(reply.texts)
    assert service.threads and "BotDriver" not in service.threads


def test_a_completion_after_a_worker_thread_match_is_written_on_the_loop_on_sqlite_only(bot, engine, backend,
                                                                                       monkeypatch):
    """SQLite: a write on a worker thread would hold the single write lock while waiting for the
    interpreter's lock (see run_engine). PostgreSQL: it goes in the match's hop."""
    engine.pm.register(SlowService(), name="slow-service")  # the match runs on a worker thread
    ann = engine.add_user(8, "Ann", active=True)
    engine.add_habit("Reading", owner=ann)
    threads: list[str] = []
    real = type(engine).complete

    def spy(self, *args, **kwargs):
        threads.append(threading.current_thread().name)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(type(engine), "complete", spy)
    assert "<b>Reading</b> done!" in "\n".join(bot.send(8, "read a book").texts)
    assert (threads == ["BotDriver"]) if backend == "sqlite" else (threads and "BotDriver" not in threads)


@pytest.mark.postgres_only  # on SQLite these are local calls, made on the loop on purpose
def test_on_postgres_reporting_a_habit_never_makes_the_loop_wait_for_a_round_trip(bot, engine, monkeypatch):
    """Every statement of a free-text report (the bot state, the gate's user, the match, the
    completion) runs on a worker thread: the event loop serves other users meanwhile."""
    ann = engine.add_user(7, "Ann", active=True)
    engine.add_habit("Running", owner=ann)
    engine.add_habit("Reading", owner=ann)
    assert "<b>Running</b> done!" in "\n".join(bot.send(7, "went for a run").texts)  # warm
    on_loop: list[str] = []
    execute_sql = engine.db.execute_sql

    def spy(sql, *args, **kwargs):
        if threading.current_thread().name == "BotDriver":
            on_loop.append(sql)
        return execute_sql(sql, *args, **kwargs)

    monkeypatch.setattr(engine.db, "execute_sql", spy)
    reply = bot.send(7, "read a book")
    assert "<b>Reading</b> done!" in "\n".join(reply.texts)
    assert on_loop == []


def test_matches_that_wait_leave_asyncios_worker_threads_to_everyone_else(bot, engine):
    """Slow matches (an LLM that takes its time) run on threads of their own: while every one
    of them waits, the default worker threads, which other updates' database work and the
    server's inbox claims hop to, stay free."""
    release = threading.Event()
    started = threading.Semaphore(0)
    threads: list[str] = []

    class Stuck:
        @hookimpl(tryfirst=True)
        def habitreward_match_habits(self, user, text, habits):
            threads.append(threading.current_thread().name)
            started.release()
            release.wait(10)
            return None

    engine.pm.register(Stuck(), name="stuck")
    for user_id in range(100, 108):
        engine.add_habit("Reading", owner=engine.add_user(user_id, f"User {user_id}", active=True))

    async def default_pool_answers() -> str:
        return await asyncio.to_thread(lambda: threading.current_thread().name)

    def reports() -> None:  # eight users at once, as serve runs them
        bot.process_concurrently([message_update(user_id, "read a book") for user_id in range(100, 108)])

    waiting = threading.Thread(target=reports)
    waiting.start()
    try:
        for _ in range(8):  # every slow match is running...
            assert started.acquire(timeout=10)
        # ...and a default worker thread still answers at once.
        name = asyncio.run_coroutine_threadsafe(default_pool_answers(), bot._loop).result(timeout=2)
        assert name.startswith("asyncio")
        # (on a machine with more CPUs the default pool could hold them all: where they ran tells)
        assert len(threads) == 8 and all(t.startswith("habitreward-match") for t in threads), threads
    finally:
        release.set()
        waiting.join(30)
