"""A habit's aliases in the bot: listed on the edit screen, added by typing, removed by a button."""

from __future__ import annotations

import pytest

from bot_support import ADMIN, ANN, BOB, LANGS, buttons, forge, user
from habitreward.bot.handlers.habit_aliases import alias_token
from habitreward.bot.i18n import Translator


@pytest.mark.parametrize("lang", LANGS)
def test_alias_added_in_the_bot_logs_the_habit_from_free_text(bot, lang):
    ann = user(bot, lang=lang)
    t = Translator(lang)
    habit = bot.engine.add_habit("Running", owner=ann)

    # Before: "jog" is not a habit.
    before = bot.send(ANN, "jog")
    assert t._("I could not tell which habit that was.") in before.text
    assert bot.engine.history(ann) == []

    bot.send(ANN, "/edit_habit")
    fields = bot.press(ANN, "Running")
    assert t._("🏷 No aliases yet.") in fields.text
    screen = bot.press(ANN, t._("🏷 Aliases"))
    assert t._("No aliases yet.") in screen.text
    ask = bot.press(ANN, t._("➕ Add an alias"))
    assert ask.text == t._("Type another word for <b>{habit}</b>, as you would write it in a message (or /cancel):",
                           habit="Running")
    again = bot.send(ANN, "  !!  ")
    assert again.text == t._("An alias needs at least one letter or digit. Type another:")
    assert buttons(again) == buttons(ask)  # the first prompt's way back stays
    too_long = bot.send(ANN, "ß" * 60)  # 60 characters, 120 once "ß" is "ss" as the key stores it
    assert too_long.text == t._("Please type an alias of at most {n} characters.", n=100)
    assert bot.send(ANN, "running").text == t._(
        "<b>{alias}</b> is already the name or an alias of <b>{habit}</b>. Type another:",
        alias="running", habit="Running")
    added = bot.send(ANN, "  Jog  ")
    assert added.text.startswith(t._("✅ Typing <b>{alias}</b> now logs <b>{habit}</b>.", alias="Jog", habit="Running"))
    assert "• Jog" in added.text and "✖️ Jog" in buttons(added)
    assert bot.engine.aliases_for([habit])[habit.id] == ["Jog"]

    # The dialog is over: the next text is a habit report, and the alias finds the habit.
    done = bot.send(ANN, "jog")
    assert done.text.startswith(t._("✅ <b>{habit}</b> done!", habit="Running"))
    assert [e.habit_name for e in bot.engine.history(ann)] == ["Running"]

    # The edit screen lists it; a second alias, then removing the first by its button.
    fields = bot.press(ANN, f"he:{habit.id}")
    assert t._("🏷 Aliases: {aliases}", aliases="Jog") in fields.text
    bot.press(ANN, t._("🏷 Aliases"))
    bot.press(ANN, t._("➕ Add an alias"))
    bot.send(ANN, "<b>run</b> & go")
    removed = bot.press(ANN, "✖️ Jog")
    assert t._("🗑 Alias <b>{alias}</b> removed.", alias="Jog") in removed.text
    assert "• &lt;b&gt;run&lt;/b&gt; &amp; go" in removed.text  # typed names show literally
    assert bot.engine.aliases_for([habit])[habit.id] == ["<b>run</b> & go"]
    # Pressing the removed alias's button again (a stale message) changes nothing.
    stale = forge(bot, ANN, f"hax:{habit.id}:{alias_token('Jog')}", lang)
    assert stale.text == t._("That alias is already gone.")
    assert bot.engine.aliases_for([habit])[habit.id] == ["<b>run</b> & go"]


