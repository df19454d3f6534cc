"""Whose update an inbox row is: ``processed_updates.chat_key``.

Telegram sends a chat's next update only after the previous one was answered 2xx,
and the webhook answers once the update is stored, before it is processed. With
several server processes (two ``serve`` on one PostgreSQL, or ``serve --workers
N``) the next update can reach another process while the previous one is still
being processed. ``chat_key`` (the user or chat id, see ``server.runner.ordering_key``)
lets that process find the earlier, unfinished update of the same chat and wait
for it (or take it over, when its process is gone). The partial index covers the
rows still to process, the only ones that question looks at. NULL: rows stored
before this migration, and updates that belong to no chat.
"""
from peewee import BigIntegerField


def up(migrator, db):
    migrator.migrate(migrator.add_column("processed_updates", "chat_key", BigIntegerField(null=True)))
    db.execute_sql(
        "CREATE INDEX processed_updates_chat_pending ON processed_updates (chat_key, update_id)"
        " WHERE processed_at IS NULL"
    )


def down(migrator, db):
    db.execute_sql("DROP INDEX processed_updates_chat_pending")
    migrator.migrate(migrator.drop_column("processed_updates", "chat_key"))
