"""Names are found and kept unique whatever their case, in every alphabet the bot speaks."""

from __future__ import annotations

import pytest

from habitreward.errors import Conflict


@pytest.mark.parametrize(("name", "typed"), [("Ёж", "ёж"), ("Кофе ☕", "КОФЕ ☕"), ("Оқу", "оҚу")])
def test_a_name_is_found_in_any_case_and_cannot_be_taken_twice(engine, name, typed):
    ann = engine.add_user(42, "Ann", active=True)
    habit = engine.add_habit(name)
    assert engine.find_habit(ann, name).id == engine.find_habit(ann, typed).id == habit.id
    with pytest.raises(Conflict):
        engine.add_habit(typed)
    reward = engine.add_reward(name)
    assert engine.find_reward(ann, name.upper()).id == reward.id


def test_a_lowercase_name_does_not_stand_in_for_a_capitalised_one(engine):
    ann = engine.add_user(42, "Ann", active=True)
    engine.add_habit("бег 🏃")
    with pytest.raises(Conflict):
        engine.add_habit("Бег 🏃")  # the same name: used to be a second habit on SQLite
    assert [h.name for h in engine.habits_for(ann)] == ["бег 🏃"]
