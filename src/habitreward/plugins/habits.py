"""Built-in plugin: the core tables, registered like any plugin's so export, import and
user deletion treat core and plugin data through one path."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from habitreward.db import id_chunks
from habitreward.hookspecs import hookimpl
from habitreward.models import CORE_MODELS, ProcessedUpdate, User


@hookimpl(tryfirst=True)
def habitreward_register_models(register: Callable[..., None]) -> None:
    register(*CORE_MODELS)


def _people_in(payload: Any) -> Iterator[int]:
    """Telegram user ids an update names as sender or chat (``from`` / ``chat``), at any depth."""
    if isinstance(payload, dict):
        for key, value in payload.items():
            if key in ("from", "chat", "user") and isinstance(value, dict) and isinstance(value.get("id"), int):
                yield value["id"]
            yield from _people_in(value)
    elif isinstance(payload, list):
        for item in payload:
            yield from _people_in(item)


@hookimpl
def habitreward_user_deleted(engine: Any, user: User) -> None:
    """The inbox keeps processed updates for a few days; a person who leaves takes theirs along."""
    ident = int(user.telegram_id)
    candidates = ProcessedUpdate.select(ProcessedUpdate.update_id, ProcessedUpdate.payload).where(
        ProcessedUpdate.processed_at.is_null(False) & ProcessedUpdate.payload.contains(str(ident))
    )
    doomed = []
    for update_id, payload in candidates.tuples():
        try:
            if ident in set(_people_in(json.loads(payload))):
                doomed.append(update_id)
        except ValueError:
            continue
    for chunk in id_chunks(doomed):  # a busy person's inbox rows: any number
        ProcessedUpdate.delete().where(ProcessedUpdate.update_id.in_(chunk)).execute()