def test_aliases_follow_the_habits_edit_rights(bot):
    admin = user(bot, ADMIN, admin=True)
    user(bot, ANN)
    shared = bot.engine.add_habit("Reading", actor=admin)
    bot.engine.add_alias(shared, "books", actor=admin)
    t = Translator("en")
    bot.send(ANN, "/start")
    # A shared habit: a user may use its aliases but not change them.
    for data in (f"hal:{shared.id}", f"haa:{shared.id}", f"hax:{shared.id}:{alias_token('books')}"):
        assert forge(bot, ANN, data).text == t._("You cannot change that habit."), data
    bot.send(ANN, "finished the books")  # the dialog was never entered: text is a report
    assert bot.engine.aliases_for([shared])[shared.id] == ["books"]
    # Another user's personal habit is not even visible; garbage is refused.
    bob = user(bot, BOB)
    private = bot.engine.add_habit("Diary", owner=bob)
    for data in (f"hal:{private.id}", f"haa:{private.id}", f"hax:{private.id}:x", "hal:x", "hax"):
        assert forge(bot, ANN, data).text in (t._("You cannot change that habit."),
                                              t._("Sorry, that button is not valid any more.")), data
    # An admin manages the shared habit's aliases.
    bot.send(ADMIN, "/start")
    forge(bot, ADMIN, f"hal:{shared.id}")
    bot.press(ADMIN, t._("➕ Add an alias"))
    bot.send(ADMIN, "чтение")
    assert sorted(bot.engine.aliases_for([shared])[shared.id]) == ["books", "чтение"]


def test_a_restart_keeps_waiting_for_the_alias(bot):
    ann = user(bot, ANN)
    habit = bot.engine.add_habit("Running", owner=ann)
    bot.send(ANN, "/start")
    forge(bot, ANN, f"hal:{habit.id}")
    bot.press(ANN, "➕ Add an alias")
    bot.restart()
    bot.send(ANN, "jog")
    assert bot.engine.aliases_for([habit])[habit.id] == ["jog"]
    assert bot.engine.history(ann) == []


def test_an_alias_typed_for_a_habit_removed_a_moment_ago_is_refused_not_a_bug(bot, monkeypatch, caplog):
    """The habit removed by someone else between the dialog's look-up and the alias being stored
    (another process, or another update while this one waits for PostgreSQL): the engine says
    NotFound since add_alias checks the habit as it is now, and the bot said "Something went wrong"
    and logged a handler's bug with its traceback. It says the habit cannot be changed, as editing
    a habit removed meanwhile does."""
    import logging

    ann = user(bot, ANN)
    habit = bot.engine.add_habit("Running", owner=ann)
    bot.engine.add_habit("Swim", owner=ann)
    bot.send(ANN, "/start")
    forge(bot, ANN, f"hal:{habit.id}")
    bot.press(ANN, "➕ Add an alias")
    add_alias = bot.engine.add_alias

    def removed_just_before(habit, alias, **kwargs):
        bot.engine.remove_habit(bot.engine.get_habit(ann, habit.id))
        return add_alias(habit, alias, **kwargs)

    monkeypatch.setattr(bot.engine, "add_alias", removed_just_before)
    with caplog.at_level(logging.ERROR):
        reply = bot.send(ANN, "jog")

    assert reply.text == Translator("en")._("You cannot change that habit.")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert bot.engine.aliases_for([habit])[habit.id] == []
    monkeypatch.undo()
    # The dialog is over: the next text is a report (of no habit), not another alias.
    assert Translator("en")._("I could not tell which habit that was.") in bot.send(ANN, "jog").text


def test_removing_an_alias_of_a_habit_removed_a_moment_ago_says_the_habit_cannot_be_changed(bot, monkeypatch):
    """The habit removed by someone else between the alias screen's look-up and the removal: the
    alias is not what is gone, the habit is."""
    ann = user(bot, ANN)
    habit = bot.engine.add_habit("Running", owner=ann)
    bot.engine.add_alias(habit, "Jog")
    bot.send(ANN, "/start")
    forge(bot, ANN, f"hal:{habit.id}")
    remove_alias = bot.engine.remove_alias

    def habit_removed_just_before(habit, alias, **kwargs):
        bot.engine.remove_habit(bot.engine.get_habit(ann, habit.id))
        return remove_alias(habit, alias, **kwargs)

    monkeypatch.setattr(bot.engine, "remove_alias", habit_removed_just_before)
    pressed = bot.press(ANN, "✖️ Jog")
    assert Translator("en")._("You cannot change that habit.") in pressed.texts + [pressed.alert]

