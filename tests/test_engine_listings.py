"""The engine's listings of every habit, user and reward (habit_listing, alias_listing, user_listing,
reward_listing) called where a transaction is already open: a plugin's hook inside a completion,
a caller's own engine.transaction()."""

from __future__ import annotations


def test_the_listings_work_inside_a_transaction_and_see_its_writes(engine):
    """They began a read-only snapshot transaction of their own, which PostgreSQL refuses inside
    another ("SET TRANSACTION ISOLATION LEVEL must not be called in a subtransaction"): a plugin
    listing habits in a hook failed the completion there, while SQLite let it pass."""
    engine.add_habit("Diary")
    with engine.transaction():
        running = engine.add_habit("Running")
        engine.add_alias(running, "jog")
        assert [h.name for h in engine.habit_listing()] == ["Diary", "Running"]
        assert [(a.habit_name, a.aliases) for a in engine.alias_listing()] == [("Running", ["jog"])]
        engine.add_habit("Swim")  # the transaction goes on after the listing, and commits
    assert [h.name for h in engine.habit_listing()] == ["Diary", "Running", "Swim"]


def test_the_user_and_reward_listings_work_inside_a_transaction_and_see_its_writes(engine):
    engine.add_user(1, "Ann")
    with engine.transaction():
        bob = engine.add_user(2, "Bob", admin=True)
        engine.add_reward("Tea", owner=bob)
        assert [(u.telegram_id, u.is_admin) for u in engine.user_listing()] == [(1, False), (2, True)]
        assert [(r.name, r.owner_telegram_id) for r in engine.reward_listing()] == [("Tea", 2)]
        engine.add_reward("Cake")
    assert [r.name for r in engine.reward_listing()] == ["Cake", "Tea"]


def test_a_listing_the_caller_stops_reading_ends_its_snapshot(engine):
    """Read the first item only (a page of a web listing, a search that found what it wanted):
    the read-only snapshot ends with the listing, and the engine writes again at once (on
    PostgreSQL a write inside that snapshot is refused)."""
    ann = engine.add_user(1, "Ann")
    engine.add_user(2, "Bob")
    for name in ("Diary", "Running", "Swim"):
        engine.add_alias(engine.add_habit(name), f"{name} alias")
    engine.add_reward("Tea")
    engine.add_reward("Cake")
    for listing in (engine.habit_listing, engine.alias_listing, engine.user_listing, engine.reward_listing):
        items = listing()
        assert next(items) is not None
        items.close()
        engine.add_habit(f"After {listing.__name__}", owner=ann)  # a write: no snapshot is left open
        assert next(iter(listing())) is not None  # dropped unfinished, without close()
        engine.add_reward(f"After {listing.__name__}", owner=ann)


def test_the_waiting_listing_works_inside_a_transaction_and_a_partial_read_ends_its_snapshot(engine):
    """waiting_listing (``users list --waiting``) is read as the other listings are."""
    from habitreward.bot.state import set_approval
    from habitreward.engine.users import REQUESTED, UNSENT

    for tid, state in ((3, UNSENT), (5, REQUESTED)):
        engine.register(tid, f"User {tid}")
        set_approval(engine, tid, state)
    with engine.transaction():
        engine.register(7, "User 7")
        set_approval(engine, 7, UNSENT)
        assert [(w.user.telegram_id, w.request) for w in engine.waiting_listing()] == [
            (3, "unsent"), (5, "requested"), (7, "unsent")]
        engine.activate_user(5)  # the transaction goes on after the listing
    items = engine.waiting_listing()
    assert next(items).user.telegram_id == 3
    items.close()
    engine.activate_user(3)  # a write: no snapshot is left open
    assert [w.user.telegram_id for w in engine.waiting_listing()] == [7]
