"""A person's right to leave: ``habitreward users delete`` removes them and everything that is theirs.

Personal habits, rewards, logs, progress and plugins' rows go; shared habits
and rewards and every other user's data stay exactly as they were.
"""

from __future__ import annotations

import json
import os

import peewee
from click.testing import CliRunner

from habitreward import hookimpl
from habitreward.cli import cli
from habitreward.models import BaseModel, Habit, HabitAlias, HabitLog, KeyValue, Reward, RewardProgress, User


class Note(BaseModel):
    """A plugin's table with a plain foreign key to the user (no ON DELETE CASCADE to lean on)."""

    user = peewee.ForeignKeyField(User, backref="+")
    text = peewee.TextField()

    class Meta:
        table_name = "test_delete_notes"


class NotesPlugin:
    @hookimpl
    def habitreward_register_models(self, register):
        register(Note)


def build(engine):
    ann = engine.add_user(101, "Ann", active=True)
    bob = engine.add_user(102, "Bob", active=True)
    running = engine.add_habit("Running")
    star = engine.add_reward("Star", weight=100)
    diary = engine.add_habit("Diary", owner=ann)
    cake = engine.add_reward("Cake", weight=50, owner=ann)
    bob_own = engine.add_habit("Chess", owner=bob)
    for user, habit in ((ann, running), (ann, diary), (bob, running), (bob, bob_own)):
        engine.complete(user, habit)
    engine.grant_piece(ann, cake)
    engine.grant_piece(bob, star)
    engine.add_alias(diary, "dear diary")  # a built-in plugin's row hanging off a personal habit
    engine.add_alias(running, "jog")
    return ann, bob, running, star


def rows_of_everyone_but(engine, user_id: int) -> dict[str, list[dict]]:
    with engine.session():
        return {
            "users": list(User.select().where(User.id != user_id).dicts()),
            "habits": list(Habit.select().where(Habit.owner.is_null() | (Habit.owner != user_id)).dicts()),
            "rewards": list(Reward.select().where(Reward.owner.is_null() | (Reward.owner != user_id)).dicts()),
            "logs": list(HabitLog.select().where(HabitLog.user != user_id).dicts()),
            "progress": list(RewardProgress.select().where(RewardProgress.user != user_id).dicts()),
            "aliases": list(HabitAlias.select().join(Habit)
                            .where(Habit.owner.is_null() | (Habit.owner != user_id)).dicts()),
        }


def test_users_delete_removes_everything_of_theirs_and_nothing_else(engine, db_url):
    ann, bob, running, star = build(engine)
    others_before = rows_of_everyone_but(engine, ann.id)

    result = CliRunner().invoke(
        cli,
        ["--database-url", db_url, "--env-file", os.devnull, "users", "delete", "101", "--yes"],
        env={"HABITREWARD_LOAD_PLUGINS": ""},
    )

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Deleted Ann (101) with ")
    with engine.session():
        assert User.get_or_none(User.telegram_id == 101) is None
        assert HabitLog.select().where(HabitLog.user == ann.id).count() == 0
        assert RewardProgress.select().where(RewardProgress.user == ann.id).count() == 0
        assert Habit.select().where(Habit.owner == ann.id).count() == 0  # Diary is gone
        assert Reward.select().where(Reward.owner == ann.id).count() == 0  # Cake is gone
        assert Habit.get_by_id(running.id).name == "Running"  # shared ones stay
        assert Reward.get_by_id(star.id).name == "Star"
        assert [a.alias for a in HabitAlias.select()] == ["jog"]  # the personal habit's alias went with it
    assert rows_of_everyone_but(engine, ann.id) == others_before
    # Bob carries on as before.
    assert engine.streaks(engine.get_user(102))
    assert sorted(h.name for h in engine.habits_for(engine.get_user(102))) == ["Chess", "Running"]


