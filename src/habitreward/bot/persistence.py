"""python-telegram-bot persistence in the database (the engine's ``KeyValue`` table, as JSON).

Why not PicklePersistence: a pickle file belongs to one process and one machine,
and breaks between versions. Here every piece of bot state is a small JSON row
keyed by (namespace, key), so several processes on one database share it and a
restart continues where the bot was.

How it stays correct with several processes (see ``bot/app.py``):

* Writes are immediate, not every ``update_interval`` seconds: the Application
  calls ``update_persistence()`` right after each update, so conversation states
  and user/chat data are in the database before the next update of that user can
  reach any process. Unchanged documents are not written again. On PostgreSQL a
  write runs on a worker thread (a round trip the event loop need not wait for).
* Reads are fresh: before an update is handled, the Application reads that user's,
  chat's and the bot's rows and the states of its persistent ConversationHandlers
  for the update's key in one query (``begin_update``); PTB's ``refresh_user_data`` /
  ``refresh_chat_data`` / ``refresh_bot_data`` then replace what another process
  changed. Cost, measured with bench/bench_botkit.py: two statements per update
  (that read, and one write when something changed).

Limits: values must be JSON (dict keys become strings). Two updates of the same
person in flight at once in two processes (say a double-tapped button delivered to
two webhook workers) resolve as last-writer-wins on that person's rows; engine
operations stay transactional, so at worst a conversation step is repeated.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from telegram.ext import BasePersistence, PersistenceInput

from habitreward.bot.state import (  # noqa: F401  (forget_user re-exported)
    BOT_DATA,
    BOT_DATA_KEY,
    CALLBACK_DATA,
    CALLBACK_DATA_KEY,
    CHAT_DATA,
    CONVERSATIONS,
    USER_DATA,
    conversation_row_key,
    forget_user,
)
from habitreward.db import is_postgres
from habitreward.engine.prepared import PreparedShapes
from habitreward.models import KeyValue, utcnow

if TYPE_CHECKING:
    from habitreward.engine import Engine

logger = logging.getLogger(__name__)

#: The rows the update being handled in this context read in :meth:`DatabasePersistence.begin_update`.
#: Per update, not per persistence: updates of different users run concurrently on one loop, and the
#: bot_data row is read by each of them.
_update_rows: contextvars.ContextVar[dict[tuple[str, str], str | None] | None] = contextvars.ContextVar(
    "habitreward_update_rows", default=None
)


def _dumps(value: Any, what: str) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} cannot be stored: it must be JSON-serialisable ({exc})") from None


#: An update's rows, read before its handlers run (compiled once per shape: see engine/prepared.py).
_KEY_VALUES = PreparedShapes(
    lambda namespaces, keys: KeyValue.select(KeyValue.namespace, KeyValue.key, KeyValue.value)
    .where(KeyValue.namespace.in_(list(namespaces)) & KeyValue.key.in_(list(keys)))
    .tuples()
)


class DatabasePersistence(BasePersistence[dict, dict, dict]):
    """Bot state in the ``key_values`` table, through the engine's database."""

    def __init__(self, engine: Engine, *, store_data: PersistenceInput | None = None,
                 update_interval: float = 60):
        # update_interval only drives PTB's background flush; the Application also
        # flushes after every update (see module docstring), so 60 s is a safety net.
        super().__init__(store_data=store_data or PersistenceInput(), update_interval=update_interval)
        self.engine = engine
        # Last JSON read from or written to the database per (namespace, key): lets
        # refresh skip unchanged rows and update skip writes that change nothing.
        self._known: dict[tuple[str, str], str | None] = {}
        self._writes_wait_on_network = is_postgres(engine.db)

    # --- rows -------------------------------------------------------------------------

    def _load_namespace(self, namespace: str) -> dict[str, str]:
        with self.engine.session():
            rows = list(KeyValue.select(KeyValue.key, KeyValue.value).where(KeyValue.namespace == namespace).tuples())
        for key, value in rows:
            self._known[(namespace, key)] = value
        return dict(rows)

    def _load(self, namespace: str, key: str) -> str | None:
        prefetched = _update_rows.get()
        if prefetched is not None and (namespace, key) in prefetched:
            return prefetched[(namespace, key)]
        with self.engine.session():
            row = (KeyValue.select(KeyValue.value)
                   .where((KeyValue.namespace == namespace) & (KeyValue.key == key)).tuples().first())
        return row[0] if row else None

    def empty_as_stored(self, namespace: str, key: str, value: Any) -> bool:
        """Whether ``value`` is an empty document stored as empty or not at all: writing it
        changes nothing (the usual case after an update)."""
        return not value and isinstance(value, dict) and self._known.get((namespace, key)) in (None, "{}")

    async def _write(self, namespace: str, key: str, value: Any, what: str) -> None:
        if self.empty_as_stored(namespace, key, value):
            return  # the usual case (PTB asks after every update)
        known = self._known.get((namespace, key))
        text = _dumps(value, what)
        if known == text or (known is None and text == "{}"):
            return  # unchanged, or empty and never stored: no row for every passer-by
        await self._off_the_loop(self._store, namespace, key, text)

    def _store(self, namespace: str, key: str, text: str) -> None:
        now = utcnow()
        with self.engine.session():
            (KeyValue.insert(namespace=namespace, key=key, value=text, updated_at=now)
             .on_conflict(conflict_target=[KeyValue.namespace, KeyValue.key],
                          update={KeyValue.value: text, KeyValue.updated_at: now})
             .execute())
        self._known[(namespace, key)] = text

    async def _delete(self, namespace: str, key: str) -> None:
        await self._off_the_loop(self._remove, namespace, key)

    def _remove(self, namespace: str, key: str) -> None:
        with self.engine.session():
            KeyValue.delete().where((KeyValue.namespace == namespace) & (KeyValue.key == key)).execute()
        self._known[(namespace, key)] = None

    async def _off_the_loop(self, write: Any, *args: Any) -> None:
        """A write on a worker thread where it waits on the network (PostgreSQL: the event loop
        serves other users meanwhile); on SQLite, a local call, right here."""
        if self._writes_wait_on_network:
            await asyncio.to_thread(write, *args)
        else:
            write(*args)

    def _refresh_into(self, namespace: str, key: str, target: dict) -> None:
        """Replace ``target``'s contents with the stored document if another process changed it."""
        text = self._load(namespace, key)
        if text == self._known.get((namespace, key)):
            return
        self._known[(namespace, key)] = text
        target.clear()
        if text is not None:
            target.update(json.loads(text))

    # --- loading at start-up ------------------------------------------------------------

    async def get_user_data(self) -> dict[int, dict]:
        return {int(k): json.loads(v) for k, v in self._load_namespace(USER_DATA).items()}

    async def get_chat_data(self) -> dict[int, dict]:
        return {int(k): json.loads(v) for k, v in self._load_namespace(CHAT_DATA).items()}

    async def get_bot_data(self) -> dict:
        text = self._load(BOT_DATA, BOT_DATA_KEY)
        self._known[(BOT_DATA, BOT_DATA_KEY)] = text
        return json.loads(text) if text else {}

    async def get_callback_data(self) -> Any:
        text = self._load(CALLBACK_DATA, CALLBACK_DATA_KEY)
        self._known[(CALLBACK_DATA, CALLBACK_DATA_KEY)] = text
        if not text:
            return None
        entries, mapping = json.loads(text)
        return [(uuid, stamp, data) for uuid, stamp, data in entries], mapping

    async def get_conversations(self, name: str) -> dict[tuple, object]:
        prefix = f"{name}:["
        with self.engine.session():
            rows = list(KeyValue.select(KeyValue.key, KeyValue.value)
                        .where((KeyValue.namespace == CONVERSATIONS) & KeyValue.key.startswith(prefix)).tuples())
        conversations: dict[tuple, object] = {}
        for key, value in rows:
            self._known[(CONVERSATIONS, key)] = value
            conversations[tuple(json.loads(key[len(name) + 1:]))] = json.loads(value)
        return conversations

    def begin_update(self, user_id: int | None, chat_id: int | None,
                     conversations: Iterable[tuple[str, tuple]]) -> tuple[dict[tuple[str, tuple], object], dict]:
        """Read this update's rows (user, chat and bot data, conversation states) in one
        query; returns the conversation states and the data rows, which
        :meth:`use_update_rows` hands to the refresh_* calls PTB makes right after.
        """
        by_row = {conversation_row_key(name, key): (name, key) for name, key in conversations}
        wanted = [(CONVERSATIONS, row_key) for row_key in by_row]
        if user_id is not None and self.store_data.user_data:
            wanted.append((USER_DATA, str(user_id)))
        if chat_id is not None and self.store_data.chat_data:
            wanted.append((CHAT_DATA, str(chat_id)))
        if self.store_data.bot_data:
            wanted.append((BOT_DATA, BOT_DATA_KEY))
        if not wanted:
            return {}, {}
        # namespace IN (...) AND key IN (...): a superset of the wanted pairs, filtered
        # below; cheaper to build and run than an OR of pairs, and just as indexed.
        wanted_set = set(wanted)
        with self.engine.session():
            namespaces, keys = sorted({n for n, _ in wanted}), sorted({k for _, k in wanted})
            rows = _KEY_VALUES.shape(len(namespaces), len(keys)).rows(self.engine.db, *namespaces, *keys)
            found = {(namespace, key): value for namespace, key, value in rows if (namespace, key) in wanted_set}
        states = {}
        for row_key, pair in by_row.items():
            text = found.get((CONVERSATIONS, row_key))
            self._known[(CONVERSATIONS, row_key)] = text
            if text is not None:
                states[pair] = json.loads(text)
        return states, {row: found.get(row) for row in wanted if row[0] != CONVERSATIONS}

    @staticmethod
    def use_update_rows(rows: dict) -> contextvars.Token:
        """Let the refresh_* calls of the update handled in this context (an asyncio task)
        use ``rows`` from :meth:`begin_update` instead of reading again; :meth:`end_update`
        with the returned token ends that."""
        return _update_rows.set(rows)

    @staticmethod
    def end_update(token: contextvars.Token) -> None:
        _update_rows.reset(token)

    def load_conversation_states(self, wanted: Iterable[tuple[str, tuple]]) -> dict[tuple[str, tuple], object]:
        """Current states of (conversation name, key) pairs, in one query; absent = no conversation."""
        by_row = {conversation_row_key(name, key): (name, key) for name, key in wanted}
        if not by_row:
            return {}
        with self.engine.session():
            rows = list(KeyValue.select(KeyValue.key, KeyValue.value)
                        .where((KeyValue.namespace == CONVERSATIONS) & KeyValue.key.in_(list(by_row))).tuples())
        found = {}
        for row_key, value in rows:
            self._known[(CONVERSATIONS, row_key)] = value
            found[by_row[row_key]] = json.loads(value)
        for row_key in by_row.keys() - {k for k, _ in rows}:
            self._known[(CONVERSATIONS, row_key)] = None
        return found

    # --- writing ---------------------------------------------------------------------

    async def update_conversation(self, name: str, key: tuple, new_state: object | None) -> None:
        row_key = conversation_row_key(name, key)
        if new_state is None:
            await self._delete(CONVERSATIONS, row_key)
        else:
            await self._write(CONVERSATIONS, row_key, new_state, f"conversation state of {name!r}")

    async def update_user_data(self, user_id: int, data: dict) -> None:
        await self._write(USER_DATA, str(user_id), data, f"user_data of user {user_id}")

    async def update_chat_data(self, chat_id: int, data: dict) -> None:
        await self._write(CHAT_DATA, str(chat_id), data, f"chat_data of chat {chat_id}")

    async def update_bot_data(self, data: dict) -> None:
        await self._write(BOT_DATA, BOT_DATA_KEY, data, "bot_data")

    async def update_callback_data(self, data: Any) -> None:
        entries, mapping = data
        await self._write(CALLBACK_DATA, CALLBACK_DATA_KEY, [list(entries), mapping], "callback_data")

    async def drop_user_data(self, user_id: int) -> None:
        await self._delete(USER_DATA, str(user_id))

    async def drop_chat_data(self, chat_id: int) -> None:
        await self._delete(CHAT_DATA, str(chat_id))

    # --- fresh reads before each update ------------------------------------------------

    async def refresh_user_data(self, user_id: int, user_data: dict) -> None:
        if self.store_data.user_data:
            self._refresh_into(USER_DATA, str(user_id), user_data)

    async def refresh_chat_data(self, chat_id: int, chat_data: dict) -> None:
        if self.store_data.chat_data:
            self._refresh_into(CHAT_DATA, str(chat_id), chat_data)

    async def refresh_bot_data(self, bot_data: dict) -> None:
        if self.store_data.bot_data:
            self._refresh_into(BOT_DATA, BOT_DATA_KEY, bot_data)

    async def flush(self) -> None:
        """Nothing is buffered here: every update_* call has already written."""

