"""Where the bot keeps its state in the database, and forgetting a person's part of it.

Kept free of python-telegram-bot so the engine's ``users delete`` path (through the
``habitreward_user_deleted`` hook, this module is a built-in plugin) can use it
without importing the bot. ``bot/persistence.py`` reads and writes these rows.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from habitreward.db import id_chunks
from habitreward.engine.users import APPROVAL_NAMESPACE, REQUESTED, SENDING, SENDING_LEASE, UNSENT
from habitreward.hookspecs import hookimpl
from habitreward.models import KeyValue, User

# KeyValue namespaces of the bot's state (JSON documents).
USER_DATA = "bot.user_data"  # key: Telegram user id
CHAT_DATA = "bot.chat_data"  # key: chat id (a private chat's id is the user's)
BOT_DATA = "bot.bot_data"  # key: BOT_DATA_KEY
CONVERSATIONS = "bot.conversations"  # key: "<conversation name>:[chat_id,user_id]"
CALLBACK_DATA = "bot.callback_data"  # key: CALLBACK_DATA_KEY
APPROVAL = APPROVAL_NAMESPACE  # key: Telegram user id; REQUESTED (an admin has it), UNSENT, SENDING or DECLINED
BOT_DATA_KEY = "bot"
CALLBACK_DATA_KEY = "cache"


def conversation_row_key(name: str, key: tuple) -> str:
    """The KeyValue key of one conversation: ``"<name>:[chat_id,user_id]"``."""
    return f"{name}:{json.dumps(list(key), separators=(',', ':'))}"


def user_state_ids(telegram_id: int) -> list[int]:
    """Ids of the KeyValue rows that hold one person's bot state: their user_data, their
    private chat's chat_data, their request to use the bot, and every conversation whose key
    names them."""
    ident = int(telegram_id)
    ids = [row_id for (row_id,) in KeyValue.select(KeyValue.id).where(
        KeyValue.namespace.in_([USER_DATA, CHAT_DATA, APPROVAL]) & (KeyValue.key == str(ident))).tuples()]
    for row_id, key in KeyValue.select(KeyValue.id, KeyValue.key).where(KeyValue.namespace == CONVERSATIONS).tuples():
        try:
            parts = json.loads("[" + key.rpartition(":[")[2])
        except ValueError:
            continue
        # (chat_id, user_id), (user_id,) or (chat_id,): in a private chat both are the user's id
        if ident in parts:
            ids.append(row_id)
    return sorted(ids)


def delete_user_state(telegram_id: int) -> int:
    """Delete, in the caller's transaction, the bot state kept for one person
    (:func:`user_state_ids`). Returns the number of rows deleted."""
    # Their open dialogs (one per group chat and dialog) can be more than a statement takes.
    return sum(KeyValue.delete().where(KeyValue.id.in_(chunk)).execute()
               for chunk in id_chunks(user_state_ids(telegram_id)))


def forget_user(engine: Any, telegram_id: int) -> int:
    """:func:`delete_user_state` in a transaction of its own."""
    with engine.transaction():
        return delete_user_state(telegram_id)


def approval_of(engine: Any, telegram_id: int) -> str | None:
    """Where someone's request to use the bot stands: "requested" (the admins were asked),
    "unsent" (waiting, but no admin has it yet: there was none, or Telegram refused it to each),
    "sending" (a process took it to send it: :func:`take_unsent_request`),
    "declined", or None (never asked: registered while it was closed, or deactivated later)."""
    with engine.session():
        row = KeyValue.get_or_none((KeyValue.namespace == APPROVAL) & (KeyValue.key == str(int(telegram_id))))
    return json.loads(row.value) if row is not None else None


def admin_ids(engine: Any) -> list[int]:
    """The Telegram ids of everyone who can approve a newcomer: ADMIN_TELEGRAM_IDS, then the
    database's admins."""
    ids = list(engine.settings.admin_telegram_ids)
    ids += [admin.telegram_id for admin in engine.admins() if admin.telegram_id not in ids]
    return ids


def can_be_approved(engine: Any, telegram_id: int) -> bool:
    """Whether anyone but this person could approve them (there may be no admin yet)."""
    return any(admin_id != telegram_id for admin_id in admin_ids(engine))


def set_approval(engine: Any, telegram_id: int, state: str | None) -> None:
    """Record where someone's request stands (None: settled, they were let in). An "unsent"
    one may be sent at once (:func:`take_unsent_request`)."""
    with engine.transaction():
        KeyValue.delete().where((KeyValue.namespace == APPROVAL) & (KeyValue.key == str(int(telegram_id)))).execute()
        if state is not None:
            KeyValue.create(namespace=APPROVAL, key=str(int(telegram_id)), value=json.dumps(state),
                            updated_at=engine.utcnow())


