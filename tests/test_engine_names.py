"""Names are found and kept unique whatever their case, in every alphabet the bot speaks."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from habitreward.cli import cli
from habitreward.errors import Conflict, ValidationError


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


@pytest.mark.parametrize("invisible", ["\u200b\u200b", "\u202e", "\u200d \u2060\ufeff", "\xad", "\x00\x01",
                                       "\u3164", "\u2800 \uffa0"])
def test_a_name_with_nothing_visible_is_refused(engine, invisible):
    """A zero-width or bidi control character draws nothing: such a name would be an empty button."""
    for add in (engine.add_habit, engine.add_reward):
        with pytest.raises(ValidationError, match="must not be empty or invisible"):
            add(invisible)
    habit = engine.add_habit("Run", category="Sport")
    with pytest.raises(ValidationError):
        engine.edit_habit(habit, category=invisible)
    assert engine.all_habits()[0].category == "Sport"


def test_invisible_characters_are_no_part_of_a_name(engine):
    """"\\u200bRun\\u200d" looked like "Run" but was another habit; a right-to-left override turned
    a name around. Format characters are removed, except where they make one emoji."""
    engine.add_habit("Run")
    with pytest.raises(Conflict):
        engine.add_habit("\u200bRun\u200d")
    engine.add_reward("Coffee")
    with pytest.raises(Conflict):
        engine.add_reward("Cof\u00adfee")  # a soft hyphen
    assert engine.add_habit("\u202eevil").name == "evil"
    family, flag = "Family 👨\u200d👩\u200d👧", "Walk 🏴\U000e0067\U000e0062\U000e0077\U000e006c\U000e0073\U000e007f"
    assert engine.add_habit(family).name == family  # joiners inside an emoji stay
    assert engine.add_habit(flag).name == flag
    ann = engine.add_user(42, "Ann", active=True)
    assert engine.find_habit(ann, "R\u200bun").name == "Run"  # looked up as stored


def test_greek_names_with_a_final_sigma_are_one_name_on_every_backend(engine, db_url):
    """PostgreSQL lowers "ΔΡΟΜΟΣ" to "δρομοσ", Python to "δρομος": names lowered in Python were
    compared with names lowered by the database, so on PostgreSQL the exact name was not found,
    the same name was taken twice, and a completion went to the other habit."""
    ann = engine.add_user(42, "Ann", active=True)
    upper = engine.add_habit("ΤΡΕΞΙΜΟ ΔΡΟΜΟΣ")
    assert engine.find_habit(ann, "ΤΡΕΞΙΜΟ ΔΡΟΜΟΣ").id == upper.id
    assert engine.find_habit(ann, "τρεξιμο δρομος").id == upper.id
    for same in ("ΤΡΕΞΙΜΟ ΔΡΟΜΟΣ", "Τρεξιμο δρομος", "τρεξιμο δρομοσ"):
        with pytest.raises(Conflict):
            engine.add_habit(same)
    other = engine.add_habit("Τρεξιμο")
    with pytest.raises(Conflict):
        engine.edit_habit(other, name="τρεξιμο δρομος")
    assert [h.name for h in engine.habits_for(ann)] == ["Τρεξιμο", "ΤΡΕΞΙΜΟ ΔΡΟΜΟΣ"]
    reward = engine.add_reward("ΚΑΦΕΣ")
    assert engine.find_reward(ann, "ΚΑΦΕΣ").id == engine.find_reward(ann, "καφες").id == reward.id
    with pytest.raises(Conflict):
        engine.add_reward("Καφες")
    done = CliRunner().invoke(cli, ["--env-file", os.devnull, "--database-url", db_url,
                                    "done", "42", "ΤΡΕΞΙΜΟ ΔΡΟΜΟΣ", "--json"], env={"HABITREWARD_LOAD_PLUGINS": ""})
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["habit"] == "ΤΡΕΞΙΜΟ ΔΡΟΜΟΣ"
