"""PostgreSQL: the hot path's statements prepared on the server (habitreward.pg_statements):
prepared once per connection at check-out, sent as EXECUTE with the same results, and never
the cause of more than one failed statement when the server loses or outdates them."""

from __future__ import annotations

import peewee
import pytest

from habitreward.db import open_database
from habitreward.engine.prepared import Prepared
from habitreward.errors import ConfigError
from habitreward.models import KeyValue
from test_db_postgres_pool import CountingCursor

pytestmark = pytest.mark.postgres_only


@pytest.fixture
def pool(engine, db_url):
    """A second database object on the migrated test database (``engine`` made it)."""
    database = open_database(db_url, bind=False)
    database.connect_params["cursor_factory"] = CountingCursor
    CountingCursor.sent = []
    yield database
    database.close_all()


#: A statement the hot path could run: a key's value.
VALUE_OF = Prepared(lambda namespace, key: KeyValue.select(KeyValue.value)
                    .where((KeyValue.namespace == namespace) & (KeyValue.key == key)).tuples(), 2)


def value_of(database: peewee.Database, key: str) -> str | None:
    with database.connection_context():
        row = VALUE_OF.first(database, "test", key)
    return row[0] if row else None


def prepared_on_server(database: peewee.Database) -> list[str]:
    with database.connection_context():
        return [name for (name,) in database.execute_sql("SELECT name FROM pg_prepared_statements ORDER BY name")]


def test_a_hot_statement_is_prepared_once_per_connection_then_executed(engine, pool):
    with engine.session():
        KeyValue.create(namespace="test", key="a", value="1")
    assert value_of(pool, "a") == "1"  # first run: registered, sent as text
    assert value_of(pool, "a") == "1"  # checked out again: prepared, then executed
    assert value_of(pool, "missing") is None
    prepares = [s for s in CountingCursor.sent if s.startswith("PREPARE")]
    executes = [s for s in CountingCursor.sent if "EXECUTE habitreward_" in s]
    assert len(prepares) == 1 and prepares[0].startswith("PREPARE habitreward_1 AS SELECT")
    assert "$1" in prepares[0] and "$2" in prepares[0] and "%s" not in prepares[0]
    assert executes == ["EXECUTE habitreward_1(%s, %s)"] * 2
    assert prepared_on_server(pool) == ["habitreward_1"]


def test_a_statement_postgresql_will_not_prepare_runs_as_text(engine, pool):
    untyped = Prepared(lambda value: KeyValue.select(peewee.NodeList((value, peewee.SQL("IS NULL"))))
                       .limit(1).tuples(), 1)
    with engine.session():
        KeyValue.create(namespace="test", key="a", value="1")
    for _ in range(3):
        with pool.connection_context():
            assert untyped.first(pool, None) == (True,)
    assert not [s for s in CountingCursor.sent if s.startswith("EXECUTE")]  # "could not determine data type"


#: Two more statements of the hot path's kind.
KEY_OF = Prepared(lambda namespace, value: KeyValue.select(KeyValue.key)
                  .where((KeyValue.namespace == namespace) & (KeyValue.value == value)).tuples(), 2)
COUNT_IN = Prepared(lambda namespace: KeyValue.select(peewee.fn.COUNT(KeyValue.id))
                    .where(KeyValue.namespace == namespace).tuples(), 1)


def test_a_new_connection_prepares_what_it_lacks_in_one_round_trip(engine, pool):
    with engine.session():
        KeyValue.create(namespace="test", key="a", value="1")
    with pool.connection_context():  # registered (run as text) on the first connection
        assert VALUE_OF.first(pool, "test", "a") == ("1",)
        assert KEY_OF.first(pool, "test", "1") == ("a",)
        assert COUNT_IN.first(pool, "test") == (1,)
    pool.close_all()
    CountingCursor.sent = []
    with pool.connection_context():  # a new connection
        assert [VALUE_OF.first(pool, "test", "a"), KEY_OF.first(pool, "test", "1"),
                COUNT_IN.first(pool, "test")] == [("1",), ("a",), (1,)]
    prepares = [s for s in CountingCursor.sent if s.startswith("PREPARE")]
    assert len(prepares) == 1 and prepares[0].count("PREPARE habitreward_") == 3
    assert sum("EXECUTE habitreward_" in s for s in CountingCursor.sent) == 3
    assert len(prepared_on_server(pool)) == 3


def test_one_statement_refused_in_a_new_connections_batch_leaves_the_others_prepared(engine, pool):
    untyped = Prepared(lambda value: KeyValue.select(peewee.NodeList((value, peewee.SQL("IS NULL"))))
                       .limit(1).tuples(), 1)
    with engine.session():
        KeyValue.create(namespace="test", key="a", value="1")
    with pool.connection_context():
        assert untyped.first(pool, None) == (True,)  # registered first: the batch fails at once
        assert VALUE_OF.first(pool, "test", "a") == ("1",)
        assert KEY_OF.first(pool, "test", "1") == ("a",)
    pool.close_all()
    CountingCursor.sent = []
    with pool.connection_context():
        assert untyped.first(pool, None) == (True,)
        assert VALUE_OF.first(pool, "test", "a") == ("1",)
        assert KEY_OF.first(pool, "test", "1") == ("a",)
    assert sum("EXECUTE habitreward_" in s for s in CountingCursor.sent) == 2  # the untyped one as text
    assert len(prepared_on_server(pool)) == 2


def test_prepared_statements_can_be_turned_off_in_the_url(engine, db_url):
    off = open_database(db_url + "?prepared_statements=false", bind=False)
    assert off.statements is None
    off.close_all()
    with pytest.raises(ConfigError, match="prepared_statements must be true or false"):
        open_database(db_url + "?prepared_statements=maybe", bind=False)


def test_statements_the_session_lost_fail_once_then_run_as_text(engine, pool):
    with engine.session():
        KeyValue.create(namespace="test", key="a", value="1")
    value_of(pool, "a")
    with pool.connection_context():
        pool.execute_sql("DEALLOCATE ALL")  # as a pooler in transaction mode would make it look
        with pytest.raises(peewee.DatabaseError, match="does not exist"):
            VALUE_OF.first(pool, "test", "a")
    assert not pool.statements.enabled  # with a warning naming prepared_statements=false
    assert [value_of(pool, "a") for _ in range(3)] == ["1"] * 3
    assert CountingCursor.sent[-1].startswith("SELECT")  # no longer prepared in this process


def test_a_statement_whose_table_changed_fails_once_and_its_connection_is_not_reused(engine, pool):
    with pool.connection_context():
        pool.execute_sql("CREATE TABLE changing (v INTEGER)")
        pool.execute_sql("INSERT INTO changing VALUES (1)")
    query = Prepared(lambda limit: peewee.Table("changing").select(peewee.SQL("*")).limit(limit).tuples(), 1)
    with pool.connection_context():
        assert query.first(pool, 1) == (1,)
    with pool.connection_context():
        first_pid = pool.execute_sql("SELECT pg_backend_pid()").fetchone()[0]
        assert query.first(pool, 1) == (1,)  # executed
        pool.execute_sql("ALTER TABLE changing ALTER COLUMN v TYPE TEXT")
        with pytest.raises(peewee.DatabaseError, match="cached plan must not change result type"):
            query.first(pool, 1)
    with pool.connection_context():
        assert pool.execute_sql("SELECT pg_backend_pid()").fetchone()[0] != first_pid  # a new connection
        assert query.first(pool, 1) == ("1",)
        pool.execute_sql("DROP TABLE changing")
