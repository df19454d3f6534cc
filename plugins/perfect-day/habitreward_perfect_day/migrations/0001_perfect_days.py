"""The table of perfect days (one row per user and local day that earned the bonus)."""
from peewee import *


def up(migrator, db):
    class User(Model):
        class Meta:
            database = db
            table_name = 'users'

    class Reward(Model):
        class Meta:
            database = db
            table_name = 'rewards'

    class PerfectDay(Model):
        user = ForeignKeyField(User, on_delete='CASCADE')
        day = DateField()
        reward = ForeignKeyField(Reward, null=True, on_delete='SET NULL')
        class Meta:
            database = db
            table_name = 'perfect_days'
            indexes = ((('user', 'day'), True),)
    db.create_tables([PerfectDay])


def down(migrator, db):
    migrator.migrate(migrator.drop_table('perfect_days'))
