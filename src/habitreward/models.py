"""The data model (PRODUCT.md §3). Times are stored as naive UTC; days as the user's local date.

The tables are created by versioned migrations in :mod:`habitreward.migrations`,
never by ``create_tables`` at run time, so a schema change is always a
migration that is recorded in the database.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum

import peewee

from habitreward.db import database_proxy


def utcnow() -> dt.datetime:
    """Now, as the naive UTC datetime the tables store."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class MoneyField(peewee.DecimalField):
    """A decimal that reads back with its scale on every backend.

    SQLite keeps 1.50 as the number 1.5; without this a piece value set to 1.50 would show as
    1.5 on SQLite and 1.50 on PostgreSQL.
    """

    def python_value(self, value):  # noqa: ANN001, ANN201 - peewee's signature
        value = super().python_value(value)
        if value is None:
            return None
        return value.quantize(decimal.Decimal(1).scaleb(-self.decimal_places))


class DateTimeField(peewee.DateTimeField):
    """peewee's DateTimeField, read faster from SQLite.

    SQLite hands timestamps back as text, which peewee parses by trying ``strptime``
    formats in turn; ``fromisoformat`` reads the form peewee writes ("2026-11-30
    00:03:52.123456") in a fifth of the time, and every row of the hot path has a few.
    Anything else (another form, a value with an offset) still goes through peewee.
    """

    def python_value(self, value):  # noqa: ANN001, ANN201 - peewee's signature
        if value.__class__ is str:
            try:
                parsed = dt.datetime.fromisoformat(value)
            except ValueError:
                return super().python_value(value)
            if parsed.tzinfo is None:
                return parsed
        return super().python_value(value)


class DateField(peewee.DateField):
    """peewee's DateField, read from SQLite's "YYYY-MM-DD" text by ``date.fromisoformat``."""

    def python_value(self, value):  # noqa: ANN001, ANN201 - peewee's signature
        if value.__class__ is str and len(value) == 10:
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                pass
        return super().python_value(value)


class BaseModel(peewee.Model):
    class Meta:
        database = database_proxy
        legacy_table_names = False


class TimestampedModel(BaseModel):
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)

    def save(self, *args, **kwargs):
        self.updated_at = utcnow()
        return super().save(*args, **kwargs)


class User(TimestampedModel):
    telegram_id = peewee.BigIntegerField(unique=True)
    name = peewee.CharField(max_length=255)
    language = peewee.CharField(max_length=8, default="en")
    # True once the user picked a language; Telegram's language_code never overrides it then.
    language_chosen = peewee.BooleanField(default=False)
    timezone = peewee.CharField(max_length=64, default="UTC")
    active = peewee.BooleanField(default=False)
    is_admin = peewee.BooleanField(default=False)
    # The Airtable record id this row was imported from (import-airtable re-runs match on it).
    airtable_id = peewee.CharField(max_length=32, null=True, unique=True)

    class Meta:
        table_name = "users"

    def __str__(self) -> str:
        return f"{self.name} ({self.telegram_id})"


class Habit(TimestampedModel):
    name = peewee.CharField(max_length=100)
    weight = peewee.IntegerField(default=10)
    category = peewee.CharField(max_length=100, null=True)
    allowed_skip_days = peewee.IntegerField(default=0)
    active = peewee.BooleanField(default=True)
    # No owner: a shared habit every user sees and only admins edit.
    owner = peewee.ForeignKeyField(User, null=True, backref="own_habits", on_delete="CASCADE")
    # Airtable record id (see User.airtable_id).
    airtable_id = peewee.CharField(max_length=32, null=True, unique=True)

    class Meta:
        table_name = "habits"
        indexes = ((("owner", "active"), False),)

    @property
    def is_shared(self) -> bool:
        return self.owner_id is None


class RewardType(str, enum.Enum):
    VIRTUAL = "virtual"
    REAL = "real"
    NONE = "none"


class Reward(TimestampedModel):
    name = peewee.CharField(max_length=100)
    weight = peewee.DoubleField(default=1.0)  # 8-byte on PostgreSQL too (migration 0003)
    type = peewee.CharField(max_length=16, default=RewardType.VIRTUAL.value)
    pieces_required = peewee.IntegerField(default=1)
    piece_value = MoneyField(max_digits=12, decimal_places=2, null=True, auto_round=True)
    max_per_day = peewee.IntegerField(default=1)  # 0 = no limit
    active = peewee.BooleanField(default=True)
    owner = peewee.ForeignKeyField(User, null=True, backref="own_rewards", on_delete="CASCADE")
    # Airtable record id (see User.airtable_id).
    airtable_id = peewee.CharField(max_length=32, null=True, unique=True)

    class Meta:
        table_name = "rewards"
        indexes = ((("owner", "active"), False),)

    @property
    def is_shared(self) -> bool:
        return self.owner_id is None

    @property
    def is_nothing(self) -> bool:
        """A "no reward this time" entry: it takes part in the draw but gives nothing."""
        return self.type == RewardType.NONE.value


