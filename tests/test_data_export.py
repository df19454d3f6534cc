"""``habitreward export`` / ``import``: a lossless round trip on SQLite and PostgreSQL, and SQLite -> PostgreSQL."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
import logging
import lzma
import os
import random
import re
import sqlite3
import uuid
import zipfile
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

import pytest
from click.testing import CliRunner

from habitreward.cli import cli
from habitreward.db import database_proxy
from habitreward.models import Habit, HabitLog, KeyValue, ProcessedUpdate, Reward, User
from habitreward.testing.engines import FrozenClock, make_engine

ENV = {"HABITREWARD_LOAD_PLUGINS": ""}


def invoke(db_url: str, *args: str):
    runner = CliRunner()
    return runner.invoke(cli, ["--database-url", db_url, "--env-file", os.devnull, *args], env=ENV)


def populate(engine, clock: FrozenClock) -> None:
    """Every kind of row and value: admins, personal and shared items, decimals, odd floats, claims, bot state."""
    ann = engine.add_user(101, "Ann Ümlaut", active=True, admin=True, timezone="Asia/Almaty", language="kk")
    bob = engine.add_user(102, 'Bob "\\N" Tables', active=True)
    engine.add_user(103, "Pending Pat")
    running = engine.add_habit("Running", weight=17, category="Sport, outdoors", allowed_skip_days=2)
    reading = engine.add_habit("Reading", weight=10)
    journal = engine.add_habit("Journal", weight=33, owner=bob)
    coffee = engine.add_reward("Coffee", weight=3.3, type="real", pieces_required=2, piece_value=Decimal("2.50"))
    engine.add_reward("Nothing", weight=0.7, type="none")
    engine.add_reward("Sticker", weight=1 / 3, type="virtual", piece_value=Decimal("9999999999.99"), owner=ann)
    for _ in range(9):
        for user, habits in ((ann, (running, reading)), (bob, (running, journal))):
            for habit in habits:
                engine.complete(user, habit, source="test")
        clock.advance(days=1, microseconds=123457)
    engine.grant_piece(ann, coffee)
    engine.grant_piece(ann, coffee)
    engine.claim(ann, coffee)
    engine.undo(bob, journal)
    engine.add_alias(journal, "diary")
    engine.add_alias(running, "jog")
    with engine.session():
        KeyValue.create(namespace="bot.user_data", key="101", value=json.dumps({"lang": "kk", "x": [1, 2.5]}))
        ProcessedUpdate.create(update_id=987654321, payload='{"update_id": 987654321}', attempts=2,
                               error="boom\nline 2")
        # CSV edge cases: NULL vs empty text, a text that is exactly the NULL marker or starts with a backslash.
        KeyValue.create(namespace="edge", key="\\N", value="")
        KeyValue.create(namespace="edge", key="\\path\\x", value="\\\\N")
        ProcessedUpdate.create(update_id=1, payload="", error=None, processed_at=None)
        ProcessedUpdate.create(update_id=2, payload="{}", error="", processed_at=dt.datetime(2026, 1, 5, 12, 0, 0, 1))


def snapshot(engine) -> dict[str, list[dict]]:
    """Every field of every row of every registered table."""
    with engine.session():
        return {
            m._meta.table_name: list(m.select().order_by(m._meta.primary_key).dicts())
            for m in engine.hooks.models()
        }


def snapshot_at(url: str, clock) -> dict[str, list[dict]]:
    """:func:`snapshot` of the database at ``url`` (another than the test's engine's)."""
    other = make_engine(url, clock=clock, load_entry_points=False)
    try:
        return snapshot(other)
    finally:
        other.close()


def person_here_under_another_id(url: str, clock, telegram_id: int, name: str) -> dict[str, list[dict]]:
    """Register ``telegram_id`` at ``url`` as user id 6 (ids 1-5 are taken and let go first, as
    other rows' would be): the new server's bot ran before the import. Returns the snapshot."""
    other = make_engine(url, clock=clock, load_entry_points=False)
    try:
        with other.session():
            for n in range(5):
                User.create(telegram_id=900 + n, name=f"Temp {n}")
            other.add_user(telegram_id, name, active=True)
            User.delete().where(User.telegram_id >= 900).execute()
        return snapshot(other)
    finally:
        other.close()


def migrate_elsewhere(url: str, **kwargs) -> None:
    """Create the schema at ``url`` without leaving the models bound to it."""
    previous = database_proxy.obj
    make_engine(url, load_entry_points=kwargs.pop("load_entry_points", False), **kwargs).close()
    if previous is not None:
        database_proxy.initialize(previous)


@pytest.fixture
def empty_db_url(backend, tmp_path, request):
    """A second, empty and migrated database of the same backend (for PostgreSQL: a new database).

    Models are bound to one global database proxy, which opening an engine re-points; it is put
    back afterwards, so the test's ``engine`` keeps writing to ``db_url``.
    """
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'target.db'}"
        migrate_elsewhere(url)
        yield url
        return
    server = request.getfixturevalue("postgres_server")
    if server.url is None:
        pytest.skip(server.error)
    import psycopg2

    name = f"habitreward_target_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(server.admin_url)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    url = urlunparse(urlparse(server.admin_url)._replace(path=f"/{name}"))
    migrate_elsewhere(url)
    yield url
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


@pytest.mark.parametrize("fmt, target", [("json", "data.json"), ("csv", "data.zip"), ("csv", "data_dir")])
def test_export_then_import_into_an_empty_database_is_identical(engine, clock, db_url, empty_db_url, tmp_path, fmt,
                                                                target):
    populate(engine, clock)
    before = snapshot(engine)
    path = str(tmp_path / target)

    exported = invoke(db_url, "export", "--format", fmt, "-o", path)
    assert exported.exit_code == 0, exported.output
    imported = invoke(empty_db_url, "import", path)
    assert imported.exit_code == 0, imported.output

    target_engine = make_engine(empty_db_url, load_entry_points=False, upgrade=False)
    try:
        after = snapshot(target_engine)
        assert after == before
        assert sum(len(rows) for rows in after.values()) > 40  # 35 logs and every other table
        # Ids were kept and, on PostgreSQL, the sequences moved past them: new rows just work.
        habit = target_engine.add_habit("Swimming")
        assert habit.id == max(row["id"] for row in before["habits"]) + 1
        bob = target_engine.get_user(102)
        assert [h.name for h in target_engine.habits_for(bob)].count("Journal") == 1
    finally:
        target_engine.close()
    inserted = {line.split()[0]: int(line.split()[2]) for line in imported.stdout.splitlines()[2:]}
    assert inserted["habit_logs"] == len(before["habit_logs"]) == 35  # really carried over, not already there


def test_values_earlier_versions_stored_import_again(engine, clock, db_url, empty_db_url, tmp_path):
    """Rules tightened since (user names of 100 characters, nothing invisible, a daily limit of at
    most 1000) must not make an export of a database's own data unimportable."""
    populate(engine, clock)
    with engine.session():
        User.update(name="A" * 150).where(User.telegram_id == 101).execute()  # import-airtable kept 255
        User.update(name="\u200b").where(User.telegram_id == 103).execute()  # tidied before invisibles were
        Reward.update(max_per_day=5000, weight=3e9).where(Reward.name == "Coffee").execute()
    before = snapshot(engine)
    path = str(tmp_path / "old.json")
    assert invoke(db_url, "export", "-o", path).exit_code == 0
    _assert_imports_as(empty_db_url, path, before)


def _assert_imports_as(db_url: str, path: str, expected: dict) -> None:
    """`habitreward import PATH` into the (empty) database at ``db_url`` succeeds and leaves
    exactly ``expected`` (a :func:`snapshot`) there."""
    imported = invoke(db_url, "import", path)
    assert imported.exit_code == 0, imported.output
    target = make_engine(db_url, load_entry_points=False, upgrade=False)
    try:
        assert snapshot(target) == expected
    finally:
        target.close()


@pytest.mark.postgres_only
def test_sqlite_to_postgresql(backend, db_url, tmp_path):
    """The documented move: export from SQLite, import into PostgreSQL, same data."""
    clock = FrozenClock()
    sqlite_url = f"sqlite:///{tmp_path / 'old.db'}"
    source = make_engine(sqlite_url, clock=clock, rng=random.Random(7), load_entry_points=False)
    populate(source, clock)
    before = snapshot(source)
    source.close()
    dump = str(tmp_path / "move.json")

    assert invoke(sqlite_url, "export", "-o", dump).exit_code == 0
    result = invoke(db_url, "import", dump)

    assert result.exit_code == 0, result.output
    target = make_engine(db_url, load_entry_points=False, upgrade=False)
    try:
        assert snapshot(target) == before
        weights = [r["weight"] for r in snapshot(target)["rewards"]]
        assert 1 / 3 in weights  # a float survives to the last bit
        assert target.add_user(999, "New after move").id == max(r["id"] for r in before["users"]) + 1
    finally:
        target.close()


def test_import_into_a_database_with_data_follows_the_conflict_policy(engine, clock, db_url, tmp_path):
    populate(engine, clock)
    dump = str(tmp_path / "dump.json")
    assert invoke(db_url, "export", "-o", dump).exit_code == 0
    before = snapshot(engine)

    failed = invoke(db_url, "import", dump)
    assert failed.exit_code == 1
    assert "Error: users already has a row with id 1" in failed.output
    assert "--on-conflict skip or replace" in failed.output
    assert snapshot(engine) == before

    skipped = invoke(db_url, "import", dump, "--on-conflict", "skip", "--json")
    assert skipped.exit_code == 0, skipped.output
    counts = {t["table"]: t for t in json.loads(skipped.stdout)["tables"]}
    assert counts["habit_logs"]["inserted"] == 0 and counts["habit_logs"]["skipped"] == len(before["habit_logs"])
    assert snapshot(engine) == before

    # Change a few rows, then put the exported state back with replace.
    with engine.session():
        Habit.update(weight=99).execute()
        User.update(name="Changed").where(User.telegram_id == 101).execute()
        HabitLog.delete().where(HabitLog.id == before["habit_logs"][0]["id"]).execute()
    replaced = invoke(db_url, "import", dump, "--on-conflict", "replace", "--json")
    assert replaced.exit_code == 0, replaced.output
    counts = {t["table"]: t for t in json.loads(replaced.stdout)["tables"]}
    assert counts["habit_logs"]["inserted"] == 1
    assert counts["habit_logs"]["replaced"] == len(before["habit_logs"]) - 1
    assert snapshot(engine) == before


@pytest.mark.parametrize("policy", ["skip", "replace"])
def test_skip_and_replace_refuse_ids_held_by_other_rows(engine, clock, db_url, empty_db_url, tmp_path, policy):
    """Another database's export: its ids name other people here. Keeping them would attach the
    file's habits, logs and pieces to whoever has the id here."""
    populate(engine, clock)
    dump = str(tmp_path / "dump.json")
    assert invoke(db_url, "export", "-o", dump).exit_code == 0
    other = make_engine(empty_db_url, clock=clock, load_entry_points=False)
    try:
        clock.advance(days=1)
        zed = other.add_user(99, "Zed", active=True)
        other.complete(zed, other.add_habit("Zed habit", owner=zed))
        before = snapshot(other)
    finally:
        other.close()
    refused = invoke(empty_db_url, "import", dump, "--on-conflict", policy)
    assert refused.exit_code == 1, refused.output
    assert refused.output.startswith("Error: users: the row with id 1 here is another one than in the file")
    assert "Import into an empty database instead." in refused.output
    assert snapshot_at(empty_db_url, clock) == before  # nothing changed


def test_skip_that_keeps_out_a_person_already_here_under_another_id_says_so(engine, clock, db_url, empty_db_url,
                                                                            tmp_path):
    """The new server's bot ran before the import: Ann wrote /start there and has another id. skip
    keeps the file's Ann out (her telegram_id is taken), so the file's rows that point at her cannot
    go in: the error says why, not that the file was edited."""
    populate(engine, clock)
    dump = str(tmp_path / "dump.json")
    assert invoke(db_url, "export", "-o", dump).exit_code == 0
    before = person_here_under_another_id(empty_db_url, clock, 101, "Ann again")
    refused = invoke(empty_db_url, "import", dump, "--on-conflict", "skip")
    assert refused.exit_code == 1, refused.output
    sticker = next(r["id"] for r in snapshot(engine)["rewards"] if r["name"] == "Sticker")  # Ann's own
    assert refused.output.startswith(
        f"Error: rewards: rewards id {sticker} of the file points at users id 1, which --on-conflict skip kept out:"
        " it is here under another id (telegram_id 101 taken).")
    assert "was edited" not in refused.output
    assert snapshot_at(empty_db_url, clock) == before  # nothing changed


def test_skip_that_kept_a_row_out_blames_it_only_for_rows_that_point_at_it(engine, clock, db_url, empty_db_url,
                                                                          tmp_path):
    """skip kept Pat out (his telegram_id is here under another id), but nothing of the file points
    at him: a log whose habit the file lacks (edited: "Reading" deleted) is the file's fault, and
    the error says so, naming the log and the habit, not Pat."""
    populate(engine, clock)
    dump = tmp_path / "dump.json"
    assert invoke(db_url, "export", "-o", str(dump)).exit_code == 0
    document = json.loads(dump.read_text())
    tables = {t["table"]: t for t in document["tables"]}
    names = [c["name"] for c in tables["habits"]["columns"]]
    reading = next(r for r in tables["habits"]["rows"] if r[names.index("name")] == "Reading")
    reading_id = reading[names.index("id")]
    tables["habits"]["rows"].remove(reading)
    tables["habits"]["count"] -= 1
    log_names = [c["name"] for c in tables["habit_logs"]["columns"]]
    first_log = next(r for r in tables["habit_logs"]["rows"] if r[log_names.index("habit_id")] == reading_id)
    dump.write_text(json.dumps(document))
    missing = (f"Error: habit_logs: habit_logs id {first_log[log_names.index('id')]} of the file points at habits id"
               f" {reading_id}, which is neither in the file nor in this database: the file is incomplete or was"
               " edited. Nothing was imported.")
    into_empty = invoke(empty_db_url, "import", str(dump))  # nothing kept out: the same words
    assert into_empty.exit_code == 1 and into_empty.output.startswith(missing), into_empty.output
    before = person_here_under_another_id(empty_db_url, clock, 103, "Pat again")

    refused = invoke(empty_db_url, "import", str(dump), "--on-conflict", "skip")

    assert refused.exit_code == 1, refused.output
    assert refused.output.startswith(missing), refused.output  # not "kept out", nor Pat's telegram_id 103
    assert snapshot_at(empty_db_url, clock) == before  # nothing changed


def test_skip_with_a_row_the_file_holds_twice_skips_it_and_says_so(engine, clock, db_url, empty_db_url, tmp_path):
    """A row the file holds twice (edited) is one skip ignores the second time, as it ignores one
    clashing here: the note of which row skip kept out for another key found none and raised
    StopIteration, a traceback. It imports, with the copy counted as skipped."""
    populate(engine, clock)
    dump = tmp_path / "dump.json"
    assert invoke(db_url, "export", "-o", str(dump)).exit_code == 0
    document = json.loads(dump.read_text())
    entry = next(t for t in document["tables"] if t["table"] == "processed_updates")
    entry["rows"].append(list(entry["rows"][-1]))
    entry["count"] += 1
    dump.write_text(json.dumps(document))

    result = invoke(empty_db_url, "import", str(dump), "--on-conflict", "skip", "--json")
    assert result.exit_code == 0, result.output
    tables = {t["table"]: t for t in json.loads(result.output)["tables"]}
    assert (tables["processed_updates"]["inserted"], tables["processed_updates"]["skipped"]) == (3, 1)
    other = make_engine(empty_db_url, clock=clock, load_entry_points=False)
    try:
        assert snapshot(other) == snapshot(engine)
    finally:
        other.close()


def test_user_export_holds_only_that_persons_data(engine, clock, db_url, tmp_path):
    populate(engine, clock)
    with engine.session():  # Bob's bot state: his data, his private chat, his open dialog; and Ann's
        KeyValue.create(namespace="bot.user_data", key="102", value=json.dumps({"draft": {"name": "Swim"}}))
        KeyValue.create(namespace="bot.chat_data", key="102", value="{}")
        KeyValue.create(namespace="bot.conversations", key="dialog:[102,102]", value='"name"')
        KeyValue.create(namespace="bot.conversations", key="dialog:[101,101]", value='"name"')
    dump = tmp_path / "bob.json"

    result = invoke(db_url, "export", "--user", "102", "-o", str(dump))

    assert result.exit_code == 0, result.output
    document = json.loads(dump.read_text())
    tables = {t["table"]: t for t in document["tables"]}
    assert document["user"] == 102
    columns = {name: [c["name"] for c in t["columns"]] for name, t in tables.items()}
    users = [dict(zip(columns["users"], row)) for row in tables["users"]["rows"]]
    assert [u["telegram_id"] for u in users] == [102]
    habits = {dict(zip(columns["habits"], r))["name"] for r in tables["habits"]["rows"]}
    assert habits == {"Running", "Journal"}  # the shared habit Bob logged and his own; not Ann's Reading
    logs = [dict(zip(columns["habit_logs"], r)) for r in tables["habit_logs"]["rows"]]
    assert logs and {log["user_id"] for log in logs} == {users[0]["id"]}
    assert "processed_updates" not in tables
    state = [dict(zip(columns["key_values"], r)) for r in tables["key_values"]["rows"]]
    assert {(s["namespace"], s["key"], s["value"]) for s in state} == {
        ("bot.user_data", "102", '{"draft": {"name": "Swim"}}'), ("bot.chat_data", "102", "{}"),
        ("bot.conversations", "dialog:[102,102]", '"name"')}
    rewards = {dict(zip(columns["rewards"], r))["name"] for r in tables["rewards"]["rows"]}
    assert "Sticker" not in rewards  # Ann's personal reward
    aliases = {dict(zip(columns["habit_aliases"], r))["alias"] for r in tables["habit_aliases"]["rows"]}
    assert aliases == {"diary"}  # his habit's; not the shared Running's, not Ann's


def test_big_table_export_shows_progress_on_stderr(engine, db_url, tmp_path):
    user = engine.add_user(5, "Many", active=True)
    habit = engine.add_habit("Daily")
    start = dt.date(2020, 1, 1)
    rows = [
        {"user": user.id, "habit": habit.id, "habit_weight": 10, "total_weight_applied": 1.0,
         "completed_on": start + dt.timedelta(days=n), "timestamp": dt.datetime(2020, 1, 1) + dt.timedelta(days=n)}
        for n in range(2500)
    ]  # fmt: skip
    with engine.session(), engine.db.atomic():
        for n in range(0, len(rows), 500):
            HabitLog.insert_many(rows[n : n + 500]).execute()

    result = invoke(db_url, "export", "-o", str(tmp_path / "big.json"))

    assert result.exit_code == 0, result.output
    assert "Exporting habit_logs: 2500/2500 (100%)" in result.stderr
    assert "Exporting users" not in result.stderr  # small tables stay quiet
    assert "Exported 2502 rows from" in result.stderr


def _daily_logs(engine, count: int, start: dt.date) -> dt.date:
    """One user's habit logged every day for ``count`` days from ``start`` (inserted in bulk)."""
    user = engine.add_user(5, "Many", active=True)
    habit = engine.add_habit("Daily")
    with engine.session(), engine.db.atomic():
        for n in range(0, count, 500):
            HabitLog.insert_many([
                {"user": user.id, "habit": habit.id, "habit_weight": 10, "total_weight_applied": 1.0,
                 "completed_on": start + dt.timedelta(days=day), "timestamp": dt.datetime(2020, 1, 1)}
                for day in range(n, min(n + 500, count))
            ]).execute()
    return start


def test_a_big_json_import_shows_progress_while_it_reads_the_file_first(engine, empty_db_url, tmp_path):
    """Before importing a row, the import reads the whole JSON file once (is it whole, how many rows
    has each table): minutes for a file of gigabytes, with nothing on the screen."""
    from habitreward.data.exporter import Exporter

    _daily_logs(engine, 2500, dt.date(2000, 1, 1))
    path = tmp_path / "big.json"
    Exporter(engine, show_progress=False).write_json(path)
    size = path.stat().st_size

    result = invoke(empty_db_url, "import", str(path))
    quiet = invoke(empty_db_url, "import", str(path), "--on-conflict", "skip", "--no-progress")

    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    reading = [line for line in lines if line.startswith("Reading big.json (bytes): ")]
    assert len(reading) >= 3, lines  # some tenths of the way, then the whole file
    assert reading[-1] == f"Reading big.json (bytes): {size}/{size} (100%)"
    assert lines.index(reading[-1]) < lines.index("Importing habit_logs: 2500/2500 (100%)")
    assert quiet.exit_code == 0, quiet.output
    assert "Reading" not in quiet.stderr


@pytest.mark.postgres_only
def test_a_postgresql_export_holds_a_batch_of_rows_at_a_time_not_a_whole_table(engine, backend, tmp_path,
                                                                                 monkeypatch):
    """psycopg2's ordinary cursor brings a whole result into the client: 2.3 GB for 6.4 million
    habit logs. The export reads a server-side cursor a batch at a time instead."""
    from habitreward.data import exporter

    start = _daily_logs(engine, 5000, dt.date(2020, 1, 1))
    results: list[int] = []  # rows each statement brought into the client
    execute_sql = engine.db.execute_sql

    def counted(sql, params=None, *args, **kwargs):
        cursor = execute_sql(sql, params, *args, **kwargs)
        results.append(cursor.rowcount)
        return cursor

    monkeypatch.setattr(engine.db, "execute_sql", counted)

    exporter.Exporter(engine, show_progress=False).write_json(tmp_path / "all.json")

    assert max(results) <= exporter._FETCH < 5000
    document = json.loads((tmp_path / "all.json").read_text())
    logs = next(t for t in document["tables"] if t["table"] == "habit_logs")
    assert len(logs["rows"]) == logs["count"] == 5000
    days = [dict(zip([c["name"] for c in logs["columns"]], row))["completed_on"] for row in logs["rows"]]
    assert days == [(start + dt.timedelta(days=n)).isoformat() for n in range(5000)]


@pytest.mark.slow
def test_a_json_import_reads_the_rows_as_it_goes_not_the_whole_file_into_memory(engine, empty_db_url, tmp_path):
    """json.load of a 1.7 GB export (8.6 million rows) took 7 GB of memory; the import now holds a
    batch of rows at a time, whatever the size of the file."""
    import tracemalloc

    from habitreward.data.exporter import Exporter
    from habitreward.data.importer import Importer, open_export

    _daily_logs(engine, 40_000, dt.date(1990, 1, 1))
    path = tmp_path / "all.json"
    Exporter(engine, show_progress=False).write_json(path)
    target = make_engine(empty_db_url, load_entry_points=False, upgrade=False)
    try:
        tracemalloc.start()
        try:
            with open_export(path) as document:
                result = Importer(target, show_progress=False).run(document)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        with target.session():
            assert HabitLog.select().count() == 40_000
    finally:
        target.close()
    assert {t.table: t.inserted for t in result.tables}["habit_logs"] == 40_000
    # The whole document as Python objects is 4-5 times the file; a batch at a time, a fraction of it.
    assert peak < path.stat().st_size, (peak, path.stat().st_size)


def test_a_json_export_whose_tables_were_put_in_another_order_imports_the_same(engine, clock, db_url, empty_db_url,
                                                                               tmp_path):
    populate(engine, clock)
    before = snapshot(engine)
    assert invoke(db_url, "export", "-o", str(tmp_path / "data.json")).exit_code == 0
    document = json.loads((tmp_path / "data.json").read_text())
    document["tables"].reverse()  # children first: each is read from the file when its turn comes
    (tmp_path / "reversed.json").write_text(json.dumps(document))

    _assert_imports_as(empty_db_url, str(tmp_path / "reversed.json"), before)


def test_a_csv_export_saved_again_by_a_spreadsheet_imports_the_same(engine, clock, db_url, empty_db_url, tmp_path):
    """Excel's "CSV UTF-8" and LibreOffice write a byte-order mark and CRLF line ends; a name fixed
    by hand that way (a comma, quotes and a line break in it) goes in as typed."""
    populate(engine, clock)
    with engine.session():
        User.update(name='Ann, "Äne"\nÜmlaut').where(User.telegram_id == 101).execute()
        expected = snapshot(engine)
        User.update(name="Ann Ümlaut").where(User.telegram_id == 101).execute()
    folder = tmp_path / "data"
    assert invoke(db_url, "export", "--format", "csv", "-o", str(folder)).exit_code == 0
    for path in folder.glob("*.csv"):
        rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
        if path.name == "users.csv":
            row = next(r for r in rows if r[rows[0].index("telegram_id")] == "101")
            row[rows[0].index("name")] = 'Ann, "Äne"\nÜmlaut'
        with open(path, "w", encoding="utf-8-sig", newline="") as handle:
            csv.writer(handle).writerows(rows)  # the csv module's default line end: CRLF
    assert (folder / "users.csv").read_bytes().startswith(b"\xef\xbb\xbfid,")

    _assert_imports_as(empty_db_url, str(folder), expected)

    # A header changed by hand says which column.
    habits = folder / "habits.csv"
    habits.write_text(habits.read_text(encoding="utf-8-sig").replace(",name,", ",nom,", 1), encoding="utf-8")
    result = invoke(empty_db_url, "import", "--on-conflict", "skip", str(folder))
    assert result.exit_code == 1, result.output
    assert "habits.csv: the header does not match the manifest's columns (column 4 is 'nom' where" \
           " manifest.json says 'name')" in result.output


def test_unreadable_or_foreign_files_are_one_line_errors(engine, db_url, tmp_path):
    not_json = tmp_path / "notes.txt"
    not_json.write_text("hello")
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"format": "something-else"}))
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps({"format": "habitreward-export", "version": 99, "tables": []}))
    unknown = tmp_path / "unknown.json"
    unknown.write_text(
        json.dumps({"format": "habitreward-export", "version": 1,
                    "tables": [{"table": "karma", "columns": [], "rows": [[]]}]})
    )

    for path, message in (
        (not_json, "is not a habitreward export (not JSON"),
        (other, "is not a habitreward export"),
        (newer, "has export format version 99"),
        (unknown, "a table 'karma' (1 rows) that no plugin loaded here provides"),
        (tmp_path / "missing.json", "does not exist"),
    ):
        result = invoke(db_url, "import", str(path))
        assert result.exit_code == 1, result.output
        assert message in result.output
        assert "Traceback" not in result.output
    with engine.session():
        assert Reward.select().count() == 0


