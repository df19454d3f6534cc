"""``habitreward backup``: an online SQLite backup taken while completions are being written."""

from __future__ import annotations

import os
import shlex
import shutil
import sqlite3
import subprocess
import threading

import pytest
from click.testing import CliRunner

from habitreward.cli import cli
from habitreward.data.backup import backup_sqlite
from habitreward.models import ProcessedUpdate
from habitreward.testing.engines import FrozenClock, make_engine

ENV = {"HABITREWARD_LOAD_PLUGINS": ""}


def check_copy(path) -> dict[str, int]:
    """Open the copy on its own (no -wal next to it), check it, and count the rows that matter."""
    assert not os.path.exists(f"{path}-wal")
    connection = sqlite3.connect(path)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert connection.execute("PRAGMA foreign_key_check").fetchall() == []
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        return {
            table: connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("users", "habits", "habit_logs", "reward_progress")
        }
    finally:
        connection.close()


@pytest.mark.no_db
@pytest.mark.parametrize("pages_per_step", [1, -1], ids=["stepwise", "one-step"])
def test_backup_while_completions_are_written(tmp_path, pages_per_step):
    path = tmp_path / "live.db"
    clock = FrozenClock()
    engine = make_engine(f"sqlite:///{path}", clock=clock, load_entry_points=False)
    users = [engine.add_user(1000 + n, f"User {n}", active=True) for n in range(40)]
    habits = [engine.add_habit(f"Habit {n}") for n in range(5)]
    engine.add_reward("Star", weight=5)
    for user in users:  # some history
        for habit in habits:
            engine.complete(user, habit)
    clock.advance(days=1)
    with engine.session(), engine.db.atomic():  # ~4 MB of update inbox, so the copy takes many steps
        ProcessedUpdate.insert_many(
            [{"update_id": n, "payload": "x" * 4000} for n in range(1000)]
        ).execute()

    stop = threading.Event()
    written = []
    errors = []

    def writer() -> None:
        try:
            while not stop.is_set():
                for user in users:
                    for habit in habits:
                        engine.complete(user, habit)
                        written.append(1)
                clock.advance(days=1)
        except Exception as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(written) < 50:  # make sure the writer is busy before the backup starts
            assert thread.is_alive(), errors
            threading.Event().wait(0.01)
        before = len(written)
        result = backup_sqlite(path, tmp_path / "copy.db", pages_per_step=pages_per_step, show_progress=False)
        writing_during_backup = thread.is_alive() and before >= 50
        print(f"backup: {result.pages} pages, {result.restarts} restarts, single step: {result.single_step}")
    finally:
        stop.set()
        thread.join()
        engine.close()

    assert errors == []
    assert writing_during_backup
    counts = check_copy(result.path)
    assert counts["users"] == 40 and counts["habits"] == 5
    assert counts["habit_logs"] >= 200  # at least the history from before the backup
    assert counts["habit_logs"] <= 200 + len(written)


def test_backup_command_reports_and_refuses_to_overwrite(tmp_path):
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    engine = make_engine(url, load_entry_points=False)
    engine.add_user(1, "Ann", active=True)
    engine.close()
    target = tmp_path / "backups" / "bot-copy.db"
    target.parent.mkdir()
    runner = CliRunner()

    result = runner.invoke(cli, ["--database-url", url, "--env-file", os.devnull, "backup", str(target)], env=ENV)

    assert result.exit_code == 0, result.output
    assert f"to {target}" in result.stdout and "integrity ok" in result.stdout
    assert "Backing up bot.db: " in result.stderr and "(100%)" in result.stderr
    assert check_copy(target)["users"] == 1
    again = runner.invoke(cli, ["--database-url", url, "--env-file", os.devnull, "backup", str(target)], env=ENV)
    assert again.exit_code == 1
    assert "already exists: choose another path or pass --force" in again.output
    forced = runner.invoke(
        cli, ["--database-url", url, "--env-file", os.devnull, "backup", "--force", str(target)], env=ENV
    )
    assert forced.exit_code == 0, forced.output
    nowhere = runner.invoke(cli, ["--database-url", url, "--env-file", os.devnull, "backup",
                                  str(tmp_path / "missing" / "bot.db")], env=ENV)
    assert nowhere.exit_code == 1
    assert nowhere.output == f"Error: {tmp_path / 'missing'} is not a directory: create it first, or choose" \
                             " another path.\n"


