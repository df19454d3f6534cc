"""One chat's updates keep their order across server processes.

Telegram sends a chat's next update once the previous one was answered 2xx, and the webhook
answers when the update is stored, before it is processed; with several processes the next
update can reach another process while the previous one is still in the first one's hands.
Here two runners, each with its own inbox (its own claims: in-flight set, advisory-lock
session on PostgreSQL, worker lock on SQLite), stand for two processes on one database.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest

from habitreward import hookimpl
from habitreward.models import ProcessedUpdate
from habitreward.server.inbox import Accepted, Inbox, WorkerLock
from habitreward.server.runner import BotRunner
from habitreward.server.service import build_bot
from habitreward.testing.builders import message_update
from habitreward.testing.engines import make_engine


class Recorder:
    """A plugin handler that notes which process handled which update, and holds back any
    message saying "slow" until released."""

    def __init__(self) -> None:
        self.handled: list[tuple[str, int]] = []
        self.started: list[int] = []
        self.release = threading.Event()
        self.release_blocker = threading.Event()  # for messages saying "blocker"
        self.names: dict[int, str] = {}  # id(application) -> process name

    @hookimpl
    def habitreward_register_handlers(self, register, settings):
        from telegram.ext import ApplicationHandlerStop, MessageHandler, filters

        async def record(update, context):
            self.started.append(update.update_id)
            if update.message.text == "slow":
                await asyncio.to_thread(self.release.wait, 20)
            elif update.message.text == "blocker":
                await asyncio.to_thread(self.release_blocker.wait, 20)
            self.handled.append((self.names[id(context.application)], update.update_id))
            raise ApplicationHandlerStop

        register(MessageHandler(filters.TEXT, record), group=-1000)


@pytest.fixture
def two_processes(request, db_url, backend, botapi, tmp_path):
    """``(recorder, first, second, engine)``: two started runners on one database (the second
    runs ``request.param`` updates at a time when parametrized indirectly; 16 otherwise)."""
    engine = make_engine(db_url, load_entry_points=False, telegram_bot_token="123456:ORDER-TEST",
                         telegram_api_url=botapi.base_url, registration="open")
    recorder = Recorder()
    engine.pm.register(recorder, name="order-recorder")
    owners = [WorkerLock(tmp_path / "workers").acquire() for _ in range(2)] if backend == "sqlite" else [None, None]
    runners = []
    concurrency = {"first": 16, "second": getattr(request, "param", 16)}
    for name, owner in zip(("first", "second"), owners):
        runner = BotRunner(build_bot(engine, rate_limit=False), Inbox(engine, owner=owner), sweep_interval=0,
                           concurrency=concurrency[name])
        recorder.names[id(runner.application)] = name
        runner.start()
        runners.append(runner)
    try:
        yield recorder, runners[0], runners[1], engine
    finally:
        recorder.release.set()
        recorder.release_blocker.set()
        for runner in runners:
            runner.stop(10)
            runner.inbox.close()
        for owner in owners:
            if owner is not None:
                owner.release()
        engine.close()


def deliver(runner: BotRunner, update: dict) -> bool:
    return runner.receive(update["update_id"], json.dumps(update), update)


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def processed(engine, *update_ids: int) -> bool:
    with engine.session():
        return ProcessedUpdate.select().where(ProcessedUpdate.update_id.in_(update_ids)
                                              & ProcessedUpdate.processed_at.is_null(False)).count() == len(update_ids)


def test_a_chats_next_update_in_another_process_waits_for_the_one_in_hand(two_processes):
    recorder, first, second, engine = two_processes
    assert deliver(first, message_update(5, "slow", update_id=101))
    wait_for(lambda: 101 in recorder.started)  # the first process is in the middle of it
    assert deliver(second, message_update(5, "next", update_id=102))
    assert deliver(second, message_update(6, "someone else", update_id=103))  # another chat: no wait
    wait_for(lambda: ("second", 103) in recorder.handled)
    time.sleep(0.3)
    assert 102 not in recorder.started  # still waiting for 101
    recorder.release.set()
    wait_for(lambda: processed(engine, 101, 102, 103))
    assert [u for _, u in recorder.handled if u != 103] == [101, 102]
    assert sorted(recorder.handled) == [("first", 101), ("second", 102), ("second", 103)]  # each once


def test_an_earlier_update_left_by_a_dead_process_is_processed_first(two_processes, backend):
    recorder, first, second, engine = two_processes
    # The first process stored and claimed update 201, answered 2xx, and died before processing it.
    update = message_update(7, "left behind", update_id=201)
    assert first.inbox.accept(201, json.dumps(update), 7) is Accepted.NEW_CLAIMED
    if backend == "sqlite":
        first.inbox._owner.release()  # noqa: SLF001 - its worker lock dies with the process
    else:
        first.inbox.close()  # its advisory-lock session ends with the process
    assert deliver(second, message_update(7, "and then this", update_id=202))
    wait_for(lambda: processed(engine, 201, 202), timeout=5)  # long before any sweep
    assert recorder.handled == [("second", 201), ("second", 202)]


def test_an_earlier_update_queued_here_but_held_by_another_process_is_still_waited_for(two_processes):
    recorder, first, second, engine = two_processes
    assert deliver(first, message_update(8, "slow", update_id=301))
    wait_for(lambda: 301 in recorder.started)
    assert deliver(second, message_update(8, "next", update_id=302))  # waits for 301
    second.submit(301, 8)  # as a sweep would: queued in the second process too, behind 302
    time.sleep(1.5)  # past the second's first attempt to claim 301 (the first one holds it)
    assert 302 not in recorder.started
    recorder.release.set()
    wait_for(lambda: processed(engine, 301, 302))
    assert recorder.handled == [("first", 301), ("second", 302)]


@pytest.mark.parametrize("two_processes", [1], indirect=True)
def test_an_update_arriving_behind_one_queued_here_but_held_elsewhere_waits_for_it(two_processes):
    """The earlier update of the chat is queued in this process (a sweep put it there) while
    another process holds it. Queued is not held: the later one must still wait until the other
    process is done, even once the queued copy here has given up (it could not claim it)."""
    recorder, first, second, engine = two_processes
    assert deliver(first, message_update(8, "slow", update_id=401))  # held by the first, in progress
    wait_for(lambda: 401 in recorder.started)
    assert deliver(second, message_update(9, "blocker", update_id=400))  # takes the second's only slot
    wait_for(lambda: 400 in recorder.started)
    second.submit(401, 8)  # as a sweep would: queued here, waiting for the slot
    assert deliver(second, message_update(8, "next", update_id=402))  # arrives behind it
    recorder.release_blocker.set()  # the queued copy of 401 gets the slot, cannot claim it, gives up
    wait_for(lambda: processed(engine, 400))
    time.sleep(0.5)
    assert 402 not in recorder.started  # still waiting for the first process to finish 401
    recorder.release.set()
    wait_for(lambda: processed(engine, 401, 402))
    assert [u for _, u in recorder.handled if u != 400] == [401, 402]
    assert sorted(recorder.handled) == [("first", 401), ("second", 400), ("second", 402)]


def test_an_earlier_update_this_process_holds_is_never_waited_for(two_processes):
    """E.g. claimed by a request thread that has not handed it to the loop yet: it comes in its
    turn, behind the later one (out of order, as deliveries out of order can only be here)."""
    recorder, first, _, engine = two_processes
    earlier = message_update(9, "earlier", update_id=501)
    assert first.inbox.accept(501, json.dumps(earlier), 9) is Accepted.NEW_CLAIMED  # held, not handed over
    later = message_update(9, "later", update_id=502)
    assert first.inbox.accept(502, json.dumps(later), 9) is Accepted.NEW_CLAIMED
    first.submit(502, 9, json.dumps(later), None, behind=True)
    wait_for(lambda: processed(engine, 502), timeout=5)  # not the order_wait of a minute
    first.submit(501, 9, json.dumps(earlier))
    wait_for(lambda: processed(engine, 501))
    assert recorder.handled == [("first", 502), ("first", 501)]


def test_once_an_update_went_ahead_of_a_stuck_process_the_chat_no_longer_waits_for_it(two_processes):
    """A live process stuck on a chat's update: the next update waits ``order_wait`` and goes
    ahead; the ones after it must not wait for the stuck one again (a minute per message)."""
    recorder, first, second, engine = two_processes
    assert deliver(first, message_update(10, "slow", update_id=601))  # stuck until released
    wait_for(lambda: 601 in recorder.started)
    second.order_wait = 1.0
    assert deliver(second, message_update(10, "next", update_id=602))
    wait_for(lambda: processed(engine, 602), timeout=10)  # after waiting its second for 601
    second.order_wait = 60.0
    assert deliver(second, message_update(10, "and the next", update_id=603))
    wait_for(lambda: processed(engine, 603), timeout=10)  # not another wait for 601
    assert 601 not in {u for _, u in recorder.handled}  # still stuck all along
    recorder.release.set()
    wait_for(lambda: processed(engine, 601))
    assert [u for _, u in recorder.handled] == [602, 603, 601]


def test_two_processes_each_holding_a_chats_updates_never_wait_for_each_other(two_processes):
    """The first process holds the chat's updates 701 and 703, the second 702 in between:
    the first hands 703 to its loop before 701 (two request threads, either order). 703 must
    wait for 702, which waits for 701; had 703 kept the chat's turn while waiting, 701 would
    queue behind it and each process would wait for the other until ``order_wait`` ran out."""
    recorder, first, second, engine = two_processes
    earlier = message_update(11, "earlier", update_id=701)
    assert first.inbox.accept(701, json.dumps(earlier), 11) is Accepted.NEW_CLAIMED  # not handed over yet
    assert deliver(second, message_update(11, "middle", update_id=702))  # waits for 701
    assert deliver(first, message_update(11, "later", update_id=703))  # waits for 702
    time.sleep(0.3)
    assert recorder.handled == []
    first.submit(701, 11, json.dumps(earlier))  # now 701 reaches the first loop, behind 703
    wait_for(lambda: processed(engine, 701, 702, 703), timeout=10)  # not order_wait's minute
    assert recorder.handled == [("first", 701), ("second", 702), ("first", 703)]


def test_a_chats_updates_handed_over_out_of_order_run_lowest_id_first(two_processes):
    """Updates of one chat waiting here run by update_id, not by when they were handed over."""
    recorder, first, _, engine = two_processes
    assert deliver(first, message_update(12, "slow", update_id=801))  # the chat's turn is taken
    wait_for(lambda: 801 in recorder.started)
    for update_id in (805, 803, 804, 802):
        update = message_update(12, f"number {update_id}", update_id=update_id)
        assert first.inbox.accept(update_id, json.dumps(update), 12) is Accepted.NEW_CLAIMED
        first.submit(update_id, 12, json.dumps(update))
    recorder.release.set()
    wait_for(lambda: processed(engine, 801, 802, 803, 804, 805))
    assert [u for _, u in recorder.handled] == [801, 802, 803, 804, 805]


def check_store_answers(inbox: Inbox) -> None:
    assert inbox.shared
    assert inbox.store(1, "{}", 5) == (Accepted.NEW_CLAIMED, None)
    assert inbox.store(2, "{}", 5) == (Accepted.NEW_CLAIMED, 1)  # 1 is still to process
    assert inbox.store(3, "{}", 6) == (Accepted.NEW_CLAIMED, None)  # another chat
    assert inbox.store(4, "{}", None) == (Accepted.NEW_CLAIMED, None)  # nobody's
    assert inbox.store(2, "{}", 5).accepted is Accepted.DUPLICATE
    assert inbox.store(6, "{}", 5) == (Accepted.NEW_CLAIMED, 2)  # the latest of 1 and 2
    assert inbox.pending_before(6, 5) == [1, 2]
    inbox.finish(1)
    assert inbox.pending_before(2, 5) == []
    inbox.finish(2)
    assert inbox.pending_before(7, 5) == [6]
    assert sorted(inbox.still_pending([1, 2, 3, 6, 99])) == [3, 6]


def test_storing_an_update_tells_whether_its_chat_has_an_earlier_one_to_process(db_url, backend, tmp_path):
    engine = make_engine(db_url, load_entry_points=False)
    owner = WorkerLock(tmp_path / "workers").acquire() if backend == "sqlite" else None
    inbox = Inbox(engine, owner=owner)
    try:
        check_store_answers(inbox)  # one statement: INSERT ... RETURNING
    finally:
        inbox.close()
        if owner is not None:
            owner.release()
        engine.close()


def test_without_returning_the_store_asks_with_a_select_of_its_own(tmp_path, monkeypatch):
    engine = make_engine(f"sqlite:///{tmp_path / 'old-sqlite.db'}", load_entry_points=False)
    monkeypatch.setattr(engine.db, "returning_clause", False)  # as on SQLite before 3.35
    owner = WorkerLock(tmp_path / "workers").acquire()
    inbox = Inbox(engine, owner=owner)
    try:
        check_store_answers(inbox)
    finally:
        inbox.close()
        owner.release()
        engine.close()
