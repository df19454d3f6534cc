"""The transport-agnostic engine: every rule of habitreward, over Peewee models.

Nothing here imports Telegram. Build one :class:`Engine` per process (or per
test) and call its methods from any front end::

    engine = Engine(Settings.load())
    user = engine.get_user(42)
    result = engine.complete(user, engine.find_habit(user, "Running"))
"""

from __future__ import annotations

from habitreward.engine.aliases import AliasesMixin
from habitreward.engine.base import Clock, EngineBase, system_clock
from habitreward.engine.catalog import CatalogMixin
from habitreward.engine.queries import QueriesMixin
from habitreward.engine.tracking import TrackingMixin
from habitreward.engine.users import UsersMixin


class Engine(UsersMixin, CatalogMixin, TrackingMixin, QueriesMixin, AliasesMixin, EngineBase):
    """Users, habits, rewards, completions, streaks, odds and claims."""

    def upgrade_schema(self) -> list[str]:
        """Apply pending migrations of the core and of every plugin."""
        from habitreward import schema

        return schema.upgrade(self.db, self.hooks.migration_sources())

    def pending_migrations(self) -> list[str]:
        from habitreward import schema

        return schema.pending(self.db, self.hooks.migration_sources())


__all__ = ["Clock", "Engine", "system_clock"]
