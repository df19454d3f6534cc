"""PostgreSQL: the hot path's statements prepared on the server, once per pooled connection.

psycopg2 sends every statement as text, which PostgreSQL parses and plans on each run;
for the short indexed statements of an update that is most of the server's work (measured:
90-94 us of the server's CPU per SELECT as text, 40-60 us as ``EXECUTE``). The statements
of :class:`habitreward.engine.prepared.Prepared` have fixed SQL, so each is registered here
when it is compiled, and every connection of the pool prepares them (``PREPARE name AS``)
when it is checked out (all it lacks in one round trip, each alone only if that fails):
outside any transaction, where a ``PREPARE`` PostgreSQL refuses (it cannot tell a parameter's
type) costs nothing but that statement running as text from then on. A statement is then
sent as ``EXECUTE name(...)``, also inside ``BEGIN; ...`` and ``...; COMMIT``
(db.PostgresqlDatabase's round-trip savings).

A prepared statement belongs to its server session and is not transactional. Where its table
changed what it returns (a migration run meanwhile), the statement fails once and its
connection is not reused (a new one prepares afresh). Where the session lost it (``DISCARD
ALL``; a pooler in transaction mode, which habitreward does not support: its advisory locks
need a session per connection), the statement fails once and the process stops preparing,
with a warning. Turn it off from the
start with ``DATABASE_URL=...?prepared_statements=false``.
"""

from __future__ import annotations

import logging
import re
import threading
import weakref
from typing import Any

logger = logging.getLogger(__name__)

#: At most this many statements are prepared, on each connection (each shape of an ``IN`` list
#: is one; the hot path has about 20); later ones run as text. Each costs the server session memory.
MAX_STATEMENTS = 64
#: SQLSTATEs after which a connection's prepared statements cannot be trusted: "prepared statement
#: does not exist" (its session lost them) and "cached plan must not change result type".
UNTRUSTED_AFTER = frozenset({"26000", "0A000"})
LOST = "26000"
_ALREADY_PREPARED = "42P05"

_PLACEHOLDER = re.compile(r"%(%|s)")


class _Statement:
    __slots__ = ("name", "prepare", "execute")

    def __init__(self, name: str, sql: str):
        count = 0

        def number(match: re.Match[str]) -> str:
            nonlocal count
            if match.group(1) == "%":
                return "%"  # PREPARE is sent without parameters: psycopg2 leaves it as written
            count += 1
            return f"${count}"

        self.name = name
        self.prepare = f"PREPARE {name} AS {_PLACEHOLDER.sub(number, sql)}"
        self.execute = f"EXECUTE {name}({', '.join(['%s'] * count)})" if count else f"EXECUTE {name}"


class ServerStatements:
    """Which statements to prepare, and which of them each connection has prepared."""

    def __init__(self) -> None:
        self.enabled = True
        self._lock = threading.Lock()
        self._statements: dict[str, _Statement] = {}  # SQL -> its statement
        self._refused: set[str] = set()  # SQL PostgreSQL would not prepare: sent as text
        self._prepared: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()  # conn -> SQL

    def register(self, sql: str) -> None:
        """Prepare ``sql`` on every connection from its next check-out on."""
        with self._lock:
            if self.enabled and sql not in self._statements and len(self._statements) < MAX_STATEMENTS:
                statement = self._statements[sql] = _Statement(f"habitreward_{len(self._statements) + 1}", sql)
                logger.debug("%s is %s", statement.name, sql)  # the name the statement logs show

    def disable(self, reason: str) -> None:
        """Stop preparing and executing prepared statements in this process."""
        if self.enabled:
            self.enabled = False
            logger.warning("PostgreSQL: statements are no longer prepared on the server (%s). A pooler in "
                           "transaction mode (PgBouncer's pool_mode = transaction) runs statements on other "
                           "server sessions and is not supported: the inbox's advisory locks need a session "
                           "per connection; use session mode or connect directly", reason)

    def on_checkout(self, conn: Any) -> None:
        """Prepare on ``conn`` (idle, autocommit) what it lacks; nothing to send in the usual case."""
        if not self.enabled:
            return
        done = self._prepared.get(conn)
        if done is None:
            done = self._prepared[conn] = set()
        if len(done) + len(self._refused) >= len(self._statements):
            return
        with self._lock:
            missing = [(sql, statement) for sql, statement in self._statements.items()
                       if sql not in done and sql not in self._refused]
        try:
            with conn.cursor() as cursor:
                if len(missing) > 1:  # a new connection: all in one round trip, usually
                    try:
                        cursor.execute("; ".join(statement.prepare for _, statement in missing))
                    except Exception:  # which one failed? Each alone (those prepared answer 42P05)
                        pass
                    else:
                        done.update(sql for sql, _ in missing)
                        return
                for sql, statement in missing:
                    try:
                        cursor.execute(statement.prepare)
                    except Exception as exc:
                        code = getattr(exc, "pgcode", None) or ""
                        if code == _ALREADY_PREPARED:
                            done.add(sql)
                        elif code.startswith("42"):  # refused as written (a parameter of no known type)
                            logger.debug("not prepared on the server (%s): %s", exc, sql)
                            self._refused.add(sql)
                        else:  # the connection, or a passing condition: tried again at a later check-out
                            return
                    else:
                        done.add(sql)
        except Exception:  # the connection is unusable: the statement that follows will tell
            logger.debug("could not prepare statements on a connection", exc_info=True)

    def sql_for(self, conn: Any, sql: str) -> str:
        """What to send for ``sql`` on ``conn``: its ``EXECUTE`` where prepared there."""
        statement = self._statements.get(sql)
        if statement is None or not self.enabled:
            return sql
        done = self._prepared.get(conn)
        return statement.execute if done is not None and sql in done else sql

    def forget(self, conn: Any) -> None:
        """``conn`` is closed, or its prepared statements cannot be trusted."""
        self._prepared.pop(conn, None)
