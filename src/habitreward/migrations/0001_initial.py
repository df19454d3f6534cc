"""The initial schema: users, habits, rewards, progress, logs, the update inbox and key-value state."""
from peewee import *


def up(migrator, db):
    class User(Model):
        created_at = DateTimeField()
        updated_at = DateTimeField()
        telegram_id = BigIntegerField(unique=True)
        name = CharField()
        language = CharField(max_length=8, default='en')
        language_chosen = BooleanField(default=False)
        timezone = CharField(max_length=64, default='UTC')
        active = BooleanField(default=False)
        is_admin = BooleanField(default=False)
        class Meta:
            database = db
            table_name = 'users'
    db.create_tables([User])

    class Habit(Model):
        created_at = DateTimeField()
        updated_at = DateTimeField()
        name = CharField(max_length=100)
        weight = IntegerField(default=10)
        category = CharField(null=True, max_length=100)
        allowed_skip_days = IntegerField(default=0)
        active = BooleanField(default=True)
        owner = ForeignKeyField(User, null=True, on_delete='CASCADE')
        class Meta:
            database = db
            table_name = 'habits'
            indexes = ((('owner', 'active'), False),)
    db.create_tables([Habit])

    class Reward(Model):
        created_at = DateTimeField()
        updated_at = DateTimeField()
        name = CharField(max_length=100)
        weight = FloatField(default=1.0)
        type = CharField(max_length=16, default='virtual')
        pieces_required = IntegerField(default=1)
        piece_value = DecimalField(null=True, max_digits=12, decimal_places=2)
        max_per_day = IntegerField(default=1)
        active = BooleanField(default=True)
        owner = ForeignKeyField(User, null=True, on_delete='CASCADE')
        class Meta:
            database = db
            table_name = 'rewards'
            indexes = ((('owner', 'active'), False),)
    db.create_tables([Reward])

    class HabitLog(Model):
        user = ForeignKeyField(User, on_delete='CASCADE')
        habit = ForeignKeyField(Habit, on_delete='CASCADE')
        reward = ForeignKeyField(Reward, null=True, on_delete='SET NULL')
        got_reward = BooleanField(default=False)
        streak_count = IntegerField(default=1)
        habit_weight = IntegerField()
        total_weight_applied = FloatField()
        completed_on = DateField()
        timestamp = DateTimeField()
        created_at = DateTimeField()
        reward_cycle = IntegerField(null=True)
        source = CharField(max_length=16, default='')
        class Meta:
            database = db
            table_name = 'habit_logs'
            indexes = ((('user', 'habit', 'completed_on'), True), (('user', 'completed_on'), False))
    db.create_tables([HabitLog])

    class KeyValue(Model):
        namespace = CharField(max_length=64)
        key = CharField()
        value = TextField()
        updated_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'key_values'
            indexes = ((('namespace', 'key'), True),)
    db.create_tables([KeyValue])

    class ProcessedUpdate(Model):
        update_id = BigIntegerField(primary_key=True)
        payload = TextField()
        received_at = DateTimeField()
        processed_at = DateTimeField(index=True, null=True)
        attempts = IntegerField(default=0)
        error = TextField(null=True)
        class Meta:
            database = db
            table_name = 'processed_updates'
    db.create_tables([ProcessedUpdate])

    class RewardProgress(Model):
        created_at = DateTimeField()
        updated_at = DateTimeField()
        user = ForeignKeyField(User, on_delete='CASCADE')
        reward = ForeignKeyField(Reward, on_delete='CASCADE')
        pieces_earned = IntegerField(default=0)
        claimed = BooleanField(default=False)
        times_claimed = IntegerField(default=0)
        class Meta:
            database = db
            table_name = 'reward_progress'
            indexes = ((('user', 'reward'), True),)
    db.create_tables([RewardProgress])

def down(migrator, db):
    migrator.migrate(migrator.drop_table('reward_progress'))
    migrator.migrate(migrator.drop_table('processed_updates'))
    migrator.migrate(migrator.drop_table('key_values'))
    migrator.migrate(migrator.drop_table('habit_logs'))
    migrator.migrate(migrator.drop_table('rewards'))
    migrator.migrate(migrator.drop_table('habits'))
    migrator.migrate(migrator.drop_table('users'))

