"""Migrating the original bot's Airtable base (the seed's five tables) into habitreward.

Reading is pyairtable's job (pages of 100, retries on HTTP 429); this module
maps each record onto a row, validates it with the engine's own rules and
writes in batches inside transactions. Every imported row keeps its Airtable
record id in ``airtable_id``, so running the import again updates what changed
and creates nothing twice. A record that cannot be imported (no telegram_id, a
weight out of range, a link to a record that is missing or was skipped) is
reported with its record id and skipped; the rest goes in.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
import sys
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

import click
import peewee

from habitreward.data.progress import Progress, Tally
from habitreward.db import rows_per_insert
from habitreward.engine.validation import (
    MAX_TELEGRAM_ID,
    clean_name,
    habit_weight,
    name_key,
    piece_value,
    pieces_required,
    reward_type,
    reward_weight,
)
from habitreward.errors import HabitRewardError, ValidationError
from habitreward.models import Habit, HabitLog, Reward, RewardProgress, RewardType, User
from habitreward.settings import LANGUAGES

DEFAULT_ENDPOINT_URL = "https://api.airtable.com"
#: Airtable asks clients to wait 30 s after a 429; urllib3 sleeps 0, 2, 4, 8, 16 s between these tries.
RETRIES = 5
RETRY_BACKOFF = 1.0
#: Answers tried again: a rate limit, and Airtable (or a proxy before it) briefly unwell. Reading
#: is GET only, so a try again changes nothing; a long read is not lost to one bad moment.
RETRIED_STATUSES = (429, 500, 502, 503, 504)
BATCH_SIZE = 500
SOURCE = "airtable"

Record = dict[str, Any]  # {"id": "rec...", "createdTime": "...", "fields": {...}}


class AirtableError(HabitRewardError):
    """Airtable could not be read (bad key, unknown base or table, unreachable, rate limit exhausted)."""


@dataclass(frozen=True)
class TableNames:
    """The names of the five tables in the Airtable base (the seed's by default)."""

    users: str = "Users"
    habits: str = "Habits"
    rewards: str = "Rewards"
    progress: str = "RewardProgress"
    logs: str = "HabitLog"

    def items(self) -> Iterator[tuple[str, str]]:
        for spec in dataclasses.fields(self):
            yield spec.name, getattr(self, spec.name)


@dataclass
class TableStats:
    table: str
    read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0


@dataclass(frozen=True)
class Problem:
    table: str
    record_id: str
    message: str


@dataclass
class ImportReport:
    dry_run: bool
    tables: list[TableStats] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "tables": [dataclasses.asdict(t) for t in self.tables],
            "problems": [dataclasses.asdict(p) for p in self.problems],
        }


# --- reading -------------------------------------------------------------------------------


def fetch_base(
    api_key: str,
    base_id: str,
    names: TableNames = TableNames(),
    *,
    endpoint_url: str | None = None,
    log: TextIO | None = None,
) -> dict[str, list[Record]]:
    """Every record of the five tables, keyed by our table key (users, habits, ...)."""
    import requests
    from pyairtable import Api, retry_strategy

    api = Api(
        api_key,
        endpoint_url=endpoint_url or DEFAULT_ENDPOINT_URL,
        timeout=(10, 60),
        retry_strategy=retry_strategy(total=RETRIES, backoff_factor=RETRY_BACKOFF, status_forcelist=RETRIED_STATUSES),
    )
    records: dict[str, list[Record]] = {}
    for key, name in names.items():
        rows: list[Record] = []
        try:
            # Airtable gives 100 records a page, about 5 pages a second: a big table takes minutes.
            with Tally(f"Reading {name}", file=log if log is not None else sys.stderr) as tally:
                for page in api.table(base_id, name).iterate(page_size=100):
                    rows.extend(page)
                    tally.advance(len(page))
        except requests.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else "?"
            raise AirtableError(
                f"Airtable answered {status} for table {name!r} of base {base_id}: {_airtable_message(exc)}"
            ) from None
        except requests.exceptions.RetryError as exc:  # not requests.RetryError: that name does not exist
            raise AirtableError(
                f"Airtable kept answering {_last_status(exc)} for table {name!r} after {RETRIES} retries;"
                " try again in a minute."
            ) from None
        except requests.RequestException as exc:
            raise AirtableError(f"Cannot reach Airtable at {api.endpoint_url}: {type(exc).__name__}") from None
        click.echo(f"Read {len(rows)} records from {name}", file=log, err=log is None)
        records[key] = rows
    return records


