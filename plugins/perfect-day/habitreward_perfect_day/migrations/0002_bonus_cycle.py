"""Which claim cycle of the reward a day's bonus piece went to: ``perfect_days.reward_cycle``.

Undo takes the bonus back only while that cycle is the reward's current one (a claimed piece is
spent). NULL: a bonus given before this column, taken back as before (while not claimed).
"""
from peewee import IntegerField


def up(migrator, db):
    migrator.migrate(migrator.add_column("perfect_days", "reward_cycle", IntegerField(null=True)))


def down(migrator, db):
    migrator.migrate(migrator.drop_column("perfect_days", "reward_cycle"))
