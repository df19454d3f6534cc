"""Who holds an inbox row: ``processed_updates.claimed_by``.

``serve --webhook --workers N`` on SQLite runs several processes on one
database file. Each worker records its token (pid and a random nonce) on the
rows it claims, and holds a file lock named after the token for its lifetime;
another worker may take such a row only once that lock is gone (its process
died). NULL: claimed by a single server process (or by nobody), as before.
"""
from peewee import TextField


def up(migrator, db):
    migrator.migrate(migrator.add_column("processed_updates", "claimed_by", TextField(null=True)))


def down(migrator, db):
    migrator.migrate(migrator.drop_column("processed_updates", "claimed_by"))