def test_a_file_that_is_no_export_but_near_one_says_what_to_import_instead(engine, clock, db_url, tmp_path):
    """What an operator moving data may hand `import` by mistake: the SQLite database itself, an
    export they compressed for the copy, the manifest.json or one CSV file of a CSV export. Each
    was 'not a habitreward export (not JSON, ...): lexical error ...', two of them with Python's
    b'...' of the parser's bytes; each now says what it is and what to do."""
    populate(engine, clock)
    dump = tmp_path / "all.json"
    assert invoke(db_url, "export", "-o", str(dump)).exit_code == 0
    folder = tmp_path / "all-csv"
    assert invoke(db_url, "export", "--format", "csv", "-o", str(folder)).exit_code == 0
    database = tmp_path / "old.db"
    sqlite3.connect(database).execute("CREATE TABLE users (id INTEGER PRIMARY KEY)").connection.commit()
    packed = tmp_path / "all.json.gz"
    packed.write_bytes(gzip.compress(dump.read_bytes()))
    squeezed = tmp_path / "all.json.xz"
    squeezed.write_bytes(lzma.compress(dump.read_bytes()))
    picture = tmp_path / "photo.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with engine.session():
        before = {m: m.select().count() for m in (User, Habit, HabitLog)}
    for path, message in (
        (database, f"Error: {database} is a SQLite database, not an export: export it first"
                   f" (habitreward --database-url sqlite:///{database} export -o data.json), then import that"
                   " file. Nothing was imported."),
        (packed, f"Error: {packed} is compressed (gzip): decompress it first (gunzip {packed}), then import"
                 f" {tmp_path / 'all.json'}. Nothing was imported."),
        (squeezed, f"Error: {squeezed} is compressed (xz): decompress it first (unxz {squeezed}), then import"
                   f" {tmp_path / 'all.json'}. Nothing was imported."),
        (folder / "manifest.json", f"Error: {folder / 'manifest.json'} is the manifest of a CSV export: import its"
                                   f" directory, {folder}. Nothing was imported."),
        (folder / "habits.csv", f"Error: {folder / 'habits.csv'} is one table of a CSV export: import its"
                                f" directory, {folder}. Nothing was imported."),
        (picture, f"Error: {picture} is not a habitreward export (not JSON, a zip or a directory): lexical error:"
                  " invalid char in json text."),
    ):
        result = invoke(db_url, "import", str(path))
        assert result.exit_code == 1, result.output
        assert result.output.startswith(message), result.output
        assert result.output.count("\n") == 1 and "b'" not in result.output, result.output
    with engine.session():
        assert {m: m.select().count() for m in (User, Habit, HabitLog)} == before


