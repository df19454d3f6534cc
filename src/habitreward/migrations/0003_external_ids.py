"""Airtable record ids on the imported tables, and full-precision floats on PostgreSQL.

``airtable_id``: so ``import-airtable`` can run again without duplicates. A
nullable unique column per table (rather than a separate mapping table): the id
travels with its row through export/import and disappears with it when a user
is deleted.

Floats: peewee's FloatField is a 4-byte ``real`` on PostgreSQL, which turned a
reward weight of 1/3 into 0.33333334 and made the move from SQLite (8-byte
REAL) lossy; those columns become ``double precision``. SQLite is unchanged.
"""
from peewee import CharField, DoubleField, FloatField, PostgresqlDatabase
from playhouse.migrate import make_index_name

TABLES = ("users", "habits", "rewards", "reward_progress", "habit_logs")
DOUBLE_COLUMNS = (("rewards", "weight"), ("habit_logs", "total_weight_applied"))


def up(migrator, db):
    for table in TABLES:
        migrator.migrate(
            migrator.add_column(table, "airtable_id", CharField(max_length=32, null=True)),
            migrator.add_index(table, ("airtable_id",), True),
        )
    if isinstance(db, PostgresqlDatabase):
        for table, column in DOUBLE_COLUMNS:
            migrator.migrate(migrator.alter_column_type(table, column, DoubleField()))


def down(migrator, db):
    if isinstance(db, PostgresqlDatabase):
        for table, column in DOUBLE_COLUMNS:
            migrator.migrate(migrator.alter_column_type(table, column, FloatField()))
    for table in TABLES:
        migrator.migrate(
            migrator.drop_index(table, make_index_name(table, ["airtable_id"])),
            migrator.drop_column(table, "airtable_id"),
        )