class ProgressStatus(str, enum.Enum):
    PENDING = "pending"
    ACHIEVED = "achieved"
    CLAIMED = "claimed"


class RewardProgress(TimestampedModel):
    user = peewee.ForeignKeyField(User, backref="progress", on_delete="CASCADE")
    reward = peewee.ForeignKeyField(Reward, backref="progress", on_delete="CASCADE")
    pieces_earned = peewee.IntegerField(default=0)
    claimed = peewee.BooleanField(default=False)
    times_claimed = peewee.IntegerField(default=0)
    # Airtable record id (see User.airtable_id).
    airtable_id = peewee.CharField(max_length=32, null=True, unique=True)

    class Meta:
        table_name = "reward_progress"
        indexes = ((("user", "reward"), True),)

    def status_for(self, pieces_required: int) -> ProgressStatus:
        if self.claimed:
            return ProgressStatus.CLAIMED
        if self.pieces_earned >= pieces_required:
            return ProgressStatus.ACHIEVED
        return ProgressStatus.PENDING

    @property
    def status(self) -> ProgressStatus:
        return self.status_for(self.reward.pieces_required)


class HabitLog(BaseModel):
    user = peewee.ForeignKeyField(User, backref="logs", on_delete="CASCADE")
    habit = peewee.ForeignKeyField(Habit, backref="logs", on_delete="CASCADE")
    # The reward drawn; NULL for "no reward" (including a drawn "none"-type entry).
    reward = peewee.ForeignKeyField(Reward, null=True, backref="logs", on_delete="SET NULL")
    got_reward = peewee.BooleanField(default=False)
    streak_count = peewee.IntegerField(default=1)
    habit_weight = peewee.IntegerField()
    total_weight_applied = peewee.DoubleField()  # the odds multiplier m
    completed_on = DateField()  # the user's local date
    timestamp = DateTimeField(default=utcnow)  # when the user acted (UTC)
    created_at = DateTimeField(default=utcnow)  # when it was recorded (UTC)
    # For undo: which claim cycle of the reward the piece went to (times_claimed then).
    reward_cycle = peewee.IntegerField(null=True)
    source = peewee.CharField(max_length=16, default="")
    # Airtable record id (see User.airtable_id).
    airtable_id = peewee.CharField(max_length=32, null=True, unique=True)

    class Meta:
        table_name = "habit_logs"
        indexes = (
            # One completion per habit per local day; also the "latest log of a habit" index.
            (("user", "habit", "completed_on"), True),
            # A user's logs of one day, and history newest first.
            (("user", "completed_on"), False),
        )


class ProcessedUpdate(BaseModel):
    """A Telegram update accepted for processing: the inbox that makes processing exactly-once."""

    update_id = peewee.BigIntegerField(primary_key=True)
    payload = peewee.TextField()
    received_at = DateTimeField(default=utcnow)
    processed_at = DateTimeField(null=True, index=True)
    attempts = peewee.IntegerField(default=0)
    error = peewee.TextField(null=True)
    # The worker token (``serve --webhook --workers N`` on SQLite) that claimed the row; see server/inbox.py.
    claimed_by = peewee.TextField(null=True)
    # Whose update it is (user or chat id), so several processes keep one chat's updates in
    # order (see server/runner.py); the index of the unprocessed rows is made by migration 0005.
    chat_key = peewee.BigIntegerField(null=True)

    class Meta:
        table_name = "processed_updates"


class KeyValue(BaseModel):
    """Small JSON documents by (namespace, key): bot conversation state, user data, settings."""

    namespace = peewee.CharField(max_length=64)
    key = peewee.CharField(max_length=255)
    value = peewee.TextField()
    updated_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "key_values"
        indexes = ((("namespace", "key"), True),)


class HabitAlias(BaseModel):
    """Another word for a habit in free text ("jog" for Running); see habitreward.nlp."""

    habit = peewee.ForeignKeyField(Habit, backref="aliases", on_delete="CASCADE")
    alias = peewee.CharField(max_length=100)
    # The alias with case, accents and punctuation folded: unique per habit.
    normalized = peewee.CharField(max_length=100)
    created_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "habit_aliases"
        indexes = ((("habit", "normalized"), True),)


CORE_MODELS: tuple[type[BaseModel], ...] = (
    User,
    Habit,
    Reward,
    RewardProgress,
    HabitLog,
    ProcessedUpdate,
    KeyValue,
)