def test_an_import_from_stdin_that_is_not_json_or_cut_short_is_one_line(engine, db_url, tmp_path):
    # `import -` read standard input with json.load: a JSONDecodeError traceback.
    engine.add_reward("Coffee")
    dump = tmp_path / "dump.json"
    assert invoke(db_url, "export", "-o", str(dump)).exit_code == 0
    for given in ("hello", dump.read_text()[:200]):
        result = CliRunner().invoke(cli, ["--database-url", db_url, "--env-file", os.devnull, "import", "-"],
                                    env=ENV, input=given)
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.exception
        assert result.output.startswith("Error: standard input is not a habitreward export, or it was cut short"
                                        " (not JSON: "), result.output
        assert result.output.count("\n") == 1 and "Nothing was imported." in result.output


def test_a_zipped_json_export_says_to_unzip_it_and_import_the_json(engine, clock, db_url, tmp_path):
    """A JSON export zipped for the copy (zip data.zip data.json) was 'has no manifest.json: it is
    not a habitreward CSV export', which sent the operator looking for a CSV export."""
    populate(engine, clock)
    dump = tmp_path / "data.json"
    assert invoke(db_url, "export", "-o", str(dump)).exit_code == 0
    packed = zipped(tmp_path / "data.zip", {"data.json": dump})

    assert refused_import(engine, db_url, packed) == (
        f"Error: {packed} is a zip file holding a JSON export, data.json (a CSV export's zip holds manifest.json):"
        f" unzip it first (unzip {packed} data.json), then import data.json. Nothing was imported.\n")


