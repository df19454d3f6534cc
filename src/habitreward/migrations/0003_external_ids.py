"""Airtable record ids on the imported tables, so ``import-airtable`` can run again without duplicates.

A nullable unique column per table (rather than a separate mapping table): the id
travels with its row through export/import and disappears with it when a user is deleted.
"""
from peewee import CharField
from playhouse.migrate import make_index_name

TABLES = ("users", "habits", "rewards", "reward_progress", "habit_logs")


def up(migrator, db):
    for table in TABLES:
        migrator.migrate(
            migrator.add_column(table, "airtable_id", CharField(max_length=32, null=True)),
            migrator.add_index(table, ("airtable_id",), True),
        )


def down(migrator, db):
    for table in TABLES:
        migrator.migrate(
            migrator.drop_index(table, make_index_name(table, ["airtable_id"])),
            migrator.drop_column(table, "airtable_id"),
        )
