"""``habitreward import-airtable`` against a local Airtable stand-in (pages, 429s, bad rows, 5,000 logs)."""

from __future__ import annotations

import datetime as dt
import os
import pty
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from airtable_standin import AirtableStandIn, record
from habitreward.cli import cli
from habitreward.db import open_database
from habitreward.models import Habit, HabitLog, Reward, RewardProgress, User

LOG_COUNT = 5000
FIRST_DAY = dt.date(2012, 1, 1)


def seed_base(standin: AirtableStandIn) -> None:
    """The seed's five tables, with a few bad records among good ones."""
    standin.tables["Users"] = [
        record("recU1", name="Ann", telegram_id="101", active=True, language="en"),
        record("recU2", name="Bob", telegram_id=102),  # unchecked "active" is left out by Airtable
        record("recU3", name="Dana", telegram_id="103", active=True, language="ru"),
        record("recUbad", name="No Id", active=True),
    ]
    standin.tables["Habits"] = [
        record("recH1", name="Running", weight=20, category="Sport", active=True),
        record("recH2", name="Reading", weight=10, active=True),
        record("recH3", name="Old habit", weight=5),  # inactive
        record("recHbad", name="Too heavy", weight=500, active=True),
    ]
    standin.tables["Rewards"] = [
        record("recR1", name="Coffee", weight=5, type="REAL", pieces_required=3, piece_value=2.499, active=True),
        record("recR2", name="Nothing", weight=10, type="NONE", active=True),
        record("recR3", name="Sticker", weight=2.5, type="VIRTUAL", active=True),
        record("recRbad", name="Broken", weight=0, type="VIRTUAL", active=True),
    ]
    standin.tables["RewardProgress"] = [
        record("recP1", user=["recU1"], reward=["recR1"], pieces_earned=2),
        record("recP2", user=["recU2"], reward=["recR3"], pieces_earned=1, claimed=True),
        record("recPbad", user=["recU1"], reward=["recRbad"], pieces_earned=1),
    ]
    logs = []
    pairs = [(u, h) for u in ("recU1", "recU2", "recU3") for h in ("recH1", "recH2")]
    for n in range(LOG_COUNT):
        user, habit = pairs[n % len(pairs)]
        day = FIRST_DAY + dt.timedelta(days=n // len(pairs))
        reward = ["recR1"] if n % 7 == 0 else (["recR2"] if n % 7 == 1 else None)
        logs.append(
            record(
                f"recL{n:05d}",
                created=f"{day.isoformat()}T18:00:01.000Z",
                user=[user],
                habit=[habit],
                reward=reward,
                timestamp=f"{day.isoformat()}T18:00:00.000Z",
                got_reward=reward is not None,
                streak_count=n // len(pairs) + 1,
                habit_weight=20 if habit == "recH1" else 10,
                total_weight_applied=1.5,
                last_completed_date=day.isoformat(),
            )
        )
    logs.append(record("recLbad1", user=["recGONE"], habit=["recH1"], timestamp="2024-01-01T10:00:00.000Z"))
    logs.append(record("recLbad2", user=["recU1"], habit=["recHbad"], timestamp="2024-01-01T10:00:00.000Z"))
    standin.tables["HabitLog"] = logs


@pytest.fixture
def standin():
    server = AirtableStandIn().start()
    seed_base(server)
    yield server
    server.stop()


def run_import(db_url: str, standin: AirtableStandIn, *extra: str, env: dict | None = None):
    runner = CliRunner()
    args = ["--database-url", db_url, "--env-file", os.devnull, "import-airtable"]
    args += ["--api-key", standin.api_key, "--base-id", standin.base_id, "--endpoint-url", standin.url, *extra]
    return runner.invoke(cli, args, env={"HABITREWARD_LOAD_PLUGINS": "", **(env or {})}, catch_exceptions=False)


def table_lines(output: str) -> dict[str, list[int]]:
    """The closing table as {table: [read, created, updated, unchanged, skipped]}."""
    rows = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 6 and parts[1].isdigit():
            rows[parts[0]] = [int(p) for p in parts[1:]]
    return rows


def snapshot(db_url: str) -> dict[str, list[dict]]:
    database = open_database(db_url)
    try:
        with database.connection_context():
            return {
                m._meta.table_name: list(m.select().order_by(m.id).dicts())
                for m in (User, Habit, Reward, RewardProgress, HabitLog)
            }
    finally:
        database.close()


def test_import_maps_everything_skips_bad_rows_and_retries_429(db_url, standin):
    standin.rate_limit("HabitLog", 1)  # the first page of logs is answered 429 and must be retried

    result = run_import(db_url, standin, env={"DEFAULT_TIMEZONE": "Asia/Almaty"})

    assert result.exit_code == 0, result.output
    assert standin.answered(429) == 1
    assert table_lines(result.stdout) == {
        "Users": [4, 3, 0, 0, 1],
        "Habits": [4, 3, 0, 0, 1],
        "Rewards": [4, 3, 0, 0, 1],
        "RewardProgress": [3, 2, 0, 0, 1],
        "HabitLog": [LOG_COUNT + 2, LOG_COUNT, 0, 0, 2],
    }
    out = result.stdout
    assert "skipped Users recUbad: telegram_id is missing" in out
    assert "skipped Habits recHbad: The habit weight must be from 1 to 100, got 500" in out
    assert "skipped Rewards recRbad: The reward weight must be above 0" in out
    assert "skipped RewardProgress recPbad: reward links to recRbad, which is not in Rewards or was skipped" in out
    assert "skipped HabitLog recLbad1: user links to recGONE" in out
    assert "skipped HabitLog recLbad2: habit links to recHbad" in out
    # The progress of reading and of writing 5,000 logs is shown on stderr.
    assert "Reading HabitLog: 1000 records so far" in result.stderr
    assert "Reading HabitLog: 5000 records so far" in result.stderr
    assert "Writing HabitLog: 500/5000 (10%)" in result.stderr
    assert "Writing HabitLog: 5000/5000 (100%)" in result.stderr

    database = open_database(db_url)
    with database.connection_context():
        ann = User.get(User.telegram_id == 101)
        bob = User.get(User.telegram_id == 102)
        dana = User.get(User.telegram_id == 103)
        assert (ann.name, ann.active, ann.language, ann.airtable_id) == ("Ann", True, "en", "recU1")
        assert (bob.active, dana.language, dana.language_chosen, bob.language_chosen) == (False, "ru", True, False)
        assert ann.timezone == "Asia/Almaty" and ann.created_at == dt.datetime(2025, 1, 1, 8, 0)
        running = Habit.get(Habit.name == "Running")
        assert (running.weight, running.category, running.active, running.owner_id) == (20, "Sport", True, None)
        assert Habit.get(Habit.name == "Old habit").active is False
        coffee = Reward.get(Reward.name == "Coffee")  # 2.499 in Airtable: kept to the cent
        assert (coffee.type, coffee.pieces_required, coffee.piece_value, coffee.owner_id) == (
            "real",
            3,
            Decimal("2.50"),
            None,
        )
        assert Reward.get(Reward.name == "Nothing").type == "none"
        progress = RewardProgress.get(RewardProgress.airtable_id == "recP2")
        assert (progress.user_id, progress.reward.name, progress.claimed, progress.times_claimed) == (
            bob.id,
            "Sticker",
            True,
            1,
        )
        assert HabitLog.select().count() == LOG_COUNT
        # Links: every log points at the user and habit its Airtable record linked.
        log = HabitLog.get(HabitLog.airtable_id == "recL00007")  # n=7: Ann, Reading, day 1, Coffee
        assert (log.user_id, log.habit.name, log.reward_id, log.got_reward) == (ann.id, "Reading", coffee.id, True)
        assert log.completed_on == FIRST_DAY + dt.timedelta(days=1)
        assert log.timestamp == dt.datetime.combine(log.completed_on, dt.time(18, 0))
        assert (log.streak_count, log.habit_weight, log.total_weight_applied, log.source) == (2, 10, 1.5, "airtable")
        # A drawn "none" entry is stored as no reward.
        nothing = HabitLog.get(HabitLog.airtable_id == "recL00008")
        assert (nothing.reward_id, nothing.got_reward) == (None, False)
        per_user = {u.telegram_id: HabitLog.select().where(HabitLog.user == u).count() for u in (ann, bob, dana)}
        assert per_user == {101: 1668, 102: 1666, 103: 1666}  # 5000 = 6 x 833 + 2 (both to Ann)
    database.close()


def test_second_run_changes_nothing_and_a_changed_record_is_updated(db_url, standin):
    assert run_import(db_url, standin, "--no-progress").exit_code == 0
    before = snapshot(db_url)

    again = run_import(db_url, standin, "--no-progress")

    assert again.exit_code == 0, again.output
    assert table_lines(again.stdout)["HabitLog"] == [LOG_COUNT + 2, 0, 0, LOG_COUNT, 2]
    assert all(row[1] == 0 and row[2] == 0 for row in table_lines(again.stdout).values())
    assert snapshot(db_url) == before

    standin.tables["Habits"][1]["fields"]["weight"] = 15  # Reading gets heavier in Airtable
    third = run_import(db_url, standin, "--no-progress")
    assert table_lines(third.stdout)["Habits"] == [4, 0, 1, 2, 1]
    after = snapshot(db_url)
    assert [h["weight"] for h in after["habits"] if h["name"] == "Reading"] == [15]
    assert len(after["habit_logs"]) == LOG_COUNT


def test_dry_run_writes_nothing(db_url, standin):
    result = run_import(db_url, standin, "--dry-run", "--no-progress")

    assert result.exit_code == 0, result.output
    assert "Dry run: nothing was written" in result.stdout
    assert table_lines(result.stdout)["HabitLog"] == [LOG_COUNT + 2, LOG_COUNT, 0, 0, 2]
    assert all(rows == [] for rows in snapshot(db_url).values())


def test_existing_user_and_shared_habit_are_adopted_not_duplicated(engine, db_url, standin):
    engine.add_user(101, "Ann from Telegram")
    engine.add_habit("running")

    result = run_import(db_url, standin, "--no-progress")

    assert result.exit_code == 0, result.output
    lines = table_lines(result.stdout)
    assert lines["Users"][1:3] == [2, 1]  # two created, Ann adopted and updated
    assert lines["Habits"][1:3] == [2, 1]
    with engine.session():
        assert User.select().where(User.telegram_id == 101).count() == 1
        assert Habit.select().where(Habit.name ** "running").count() == 1


def test_undo_of_an_imported_completion_takes_back_a_piece_still_in_the_progress(engine, db_url, standin):
    """Airtable kept no claim cycles: a progress row's unclaimed pieces are its user's latest
    logs of that reward, and undoing one of those takes the piece back, as for any completion."""
    def log(record_id, day, reward):
        return record(record_id, user=["recU1"], habit=["recH1"], reward=[reward], got_reward=True,
                      timestamp=f"{day}T18:00:00.000Z", last_completed_date=day)

    standin.tables["RewardProgress"] = [
        record("recP1", user=["recU1"], reward=["recR1"], pieces_earned=1),  # Coffee: 1 of 3, unclaimed
        record("recP2", user=["recU1"], reward=["recR3"], pieces_earned=1, claimed=True),  # Sticker
    ]
    standin.tables["HabitLog"] = [
        log("recLa", "2025-01-01", "recR1"),  # a piece of Coffee claimed long ago
        log("recLb", "2025-01-02", "recR3"),  # the claimed Sticker's piece
        log("recLc", "2025-01-03", "recR1"),  # the one piece of Coffee now
    ]
    assert run_import(db_url, standin, "--no-progress").exit_code == 0
    with engine.session():
        ann = User.get(User.telegram_id == 101)
        running = Habit.get(Habit.name == "Running")
        coffee = Reward.get(Reward.name == "Coffee")

    undone = engine.undo(ann, running)  # 2025-01-03

    assert (undone.day, undone.reward.name, undone.piece_taken_back) == (dt.date(2025, 1, 3), "Coffee", True)
    with engine.session():
        assert RewardProgress.get(user=ann, reward=coffee).pieces_earned == 0
    sticker = engine.undo(ann, running)  # 2025-01-02: the Sticker was claimed, its piece stays
    assert (sticker.reward.name, sticker.piece_taken_back) == ("Sticker", False)
    # A new piece of Coffee, then the old (claimed) Coffee log undone: the new piece stays.
    with engine.session():
        RewardProgress.update(pieces_earned=1).where(RewardProgress.reward == coffee).execute()
    oldest = engine.undo(ann, running)  # 2025-01-01
    assert (oldest.reward.name, oldest.piece_taken_back) == ("Coffee", False)
    with engine.session():
        assert RewardProgress.get(user=ann, reward=coffee).pieces_earned == 1


@pytest.mark.no_db
def test_missing_key_and_bad_key_are_one_line_errors(tmp_path, standin):
    db_url = f"sqlite:///{tmp_path / 'x.db'}"
    runner = CliRunner()
    base = ["--database-url", db_url, "--env-file", os.devnull, "import-airtable"]
    missing = runner.invoke(cli, [*base, "--base-id", "appTEST"], env={"AIRTABLE_API_KEY": None})
    assert missing.exit_code == 1
    assert "AIRTABLE_API_KEY is not set" in missing.output

    bad = runner.invoke(
        cli, [*base, "--api-key", "wrong", "--base-id", "appTEST", "--endpoint-url", standin.url]
    )
    assert bad.exit_code == 1
    assert "Error: Airtable answered 401 for table 'Users' of base appTEST" in bad.output
    assert "Traceback" not in bad.output


@pytest.mark.no_db
def test_a_rate_limit_that_lasts_and_an_unreachable_airtable_are_one_line_errors(tmp_path, standin, monkeypatch):
    import socket

    from habitreward.data import airtable

    monkeypatch.setattr(airtable, "RETRY_BACKOFF", 0.01)  # the retries, without their minute of waiting
    db_url = f"sqlite:///{tmp_path / 'x.db'}"
    base = ["--database-url", db_url, "--env-file", os.devnull, "import-airtable", "--api-key", standin.api_key,
            "--base-id", standin.base_id]
    standin.rate_limit("Users", airtable.RETRIES + 1)
    limited = CliRunner().invoke(cli, [*base, "--endpoint-url", standin.url])
    assert limited.exit_code == 1, limited.output
    assert "Error: Airtable kept answering 429 (rate limited) for table 'Users'" in limited.output
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    away = CliRunner().invoke(cli, [*base, "--endpoint-url", f"http://127.0.0.1:{closed}"])
    assert away.exit_code == 1, away.output
    assert f"Error: Cannot reach Airtable at http://127.0.0.1:{closed}" in away.output
    assert "Traceback" not in limited.output + away.output


@pytest.mark.no_db
def test_progress_bar_is_drawn_in_a_terminal(tmp_path, standin):
    """Run as a user would, with stderr on a terminal: click's bar is drawn while 5,000 logs are written."""
    leader, follower = pty.openpty()
    env = {**os.environ, "HABITREWARD_LOAD_PLUGINS": "", "COLUMNS": "100"}
    command = [
        sys.executable, "-c", "from habitreward.cli import main; main()",
        "--database-url", f"sqlite:///{tmp_path / 'tty.db'}", "--env-file", os.devnull,
        "import-airtable", "--api-key", standin.api_key, "--base-id", standin.base_id,
        "--endpoint-url", standin.url,
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=follower, env=env, cwd=tmp_path)
    os.close(follower)
    terminal = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the other end closed
            break
        if not chunk:
            break
        terminal += chunk
    stdout, _ = process.communicate(timeout=60)
    os.close(leader)

    assert process.returncode == 0, terminal.decode(errors="replace")
    screen = terminal.decode(errors="replace")
    # Reading counts up on one line, cleared for the line that sums the table up.
    assert "\rReading HabitLog: 4900 records\rReading HabitLog: 5000 records\r" in screen
    assert f"\r\x1b[KRead {LOG_COUNT + 2} records from HabitLog" in screen
    assert "Writing HabitLog  [" in screen
    assert "#" * 10 in screen and "5000/5000" in screen and "100%" in screen
    assert b"HabitLog" in stdout and Path(tmp_path / "tty.db").exists()


def test_greek_names_with_a_final_sigma_are_one_name_for_the_import_too(engine, db_url, standin):
    """The import compares names as the engine does: "ΔΡΟΜΟΣ" and "δρομοσ" are the same name."""
    engine.add_habit("Δρομος")
    standin.tables["Habits"] += [record("recH4", name="ΔΡΟΜΟΣ", active=True),
                                 record("recH5", name="δρομοσ", active=True)]

    result = run_import(db_url, standin, "--no-progress")

    assert result.exit_code == 0, result.output
    assert "skipped Habits recH5: the habit name 'δρομοσ' is also in record recH4" in result.stdout
    with engine.session():
        greek = Habit.select().where(Habit.name.not_in(["Running", "Reading", "Old habit"]))
        assert [(h.name, h.airtable_id) for h in greek] == [("ΔΡΟΜΟΣ", "recH4")]  # adopted, renamed


def test_numbers_too_big_for_the_database_skip_their_record(db_url, standin):
    """A count beyond what a real one could be used to reach the database: stored on SQLite, a
    DataError on PostgreSQL (32-bit columns) that stopped the import. Now the record is skipped."""
    standin.tables["Users"].append(record("recU4", name="Huge", telegram_id=2**64, active=True))
    standin.tables["RewardProgress"].append(record("recP4", user=["recU3"], reward=["recR1"],
                                                   pieces_earned=3_000_000_000))
    standin.tables["HabitLog"] += [
        record("recLhuge1", user=["recU1"], habit=["recH1"], timestamp="2030-01-01T10:00:00.000Z",
               streak_count=3_000_000_000),
        record("recLhuge2", user=["recU1"], habit=["recH2"], timestamp="2030-01-01T10:00:00.000Z",
               habit_weight=-3_000_000_000),
        record("recLinf", user=["recU1"], habit=["recH3"], timestamp="2030-01-01T10:00:00.000Z",
               total_weight_applied="inf"),
    ]

    result = run_import(db_url, standin, "--no-progress")

    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "skipped Users recU4: telegram_id must be at most 9,223,372,036,854,775,807" in out
    assert "skipped RewardProgress recP4: pieces_earned must be at most 1,000,000, got 3000000000" in out
    assert "skipped HabitLog recLhuge1: streak_count must be at most 1,000,000, got 3000000000" in out
    assert "skipped HabitLog recLhuge2: habit_weight must be at least 0, got -3000000000" in out
    assert "skipped HabitLog recLinf: total_weight_applied must be a finite number, got 'inf'" in out
    lines = table_lines(out)
    assert (lines["Users"][4], lines["RewardProgress"][4], lines["HabitLog"][4]) == (2, 2, 5)
    assert lines["HabitLog"][1] == LOG_COUNT


def test_a_moment_airtable_is_unwell_is_tried_again_not_the_end_of_a_long_read(db_url, standin, monkeypatch):
    # A 503 (or 500, 502, 504) in the middle of the logs ended the import: minutes of reading lost.
    from habitreward.data import airtable

    monkeypatch.setattr(airtable, "RETRY_BACKOFF", 0.01)
    standin.fail_once_at("HabitLog", 1000, 502)
    result = run_import(db_url, standin, "--no-progress")
    assert result.exit_code == 0, result.output
    assert standin.answered(502) == 1
    assert table_lines(result.stdout)["HabitLog"][:2] == [LOG_COUNT + 2, LOG_COUNT]


def test_an_import_stopped_half_way_wrote_nothing_or_is_finished_by_the_next_run(db_url, standin, monkeypatch):
    """As docs/data.md says: a failure while reading writes nothing; Ctrl+C while writing keeps the
    batches written, and the next run finishes the import."""
    from habitreward.data import airtable

    monkeypatch.setattr(airtable, "RETRY_BACKOFF", 0.01)  # the retries, without their half minute of waiting
    standin.fail_from("HabitLog", 1000)
    failed = run_import(db_url, standin, "--no-progress")
    assert failed.exit_code == 1
    assert failed.output.strip().splitlines()[-1] == (
        f"Error: Airtable kept answering 503 (unavailable) for table 'HabitLog' after {airtable.RETRIES} retries;"
        " try again in a minute.")
    assert all(rows == [] for rows in snapshot(db_url).values())

    standin.fail_from("HabitLog", 10**9)  # all well again

    class CtrlC(airtable.Progress):  # the operator presses Ctrl+C after the first batch of logs
        def advance(self, count: int = 1) -> None:
            super().advance(count)
            if self.label == "Writing HabitLog":
                raise KeyboardInterrupt

    original = airtable.Progress
    monkeypatch.setattr(airtable, "Progress", CtrlC)
    stopped = run_import(db_url, standin, "--no-progress")
    assert stopped.exit_code == 1 and "Aborted" in stopped.output
    assert len(snapshot(db_url)["habit_logs"]) == airtable.BATCH_SIZE
    monkeypatch.setattr(airtable, "Progress", original)

    finished = run_import(db_url, standin, "--no-progress")
    assert finished.exit_code == 0, finished.output
    lines = table_lines(finished.stdout)
    assert lines["Users"] == [4, 0, 0, 3, 1]
    assert lines["HabitLog"] == [LOG_COUNT + 2, LOG_COUNT - airtable.BATCH_SIZE, 0, airtable.BATCH_SIZE, 2]
    assert len(snapshot(db_url)["habit_logs"]) == LOG_COUNT


def test_what_the_import_stores_exports_and_imports_again(db_url, standin, tmp_path):
    """A streak of 0 or a negative odds multiplier, which `habitreward import` refuses (the engine
    never makes them), was stored: the migrated database's export could not be imported anywhere.
    Such a record is skipped and listed like any other the bot's rules refuse."""
    standin.tables["HabitLog"] += [
        record("recLzero", user=["recU1"], habit=["recH1"], timestamp="2030-01-01T10:00:00.000Z", streak_count=0),
        record("recLneg", user=["recU1"], habit=["recH2"], timestamp="2030-01-01T10:00:00.000Z",
               total_weight_applied=-0.5),
    ]

    result = run_import(db_url, standin, "--no-progress")

    assert result.exit_code == 0, result.output
    assert "skipped HabitLog recLzero: streak_count must be at least 1, got 0" in result.stdout
    assert "skipped HabitLog recLneg: total_weight_applied must be at least 0, got -0.5" in result.stdout
    assert table_lines(result.stdout)["HabitLog"][1] == LOG_COUNT
    exported = tmp_path / "migrated.json"
    runner = CliRunner()
    common = ["--database-url", db_url, "--env-file", os.devnull]
    env = {"HABITREWARD_LOAD_PLUGINS": ""}
    assert runner.invoke(cli, [*common, "export", "-o", str(exported)], env=env).exit_code == 0
    # Every row is checked with import's rules whatever the policy; skip keeps the rows here.
    again = runner.invoke(cli, [*common, "import", "--on-conflict", "skip", "--json", str(exported)], env=env)
    assert again.exit_code == 0, again.output


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_shared_name_that_repeats_someones_personal_one_stops_the_import(engine, db_url, standin, dry_run):
    """The engine refuses a shared habit (or reward) named like anybody's personal one (that
    person would see two of one name); the import refuses it the same way, before writing anything."""
    zed = engine.add_user(105, "Zed", active=True)
    engine.add_habit("running", owner=zed)  # Airtable's recH1 is "Running", to become shared
    before = snapshot(db_url)

    result = run_import(db_url, standin, "--no-progress", *(["--dry-run"] if dry_run else []))

    assert result.exit_code == 1, result.output
    assert ("Habits record recH1: the shared habit 'Running' would have the name of the personal habit"
            " 'running' of Telegram id 105") in result.output
    assert "Nothing was imported." in result.output and "Traceback" not in result.output
    assert snapshot(db_url) == before  # no user, habit, reward or log of the base went in
    # Rewards alike; an inactive personal one (deleted) is no clash, as for the engine.
    engine.remove_habit(engine.find_habit(zed, "running"), actor=zed)
    engine.add_reward("sticker", owner=zed)
    result = run_import(db_url, standin, "--no-progress")
    assert result.exit_code == 1, result.output
    assert ("Rewards record recR3: the shared reward 'Sticker' would have the name of the personal reward"
            in result.output)


def test_thousands_of_logs_import_on_sqlite_before_3_32(db_url, standin, sqlite_limit):
    """Logs were inserted 500 per statement, every column a value: more than the 999 values SQLite
    builds before 3.32 take in one statement ("too many SQL variables"), and the import stopped."""
    sqlite_limit(999)

    result = run_import(db_url, standin, "--no-progress")

    assert result.exit_code == 0, result.output
    assert table_lines(result.stdout)["HabitLog"] == [LOG_COUNT + 2, LOG_COUNT, 0, 0, 2]
    assert len(snapshot(db_url)["habit_logs"]) == LOG_COUNT
