"""Habit aliases: other words a user may write for a habit ("jog" for Running)."""
from peewee import *


def up(migrator, db):
    class Habit(Model):
        class Meta:
            database = db
            table_name = 'habits'

    class HabitAlias(Model):
        habit = ForeignKeyField(Habit, on_delete='CASCADE')
        alias = CharField(max_length=100)
        normalized = CharField(max_length=100)
        created_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'habit_aliases'
            indexes = ((('habit', 'normalized'), True),)
    db.create_tables([HabitAlias])

def down(migrator, db):
    migrator.migrate(migrator.drop_table('habit_aliases'))