def test_plugins_rows_go_with_their_user(engine):
    engine.pm.register(NotesPlugin(), name="test-notes")
    with engine.session():
        engine.db.create_tables([Note])
    ann, bob, _, _ = build(engine)
    with engine.session():
        Note.create(user=ann, text="Ann's private note")
        Note.create(user=bob, text="Bob's note")

    counts = engine.delete_user(101)

    assert counts["test_delete_notes"] == 1
    assert counts["users"] == 1
    with engine.session():
        assert [n.text for n in Note.select()] == ["Bob's note"]


def test_deleting_an_unknown_user_is_a_one_line_error(db_url):
    result = CliRunner().invoke(
        cli,
        ["--database-url", db_url, "--env-file", os.devnull, "users", "delete", "999", "--yes"],
        env={"HABITREWARD_LOAD_PLUGINS": ""},
    )
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1


def test_bot_state_of_the_user_goes_too(engine):
    build(engine)
    with engine.session():
        KeyValue.create(namespace="bot.user_data", key="101", value=json.dumps({"draft": "private"}))
        KeyValue.create(namespace="bot.conversations", key='add_habit:[101,101]', value='"NAME"')
        KeyValue.create(namespace="bot.user_data", key="102", value="{}")

    engine.delete_user(101)

    with engine.session():
        assert [kv.key for kv in KeyValue.select()] == ["102"]


def test_a_busy_persons_inbox_rows_go_however_many_there_are(engine, db_url, sqlite_limit):
    """The updates that name a person were deleted by a list of all their ids in one statement:
    more than 999 failed on SQLite before 3.32 (32,766 since), and the person stayed."""
    import datetime as dt

    from habitreward.models import ProcessedUpdate

    build(engine)
    done = dt.datetime(2026, 1, 1)

    def update(update_id: int, person: int) -> dict:
        payload = {"update_id": update_id, "message": {"from": {"id": person}, "chat": {"id": person}, "text": "hi"}}
        return {"update_id": update_id, "payload": json.dumps(payload), "processed_at": done}

    with engine.session(), engine.db.atomic():
        for start in range(0, 1200, 400):
            ProcessedUpdate.insert_many([update(n, 101) for n in range(start, start + 400)]).execute()
        ProcessedUpdate.insert_many([update(5000, 102)]).execute()
    sqlite_limit(999)

    result = CliRunner().invoke(cli, ["--database-url", db_url, "--env-file", os.devnull, "users", "delete", "101",
                                      "--yes"], env={"HABITREWARD_LOAD_PLUGINS": ""})

    assert result.exit_code == 0, result.output
    with engine.session():
        assert [row.update_id for row in ProcessedUpdate.select()] == [5000]
        assert not User.select().where(User.telegram_id == 101).exists()


def _dialogs(telegram_id: int, count: int) -> list[dict]:
    """Open dialogs of one person in ``count`` group chats (the bot's conversation rows)."""
    return [{"namespace": "bot.conversations", "key": f"dialog:[-{100 + n},{telegram_id}]", "value": '"name"'}
            for n in range(count)]


def test_a_person_with_thousands_of_open_dialogs_is_deleted_on_sqlite_before_3_32(engine, db_url, sqlite_limit):
    """The bot state of a person (their user_data, chat_data and every open dialog) was deleted by
    a list of all its ids in one statement: more than 999 failed on SQLite before 3.32 ("too many
    SQL variables"), and the person stayed."""
    build(engine)
    with engine.session(), engine.db.atomic():
        for start in range(0, 1200, 400):
            KeyValue.insert_many(_dialogs(101, 1200)[start:start + 400]).execute()
        KeyValue.insert_many(_dialogs(102, 3)).execute()
    sqlite_limit(999)

    result = CliRunner().invoke(cli, ["--database-url", db_url, "--env-file", os.devnull, "users", "delete", "101",
                                      "--yes"], env={"HABITREWARD_LOAD_PLUGINS": ""})

    assert result.exit_code == 0, result.output
    with engine.session():
        assert not User.select().where(User.telegram_id == 101).exists()
        assert not KeyValue.select().where(KeyValue.key.contains(",101]")).exists()
        assert KeyValue.select().where(KeyValue.key.contains(",102]")).count() == 3