def zipped(packed: Path, members: dict[str, Path]) -> Path:
    with zipfile.ZipFile(packed, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, path in members.items():
            archive.write(path, name)
    return packed


def refused_import(engine: Any, db_url: str, path: Path) -> str:
    """What ``import`` of ``path`` says, having refused it (exit code 1) and changed nothing."""
    with engine.session():
        before = {m: m.select().count() for m in (User, Habit, HabitLog)}
    result = invoke(db_url, "import", str(path))
    assert result.exit_code == 1, result.output
    with engine.session():
        assert {m: m.select().count() for m in (User, Habit, HabitLog)} == before
    return result.output


def test_a_zipped_csv_export_directory_says_to_unzip_it_and_import_the_directory(engine, clock, db_url, tmp_path):
    """A CSV export's directory zipped whole (zip -r all-csv.zip all-csv): its manifest.json in a
    folder was taken for a JSON export ('holding a JSON export, all-csv/manifest.json ... then
    import all-csv/manifest.json'), which then says it is a manifest."""
    populate(engine, clock)
    folder = tmp_path / "all-csv"
    assert invoke(db_url, "export", "--format", "csv", "-o", str(folder)).exit_code == 0
    packed = zipped(tmp_path / "all-csv.zip", {f"all-csv/{path.name}": path for path in sorted(folder.iterdir())})

    assert refused_import(engine, db_url, packed) == (
        f"Error: {packed} is a zip file holding a CSV export in a folder, all-csv (the zip export writes holds"
        f" manifest.json at its top): unzip it first (unzip {packed}), then import the directory all-csv. Nothing"
        " was imported.\n")


def test_a_csv_exports_manifest_on_standard_input_says_to_import_its_directory(engine, clock, db_url, tmp_path):
    """`import - < all-csv/manifest.json` was 'stdin: a table lacks its table, columns or rows
    ('rows')', where the file named as an argument says what it is."""
    populate(engine, clock)
    folder = tmp_path / "all-csv"
    assert invoke(db_url, "export", "--format", "csv", "-o", str(folder)).exit_code == 0

    result = CliRunner().invoke(cli, ["--database-url", db_url, "--env-file", os.devnull, "import", "-"],
                                env=ENV, input=(folder / "manifest.json").read_text(encoding="utf-8"))

    assert result.exit_code == 1, result.output
    assert result.output == ("Error: standard input is the manifest of a CSV export: import its directory (habitreward"
                             " import DIRECTORY), which holds the rows. Nothing was imported.\n")


def test_an_export_to_a_compressed_archive_name_is_refused_and_nothing_is_made(engine, clock, db_url, tmp_path):
    """`export --format csv -o x.tar.gz` made a directory named x.tar.gz (and without --format, a
    JSON file of that name), which neither tar nor gunzip nor import takes for what it says."""
    populate(engine, clock)
    for args, target, suffix in (
        (["--format", "csv"], "x.tar.gz", ".tar.gz"),
        (["--format", "csv"], "x.tgz", ".tgz"),
        ([], "x.tar.gz", ".tar.gz"),
        ([], "data.json.xz", ".xz"),
    ):
        result = invoke(db_url, "export", *args, "-o", str(tmp_path / target))
        assert result.exit_code == 2, result.output
        assert (f"{tmp_path / target} ends in {suffix}, an archive or compressed file, which export does not write:"
                " for CSV give a new directory or a file ending in .zip, for JSON a file ending in .json (compress"
                " it afterwards if you like)." in " ".join(result.output.split())), result.output
        assert not (tmp_path / target).exists()


def test_a_csv_export_named_json_or_a_json_export_named_as_a_directory_is_refused(engine, clock, db_url, tmp_path):
    """`export --format csv -o data.json` made a directory named data.json, and `export -o out/` a JSON
    file named out: each is named as what it is not. Both are refused (exit code 2), nothing made."""
    populate(engine, clock)
    csv = invoke(db_url, "export", "--format", "csv", "-o", str(tmp_path / "data.JSON"))
    json_ = invoke(db_url, "export", "-o", str(tmp_path / "out") + "/")

    assert csv.exit_code == 2, csv.output
    assert (f"{tmp_path / 'data.JSON'} ends in .json, a JSON file, where --format csv writes a directory: give a new"
            " directory or a file ending in .zip, or leave out --format csv for one JSON file."
            in " ".join(csv.output.split())), csv.output
    assert json_.exit_code == 2, json_.output
    assert (f"{tmp_path / 'out'}/ ends in /, a directory, where a JSON export is one file: give a file name"
            " (data.json), or --format csv for a directory." in " ".join(json_.output.split())), json_.output
    assert not (tmp_path / "data.JSON").exists() and not (tmp_path / "out").exists()


def test_an_empty_file_is_said_to_be_empty_not_cut_short(engine, db_url, tmp_path):
    """An empty file (a failed `habitreward export > data.json`, a copy that never started) was 'ends
    in the middle of the export: the file was cut short', and on standard input 'not JSON:
    Expecting value: line 1 column 1 (char 0)'."""
    engine.add_reward("Coffee")
    empty = tmp_path / "data.json"
    empty.write_bytes(b"")
    blank = tmp_path / "blank.json"
    blank.write_bytes(b"\n \n")

    for path in (empty, blank):
        result = invoke(db_url, "import", str(path))
        assert result.exit_code == 1, result.output
        assert result.output == (f"Error: {path} is empty: it holds no export (was the export written elsewhere, or"
                                 " did it fail?). Nothing was imported.\n")
    for given in ("", "\n"):
        piped = CliRunner().invoke(cli, ["--database-url", db_url, "--env-file", os.devnull, "import", "-"],
                                   env=ENV, input=given)
        assert piped.exit_code == 1, piped.output
        assert piped.output == ("Error: standard input is empty: it holds no export (was the export written"
                                " elsewhere, or did it fail?). Nothing was imported.\n")
    with engine.session():
        assert Reward.select().count() == 1


def test_json_null_on_standard_input_is_said_to_be_no_export_not_empty(engine, db_url):
    """`null` on standard input (`jq .missing data.json | habitreward import -`) was said to be empty:
    it parsed to None, which stood for no input at all. It is JSON and no export, as `[]` or `5` are."""
    engine.add_reward("Coffee")

    for given in ("null", " null\n", "[]"):
        piped = CliRunner().invoke(cli, ["--database-url", db_url, "--env-file", os.devnull, "import", "-"],
                                   env=ENV, input=given)
        assert piped.exit_code == 1, piped.output
        assert piped.output == 'Error: stdin is not a habitreward export (no "format": "habitreward-export").\n'
    with engine.session():
        assert Reward.select().count() == 1


def test_an_export_to_a_zip_is_a_csv_archive_unless_json_is_asked_for_which_is_refused(engine, clock, db_url,
                                                                                         empty_db_url, tmp_path):
    # `-o data.zip` wrote a JSON document into a file named .zip, which `import` then read as a
    # damaged archive.
    populate(engine, clock)
    archive = tmp_path / "data.zip"
    assert invoke(db_url, "export", "-o", str(archive)).exit_code == 0
    assert zipfile.is_zipfile(archive) and "manifest.json" in zipfile.ZipFile(archive).namelist()
    assert invoke(empty_db_url, "import", str(archive)).exit_code == 0

    refused = invoke(db_url, "export", "--format", "json", "-o", str(tmp_path / "other.zip"))
    assert refused.exit_code == 2 and "other.zip ends in .zip, which is a CSV export" in refused.output
    assert not (tmp_path / "other.zip").exists()


def test_an_output_the_export_cannot_write_is_one_line_and_nothing_half_written(engine, clock, db_url, tmp_path,
                                                                                monkeypatch):
    populate(engine, clock)
    for args, message in [
        (["-o", str(tmp_path / "missing" / "x.json")], f"the directory {tmp_path / 'missing'} does not exist"),
        (["--format", "csv", "-o", str(tmp_path / "missing" / "x.zip")], "does not exist"),
        (["--format", "csv", "-o", str(tmp_path / "missing" / "dir")], "does not exist"),
        (["-o", str(tmp_path)], "it is a directory; give a file name"),
    ]:
        result = invoke(db_url, "export", *args)
        assert result.exit_code == 1 and "Traceback" not in result.output, result.output
        assert result.output.startswith("Error: Cannot write the export to ") and message in result.output
    assert not (tmp_path / "missing").exists()  # no directory made on a guess

    # An export that fails half way leaves an earlier export of that name as it was, and no part.
    good = tmp_path / "data.json"
    assert invoke(db_url, "export", "-o", str(good)).exit_code == 0
    before = good.read_bytes()
    from habitreward.data.exporter import Exporter

    def broken(self, export):
        yield from ()
        raise OSError("No space left on device")

    monkeypatch.setattr(Exporter, "_rows", broken)
    assert invoke(db_url, "export", "-o", str(good)).exit_code != 0
    assert good.read_bytes() == before and not (tmp_path / "data.json.part").exists()


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_a_cut_or_edited_export_is_refused_and_nothing_is_imported(engine, clock, db_url, empty_db_url, tmp_path,
                                                                   fmt):
    populate(engine, clock)
    dump = tmp_path / ("dump.json" if fmt == "json" else "dump")
    assert invoke(db_url, "export", "-o", str(dump), *(["--format", "csv"] if fmt == "csv" else [])).exit_code == 0

    def damaged(change) -> str:
        copy = tmp_path / f"copy-{uuid.uuid4().hex[:6]}"
        if fmt == "json":
            document = json.loads(dump.read_text())
            change(document)
            copy.write_text(json.dumps(document))
        else:
            copy.mkdir()
            for member in dump.iterdir():
                (copy / member.name).write_bytes(member.read_bytes())
            change(copy)
        return str(copy)

    def logs(document):  # the habit_logs table of a JSON export
        return next(t for t in document["tables"] if t["table"] == "habit_logs")

    def set_cell(table, column, value):  # a JSON export's first row of ``table``, edited
        def change(document):
            entry = next(t for t in document["tables"] if t["table"] == table)
            entry["rows"][0][[c["name"] for c in entry["columns"]].index(column)] = value
        return change

    def break_bot_state(document):  # the bot's stored user data, no longer JSON
        entry = next(t for t in document["tables"] if t["table"] == "key_values")
        names = [c["name"] for c in entry["columns"]]
        row = next(r for r in entry["rows"] if r[names.index("namespace")] == "bot.user_data")
        row[names.index("value")] = "{not json"

    manifest = json.loads((dump / "manifest.json" if fmt == "csv" else dump).read_text())
    n = logs(manifest)["count"]

    if fmt == "json":
        cases = [
            (lambda d: logs(d)["rows"].pop(), f"holds {n - 1} rows where it says {n}"),
            (lambda d: logs(d)["rows"][0].__setitem__(1, "abc"),
             "'habit_logs', row 1, user_id: not a whole number: 'abc'"),
            (lambda d: logs(d)["rows"][2].pop(), "'habit_logs', row 3: "),
            (lambda d: d.pop("tables"), 'has no "tables"'),
            # Values the bot and the CLI refuse are refused in a file too.
            (set_cell("habits", "weight", 500),
             "'habits', row 1, weight: The habit weight must be from 1 to 100, got 500."),
            (set_cell("rewards", "pieces_required", 0), "'rewards', row 1, pieces_required: Pieces required"),
            (set_cell("users", "language", "de"), "'users', row 1, language: The language must be one of"),
            # A value of the wrong kind is refused, not read as something else ("yes" as false,
            # an id of 1.5 as 1: another habit's).
            (set_cell("users", "is_admin", "yes"), "'users', row 1, is_admin: not true or false: 'yes'"),
            (set_cell("habit_logs", "habit_id", 1.5), "'habit_logs', row 1, habit_id: not a whole number: 1.5"),
            (set_cell("rewards", "piece_value", "2.5x"), "'rewards', row 1, piece_value: not a decimal number"),
            (set_cell("users", "timezone", "Mars/Olympus"), "'users', row 1, timezone: Unknown time zone"),
            (set_cell("reward_progress", "pieces_earned", -3), "pieces_earned: The pieces earned must be at least 0"),
            (set_cell("habit_logs", "streak_count", 0), "streak_count: The streak must be at least 1, got 0."),
            (break_bot_state, "value: The bot's state must be JSON, got '{not json'."),
            # A number too big for its column (a 32-bit one on PostgreSQL, 64 bits on SQLite).
            (set_cell("habit_logs", "streak_count", 2**70), "habit_logs: a value of the file does not fit"),
            # The description of a table edited (a KeyError traceback).
            (lambda d: logs(d)["columns"][0].pop("name"),
             "a table lacks its table, columns or rows (the columns of 'habit_logs' are not a list of a name and"),
        ]
    else:
        def cut_last_line(folder):
            path = folder / "habit_logs.csv"
            data = path.read_bytes()
            path.write_bytes(data[:data.rstrip(b"\n").rfind(b"\n") + 1])

        def cut_mid_line(folder):
            path = folder / "habit_logs.csv"
            path.write_bytes(path.read_bytes().rstrip(b"\n")[:-12] + b"\n")

        def edit_cell(folder):  # a number edited by hand in a spreadsheet
            path = folder / "habit_logs.csv"
            rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
            rows[1][rows[0].index("streak_count")] = "x1"
            with open(path, "w", encoding="utf-8", newline="") as handle:
                csv.writer(handle, lineterminator="\n").writerows(rows)

        def edit_manifest(change):
            def edit(folder):
                manifest = json.loads((folder / "manifest.json").read_text())
                change(manifest)
                (folder / "manifest.json").write_text(json.dumps(manifest))
            return edit

        def cut_manifest(folder):
            path = folder / "manifest.json"
            path.write_bytes(path.read_bytes()[:100])

        cases = [(cut_last_line, f"holds {n - 1} rows where it says {n}"),
                 (cut_mid_line, f"habit_logs.csv line {n + 1}: "),
                 (edit_cell, "habit_logs.csv line 2, streak_count: 'x1' is not a value of its column's kind (int)"),
                 (lambda folder: (folder / "habit_logs.csv").unlink(),
                  "habit_logs.csv is missing, which manifest.json lists"),
                 (cut_manifest, "its manifest.json is not JSON"),
                 # manifest.json edited (tracebacks: int() of the count, a KeyError on a column's name).
                 (edit_manifest(lambda m: logs(m).__setitem__("count", "12x")),
                  "a table of manifest.json is not as an export writes it (invalid literal for int()"),
                 (edit_manifest(lambda m: logs(m)["columns"][0].pop("name")),
                  "a table of manifest.json is not as an export writes it (the columns of 'habit_logs' are not")]
    paths = [(damaged(change), message) for change, message in cases]
    if fmt == "json":  # cut short mid-copy: no longer JSON at all
        cut = tmp_path / "cut.json"
        cut.write_bytes(dump.read_bytes()[: dump.stat().st_size // 2])
        paths.append((str(cut), "cut.json ends in the middle of the export: the file was cut short"))
    else:
        archive = tmp_path / "dump.zip"
        assert invoke(db_url, "export", "--format", "csv", "-o", str(archive)).exit_code == 0
        cut = tmp_path / "cut.zip"
        cut.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
        paths.append((str(cut), "cut.zip is a zip file cut short or damaged"))
    for path, message in paths:
        result = invoke(empty_db_url, "import", path)
        assert result.exit_code == 1, result.output
        assert message in result.output and "Traceback" not in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
    check = make_engine(empty_db_url, clock=clock, load_entry_points=False)
    try:
        with check.session():
            assert User.select().count() == 0  # one transaction: nothing of any table went in
    finally:
        check.close()


def test_plugin_tables_travel_too(backend, db_url, empty_db_url, tmp_path, monkeypatch):
    """A plugin's registered table (the perfect-day plugin's) is exported and imported with the core ones."""
    pytest.importorskip("habitreward_perfect_day", reason="pip install -e plugins/perfect-day")
    monkeypatch.setenv("HABITREWARD_LOAD_PLUGINS", "perfect_day")
    clock = FrozenClock()
    migrate_elsewhere(empty_db_url, load_entry_points=True)  # the plugin's table there too
    source = make_engine(db_url, clock=clock, rng=random.Random(1))
    try:
        ann = source.add_user(101, "Ann", active=True)
        source.add_reward("Perfect day", weight=1, pieces_required=5)
        for name in ("Run", "Read"):
            source.add_habit(name)
        for _ in range(3):
            for habit in source.habits_for(ann):
                source.complete(ann, habit)
            clock.advance(days=1)
        before = snapshot(source)
    finally:
        source.close()
    assert len(before["perfect_days"]) >= 2  # rows in the plugin table to carry over
    dump = str(tmp_path / "with-plugin.zip")
    env = {"HABITREWARD_LOAD_PLUGINS": "perfect_day"}
    runner = CliRunner()
    base = ["--env-file", os.devnull]

    exported = runner.invoke(cli, ["--database-url", db_url, *base, "export", "--format", "csv", "-o", dump], env=env)
    assert exported.exit_code == 0
    without_plugin = runner.invoke(cli, ["--database-url", empty_db_url, *base, "import", dump], env=ENV)
    assert without_plugin.exit_code == 1
    assert (f"a table 'perfect_days' ({len(before['perfect_days'])} rows) that no plugin loaded here provides"
            " (HABITREWARD_LOAD_PLUGINS='' here loads only the plugins it names: if that plugin is installed, name"
            " it there): install that plugin") in without_plugin.output
    result = runner.invoke(cli, ["--database-url", empty_db_url, *base, "import", dump], env=env)
    assert result.exit_code == 0, result.output

    check = make_engine(empty_db_url, upgrade=False)
    try:
        assert snapshot(check) == before
    finally:
        check.close()


@pytest.mark.parametrize("target", ["unused.json", "unused.zip"])
def test_an_empty_table_of_a_plugin_not_here_is_left_out_and_said(backend, db_url, empty_db_url, tmp_path, target):
    """The export holds every loaded plugin's table, used or not: a server without the plugin
    refused the whole import for an empty perfect_days, where nothing would be lost."""
    pytest.importorskip("habitreward_perfect_day", reason="pip install -e plugins/perfect-day")
    clock = FrozenClock()
    source = make_engine(db_url, clock=clock, rng=random.Random(1))  # the plugin loaded, never used
    try:
        populate(source, clock)
        before = snapshot(source)
    finally:
        source.close()
    assert before["perfect_days"] == []
    dump = str(tmp_path / target)
    runner = CliRunner()
    base = ["--env-file", os.devnull]
    exported = runner.invoke(cli, ["--database-url", db_url, *base, "export", "-o", dump], env={})
    assert exported.exit_code == 0, exported.output

    result = runner.invoke(cli, ["--database-url", empty_db_url, *base, "import", dump], env=ENV)

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == ("Left out (empty in the export, and no plugin loaded here has them):"
                                              " perfect_days")
    del before["perfect_days"]
    check = make_engine(empty_db_url, load_entry_points=False, upgrade=False)
    try:
        assert snapshot(check) == before
    finally:
        check.close()


def test_data_of_a_plugin_no_longer_loaded_is_not_left_out_of_an_export_silently(backend, db_url, tmp_path,
                                                                                   monkeypatch):
    """The perfect-day plugin ran here and left rows, then was left out of HABITREWARD_LOAD_PLUGINS:
    an export (to move to PostgreSQL, say) went without its table and the data was lost on the move."""
    pytest.importorskip("habitreward_perfect_day", reason="pip install -e plugins/perfect-day")
    monkeypatch.setenv("HABITREWARD_LOAD_PLUGINS", "perfect_day")
    source = make_engine(db_url, clock=FrozenClock())
    try:
        ann = source.add_user(101, "Ann", active=True)
        source.add_reward("Perfect day", weight=1, pieces_required=5)  # the plugin's bonus
        source.complete(ann, source.add_habit("Run"))
    finally:
        source.close()
    dump = tmp_path / "data.json"

    refused = invoke(db_url, "export", "-o", str(dump))
    assert refused.exit_code == 1
    assert "perfect_day (0001_perfect_days, 0002_bonus_cycle)" in refused.output
    assert "--skip-unloaded-plugins" in refused.output
    assert "perfect_days (1 rows)" in refused.output
    assert not dump.exists() and not list(tmp_path.glob("data.json*"))  # no file, no .part
    to_stdout = invoke(db_url, "export", "--user", "101")
    assert to_stdout.exit_code == 1 and not to_stdout.stdout.startswith("{")

    status = invoke(db_url, "db", "status")
    assert status.exit_code == 0
    assert any(line.split()[:2] == ["perfect_day", "0001_perfect_days"] and line.endswith("(plugin not loaded)")
               for line in status.output.splitlines())
    as_json = json.loads(invoke(db_url, "db", "status", "--json").output)
    assert {"namespace": "perfect_day", "name": "0001_perfect_days", "loaded": False}.items() <= \
        next(row for row in as_json if row["namespace"] == "perfect_day").items()

    skipped = invoke(db_url, "export", "--skip-unloaded-plugins", "-o", str(dump))
    assert skipped.exit_code == 0, skipped.output
    assert "perfect_days" not in {t["table"] for t in json.loads(dump.read_text())["tables"]}

    with database_proxy.connection_context():  # the plugin's table emptied: nothing would be lost
        database_proxy.execute_sql("DELETE FROM perfect_days")
    dump.unlink()
    emptied = invoke(db_url, "export", "-o", str(dump))
    assert emptied.exit_code == 0, emptied.output


@pytest.mark.no_db
def test_a_plugin_tables_index_added_with_add_index_does_not_break_the_identity_check():
    import peewee

    from habitreward.data.importer import _identity

    class Note(peewee.Model):  # a plugin's table: no created_at, a unique index added the documented way
        key = peewee.CharField()
        text = peewee.TextField()

    Note.add_index(Note.index(Note.key, unique=True))
    Note.add_index(peewee.SQL("CREATE INDEX note_text ON note (text)"))
    assert _identity(Note) == []  # nothing to compare by: no check, and no TypeError


def test_a_running_export_on_sqlite_does_not_hold_up_writers_in_other_processes(tmp_path, monkeypatch):
    """The export reads one snapshot while the bot keeps writing: a completion made by another
    process meanwhile goes through at once (and is not in this export)."""
    import subprocess
    import sys
    import threading
    import time

    from habitreward.data.exporter import Exporter

    url = f"sqlite:///{tmp_path / 'live.db'}"
    engine = make_engine(url, load_entry_points=False)
    try:
        engine.add_user(42, "Ann", active=True)
        engine.add_habit("Running")
        reading, go_on = threading.Event(), threading.Event()
        meta = Exporter._meta

        def held_meta(self, tables):  # inside the snapshot, after the counts were read
            reading.set()
            go_on.wait(60)
            return meta(self, tables)

        monkeypatch.setattr(Exporter, "_meta", held_meta)
        target = tmp_path / "during.json"
        export = threading.Thread(target=lambda: Exporter(engine, show_progress=False).write_json(target))
        export.start()
        try:
            assert reading.wait(30)
            started = time.monotonic()
            done = subprocess.run(
                [sys.executable, "-m", "habitreward", "--env-file", os.devnull, "--database-url", url,
                 "done", "42", "Running", "--json"],
                capture_output=True, text=True, timeout=60, env={**os.environ, **ENV},
            )
            took = time.monotonic() - started
        finally:
            go_on.set()
            export.join(30)
        assert done.returncode == 0, done.stderr  # was "database is locked" after 15 s
        assert json.loads(done.stdout)["habit"] == "Running"
        assert took < 10
        exported = {t["table"]: t["count"] for t in json.loads(target.read_text())["tables"]}
        assert exported["habit_logs"] == 0  # the snapshot from before the completion
        with engine.session():
            assert HabitLog.select().count() == 1
    finally:
        engine.close()


@pytest.mark.parametrize("table", ["habits", "rewards"])
def test_two_names_differing_only_in_case_are_refused_and_nothing_is_imported(engine, clock, db_url, empty_db_url,
                                                                              tmp_path, table):
    """Names are unique among what one user sees whatever their case (the engine refuses "running"
    beside "Running"); an edited export must not bring in what the bot and the CLI refuse."""
    populate(engine, clock)
    dump = tmp_path / "dump.json"
    assert invoke(db_url, "export", "-o", str(dump)).exit_code == 0
    document = json.loads(dump.read_text())
    entry = next(t for t in document["tables"] if t["table"] == table)
    names = [c["name"] for c in entry["columns"]]
    first, second = ("Running", "Reading") if table == "habits" else ("Coffee", "Nothing")
    rows = {row[names.index("name")]: row for row in entry["rows"]}
    rows[second][names.index("name")] = first.lower()  # two shared ones: "Running" and "running"
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(document))
    result = invoke(empty_db_url, "import", str(edited))
    assert result.exit_code == 1, result.output
    what = table[:-1]
    ids = rows[first][names.index("id")], rows[second][names.index("id")]
    assert (f"{table}: the {what}s {first!r} (id {ids[0]}, shared) and {first.lower()!r} (id {ids[1]}, shared)"
            " have one name") in result.output, result.output
    assert "Nothing was imported." in result.output and "Traceback" not in result.output
    if table == "habits":  # Bob's own "Journal" renamed "RUNNING": he would see two
        rows[second][names.index("name")] = second
        rows["Journal"][names.index("name")] = "RUNNING"
        edited.write_text(json.dumps(document))
        result = invoke(empty_db_url, "import", str(edited))
        assert result.exit_code == 1, result.output
        journal = rows["Journal"][names.index("id")]
        assert (f"'Running' (id {ids[0]}, shared) and 'RUNNING' (id {journal}, personal, of Telegram id 102)"
                " have one name") in result.output, result.output
    check = make_engine(empty_db_url, clock=clock, load_entry_points=False)
    try:
        with check.session():
            assert User.select().count() == 0
    finally:
        check.close()


def test_the_name_check_of_an_import_grows_with_the_habits_not_with_their_pairs(engine, backend):
    """The check that two habits one person sees do not share a name compared every pair on
    SQLite (25 minutes for 45,000 habits). Counted in SQLite's steps, not time: twice the
    habits must cost about twice the work."""
    from habitreward.data.importer import _check_names

    if backend != "sqlite":
        pytest.skip("counts SQLite's steps")
    owners = [engine.add_user(1000 + n, f"U{n}", active=True) for n in range(10)]

    def steps_to_check(count: int) -> int:
        with engine.session(), engine.db.atomic():
            Habit.delete().execute()
            Habit.insert_many([{"name": f"Habit {n}", "owner": owners[n % 10].id if n % 3 else None}
                               for n in range(count)]).execute()
            ids = {habit_id for (habit_id,) in Habit.select(Habit.id).tuples()}
            steps = [0]
            engine.db.connection().set_progress_handler(lambda: steps.__setitem__(0, steps[0] + 1), 100)
            try:
                _check_names(Habit, ids)
            finally:
                engine.db.connection().set_progress_handler(None, 0)
        return steps[0]

    small, double = steps_to_check(500), steps_to_check(1000)

    assert double < 3 * small, (small, double)


@pytest.mark.parametrize("fmt, target", [("json", "data.json"), ("csv", "data_dir")])
def test_an_import_of_thousands_of_rows_works_on_sqlite_before_3_32(engine, db_url, empty_db_url, tmp_path,
                                                                    sqlite_limit, fmt, target):
    """The import inserted 500 rows per statement, every column a value: 5,500 values for habit_logs,
    and SQLite builds before 3.32 take 999 ("too many SQL variables"). Again with the rows there
    (every id taken, each checked to be the same row): the same, in the other statements."""
    _daily_logs(engine, 3000, dt.date(2000, 1, 1))
    before = snapshot(engine)
    path = str(tmp_path / target)
    assert invoke(db_url, "export", "--format", fmt, "-o", path).exit_code == 0
    sqlite_limit(999)

    imported = invoke(empty_db_url, "import", path)
    again = invoke(empty_db_url, "import", path, "--on-conflict", "replace")

    assert imported.exit_code == 0, imported.output
    assert again.exit_code == 0, again.output
    target_engine = make_engine(empty_db_url, load_entry_points=False, upgrade=False)
    try:
        assert snapshot(target_engine) == before
    finally:
        target_engine.close()


def test_an_import_on_sqlite_before_3_32_sends_its_batches_whole(engine, db_url, empty_db_url, tmp_path,
                                                                  sqlite_limit, caplog):
    """The import cut its batches to fit 999 values in one INSERT (71 habit logs a batch: 43 calls
    for 3,000 logs), which it no longer sends as one statement of them all (executemany binds one
    row at a time): only the look-up of which ids are taken, 500 of them, needs to fit. A batch is
    500 rows now, and the import is still whole under the limit."""
    _daily_logs(engine, 3000, dt.date(2000, 1, 1))
    before = snapshot(engine)
    path = str(tmp_path / "data.json")
    assert invoke(db_url, "export", "-o", path).exit_code == 0
    sqlite_limit(999)

    with caplog.at_level(logging.DEBUG, logger="peewee"):
        imported = invoke(empty_db_url, "import", path)

    assert imported.exit_code == 0, imported.output
    # By the logged text: a redaction filter an earlier command left on a root handler turns
    # peewee's (sql, params) message into its text before caplog sees it.
    batches = [re.search(r"'(\d+ rows)'\)$", message).group(1) for message in
               (record.getMessage() for record in caplog.records)
               if message.startswith("('INSERT INTO \"habit_logs\"")]
    assert batches == ["500 rows"] * 6
    target_engine = make_engine(empty_db_url, load_entry_points=False, upgrade=False)
    try:
        assert snapshot(target_engine) == before
    finally:
        target_engine.close()


def test_a_user_export_of_thousands_of_open_dialogs_works_on_sqlite_before_3_32(engine, db_url, tmp_path,
                                                                                 sqlite_limit):
    """``export --user`` read the person's bot state by a list of all its row ids in one statement:
    a person with more than 999 rows (open dialogs in many group chats) could not be exported on
    SQLite before 3.32 ("too many SQL variables")."""
    engine.add_user(101, "Ann", active=True)
    engine.add_user(102, "Bob", active=True)
    with engine.session(), engine.db.atomic():
        KeyValue.create(namespace="bot.user_data", key="101", value="{}")
        for start in range(0, 1200, 400):
            KeyValue.insert_many([{"namespace": "bot.conversations", "key": f"dialog:[-{100 + n},101]",
                                   "value": '"name"'} for n in range(start, start + 400)]).execute()
        KeyValue.create(namespace="bot.conversations", key="dialog:[-100,102]", value='"name"')
    dump = tmp_path / "ann.json"
    sqlite_limit(999)

    result = invoke(db_url, "export", "--user", "101", "-o", str(dump))

    assert result.exit_code == 0, result.output
    tables = {t["table"]: t for t in json.loads(dump.read_text())["tables"]}
    keys = [row[[c["name"] for c in tables["key_values"]["columns"]].index("key")]
            for row in tables["key_values"]["rows"]]
    assert tables["key_values"]["count"] == len(keys) == 1201
    assert keys == ["101"] + [f"dialog:[-{100 + n},101]" for n in range(1200)]  # in id order, as before


def test_an_import_does_not_build_its_sql_value_by_value(engine, db_url, empty_db_url, tmp_path, monkeypatch):
    """peewee's insert_many built each batch's INSERT anew, a node for every value: most of an
    import's time (41 s for 300,000 habit logs into PostgreSQL, whose export took 4 s). The
    statement is built once per table now; counted in the values peewee puts into SQL, not time
    (bench/data_transfer.py measures the time)."""
    import peewee

    _daily_logs(engine, 2000, dt.date(2000, 1, 1))
    before = snapshot(engine)
    path = tmp_path / "logs.json"
    assert invoke(db_url, "export", "-o", str(path)).exit_code == 0
    built = [0]
    value = peewee.Context.value

    def counted(self, *args, **kwargs):
        built[0] += 1
        return value(self, *args, **kwargs)

    monkeypatch.setattr(peewee.Context, "value", counted)
    result = invoke(empty_db_url, "import", str(path))
    monkeypatch.undo()

    assert result.exit_code == 0, result.output
    assert built[0] < 2 * 2000, built[0]  # about one per row (which ids are taken), not one per value
    target = make_engine(empty_db_url, load_entry_points=False, upgrade=False)
    try:
        assert snapshot(target) == before
    finally:
        target.close()
