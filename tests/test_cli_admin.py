"""The admin command line: happy paths, --json shapes, and bad input (issue 2, Must show)."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from habitreward.cli import cli
from habitreward.models import CORE_MODELS


def snapshot(engine) -> dict:
    with engine.session():
        return {m._meta.table_name: sorted(tuple(r.values()) for r in m.select().dicts()) for m in CORE_MODELS}


def test_admin_commands_and_json(run, clock):
    assert run("users", "add", "42", "--name", "Ann", "--active", "--timezone", "UTC").exit_code == 0
    assert run("users", "add", "7", "--name", "Boss", "--admin").exit_code == 0
    assert run("habits", "add", "Running", "--weight", "20", "--skip-days", "1").exit_code == 0
    assert run("habits", "add", "Diary", "--user", "42").exit_code == 0
    assert run("rewards", "add", "Coffee", "--weight", "1000", "--pieces", "2", "--value", "2.50",
               "--max-per-day", "0").exit_code == 0
    assert run("rewards", "add", "Nothing", "--type", "none", "--weight", "0.001").exit_code == 0

    done = run("done", "42", "running", "--json")
    assert done.exit_code == 0, done.output
    payload = json.loads(done.output)
    assert payload["habit"] == "Running" and payload["streak"] == 1 and payload["already_done"] is False
    assert payload["reward"] == "Coffee"
    again = json.loads(run("done", "42", "Running", "--json").output)
    assert again["already_done"] is True and again["reward"] is None

    streaks = json.loads(run("streaks", "42", "--json").output)
    assert {s["habit"]: s["streak"] for s in streaks} == {"Diary": 0, "Running": 1}
    history = json.loads(run("history", "42", "--json").output)
    assert [(h["habit"], h["streak_count"], h["reward"]) for h in history] == [("Running", 1, "Coffee")]
    assert history[0]["completed_on"]
    odds = json.loads(run("odds", "42", "Running", "--json").output)["rewards"]
    assert {o["reward"] for o in odds} == {"Coffee", None}
    assert sum(o["probability"] for o in odds) == pytest.approx(1.0, abs=1e-5)

    users = json.loads(run("users", "list", "--json").output)
    assert [(u["telegram_id"], u["active"], u["admin"]) for u in users] == [(42, True, False), (7, True, True)]
    habits = json.loads(run("habits", "list", "--json").output)
    assert [(h["name"], h["owner"]) for h in habits] == [("Running", None), ("Diary", 42)]

    assert run("undo", "42", "Running").exit_code == 0
    assert json.loads(run("history", "42", "--json").output) == []
    assert json.loads(run("progress", "42", "--json").output)[0]["pieces_earned"] == 0


def test_claim_cycle_through_cli(run):
    run("users", "add", "42", "--name", "Ann", "--active")
    run("habits", "add", "A")
    run("rewards", "add", "Coffee", "--weight", "5", "--pieces", "1")
    result = run("claim", "42", "Coffee")
    assert result.exit_code == 1 and "not achieved yet: 0 of 1" in result.output
    assert json.loads(run("done", "42", "A", "--json").output)["status"] == "achieved"
    claimed = run("claim", "42", "Coffee", "--json")
    assert json.loads(claimed.output) == {"reward": "Coffee", "status": "claimed", "times_claimed": 1}
    assert "already claimed" in run("claim", "42", "Coffee").output


BAD_INPUT = [
    (["habits", "add", "X", "--weight", "0"], "weight must be from 1 to 100"),
    (["habits", "add", "X", "--weight", "101"], "weight must be from 1 to 100"),
    (["habits", "add", ""], "must not be empty"),
    (["habits", "add", "   "], "must not be empty"),
    (["habits", "add", "x" * 101], "at most 100 characters"),
    (["habits", "add", "running"], "already a habit called"),
    (["habits", "add", "Journal", "--user", "42"], "already a habit called"),
    (["habits", "add", "Y", "--user", "999"], "No user with Telegram id 999"),
    (["habits", "edit", "Nope", "--weight", "5"], "No habit called"),
    (["habits", "add", "Z", "--skip-days", "-1"], "skip days must be from 0"),
    (["rewards", "add", "R", "--pieces", "0"], "Pieces required must be from 1"),
    (["rewards", "add", "R", "--weight", "0"], "weight must be above 0"),
    (["rewards", "add", "R", "--weight", "-3"], "weight must be above 0"),
    (["rewards", "add", "R", "--weight", "1e308"], "weight must be above 0 and at most 1,000,000,000"),
    (["rewards", "add", "R", "--value", "abc"], "piece value must be a number"),
    (["rewards", "add", "R", "--max-per-day", "-1"], "Max per day must be from 0 (no limit) to 1000, got -1."),
    # Stored on SQLite, a DataError traceback on PostgreSQL (a 32-bit column):
    (["rewards", "add", "Cake", "--max-per-day", "3000000000"], "Max per day must be from 0 (no limit) to 1000"),
    (["rewards", "edit", "coffee", "--max-per-day", "1001"], "Max per day must be from 0 (no limit) to 1000"),
    (["rewards", "add", "coffee"], "already a reward called"),
    (["users", "add", "42", "--name", "Again"], "already exists"),
    (["users", "add", "43", "--name", "Tz", "--timezone", "Mars/Olympus"], "Unknown time zone"),
    (["users", "add", "43", "--name", "Lang", "--language", "de"], "language must be one of"),
    (["users", "add", "43", "--name", ""], "must not be empty"),
    (["users", "activate", "999"], "No user with Telegram id 999"),
    (["rewards", "add", "Cent", "--value", "0.005"], "at most two decimals (2.50), got '0.005'"),
    (["users", "edit", "42", "--name", "Anna", "--timezone", "Mars/Olympus"], "Unknown time zone"),
    (["users", "edit", "42", "--language", "kk", "--name", " "], "must not be empty"),
    (["users", "edit", "999", "--name", "Nobody"], "No user with Telegram id 999"),
    (["users", "edit", "42"], "Nothing to change"),
    (["done", "999", "Running"], "No user with Telegram id 999"),
    (["done", "42", "Swimming"], "No habit called 'Swimming'"),
    (["done", "42", "Running", "--date", "2099-01-01"], "in the future"),
    (["done", "42", "Running", "--date", "2026-01-01"], "more than 7 days ago"),
    (["done", "42", "Running", "--date", "yesterday"], "--date must look like"),
    (["undo", "42", "Running"], "no completion of 'Running' to undo"),
    (["claim", "42", "Nope"], "No reward called"),
    (["odds", "42", "Nope"], "No habit called"),
    (["history", "999"], "No user with Telegram id 999"),
]


def test_done_undo_and_odds_take_a_habits_alias_as_the_bot_does(run):
    # "jog" logs Running in the bot; `done 42 jog` said "No habit called 'jog'".
    run("users", "add", "42", "--name", "Ann", "--active")
    run("habits", "add", "Running")
    run("habits", "add", "Reading")
    run("habits", "alias", "add", "Running", "jog")
    run("habits", "alias", "add", "Running", "move")
    run("habits", "alias", "add", "Reading", "move")
    done = run("done", "42", "Jog", "--json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["habit"] == "Running"
    assert json.loads(run("odds", "42", "jog", "--json").output)["habit"] == "Running"
    assert run("undo", "42", "jog").output.startswith("Undid Running on ")
    ambiguous = run("done", "42", "move")
    assert ambiguous.exit_code == 1
    assert ambiguous.output == "Error: 'move' is an alias of 2 habits: 'Reading', 'Running'; name the habit.\n"
    assert run("done", "42", "swim").output == "Error: No habit called 'swim'.\n"


@pytest.mark.parametrize("args,message", BAD_INPUT, ids=[" ".join(a)[:40] for a, _ in BAD_INPUT])
def test_bad_input_is_one_line_and_changes_nothing(run, engine, args, message):
    # The clock fixture says 2026-01-05, so 2026-01-01 is 4 days ago for the engine; the CLI
    # uses the real clock, where it is long ago.
    run("users", "add", "42", "--name", "Ann", "--active")
    run("habits", "add", "Running")
    run("habits", "add", "Journal")
    run("rewards", "add", "Coffee")
    before = snapshot(engine)
    result = run(*args)
    assert result.exit_code != 0
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == [lines[0]] and lines[0].startswith("Error: "), result.output
    assert message in lines[0]
    assert snapshot(engine) == before


@pytest.mark.parametrize("args", [["users", "add", "99999999999999999999", "--name", "Huge"],
                                  ["done", "99999999999999999999", "Running"], ["users", "add", "0", "--name", "Zero"],
                                  ["habits", "list", "--user", "-3"]])
def test_a_telegram_id_out_of_range_is_a_usage_error(run, args):
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert "A Telegram user id is a whole number from 1 to 9223372036854775807" in result.output
    assert "Traceback" not in result.output


def test_bad_database_url_is_a_clear_error():
    runner = CliRunner()
    result = runner.invoke(cli, ["--env-file", os.devnull, "--database-url", "postgresql://x", "users", "list"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: DATABASE_URL is not usable: it names no database (postgresql://user@host/dbname)")
    for url in ("mysql://x", "mysql://x/y"):
        result = runner.invoke(cli, ["--env-file", os.devnull, "--database-url", url, "users", "list"])
        assert result.exit_code == 1
        assert "Error: DATABASE_URL must be a SQLite (sqlite:///habitreward.db) or PostgreSQL" in result.output
        assert "mysql:// is not supported" in result.output and "pip install" not in result.output
    result = runner.invoke(cli, ["--env-file", os.devnull, "--database-url", "nonsense", "users", "list"])
    assert result.exit_code == 1 and "DATABASE_URL must be a URL" in result.output


@pytest.mark.parametrize(("url", "message"), [
    ("sqlite:///{tmp}/a.db?synchronus=full",
     "SQLite has no option ?synchronus= (a sqlite:// URL takes synchronous and timeout)"),
    ("sqlite:///{tmp}/a.db?timeout=soon", "timeout must be a number of at least 0, not 'soon'"),
    ("postgresql://bot@127.0.0.1:1/hr?max_conections=50&sslmode=disable",
     "unknown option ?max_conections= (habitreward's own"),
    ("postgresql://bot@127.0.0.1:1/hr?max_connections=fifty",
     "max_connections must be a whole number of at least 1, not 'fifty'"),
    ("postgresql://bot@127.0.0.1:1/hr?max_connections=0",
     "max_connections must be a whole number of at least 1, not '0'"),
    ("postgresql://bot@127.0.0.1:1/hr?stale_timeout=x", "stale_timeout must be a number of at least 0, not 'x'"),
])
def test_a_mistyped_option_in_the_database_url_is_a_one_line_error(tmp_path, url, message):
    # These used to reach the driver: a TypeError or psycopg2's "invalid dsn" as a traceback.
    result = CliRunner().invoke(cli, ["--env-file", os.devnull, "--database-url", url.format(tmp=tmp_path),
                                      "users", "list"])
    assert result.exit_code == 1, result.output
    assert result.output.startswith(f"Error: DATABASE_URL is not usable: {message}"), result.output
    assert result.output.count("\n") == 1 and "Traceback" not in result.output
    assert not (tmp_path / "a.db").exists()


@pytest.mark.parametrize(("where", "reason"), [
    ("missing/folder/bot.db", "{tmp}/missing/folder/bot.db: its folder {tmp}/missing/folder does not exist"),
    ("a_folder", "{tmp}/a_folder is a directory, not a database file"),
])
def test_a_sqlite_file_that_cannot_be_opened_is_named_with_the_reason(tmp_path, where, reason):
    # SQLite says only "unable to open database file": which file, and why, is left to guess.
    (tmp_path / "a_folder").mkdir()
    result = CliRunner().invoke(cli, ["--env-file", os.devnull, "--database-url", f"sqlite:///{tmp_path / where}",
                                      "users", "list"])
    assert result.exit_code == 1, result.output
    assert result.output == f"Error: Database error: unable to open database file: {reason.format(tmp=tmp_path)}\n"


@pytest.mark.parametrize("url", ["sqlite:///{tmp}/bot.db   # the live one",
                                 "postgresql://bot:pa#ss@127.0.0.1:1/hr  # prod"])
def test_a_database_url_with_a_comment_after_it_opens_no_other_database(tmp_path, url):
    # systemd's EnvironmentFile= keeps a comment after a value: the URL's rest was dropped as a
    # fragment, and a new, empty database 'bot.db   ' was made next to the real one.
    result = CliRunner().invoke(cli, ["--env-file", os.devnull, "--database-url", url.format(tmp=tmp_path),
                                      "users", "list"])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: DATABASE_URL is not usable: it holds a '#', which a URL cannot")
    assert result.output.count("\n") == 1 and "ss@" not in result.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.postgres_only
def test_a_hash_in_a_postgresql_user_or_password_written_as_the_error_says_connects(engine, db_url):
    # The error above says to write a '#' in a password as %23, as libpq (pg_dump, psql) reads a
    # URL; habitreward handed '%23' on as it was: "role "hr%23..." does not exist", or a refused password.
    import uuid
    from urllib.parse import urlparse

    import psycopg2

    from habitreward.db import open_database

    engine.add_user(42, "Ann")
    role = f"hr#{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(db_url)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"CREATE ROLE \"{role}\" LOGIN SUPERUSER PASSWORD 'pa#ss'")
    try:
        parts = urlparse(db_url)
        netloc = f"{role.replace('#', '%23')}:pa%23ss@{parts.hostname}:{parts.port or 5432}"
        url = parts._replace(netloc=netloc).geturl()
        assert open_database(url, bind=False).connect_params["password"] == "pa#ss"
        result = CliRunner().invoke(cli, ["--env-file", os.devnull, "--database-url", url, "users", "list", "--json"],
                                    env={"HABITREWARD_LOAD_PLUGINS": ""})
        assert result.exit_code == 0, result.output
        assert [u["telegram_id"] for u in json.loads(result.output)] == [42]
    finally:
        engine.close()  # the CLI's pool is gone with its engine; the role has no session left
        with admin.cursor() as cur:
            cur.execute(f'DROP ROLE "{role}"')
        admin.close()


def test_version_and_help():
    runner = CliRunner()
    from habitreward import __version__

    assert runner.invoke(cli, ["--version"]).output.strip() == f"habitreward, version {__version__}"
    out = runner.invoke(cli, ["--help"]).output
    for command in ("db", "users", "habits", "rewards", "done", "undo", "claim", "streaks", "history", "odds",
                    "plugins"):
        assert f"  {command} " in out or f"  {command}\n" in out, command


def test_user_lifecycle_commands(run):
    run("users", "add", "42", "--name", "Ann")
    def users() -> dict:
        return {u["telegram_id"]: (u["active"], u["admin"]) for u in json.loads(run("users", "list", "--json").output)}

    assert users() == {42: (False, False)}
    assert "is active" in run("users", "activate", "42").output
    assert users() == {42: (True, False)}
    assert "is inactive" in run("users", "deactivate", "42").output
    assert users() == {42: (False, False)}
    assert "is an admin" in run("users", "promote", "42").output
    assert users() == {42: (True, True)}  # promoting approves too
    assert "no longer an admin" in run("users", "promote", "42", "--revoke").output
    assert users() == {42: (True, False)}
    assert run("users", "delete", "42", "--yes").exit_code == 0
    assert users() == {}


def test_promoting_the_first_admin_says_who_is_waiting_for_one(run, engine):
    """Newcomers who asked while the bot had no admin (the bot keeps their request "unsent"): the
    operator who makes an admin is told who they are, that their request reaches the admin at
    their next message, and how to let them in now; a request an admin has is not counted there.
    Every waiting request, sent to the admins there were or not, is counted for the new admin, who
    gets them with /requests in the bot."""
    import datetime as dt

    from habitreward.bot.state import APPROVAL, REQUESTED, SENDING, SENDING_LEASE, UNSENT, set_approval
    from habitreward.models import KeyValue, utcnow

    for tid, name, state in ((3, "Bob", UNSENT), (5, "Cid", UNSENT), (6, "Dee", REQUESTED), (8, "Fay", SENDING),
                             (9, "Gus", SENDING)):
        engine.register(tid, name)
        set_approval(engine, tid, state)
    with engine.transaction():  # the CLI's real clock: Fay's sender was killed a lease ago, Gus's is at it
        for tid, taken in ((8, utcnow() - SENDING_LEASE - dt.timedelta(minutes=1)), (9, utcnow())):
            KeyValue.update(updated_at=taken).where((KeyValue.namespace == APPROVAL)
                                                    & (KeyValue.key == str(tid))).execute()
    run("users", "add", "42", "--name", "Ann", "--active")
    promoted = run("users", "promote", "42")
    assert promoted.exit_code == 0
    assert promoted.output == (
        "Ann (42) is an admin.\n"
        "3 people asked to use the bot while no admin could get their request: Bob (3), Cid (5), Fay (8). It"
        " reaches the admins at their next message to the bot (five minutes or more after a refused try); to"
        " let one in now: habitreward users activate ID (who waits: habitreward users list --waiting)\n"
        "Requests waiting for an answer: 5. Ann gets them in the bot with /requests (each with Approve and"
        " Decline).\n")
    run("users", "activate", "3")
    run("users", "activate", "8")
    assert "1 person asked to use the bot while no admin could get their request: Cid (5)." in \
        run("users", "promote", "42").output
    run("users", "activate", "5")
    assert run("users", "promote", "42").output == (  # Dee's an admin has, Gus's is being sent: neither reached Ann
        "Ann (42) is an admin.\n"
        "Requests waiting for an answer: 2. Ann gets them in the bot with /requests (each with Approve and"
        " Decline).\n")
    run("users", "activate", "6")
    run("users", "activate", "9")
    assert run("users", "promote", "42").output == "Ann (42) is an admin.\n"
    assert "asked to use the bot" not in run("users", "promote", "42", "--revoke").output


def test_users_list_waiting_shows_the_requests_that_wait_oldest_first_and_where_each_stands(run, engine):
    """With REGISTRATION=approval an operator sees who waits to be let in, and whether an admin has
    their request or nobody does yet (the bot sends it at their next message): oldest request
    first, not by id or name; declined people, those who never asked and active users are left out."""
    import datetime as dt

    from habitreward.bot.state import set_approval
    from habitreward.engine.users import DECLINED, REQUESTED, SENDING, UNSENT
    from habitreward.models import KeyValue, User

    for tid, name, state in ((5, "Cid", REQUESTED), (3, "Bob", UNSENT), (7, "Dee", DECLINED), (9, "Eve", None),
                             (8, "Fay", SENDING), (6, "Gus", SENDING)):
        engine.register(tid, name, language_code="ru" if tid == 3 else None)
        set_approval(engine, tid, state)
    engine.add_user(42, "Ann", admin=True)
    with engine.session():
        User.update(created_at=dt.datetime(2026, 3, 4, 5, 6, 7)).where(User.telegram_id == 5).execute()
        User.update(created_at=dt.datetime(2026, 3, 5, 8, 9, 10)).where(User.telegram_id == 3).execute()
        User.update(created_at=dt.datetime(2026, 3, 6, 0, 0, 0)).where(User.telegram_id == 8).execute()
        User.update(created_at=dt.datetime(2026, 3, 7, 0, 0, 0)).where(User.telegram_id == 6).execute()
        # Fay's is being sent now; Gus's sender stopped half-way 11 minutes ago: nobody has his request
        # (the bot takes it again). The CLI runs on the real clock.
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        KeyValue.update(updated_at=now).where(KeyValue.key == "8").execute()
        KeyValue.update(updated_at=now - dt.timedelta(minutes=11)).where(KeyValue.key == "6").execute()

    table = run("users", "list", "--waiting")

    assert table.exit_code == 0, table.output
    assert table.output == (
        "telegram_id  name  request          asked (UTC)       language  timezone\n"
        "-----------  ----  ---------------  ----------------  --------  --------\n"
        "5            Cid   an admin has it  2026-03-04 05:06  en        UTC\n"
        "3            Bob   no admin has it  2026-03-05 08:09  ru        UTC\n"
        "8            Fay   being sent       2026-03-06 00:00  en        UTC\n"
        "6            Gus   no admin has it  2026-03-07 00:00  en        UTC\n"
    )
    assert json.loads(run("users", "list", "--waiting", "--json").output) == [
        {"telegram_id": 5, "name": "Cid", "active": False, "admin": False, "language": "en", "timezone": "UTC",
         "created_at": "2026-03-04 05:06:07", "request": "requested"},
        {"telegram_id": 3, "name": "Bob", "active": False, "admin": False, "language": "ru", "timezone": "UTC",
         "created_at": "2026-03-05 08:09:10", "request": "unsent"},
        {"telegram_id": 8, "name": "Fay", "active": False, "admin": False, "language": "en", "timezone": "UTC",
         "created_at": "2026-03-06 00:00:00", "request": "sending"},
        {"telegram_id": 6, "name": "Gus", "active": False, "admin": False, "language": "en", "timezone": "UTC",
         "created_at": "2026-03-07 00:00:00", "request": "unsent"},
    ]
    assert "--waiting" in run("users", "list", "--help").output
    run("users", "activate", "5")
    run("users", "delete", "3", "--yes")
    run("users", "activate", "8")
    run("users", "activate", "6")
    assert run("users", "list", "--waiting").output == "Nobody is waiting to be let in.\n"
    assert run("users", "list", "--waiting", "--json").output == "[]\n"


def test_a_listed_admin_cannot_be_deactivated_or_demoted_from_the_cli(run, engine, monkeypatch):
    """ADMIN_TELEGRAM_IDS makes them an active admin again at their next message: refuse, say why."""
    run("users", "add", "42", "--name", "Ann", "--admin")
    monkeypatch.setenv("ADMIN_TELEGRAM_IDS", "42")
    before = snapshot(engine)
    for args in (["users", "deactivate", "42"], ["users", "promote", "42", "--revoke"]):
        refused = run(*args)
        assert refused.exit_code == 1
        assert "42 is listed in ADMIN_TELEGRAM_IDS, which makes them an active admin again" in refused.output
    assert snapshot(engine) == before
    monkeypatch.setenv("ADMIN_TELEGRAM_IDS", "7")
    assert "is inactive" in run("users", "deactivate", "42").output


def test_a_user_s_name_time_zone_and_language_can_be_changed(run):
    run("users", "add", "42", "--name", "Ann", "--timezone", "UTC+5")
    assert "Ann" in run("users", "list").output and "UTC+5" in run("users", "list").output
    changed = run("users", "edit", "42", "--name", "Anna", "--timezone", "Asia/Almaty", "--language", "kk")
    assert changed.output == "Anna (42): language kk, time zone Asia/Almaty.\n"
    (user,) = json.loads(run("users", "list", "--json").output)
    assert (user["name"], user["timezone"], user["language"]) == ("Anna", "Asia/Almaty", "kk")
    assert run("users", "edit", "42", "--timezone", "-3").output.endswith("time zone UTC-3.\n")


def test_edit_and_remove_habits_and_rewards(run):
    run("habits", "add", "Running", "--weight", "20", "--category", "health")
    run("rewards", "add", "Coffee", "--weight", "2", "--pieces", "3")
    assert run("habits", "edit", "running", "--name", "Jogging", "--weight", "30", "--category", "",
               "--skip-days", "2").exit_code == 0
    [habit] = json.loads(run("habits", "list", "--json").output)
    assert (habit["name"], habit["weight"], habit["category"], habit["skip_days"]) == ("Jogging", 30, None, 2)
    assert run("rewards", "edit", "coffee", "--pieces", "5", "--value", "1.50", "--max-per-day", "0",
               "--type", "real").exit_code == 0
    [reward] = json.loads(run("rewards", "list", "--json").output)
    assert (reward["pieces"], reward["value"], reward["max_per_day"], reward["type"]) == (5, "1.50", 0, "real")

    assert "Removed habit 'Jogging'" in run("habits", "remove", "Jogging").output
    assert json.loads(run("habits", "list", "--json").output) == []
    assert [h["active"] for h in json.loads(run("habits", "list", "--all", "--json").output)] == [False]
    assert "Removed reward 'Coffee'" in run("rewards", "remove", "Coffee").output
    assert json.loads(run("rewards", "list", "--json").output) == []
    # Removed names are free again.
    assert run("habits", "add", "Jogging").exit_code == 0


def test_db_status_and_upgrade(db_url, backend, tmp_path, monkeypatch):
    monkeypatch.setenv("HABITREWARD_LOAD_PLUGINS", "")
    runner = CliRunner()
    url = f"sqlite:///{tmp_path / 'fresh.db'}" if backend == "sqlite" else db_url
    args = ["--env-file", os.devnull, "--database-url", url]
    if backend == "sqlite":
        pending = runner.invoke(cli, [*args, "db", "status", "--json"])
        assert pending.exit_code == 1  # pending migrations: a deploy script can gate on it
        assert all(row["applied"] is None for row in json.loads(pending.output))
        upgraded = runner.invoke(cli, [*args, "db", "upgrade"])
        assert "applied habitreward:0001_initial" in upgraded.output
    assert runner.invoke(cli, [*args, "db", "upgrade"]).output.strip() == "The database is up to date."
    status = runner.invoke(cli, [*args, "db", "status", "--json"])
    assert status.exit_code == 0
    assert all(row["applied"] for row in json.loads(status.output))


def test_habits_list_orders_every_habit_and_prints_tables_and_json(run, engine):
    """Shared ones first, by name whatever its case; habits of one name (different owners) by id."""
    ann, bob = engine.add_user(42, "Ann", active=True), engine.add_user(7, "Bob", active=True)
    engine.add_habit("running", owner=bob, category="sport")
    engine.add_habit("Diary", weight=30, allowed_skip_days=2)
    engine.add_habit("Running", owner=ann)
    engine.remove_habit(engine.add_habit("Gone"))
    engine.add_habit("alpha")

    table = run("habits", "list")

    assert table.exit_code == 0, table.output
    assert table.output == (
        "id  name     weight  category  skip_days  owner   active\n"
        "--  -------  ------  --------  ---------  ------  ------\n"
        "5   alpha    10                0          shared  yes\n"
        "2   Diary    30                2          shared  yes\n"
        "1   running  10      sport     0          7       yes\n"
        "3   Running  10                0          42      yes\n"
    )
    listed = json.loads(run("habits", "list", "--all", "--json").output)
    assert [(h["name"], h["owner"], h["active"]) for h in listed] == [
        ("alpha", None, True), ("Diary", None, True), ("Gone", None, False), ("running", 7, True),
        ("Running", 42, True)]
    assert listed[1] == {"id": 2, "name": "Diary", "weight": 30, "category": None, "skip_days": 2, "owner": None,
                         "active": True}
    assert run("habits", "list", "--json").output.startswith('[\n  {\n    "id": 5,\n    "name": "alpha",\n')


def test_habits_list_of_a_big_bot_holds_no_habit_it_has_printed(engine, db_url, monkeypatch, tmp_path):
    """Listing 45,000 habits took 2 s and 180-220 MB (every habit a model, then a dict, then the
    whole JSON text); the rows are now printed as they are read (0.6 s, 45 MB)."""
    import contextlib
    import os
    import tracemalloc

    from habitreward.models import Habit

    count = 10_000
    with engine.session(), engine.db.atomic():
        for start in range(0, count, 1000):
            Habit.insert_many([{"name": f"Habit {n:05}", "weight": 10} for n in range(start, start + 1000)]).execute()
    monkeypatch.setenv("HABITREWARD_LOAD_PLUGINS", "")
    out = tmp_path / "habits.json"
    with open(out, "w") as sink, contextlib.redirect_stdout(sink):
        tracemalloc.start()
        try:
            cli.main(["--env-file", os.devnull, "--database-url", db_url, "habits", "list", "--json"],
                     standalone_mode=False)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    listed = json.loads(out.read_text())
    assert [h["name"] for h in listed] == [f"Habit {n:05}" for n in range(count)]
    # Before: 24 MB for these 1.5 MB of JSON; now 0.7 MB (SQLite) to 1.2 MB (PostgreSQL), however many.
    assert peak < 2 * out.stat().st_size, (peak, out.stat().st_size)


def test_users_list_prints_every_user_oldest_first_as_a_table_and_json(run, engine):
    import datetime as dt

    from habitreward.models import User

    engine.add_user(42, "Ann", active=True, timezone="UTC+5", language="kk")
    engine.add_user(7, "Boss", admin=True, timezone="Asia/Almaty")
    engine.add_user(103, "Ёж Pat", language="ru")
    with engine.session():
        User.update(created_at=dt.datetime(2026, 3, 4, 5, 6, 7, 890)).execute()

    table = run("users", "list")

    assert table.exit_code == 0, table.output
    assert table.output == (
        "telegram_id  name    active  admin  language  timezone\n"
        "-----------  ------  ------  -----  --------  -----------\n"
        "42           Ann     yes     no     kk        UTC+5\n"
        "7            Boss    yes     yes    en        Asia/Almaty\n"
        "103          Ёж Pat  no      no     ru        UTC\n"
    )
    assert run("users", "list", "--json").output == json.dumps([
        {"telegram_id": 42, "name": "Ann", "active": True, "admin": False, "language": "kk",
         "timezone": "Etc/GMT-5", "created_at": "2026-03-04 05:06:07"},
        {"telegram_id": 7, "name": "Boss", "active": True, "admin": True, "language": "en",
         "timezone": "Asia/Almaty", "created_at": "2026-03-04 05:06:07"},
        {"telegram_id": 103, "name": "Ёж Pat", "active": False, "admin": False, "language": "ru",
         "timezone": "UTC", "created_at": "2026-03-04 05:06:07"},
    ], ensure_ascii=False, indent=2) + "\n"
    with engine.session():
        User.delete().execute()
    assert run("users", "list").output == "No users yet.\n"
    assert run("users", "list", "--json").output == "[]\n"


def test_rewards_list_prints_shared_ones_first_by_name_as_a_table_and_json(run, engine):
    from decimal import Decimal

    ann, bob = engine.add_user(42, "Ann", active=True), engine.add_user(7, "Bob", active=True)
    engine.add_reward("sticker", owner=bob, weight=1 / 3)
    engine.add_reward("Coffee", weight=1000, type="real", pieces_required=2, piece_value=Decimal("2.50"),
                      max_per_day=0)
    engine.add_reward("Sticker", owner=ann, piece_value=Decimal("9999999999.99"))
    engine.remove_reward(engine.add_reward("Gone", weight=2.5))
    engine.add_reward("Nothing", type="none", weight=0.001)

    table = run("rewards", "list")

    assert table.exit_code == 0, table.output
    assert table.output == (
        "id  name     weight    type     pieces  value          max/day   owner   active\n"
        "--  -------  --------  -------  ------  -------------  --------  ------  ------\n"
        "2   Coffee   1000      real     2       2.50           no limit  shared  yes\n"
        "5   Nothing  0.001     none     1                      1         shared  yes\n"
        "1   sticker  0.333333  virtual  1                      1         7       yes\n"
        "3   Sticker  1         virtual  1       9999999999.99  1         42      yes\n"
    )
    listed = json.loads(run("rewards", "list", "--all", "--json").output)
    assert [(r["name"], r["owner"], r["active"]) for r in listed] == [
        ("Coffee", None, True), ("Gone", None, False), ("Nothing", None, True), ("sticker", 7, True),
        ("Sticker", 42, True)]
    assert listed[0] == {"id": 2, "name": "Coffee", "weight": 1000.0, "type": "real", "pieces": 2, "value": "2.50",
                         "max_per_day": 0, "owner": None, "active": True, "in_draw": True}
    assert run("rewards", "list", "--json").output.startswith(
        '[\n  {\n    "id": 2,\n    "name": "Coffee",\n    "weight": 1000.0,\n')
    mine = json.loads(run("rewards", "list", "--user", "42", "--json").output)
    assert [(r["name"], r["owner"]) for r in mine] == [("Coffee", None), ("Nothing", None), ("Sticker", 42)]
    engine.remove_reward(engine.find_reward(None, "Coffee"))
    engine.remove_reward(engine.find_reward(None, "Nothing"))
    engine.remove_reward(engine.find_reward(ann, "Sticker"))
    engine.remove_reward(engine.find_reward(bob, "sticker"))
    assert run("rewards", "list").output == "No rewards yet.\n"
    assert run("rewards", "list", "--json").output == "[]\n"


@pytest.mark.parametrize("listing", ["users", "rewards"])
def test_users_and_rewards_list_of_a_big_bot_hold_none_they_have_printed(engine, db_url, monkeypatch, tmp_path,
                                                                         listing):
    """As habits list: every user (or reward) was a model instance, then a dict, then the whole JSON
    text (10,000 users: 1.0 s and 100 MB before, see docs/performance.md); now printed as read."""
    import contextlib
    import os
    import tracemalloc

    from habitreward.models import Reward, User

    count = 10_000
    with engine.session(), engine.db.atomic():
        for start in range(0, count, 500):
            if listing == "users":
                User.insert_many([{"telegram_id": 10_000 + n, "name": f"User {n:05}"}
                                  for n in range(start, start + 500)]).execute()
            else:
                Reward.insert_many([{"name": f"Reward {n:05}", "piece_value": "1.25"}
                                    for n in range(start, start + 500)]).execute()
    monkeypatch.setenv("HABITREWARD_LOAD_PLUGINS", "")
    out = tmp_path / "listed.json"
    with open(out, "w") as sink, contextlib.redirect_stdout(sink):
        tracemalloc.start()
        try:
            cli.main(["--env-file", os.devnull, "--database-url", db_url, listing, "list", "--json"],
                     standalone_mode=False)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    listed = json.loads(out.read_text())
    prefix = "User" if listing == "users" else "Reward"
    assert [item["name"] for item in listed] == [f"{prefix} {n:05}" for n in range(count)]
    assert peak < 2 * out.stat().st_size, (peak, out.stat().st_size)