def _last_status(exc: Exception) -> str:
    """The status urllib3 gave up on ("too many 503 error responses"), said as a person reads it."""
    found = re.search(r"too many (\d{3}) error responses", str(exc))
    status = int(found.group(1)) if found else None
    if status == 429:
        return "429 (rate limited)"
    return f"{status} (unavailable)" if status else "errors"


def _airtable_message(exc: Any) -> str:
    try:
        error = exc.response.json().get("error")
    except Exception:  # noqa: BLE001 - any unreadable body just gives no detail
        return "no details"
    if isinstance(error, dict):
        return str(error.get("message") or error.get("type") or error)
    return str(error or "no details")


# --- mapping helpers -------------------------------------------------------------------------


class BadRecord(Exception):
    """A record that cannot be imported; the message says why (shown with its record id)."""


def _columns(records: Iterable[Record]) -> set[str]:
    """The field names that appear in at least one record (Airtable leaves out empty cells)."""
    seen: set[str] = set()
    for record in records:
        seen.update(record.get("fields", {}))
    return seen


def _checkbox(fields: dict[str, Any], name: str, columns: set[str], default: bool) -> bool:
    # Airtable omits unchecked checkboxes. If no record has the field at all the base
    # probably has no such column, so the model's default applies instead of "unchecked".
    if name in fields:
        return bool(fields[name])
    return False if name in columns else default


def _first(fields: dict[str, Any], *names: str) -> Any:
    for name in names:
        if fields.get(name) not in (None, "", []):
            return fields[name]
    return None


def _link(fields: dict[str, Any], name: str) -> str | None:
    """The record id of a link field (an array of record ids); ``user`` or ``user_id`` both work."""
    value = _first(fields, name, f"{name}_id")
    if isinstance(value, list):
        value = value[0] if value else None
    return str(value) if value else None


#: The most a count read from Airtable (pieces, a streak, a weight) may be: far more than any real
#: one, and within the 32-bit INTEGER columns of PostgreSQL, where a larger one was a DataError
#: that stopped the import instead of skipping the record.
MAX_COUNT = 1_000_000


def _int(value: Any, what: str, default: int | None = None, minimum: int | None = None,
         maximum: int = MAX_COUNT) -> int:
    if value in (None, ""):
        if default is None:
            raise BadRecord(f"{what} is missing")
        return default
    try:
        number = float(value) if not isinstance(value, int) else value
        if isinstance(number, float) and not number.is_integer():
            raise ValueError
        result = int(number)
    except (TypeError, ValueError):
        raise BadRecord(f"{what} must be a whole number, got {value!r}") from None
    if minimum is not None and result < minimum:
        raise BadRecord(f"{what} must be at least {minimum}, got {result}")
    if result > maximum:
        raise BadRecord(f"{what} must be at most {maximum:,}, got {result}")
    return result