@pytest.mark.postgres_only
def test_backup_on_postgresql_prints_a_pg_dump_command_that_works(engine, db_url, tmp_path):
    # DATABASE_URL in .env only (as with docs/deployment.md's systemd unit), with habitreward's own
    # options: the command said to run pg_dump "$DATABASE_URL", empty in the shell (pg_dump then
    # dumps another database, or none) and refused by pg_dump for ?max_connections=.
    engine.add_user(42, "Ann", active=True)
    (tmp_path / ".env").write_text(f"DATABASE_URL={db_url}?max_connections=5&prepared_statements=false\n")
    target = tmp_path / "nightly dump.pgdump"
    result = CliRunner().invoke(cli, ["--env-file", str(tmp_path / ".env"), "backup", str(target)], env=ENV)

    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "use pg_dump: pg_dump " in result.output
    command = shlex.split(result.output.split("use pg_dump: ", 1)[1])
    if shutil.which("pg_dump") is None:
        pytest.skip("pg_dump is not installed here")
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    subprocess.run(command, check=True, env=env, cwd=tmp_path, capture_output=True, timeout=120)
    listing = subprocess.run(["pg_restore", "--list", str(target)], check=True, capture_output=True, text=True).stdout
    assert "TABLE public habit_logs" in listing and "TABLE DATA public users" in listing


def test_backup_on_postgresql_shows_no_password(tmp_path):
    url = "postgresql://bot:s3cr%40t@db.internal:5433/habitreward?sslmode=require&max_connections=50"
    result = CliRunner().invoke(
        cli, ["--database-url", url, "--env-file", os.devnull, "backup", str(tmp_path / "x.dump")], env=ENV
    )

    assert result.exit_code == 1 and "s3cr" not in result.output
    assert result.output == (
        f"Error: backup copies SQLite databases; for PostgreSQL use pg_dump: pg_dump --format=custom "
        f"--file={tmp_path / 'x.dump'} 'postgresql://bot@db.internal:5433/habitreward?sslmode=require' "
        "(it asks for the password, or reads it from PGPASSWORD or ~/.pgpass)\n"
    )
    assert not (tmp_path / "x.dump").exists()


def test_backup_on_postgresql_shows_no_password_given_as_a_parameter(tmp_path):
    # libpq takes ?password= as well as user:password@; it was printed in the pg_dump command.
    url = "postgresql://bot@db.internal/habitreward?password=s3cret-param&sslmode=require"
    result = CliRunner().invoke(
        cli, ["--database-url", url, "--env-file", os.devnull, "backup", str(tmp_path / "x.dump")], env=ENV
    )

    assert result.exit_code == 1 and "s3cret-param" not in result.output
    assert "'postgresql://bot@db.internal/habitreward?sslmode=require' (it asks for the password" in result.output


def test_backup_on_postgresql_over_a_unix_socket_prints_a_url_libpq_takes(tmp_path):
    # Peer authentication over the socket directory: no host, no password. The command printed
    # postgresql:/habitreward?host=..., which libpq does not read as a URL, and said pg_dump would
    # ask for a password the URL never had.
    url = "postgresql:///habitreward?host=/var/run/postgresql&max_connections=5"
    result = CliRunner().invoke(
        cli, ["--database-url", url, "--env-file", os.devnull, "backup", str(tmp_path / "x.dump")], env=ENV
    )

    assert result.exit_code == 1
    assert result.output == (
        f"Error: backup copies SQLite databases; for PostgreSQL use pg_dump: pg_dump --format=custom "
        f"--file={tmp_path / 'x.dump'} 'postgresql:///habitreward?host=/var/run/postgresql'\n"
    )
