"""Many rows into one table through one INSERT statement, built once (``habitreward import``).

peewee's ``insert_many`` builds its SQL anew for every batch, one node per value: most of an
import's time (41 s for 300,000 habit logs into PostgreSQL, whose export took 4 s). Here peewee
builds the statement for one row, once per table; each batch then goes to the driver's own bulk
call: sqlite3's ``executemany`` (the statement prepared once, run for each row) or psycopg2's
``execute_values`` (one statement holding the batch's rows). The values are converted as
``insert_many`` converts them (each field's ``db_value``), and a field the rows leave out gets its
default, as ``insert_many`` fills it in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import peewee

from habitreward.db import is_postgres


class BulkInsert:
    """``model.insert_many(rows, fields=fields)``, with ``conflict`` (``query.on_conflict_ignore()``,
    say) applied to the query, as a statement to run batch after batch."""

    def __init__(self, database: peewee.Database, model: type[peewee.Model], fields: Sequence[peewee.Field],
                 conflict: Callable[[peewee.ModelInsert], peewee.ModelInsert] = lambda query: query):
        self.database = database
        given = set(fields)
        # As insert_many: a field left out with a default gets it (a callable one called per row).
        self.defaults = [(f, d) for f, d in model._meta.defaults.items() if f not in given]
        self.columns = [*fields, *(f for f, _ in self.defaults)]
        self.converters = [f.db_value for f in self.columns]
        # The numbers 0..n-1 as the one row's values (unconverted): its parameters say that the
        # statement takes each column's value once, in this order.
        row = [peewee.Value(i, converter=False) for i in range(len(self.columns))]
        query = conflict(model.insert_many([row], fields=self.columns))
        if database.returning_clause:
            query = query.returning()  # no RETURNING id: nobody reads the new ids
        sql, params = database.get_sql_context().sql(query).query()
        if params != list(range(len(self.columns))):
            raise ValueError(f"an INSERT into {model._meta.table_name} takes other values than its columns: {sql}")
        self.postgres = is_postgres(database)
        if self.postgres:  # execute_values puts the rows where the one row's %s are
            group = "(" + ", ".join(["%s"] * len(self.columns)) + ")"
            if sql.count(group) != 1:
                raise ValueError(f"no single row of values in {sql}")
            sql = sql.replace(group, "%s")
        self.sql = sql

    def run(self, rows: Sequence[Sequence[Any]]) -> int:
        """Insert ``rows`` (values in the order of ``fields``) in a savepoint of the open
        transaction: all of them or, with the error the database gave (as peewee raises it:
        ``peewee.IntegrityError``...), none. The number of rows written (ON CONFLICT DO NOTHING
        leaves out those it skipped)."""
        if not self.database.in_transaction():
            raise RuntimeError("BulkInsert.run needs an open transaction")
        values = [self._values(row) for row in rows]
        if peewee.logger.isEnabledFor(logging.DEBUG):  # as execute_sql logs each statement
            peewee.logger.debug((self.sql, f"{len(values)} rows"))
        # The driver's cursor directly, in a savepoint: the savepoint's own statement goes through
        # peewee, and with it the transaction's BEGIN, which db.PostgresqlDatabase sends with the
        # first statement (a cursor used before that would write outside the transaction). After
        # a failed statement PostgreSQL takes no more in the transaction: the savepoint's rollback
        # lets the caller look into the error (which parent is missing?).
        with self.database.atomic(), peewee.__exception_wrapper__:
            cursor = self.database.cursor()
            if self.postgres:
                from psycopg2.extras import execute_values

                # One page: one statement, whose row count is the batch's.
                execute_values(cursor, self.sql, values, page_size=max(len(values), 1))
            else:
                cursor.executemany(self.sql, values)  # row counts summed over the rows
            return cursor.rowcount

    def _values(self, row: Sequence[Any]) -> list[Any]:
        values = [convert(value) for convert, value in zip(self.converters, row)]
        values.extend(convert(default() if callable(default) else default)
                      for convert, (_, default) in zip(self.converters[len(row):], self.defaults))
        return values