def _float(value: Any, what: str, default: float, minimum: float | None = None) -> float:
    if value in (None, ""):
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise BadRecord(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(number):  # "inf", "nan": the odds shown from it would be nonsense
        raise BadRecord(f"{what} must be a finite number, got {value!r}")
    if minimum is not None and number < minimum:
        raise BadRecord(f"{what} must be at least {minimum}, got {value!r}")
    return number


def _datetime(value: Any, what: str) -> dt.datetime:
    """An Airtable timestamp (ISO 8601, usually with ``Z``) as the naive UTC the tables store."""
    try:
        moment = dt.datetime.fromisoformat(str(value).strip())
    except ValueError:
        raise BadRecord(f"{what} is not a date and time: {value!r}") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return moment


def _date(value: Any, what: str) -> dt.date:
    text = str(value).strip()
    try:
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        raise BadRecord(f"{what} is not a date: {value!r}") from None


def _to_cents(value: Any) -> Any:
    """A number rounded to two decimals (what the piece value column keeps); anything else as is."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return round(value, 2)
    return value


def _validated(rule: Callable[[Any], Any], value: Any) -> Any:
    try:
        return rule(value)
    except ValidationError as exc:
        raise BadRecord(str(exc).rstrip(".")) from None


def _assign_reward_cycles(logs: list[dict[str, Any]], open_cycles: dict[tuple[int, int], tuple[int, int]]) -> None:
    """Set each log's ``reward_cycle``: the claim cycle its piece counts in, which undo
    compares with the progress row's to know whether the piece is still there to take back.

    Airtable kept no cycles; an unclaimed progress row with N pieces is taken to hold the
    pieces of its user's N latest logs of that reward. Older logs (and those of claimed or
    missing progress) get none: their pieces were claimed, and undo leaves them.
    """
    by_progress: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for log in logs:
        log["reward_cycle"] = None
        if log["reward"] is not None and log["got_reward"]:
            by_progress.setdefault((log["user"], log["reward"]), []).append(log)
    for key, (pieces, cycle) in open_cycles.items():
        latest_first = sorted(by_progress.get(key, ()), key=lambda v: (v["completed_on"], v["timestamp"]),
                              reverse=True)
        for log in latest_first[:pieces]:
            log["reward_cycle"] = cycle


# --- the import ---------------------------------------------------------------------------


@dataclass
class _Planned:
    airtable_id: str
    values: dict[str, Any]
    on_create: dict[str, Any]


class AirtableImporter:
    """Maps fetched records onto the database: ``AirtableImporter(engine).run(records)``."""

    def __init__(
        self,
        engine: Any,
        *,
        dry_run: bool = False,
        batch_size: int = BATCH_SIZE,
        progress_file: TextIO | None = None,
        show_progress: bool = True,
    ):
        self.engine = engine
        self.dry_run = dry_run
        self.batch_size = batch_size
        self.progress_file = progress_file
        self.show_progress = show_progress
        self.report = ImportReport(dry_run=dry_run)
        self._placeholder = 0
        self._names = TableNames()

    def run(self, records: dict[str, list[Record]], names: TableNames = TableNames()) -> ImportReport:
        self._names = names
        self._now = self.engine.utcnow()
        with self.engine.session():
            # Before anything is written: refused, the import would stop half way.
            self._refuse_taken_names(Habit, records.get("habits", []), names.habits)
            self._refuse_taken_names(Reward, records.get("rewards", []), names.rewards)
            users = self._import_users(records.get("users", []))
            habits, habit_weights = self._import_habits(records.get("habits", []))
            rewards, reward_types = self._import_rewards(records.get("rewards", []))
            open_cycles = self._import_progress(records.get("progress", []), users, rewards)
            self._import_logs(records.get("logs", []), users, habits, habit_weights, rewards, reward_types,
                              open_cycles)
        return self.report

    def _refuse_taken_names(self, model: type[Habit] | type[Reward], records: list[Record], table: str) -> None:
        """Stop, before anything is written, when an active record would become a shared item named
        like somebody's active personal one, whatever the case: the engine refuses such a shared
        name (that person would see two of one name), so the import does too."""
        what = "habit" if model is Habit else "reward"
        columns = _columns(records)
        wanted: dict[str, tuple[str, str]] = {}
        for record in records:
            fields = record.get("fields", {})
            try:
                name = clean_name(fields.get("name"), f"{what} name")
            except ValidationError:  # skipped and listed later, with the reason
                continue
            if _checkbox(fields, "active", columns, True):
                wanted.setdefault(name_key(name), (str(record.get("id", "?")), name))
        if not wanted:
            return
        personal = (model.select(model.name, User.telegram_id).join(User, on=(model.owner == User.id))
                    .where(model.active & model.owner.is_null(False)).order_by(model.id).tuples())
        for their_name, telegram_id in personal:
            if name_key(their_name) in wanted:
                record_id, name = wanted[name_key(their_name)]
                raise ValidationError(
                    f"{table} record {record_id}: the shared {what} {name!r} would have the name of the personal"
                    f" {what} {their_name!r} of Telegram id {telegram_id}, which the bot refuses (names are"
                    f" unique, whatever their case, among what one person sees). Rename one, in Airtable or"
                    f" here (habitreward {what}s edit --user {telegram_id}), and run the import again. Nothing was"
                    " imported."
                )

    # --- per table ---------------------------------------------------------------------------

    def _import_users(self, records: list[Record]) -> dict[str, int]:
        stats = self._stats("users", records)
        default_language = self.engine.settings.default_language
        columns = _columns(records)
        planned, seen = [], {}
        for record in records:
            fields = record.get("fields", {})
            try:
                tid = _int(_first(fields, "telegram_id"), "telegram_id", minimum=1, maximum=MAX_TELEGRAM_ID)
                if tid in seen:
                    raise BadRecord(f"telegram_id {tid} is also in record {seen[tid]}")
                name = " ".join(str(fields.get("name") or "").split())[:255] or str(tid)
                language = str(fields.get("language") or "").strip().lower()
                values = {
                    "telegram_id": tid,
                    "name": name,
                    "active": _checkbox(fields, "active", columns, False),
                    "language": language if language in LANGUAGES else default_language,
                }
            except BadRecord as exc:
                self._skip(stats, record, str(exc))
                continue
            seen[tid] = record["id"]
            # New users get this bot's default time zone; a language set in Airtable was chosen
            # by the person, so Telegram's language_code must not override it.
            on_create = {"timezone": self.engine.settings.default_timezone, "language_chosen": bool(language)}
            planned.append(self._plan(record, values, **on_create))
        return self._sync(User, stats, planned, key=lambda v: v["telegram_id"])

    def _import_habits(self, records: list[Record]) -> tuple[dict[str, int], dict[str, int]]:
        stats = self._stats("habits", records)
        columns = _columns(records)
        planned, weights, seen = [], {}, {}
        for record in records:
            fields = record.get("fields", {})
            try:
                name = _validated(lambda v: clean_name(v, "habit name"), fields.get("name"))
                if name_key(name) in seen:
                    raise BadRecord(f"the habit name {name!r} is also in record {seen[name_key(name)]}")
                category = fields.get("category")
                values = {
                    "name": name,
                    "weight": _validated(habit_weight, fields.get("weight", 10)),
                    "category": _validated(lambda v: clean_name(v, "category"), category) if category else None,
                    "active": _checkbox(fields, "active", columns, True),
                    "owner": None,  # Airtable's habits were global: shared ones here
                }
            except BadRecord as exc:
                self._skip(stats, record, str(exc))
                continue
            seen[name_key(name)] = record["id"]
            weights[record["id"]] = values["weight"]
            planned.append(self._plan(record, values))
        ids = self._sync(
            Habit, stats, planned, key=lambda v: name_key(v["name"]), adoptable=Habit.owner.is_null(True)
        )
        return ids, weights

    def _import_rewards(self, records: list[Record]) -> tuple[dict[str, int], dict[str, str]]:
        stats = self._stats("rewards", records)
        columns = _columns(records)
        planned, types, seen = [], {}, {}
        for record in records:
            fields = record.get("fields", {})
            try:
                name = _validated(lambda v: clean_name(v, "reward name"), fields.get("name"))
                if name_key(name) in seen:
                    raise BadRecord(f"the reward name {name!r} is also in record {seen[name_key(name)]}")
                values = {
                    "name": name,
                    "weight": _validated(reward_weight, fields.get("weight", 1.0)),
                    "type": _validated(reward_type, fields.get("type") or RewardType.VIRTUAL.value),
                    "pieces_required": _validated(pieces_required, fields.get("pieces_required", 1)),
                    # Airtable's currency fields may hold more decimals: kept to the cent, as before.
                    "piece_value": _validated(piece_value, _to_cents(fields.get("piece_value"))),
                    "active": _checkbox(fields, "active", columns, True),
                    "owner": None,
                }
            except BadRecord as exc:
                self._skip(stats, record, str(exc))
                continue
            seen[name_key(name)] = record["id"]
            types[record["id"]] = values["type"]
            planned.append(self._plan(record, values))
        ids = self._sync(
            Reward, stats, planned, key=lambda v: name_key(v["name"]), adoptable=Reward.owner.is_null(True)
        )
        return ids, types

    def _import_progress(
        self, records: list[Record], users: dict[str, int], rewards: dict[str, int]
    ) -> dict[tuple[int, int], tuple[int, int]]:
        """Import the progress rows; return the unclaimed ones with pieces as
        (user, reward) -> (pieces earned, claim cycle): the pieces undo may take back."""
        stats = self._stats("progress", records)
        columns = _columns(records)
        planned, seen = [], {}
        for record in records:
            fields = record.get("fields", {})
            try:
                user = self._resolve(fields, "user", users, self._names.users)
                reward = self._resolve(fields, "reward", rewards, self._names.rewards)
                if (user, reward) in seen:
                    raise BadRecord(f"the same user and reward are also in record {seen[user, reward]}")
                claimed = _checkbox(fields, "claimed", columns, False)
                values = {
                    "user": user,
                    "reward": reward,
                    "pieces_earned": _int(fields.get("pieces_earned"), "pieces_earned", default=0, minimum=0),
                    "claimed": claimed,
                }
            except BadRecord as exc:
                self._skip(stats, record, str(exc))
                continue
            seen[user, reward] = record["id"]
            # Airtable never counted claims; a claimed row has been claimed at least once.
            planned.append(self._plan(record, values, times_claimed=1 if claimed else 0))
        self._sync(RewardProgress, stats, planned, key=lambda v: (v["user"], v["reward"]))
        imported = {(p.values["user"], p.values["reward"]) for p in planned}
        if self.dry_run:  # nothing written: the cycle a new unclaimed row starts in
            return {(p.values["user"], p.values["reward"]): (p.values["pieces_earned"], 0)
                    for p in planned if not p.values["claimed"] and p.values["pieces_earned"] > 0}
        # As written (an adopted row keeps its own count of claims).
        rows = RewardProgress.select(RewardProgress.user, RewardProgress.reward, RewardProgress.pieces_earned,
                                     RewardProgress.times_claimed).where(
            ~RewardProgress.claimed & (RewardProgress.pieces_earned > 0)).tuples()
        return {(user, reward): (pieces, cycle) for user, reward, pieces, cycle in rows if (user, reward) in imported}

    def _import_logs(
        self,
        records: list[Record],
        users: dict[str, int],
        habits: dict[str, int],
        habit_weights: dict[str, int],
        rewards: dict[str, int],
        reward_types: dict[str, str],
        open_cycles: dict[tuple[int, int], tuple[int, int]],
    ) -> None:
        stats = self._stats("logs", records)
        columns = _columns(records)
        planned, seen = [], {}
        for record in records:
            fields = record.get("fields", {})
            try:
                user = self._resolve(fields, "user", users, self._names.users)
                habit = self._resolve(fields, "habit", habits, self._names.habits)
                reward_link = _link(fields, "reward")
                reward = self._resolve(fields, "reward", rewards, self._names.rewards) if reward_link else None
                got_reward = _checkbox(fields, "got_reward", columns, reward is not None)
                if reward is not None and reward_types.get(reward_link) == RewardType.NONE.value:
                    # Here a drawn "none" entry is stored as no reward at all (see models.HabitLog).
                    reward, got_reward = None, False
                timestamp = _datetime(fields.get("timestamp") or record.get("createdTime"), "timestamp")
                day = fields.get("last_completed_date")
                completed_on = _date(day, "last_completed_date") if day else timestamp.date()
                if (user, habit, completed_on) in seen:
                    earlier = seen[user, habit, completed_on]
                    raise BadRecord(f"the same habit is already logged for {completed_on} in record {earlier}")
                default_weight = habit_weights.get(_link(fields, "habit") or "", 10)
                weight = _int(fields.get("habit_weight"), "habit_weight", default=default_weight, minimum=0)
                values = {
                    "user": user,
                    "habit": habit,
                    "reward": reward,
                    "got_reward": got_reward,
                    # A log is a day done: its streak is at least 1 (the seed's default, the engine's rule).
                    "streak_count": _int(fields.get("streak_count"), "streak_count", default=1, minimum=1),
                    "habit_weight": weight,
                    "total_weight_applied": _float(fields.get("total_weight_applied"), "total_weight_applied", 1.0,
                                                   minimum=0),
                    "completed_on": completed_on,
                    "timestamp": timestamp,
                }
            except BadRecord as exc:
                self._skip(stats, record, str(exc))
                continue
            seen[user, habit, completed_on] = record["id"]
            planned.append(self._plan(record, values, source=SOURCE))
        _assign_reward_cycles([p.values for p in planned], open_cycles)
        self._sync(HabitLog, stats, planned, key=lambda v: (v["user"], v["habit"], v["completed_on"]))

    # --- shared machinery -------------------------------------------------------------------

    def _stats(self, key: str, records: list[Record]) -> TableStats:
        stats = TableStats(table=getattr(self._names, key), read=len(records))
        self.report.tables.append(stats)
        return stats

    def _skip(self, stats: TableStats, record: Record, message: str) -> None:
        stats.skipped += 1
        self.report.problems.append(Problem(stats.table, str(record.get("id", "?")), message))

    def _plan(self, record: Record, values: dict[str, Any], **on_create: Any) -> _Planned:
        created = record.get("createdTime")
        try:
            created_at = _datetime(created, "createdTime") if created else self._now
        except BadRecord:
            created_at = self._now
        return _Planned(record["id"], values, {"created_at": created_at, **on_create})

    def _resolve(self, fields: dict[str, Any], name: str, ids: dict[str, int], table: str) -> int:
        link = _link(fields, name)
        if link is None:
            raise BadRecord(f"{name} is missing")
        if link not in ids:
            raise BadRecord(f"{name} links to {link}, which is not in {table} or was skipped")
        return ids[link]

    def _sync(
        self,
        model: type[peewee.Model],
        stats: TableStats,
        planned: list[_Planned],
        *,
        key: Callable[[dict[str, Any]], Hashable],
        adoptable: peewee.Expression | None = None,
    ) -> dict[str, int]:
        """Create, update or leave each planned row; return Airtable record id -> local id.

        A row is found by its ``airtable_id``, else by its natural key (telegram_id,
        shared name, ...) when that row is not claimed by another record of this run,
        so data entered before the import is adopted rather than duplicated.
        """
        columns = [model._meta.fields[name] for name in (planned[0].values if planned else ())]
        query = model.select(model.id, model.airtable_id, *columns)
        existing = list(query.dicts())
        by_airtable = {row["airtable_id"]: row for row in existing if row["airtable_id"]}
        incoming = {p.airtable_id for p in planned}
        adopt_ids = None
        if adoptable is not None:
            adopt_ids = {row.id for row in model.select(model.id).where(adoptable)}
        by_key = {
            key(row): row
            for row in existing
            if (row["airtable_id"] is None or row["airtable_id"] not in incoming)
            and (adopt_ids is None or row["id"] in adopt_ids)
        }
        ids: dict[str, int] = {}
        creates: list[dict[str, Any]] = []
        updates: list[tuple[int, dict[str, Any]]] = []
        for item in planned:
            row = by_airtable.get(item.airtable_id)
            if row is None:
                row = by_key.pop(key(item.values), None)
            if row is None:
                creates.append({**item.values, **item.on_create, "airtable_id": item.airtable_id})
                stats.created += 1
                continue
            ids[item.airtable_id] = row["id"]
            changes = {name: value for name, value in item.values.items() if row[name] != value}
            if row["airtable_id"] != item.airtable_id:
                changes["airtable_id"] = item.airtable_id
            if changes:
                if "updated_at" in model._meta.fields:
                    changes["updated_at"] = self._now
                updates.append((row["id"], changes))
                stats.updated += 1
            else:
                stats.unchanged += 1
        if self.dry_run:
            for row in creates:  # placeholders, so links to rows that would be created resolve
                self._placeholder -= 1
                ids[row["airtable_id"]] = self._placeholder
            return ids
        self._write(model, stats.table, creates, updates)
        new_ids = [row["airtable_id"] for row in creates]
        for start in range(0, len(new_ids), self.batch_size):
            chunk = new_ids[start : start + self.batch_size]
            for row in model.select(model.id, model.airtable_id).where(model.airtable_id.in_(chunk)).dicts():
                ids[row["airtable_id"]] = row["id"]
        return ids

    def _write(
        self,
        model: type[peewee.Model],
        label: str,
        creates: list[dict[str, Any]],
        updates: list[tuple[int, dict[str, Any]]],
    ) -> None:
        try:
            self._write_batches(model, label, creates, updates)
        except peewee.IntegrityError as exc:
            # Someone (the running bot) wrote a clashing row between reading and writing. Batches
            # already written stay; running the import again picks up where this one stopped.
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise AirtableError(
                f"Writing {label} clashed with a row written meanwhile ({first_line}): run the import again."
            ) from None

    def _write_batches(
        self,
        model: type[peewee.Model],
        label: str,
        creates: list[dict[str, Any]],
        updates: list[tuple[int, dict[str, Any]]],
    ) -> None:
        total = len(creates) + len(updates)
        with Progress(f"Writing {label}", total, file=self.progress_file, enabled=self.show_progress) as bar:
            size = rows_per_insert(self.engine.db, model, self.batch_size)  # SQLite before 3.32: fewer
            for start in range(0, len(creates), size):
                batch = creates[start : start + size]
                with self.engine.db.atomic():
                    model.insert_many(batch).execute()
                bar.advance(len(batch))
            for start in range(0, len(updates), self.batch_size):
                batch = updates[start : start + self.batch_size]
                with self.engine.db.atomic():
                    for row_id, changes in batch:
                        model.update(**changes).where(model.id == row_id).execute()
                bar.advance(len(batch))