#: A request that reached no admin (each blocked the bot, or Telegram was out of reach) is tried
#: again at the newcomer's first message this long after, not at each of their messages (each try
#: a message to every admin, refused again, and a WARNING). Its "unsent" row's ``updated_at`` says
#: when it may be sent: set this far ahead by :func:`give_back_unsent_request`; the moment it was
#: asked for a request never tried (no admin then), so that one goes at the next message.
REQUEST_RETRY = dt.timedelta(minutes=5)


def take_unsent_request(engine: Any, telegram_id: int) -> bool:
    """Take a request no admin has yet, to send it now: True, and it says "sending" until
    :func:`request_sent` or :func:`give_back_unsent_request`. One conditional statement, so of
    two processes handling the newcomer's messages at the same moment only one gets True and
    sends it: no admin gets it twice. A request whose last try reached no admin is not taken
    before :data:`REQUEST_RETRY` is over. A request left "sending" for :data:`SENDING_LEASE` is
    taken again: the process that took it died, and it would otherwise never reach an admin."""
    now = engine.utcnow()
    with engine.transaction():
        return KeyValue.update(value=json.dumps(SENDING), updated_at=now).where(
            (_request_is(telegram_id, UNSENT) & (KeyValue.updated_at <= now))
            | (_request_is(telegram_id, SENDING) & (KeyValue.updated_at < now - SENDING_LEASE))).execute() == 1


def request_sent(engine: Any, telegram_id: int) -> None:
    """An admin received the request taken: "requested" (unless it was decided meanwhile)."""
    _taken_request_is(engine, telegram_id, REQUESTED)


def give_back_unsent_request(engine: Any, telegram_id: int) -> None:
    """Sending it reached no admin: it is "unsent" again, to be tried again at the newcomer's
    first message :data:`REQUEST_RETRY` from now (unless it was decided meanwhile)."""
    _taken_request_is(engine, telegram_id, UNSENT, engine.utcnow() + REQUEST_RETRY)


def _taken_request_is(engine: Any, telegram_id: int, state: str, at: dt.datetime | None = None) -> None:
    with engine.transaction():
        KeyValue.update(value=json.dumps(state), updated_at=at or engine.utcnow()).where(
            _request_is(telegram_id, SENDING)).execute()


def request_received(engine: Any, telegram_id: int) -> None:
    """An admin was sent the request by ``/requests``: one no admin had ("unsent", or "sending"
    past :data:`SENDING_LEASE`) is "requested" now, so that the newcomer's next message does not
    send it again, to that admin or another (one an admin has is never sent again)."""
    now = engine.utcnow()
    with engine.transaction():
        KeyValue.update(value=json.dumps(REQUESTED), updated_at=now).where(
            (KeyValue.key == str(int(telegram_id))) & _no_admin_has(now)).execute()


def unsent_requests(engine: Any, shown: int = 10) -> tuple[int, list[User]]:
    """How many are waiting with a request no admin has (asked while there was none, or whose
    sender stopped half-way: "sending" past :data:`SENDING_LEASE`, taken again at the person's
    next message), and the first ``shown`` of them, oldest request first (``users promote``
    names them; ``serve`` at its start asks only how many: ``shown=0`` is one query)."""
    return _first_requests(engine, _no_admin_has(engine.utcnow()), shown)


def waiting_requests(engine: Any, shown: int = 10) -> tuple[int, list[User]]:
    """How many are waiting for an answer to their request, whether an admin has it or not, and
    the first ``shown`` of them, oldest request first (``/requests`` sends an admin those; an
    admin's /start and ``users promote`` say how many: ``shown=0`` is one query)."""
    return _first_requests(engine, (KeyValue.namespace == APPROVAL) & KeyValue.value.in_(
        [json.dumps(state) for state in (REQUESTED, UNSENT, SENDING)]), shown)


def _no_admin_has(now: dt.datetime) -> Any:
    """The requests that wait with no admin having them: unsent, or left "sending" by a process
    that stopped (its lease is over)."""
    return (KeyValue.namespace == APPROVAL) & (
        (KeyValue.value == json.dumps(UNSENT))
        | ((KeyValue.value == json.dumps(SENDING)) & (KeyValue.updated_at < now - SENDING_LEASE)))


def _first_requests(engine: Any, which: Any, shown: int) -> tuple[int, list[User]]:
    requests = KeyValue.select(KeyValue.key).where(which)
    with engine.session():
        count = requests.count()
        ids = [int(key) for (key,) in requests.order_by(KeyValue.id).limit(shown).tuples()] if shown and count else []
        users = {u.telegram_id: u for u in User.select().where(User.telegram_id.in_(ids))} if ids else {}
    return count, [users[i] for i in ids if i in users]


def _request_is(telegram_id: int, state: str) -> Any:
    return ((KeyValue.namespace == APPROVAL) & (KeyValue.key == str(int(telegram_id)))
            & (KeyValue.value == json.dumps(state)))


@hookimpl
def habitreward_user_deleted(engine: Any, user: User) -> None:
    """``users delete``: what the bot remembered about the person goes with them."""
    delete_user_state(user.telegram_id)
