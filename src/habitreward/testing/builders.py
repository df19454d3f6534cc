"""Bot API Update JSON for tests: a user typing a message or pressing a button.

The dicts are what Telegram sends, so they go through ``Update.de_json`` (or a
webhook, or the stand-in's getUpdates) like real traffic::

    message_update(42, "/start")
    callback_update(42, "habit:done:3", message_id=7)
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import threading
from typing import Any

_update_ids = itertools.count(1)
_message_ids = itertools.count(1_000_000)  # far from the stand-in's per-chat counters
_callback_ids = itertools.count(1)
_lock = threading.Lock()

_COMMAND = re.compile(r"^/[A-Za-z0-9_]{1,32}(@[A-Za-z0-9_]+)?")


def next_update_id() -> int:
    with _lock:
        return next(_update_ids)


def _timestamp(date: dt.datetime | int | None) -> int:
    if date is None:
        return int(dt.datetime.now(dt.timezone.utc).timestamp())
    if isinstance(date, dt.datetime):
        if date.tzinfo is None:
            raise ValueError("date must be timezone-aware (Telegram dates are UTC timestamps)")
        return int(date.timestamp())
    return int(date)


def user_dict(user_id: int, *, first_name: str = "Test", last_name: str | None = None,
              username: str | None = None, language_code: str | None = "en") -> dict[str, Any]:
    user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
    if last_name:
        user["last_name"] = last_name
    if username:
        user["username"] = username
    if language_code:
        user["language_code"] = language_code
    return user


def chat_dict(chat_id: int, *, first_name: str = "Test") -> dict[str, Any]:
    if chat_id > 0:
        return {"id": chat_id, "type": "private", "first_name": first_name}
    return {"id": chat_id, "type": "supergroup", "title": "Test group"}


def message_update(
    user_id: int,
    text: str,
    *,
    update_id: int | None = None,
    chat_id: int | None = None,
    language_code: str | None = "en",
    first_name: str = "Test",
    date: dt.datetime | int | None = None,
    message_id: int | None = None,
    username: str | None = None,
) -> dict[str, Any]:
    """An Update with a text message from ``user_id`` (a private chat unless ``chat_id`` says otherwise).

    Text starting with a command gets the ``bot_command`` entity Telegram adds, so
    ``CommandHandler`` sees it. ``date`` is when the user wrote (aware datetime or Unix time).
    """
    chat_id = user_id if chat_id is None else chat_id
    if message_id is None:
        with _lock:
            message_id = next(_message_ids)
    message: dict[str, Any] = {
        "message_id": message_id,
        "from": user_dict(user_id, first_name=first_name, language_code=language_code, username=username),
        "chat": chat_dict(chat_id, first_name=first_name),
        "date": _timestamp(date),
        "text": text,
    }
    command = _COMMAND.match(text)
    if command:
        # Telegram counts offsets in UTF-16 code units; a command is ASCII, so len() is right.
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command.group(0))}]
    return {"update_id": update_id if update_id is not None else next_update_id(), "message": message}


def callback_update(
    user_id: int,
    data: str,
    *,
    message_id: int,
    update_id: int | None = None,
    chat_id: int | None = None,
    language_code: str | None = "en",
    first_name: str = "Test",
    message_text: str = "",
    reply_markup: dict[str, Any] | None = None,
    bot_id: int = 123456,
    bot_username: str = "habitreward_test_bot",
    date: dt.datetime | int | None = None,
    callback_query_id: str | None = None,
) -> dict[str, Any]:
    """An Update with a button press by ``user_id`` on the bot's message ``message_id``."""
    chat_id = user_id if chat_id is None else chat_id
    if callback_query_id is None:
        with _lock:
            callback_query_id = str(next(_callback_ids))
    message: dict[str, Any] = {
        "message_id": message_id,
        "from": {"id": bot_id, "is_bot": True, "first_name": "HabitReward", "username": bot_username},
        "chat": chat_dict(chat_id, first_name=first_name),
        "date": _timestamp(date),
        "text": message_text,
    }
    if reply_markup:
        message["reply_markup"] = reply_markup
    return {
        "update_id": update_id if update_id is not None else next_update_id(),
        "callback_query": {
            "id": callback_query_id,
            "from": user_dict(user_id, first_name=first_name, language_code=language_code),
            "message": message,
            "chat_instance": str(chat_id),
            "data": data,
        },
    }
