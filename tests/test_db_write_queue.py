"""SQLite writers take turns in a queue (db.py), across threads and processes, and a
transaction that ends badly never keeps the turn."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import peewee
import pytest

from habitreward.db import open_database


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'queue.db'}"


def _write_from_another_thread(database: peewee.Database) -> BaseException | None:
    failure: list[BaseException] = []

    def write() -> None:
        try:
            with database.connection_context(), database.atomic():
                database.execute_sql("INSERT INTO t (v) VALUES (1)")
        except BaseException as exc:  # reported to the test
            failure.append(exc)

    thread = threading.Thread(target=write)
    thread.start()
    thread.join(10)  # the queue gives up after 15 s: a leaked turn would fail here
    assert not thread.is_alive(), "the other writer is still waiting for its turn"
    return failure[0] if failure else None


def test_a_rolled_back_or_failed_transaction_gives_the_turn_to_the_next_writer(sqlite_url):
    database = open_database(sqlite_url, bind=False)
    database.execute_sql("CREATE TABLE t (v INTEGER CHECK (v > 0))")
    with pytest.raises(RuntimeError):
        with database.atomic():
            database.execute_sql("INSERT INTO t (v) VALUES (1)")
            raise RuntimeError("the handler failed")
    assert _write_from_another_thread(database) is None
    with pytest.raises(peewee.IntegrityError):
        with database.atomic():
            database.execute_sql("INSERT INTO t (v) VALUES (-1)")
    assert _write_from_another_thread(database) is None
    assert database.execute_sql("SELECT COUNT(*) FROM t").fetchone()[0] == 2
    database.close()


def test_a_writer_in_another_process_is_waited_for_on_the_file_lock(sqlite_url, tmp_path):
    database = open_database(sqlite_url, bind=False)
    database.execute_sql("CREATE TABLE t (v INTEGER)")
    database.close()
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys
        from habitreward.db import open_database
        database = open_database({sqlite_url!r}, bind=False)
        with database.atomic():
            database.execute_sql("INSERT INTO t (v) VALUES (7)")
            print("holding", flush=True)
            sys.stdin.readline()  # until the test says so
        print("committed", flush=True)
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        queue = open_database(sqlite_url, bind=False).write_queue
        with pytest.raises(peewee.OperationalError, match="another process"):
            queue.acquire(timeout=0.3)  # its turn is taken in the other process
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "committed"
        queue.acquire(timeout=5)  # free again
        queue.release()
    finally:
        holder.kill()
        holder.wait()
    assert open_database(sqlite_url, bind=False).execute_sql("SELECT v FROM t").fetchall() == [(7,)]


def test_an_in_memory_database_has_no_queue():
    assert open_database("sqlite:///:memory:", bind=False).write_queue is None


def test_without_flock_writers_still_take_turns_in_the_process(sqlite_url, monkeypatch):
    """Windows has no fcntl: no lock file, SQLite's own lock between processes, and commits work."""
    monkeypatch.setitem(sys.modules, "fcntl", None)  # import fcntl raises ImportError
    database = open_database(sqlite_url, bind=False)
    database.execute_sql("CREATE TABLE t (v INTEGER)")
    with database.atomic():
        database.execute_sql("INSERT INTO t (v) VALUES (1)")
    assert _write_from_another_thread(database) is None
    assert database.execute_sql("SELECT COUNT(*) FROM t").fetchone()[0] == 2
    assert database.write_queue._file() is None  # noqa: SLF001 - no lock file opened
    database.close()


def test_a_deferred_transaction_reads_one_snapshot_without_taking_the_turn(sqlite_url):
    """The export's read transaction: writers go on meanwhile; savepoints inside it still work."""
    database = open_database(sqlite_url, bind=False)
    database.execute_sql("CREATE TABLE t (v INTEGER)")
    with database.atomic(lock_type="DEFERRED"):
        assert database.execute_sql("SELECT COUNT(*) FROM t").fetchone()[0] == 0
        assert _write_from_another_thread(database) is None
        with database.atomic():  # a savepoint
            assert database.execute_sql("SELECT COUNT(*) FROM t").fetchone()[0] == 0  # still its snapshot
    assert database.execute_sql("SELECT COUNT(*) FROM t").fetchone()[0] == 1
    assert _write_from_another_thread(database) is None
    database.close()


def test_ending_a_read_transaction_keeps_the_turn_of_a_writer_in_the_same_thread(sqlite_url):
    writer, reader = open_database(sqlite_url, bind=False), open_database(sqlite_url, bind=False)
    writer.execute_sql("CREATE TABLE t (v INTEGER)")
    failure: list[BaseException] = []

    def try_to_queue() -> None:
        try:
            writer.write_queue.acquire(timeout=0.3)
            writer.write_queue.release()
        except peewee.OperationalError as exc:
            failure.append(exc)

    with writer.atomic():
        writer.execute_sql("INSERT INTO t (v) VALUES (1)")
        with reader.atomic(lock_type="DEFERRED"):
            reader.execute_sql("SELECT COUNT(*) FROM t").fetchone()
        thread = threading.Thread(target=try_to_queue)
        thread.start()
        thread.join(10)
        assert failure, "the writer's turn was given away while its transaction was open"
    writer.close()
    reader.close()
