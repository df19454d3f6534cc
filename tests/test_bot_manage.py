"""Adding, editing and removing habits and rewards through the bot's dialogs, in every language."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot_support import ADMIN, ANN, LANGS, buttons, drivers, forge, user
from habitreward.bot.i18n import Translator


@pytest.fixture
def tg(db_url, clock, botapi) -> Iterator:
    """``tg(**settings)`` -> a started BotDriver on a fresh engine (see bot_support.drivers)."""
    yield from drivers(db_url, clock, botapi)


@pytest.mark.parametrize("lang", LANGS)
def test_add_edit_remove_habit(tg, lang):
    bot = tg()
    ann = user(bot, lang=lang)
    t = Translator(lang)
    bot.send(ANN, "/start")
    bot.press(ANN, t._("📝 Manage habits"))
    ask = bot.press(ANN, t._("➕ Add a habit"))
    assert ask.text == t._("What is the new habit called? Type its name (or /cancel).")
    weight = bot.send(ANN, "  Morning   run ")
    assert weight.text == t._("How important is <b>{name}</b>? Pick a weight or type one from 1 to 100 (10 is normal; "
                              "heavier habits win rewards more often).", name="Morning run")
    assert buttons(weight)[:4] == ["5", "10", "20", "50"]
    bad = bot.send(ANN, "500")
    assert bad.text == t._("Please type a whole number from 1 to 100.")
    added = bot.send(ANN, "30")
    assert added.text.startswith(t._("✅ Habit added:"))
    habit = bot.engine.find_habit(ann, "Morning run")
    assert (habit.weight, habit.owner_id) == (30, ann.id)

    # A duplicate name is refused and asked again.
    bot.send(ANN, "/add_habit")
    dup = bot.send(ANN, "morning RUN")
    assert dup.text == t._("There is already a habit called <b>{name}</b>. Type another name:", name="morning RUN")
    assert buttons(dup) == [t._("🏠 Menu")]  # asked again, the way out stays
    assert bot.send(ANN, "/cancel").text == t._("Cancelled. Nothing was changed.")
    assert len(bot.engine.habits_for(ann)) == 1

    # Edit: pick, field, value.
    bot.send(ANN, "/edit_habit")
    fields = bot.press(ANN, "Morning run")
    assert t._("What do you want to change?") in fields.text
    bot.press(ANN, t._("Grace days"))
    too_many = bot.send(ANN, "99")
    assert too_many.text == t._("Please type a whole number from 0 to {n}.", n=30)
    assert buttons(too_many) == [t._("⬅️ Back"), t._("🏠 Menu")]  # back to its fields, or out
    saved = bot.send(ANN, "2")
    assert saved.text.startswith(t._("✅ Saved."))
    bot.press(ANN, t._("✏️ Change more"))
    bot.press(ANN, t._("Name"))
    bot.send(ANN, "Evening run")
    assert bot.engine.get_habit(ann, habit.id).name == "Evening run"
    assert bot.engine.get_habit(ann, habit.id).allowed_skip_days == 2
    for typed, expected in (("Sport", "Sport"), ("-", None)):
        bot.send(ANN, "/edit_habit")
        bot.press(ANN, "Evening run")
        bot.press(ANN, t._("Category"))
        bot.send(ANN, typed)
        assert bot.engine.get_habit(ann, habit.id).category == expected

    # Remove: pick, confirm.
    bot.send(ANN, "/remove_habit")
    confirm = bot.press(ANN, "Evening run")
    assert confirm.text == t._("Remove <b>{habit}</b>? Its history stays.", habit="Evening run")
    removed = bot.press(ANN, t._("🗑 Yes, remove it"))
    assert removed.text == t._("🗑 <b>{habit}</b> removed.", habit="Evening run")
    assert bot.engine.habits_for(ann) == []


@pytest.mark.parametrize("lang", LANGS)
def test_add_edit_remove_reward(tg, lang):
    bot = tg()
    ann = user(bot, lang=lang)
    t = Translator(lang)
    bot.send(ANN, "/start")
    bot.press(ANN, t._("🎀 Manage rewards"))
    bot.press(ANN, t._("➕ Add a reward"))
    kind = bot.send(ANN, "Cinema")
    assert kind.text == t._("What kind of reward is <b>{name}</b>?", name="Cinema")
    pieces = bot.press(ANN, t._("🎁 Real"))
    assert pieces.text == t._("How many pieces make <b>{name}</b> complete? Pick or type a number.", name="Cinema")
    bot.send(ANN, "4")
    assert bot.send(ANN, "-1").text == t._("Please type a number above 0, such as 1 or 2.5.")
    added = bot.send(ANN, "2,5")
    assert added.text.startswith(t._("✅ Reward added:"))
    reward = bot.engine.find_reward(ann, "Cinema")
    assert (reward.type, reward.pieces_required, reward.weight, reward.owner_id) == ("real", 4, 2.5, ann.id)

    # A "no reward" entry skips the pieces question.
    bot.send(ANN, "/add_reward")
    bot.send(ANN, "Nothing")
    bot.press(ANN, "rt:none")
    bot.press(ANN, "5")
    assert bot.engine.find_reward(ann, "Nothing").type == "none"

    bot.send(ANN, "/edit_reward")
    bot.press(ANN, "Cinema")
    bot.press(ANN, t._("Daily limit"))
    assert bot.send(ANN, "x").text == t._("Please type a whole number from 0 to {n}: 0 means no limit.", n=1000)
    assert bot.send(ANN, "3000000000").text == t._("Please type a whole number from 0 to {n}: 0 means no limit.",
                                                   n=1000)
    bot.send(ANN, "0")
    assert bot.engine.get_reward(ann, reward.id).max_per_day == 0

    bot.send(ANN, "/remove_reward")
    bot.press(ANN, "Cinema")
    bot.press(ANN, t._("🗑 Yes, remove it"))
    assert [r.name for r in bot.engine.rewards_for(ann)] == ["Nothing"]


def test_admin_adds_shared_items_and_users_cannot_touch_them(tg):
    bot = tg()
    admin = user(bot, ADMIN, admin=True)
    ann = user(bot, ANN)
    bot.send(ADMIN, "/add_habit")
    bot.send(ADMIN, "Water")
    scope = bot.press(ADMIN, "10")
    assert scope.text == "Who is <b>Water</b> for?"
    bot.press(ADMIN, "👥 Everyone")
    water = bot.engine.find_habit(None, "Water")
    assert water.is_shared and water in bot.engine.habits_for(ann)
    # Ann sees it, logs it, but cannot edit or remove it, not even with forged buttons.
    assert "Water" not in buttons(bot.send(ANN, "/edit_habit"))
    for data in (f"he:{water.id}", f"hf:{water.id}:name", f"hr:{water.id}", f"hrx:{water.id}"):
        assert forge(bot, ANN, data).text == "You cannot change that habit."
    assert bot.engine.get_habit(ann, water.id).active
    del admin


@pytest.mark.parametrize("lang", LANGS)
def test_text_typed_where_only_buttons_answer_asks_again(tg, lang):
    """Typing the answer to a buttons-only question (a reward's type, "who is it for") was taken
    as a habit report: "I could not tell which habit that was", or, for a habit's name, a habit
    logged in the middle of adding a reward. The question comes again; the dialog goes on."""
    bot = tg()
    admin = user(bot, ADMIN, lang=lang, admin=True)
    bot.engine.add_habit("Running", owner=admin)
    t = Translator(lang)
    bot.send(ADMIN, "/add_reward")
    bot.send(ADMIN, "Coffee")
    kind = t._("What kind of reward is <b>{name}</b>?", name="Coffee")
    for typed in ("virtual", "Running"):
        again = bot.send(ADMIN, typed)
        assert again.text == t._("Please press one of the buttons below.") + "\n" + kind
        assert buttons(again)[:3] == [t._("✨ Virtual"), t._("🎁 Real"), t._("🚫 \"No reward\" entry")]
    assert bot.engine.history(admin) == []
    bot.press(ADMIN, t._("🎁 Real"))
    bot.press(ADMIN, "3")
    scope = bot.press(ADMIN, "2")
    again = bot.send(ADMIN, "everyone")
    assert again.text == t._("Please press one of the buttons below.") + "\n" + scope.text
    bot.press(ADMIN, t._("👥 Everyone"))
    coffee = bot.engine.find_reward(None, "Coffee")
    assert (coffee.type, coffee.pieces_required, coffee.weight, coffee.is_shared) == ("real", 3, 2, True)

    bot.send(ADMIN, "/add_habit")
    bot.send(ADMIN, "Water")
    scope = bot.press(ADMIN, "10")
    assert bot.send(ADMIN, "me").text == t._("Please press one of the buttons below.") + "\n" + scope.text
    bot.press(ADMIN, t._("👤 Just me"))
    assert bot.engine.find_habit(admin, "Water").owner_id == admin.id


@pytest.mark.parametrize("lang", LANGS)
def test_a_wrong_value_while_editing_keeps_the_way_back_to_the_fields(tg, lang):
    """The question had ⬅️ Back (to the item's fields) and 🏠 Menu; asked again after a wrong
    value, only 🏠 Menu was left, as the alias and time zone questions never did."""
    bot = tg()
    ann = user(bot, lang=lang)
    bot.engine.add_habit("Run", owner=ann)
    bot.engine.add_habit("Read", owner=ann)
    bot.engine.add_reward("Coffee", owner=ann)
    t = Translator(lang)
    for command, item, field, wrong in (("/edit_habit", "Run", t._("Grace days"), "abc"),
                                        ("/edit_habit", "Run", t._("Name"), "Read"),
                                        ("/edit_habit", "Run", t._("Name"), "\u200b"),
                                        ("/edit_reward", "Coffee", t._("Weight"), "0")):
        bot.send(ANN, command)
        bot.press(ANN, item)
        asked = bot.press(ANN, field)
        again = bot.send(ANN, wrong)
        assert buttons(again) == buttons(asked) == [t._("⬅️ Back"), t._("🏠 Menu")]
        fields = bot.press(ANN, t._("⬅️ Back"))
        assert t._("What do you want to change?") in fields.text
    assert [h.name for h in bot.engine.habits_for(ann)] == ["Read", "Run"]


def test_a_menu_button_leaves_a_dialog(tg):
    bot = tg()
    ann = user(bot)
    bot.send(ANN, "/add_habit")
    streaks = bot.press(ANN, "🏠 Menu")
    assert streaks.text == "What would you like to do?"
    # The dialog is over: typed text is a habit report again, not a habit name.
    answer = bot.send(ANN, "Yoga")
    assert "You have no habits yet" in answer.text
    assert bot.engine.habits_for(ann) == []
    # Another flow's entry point in the middle of a dialog starts that flow.
    bot.send(ANN, "/add_habit")
    assert bot.send(ANN, "/add_reward").text.startswith("What is the new reward called?")
    bot.send(ANN, "Tea")
    assert bot.send(ANN, "/streaks").text.startswith("You have no habits yet")
    assert bot.engine.rewards_for(ann) == []


@pytest.mark.parametrize("lang", LANGS)
def test_a_name_with_nothing_visible_is_asked_again(tg, lang):
    """Zero-width spaces made a habit with an empty button; a zero-width joiner made a second
    "Run" that looked like the first."""
    bot = tg()
    ann = user(bot, lang=lang)
    t = Translator(lang)
    blank = t._("Please type a name: that one has nothing visible in it.")
    bot.engine.add_habit("Run", owner=ann)
    for command in ("/add_habit", "/add_reward"):
        bot.send(ANN, command)
        for invisible in ("\u200b\u200b", "\u202e"):
            again = bot.send(ANN, invisible)
            assert again.text == blank
            assert buttons(again) == [t._("🏠 Menu")]
        bot.send(ANN, "/cancel")
    bot.send(ANN, "/add_habit")
    lookalike = bot.send(ANN, "\u200bRun\u200d")
    assert lookalike.text == t._("There is already a habit called <b>{name}</b>. Type another name:", name="Run")
    bot.send(ANN, "/edit_habit")
    bot.press(ANN, "Run")
    for field in (t._("Name"), t._("Category")):
        bot.press(ANN, field)
        assert bot.send(ANN, "\u200b").text == blank
        bot.send(ANN, "/edit_habit")
        bot.press(ANN, "Run")
    assert [(h.name, h.category) for h in bot.engine.habits_for(ann)] == [("Run", None)]
    assert bot.engine.rewards_for(ann) == []


GROUP = -100


def test_dialogs_in_two_chats_keep_their_own_answers(tg):
    """A dialog's state is per (chat, person), and so are its answers: a dialog in the private chat
    and one in a group, open at once, never fill in each other, not even after a restart."""
    bot = tg()
    ann = user(bot)
    assert bot.send(ANN, "/add_habit").text.startswith("What is the new habit called?")
    assert bot.send(ANN, "Meditation").text.startswith("How important is <b>Meditation</b>?")
    assert bot.send(ANN, "/add_reward", chat_id=GROUP).text.startswith("What is the new reward called?")
    assert bot.send(ANN, "Cinema", chat_id=GROUP).text.startswith("What kind of reward is <b>Cinema</b>?")
    bot.restart()  # both drafts survive, each with its own chat
    assert bot.send(ANN, "20").text.startswith("✅ Habit added: <b>Meditation</b> · weight 20")
    assert bot.press(ANN, "🎁 Real", chat_id=GROUP).text.startswith("How many pieces make <b>Cinema</b> complete?")
    bot.send(ANN, "2", chat_id=GROUP)
    assert bot.send(ANN, "1", chat_id=GROUP).text.startswith("✅ Reward added: <b>Cinema</b> · real · 2 pieces")
    assert [h.name for h in bot.engine.habits_for(ann)] == ["Meditation"]
    assert [r.name for r in bot.engine.rewards_for(ann)] == ["Cinema"]


def test_a_dialog_open_across_the_upgrade_to_per_chat_answers_goes_on(tg):
    """Versions before kept one draft per person (``user_data["draft"]``): a dialog open when the
    bot was upgraded keeps its answers (and the old key goes)."""
    import json

    from habitreward.models import KeyValue

    bot = tg()
    ann = user(bot)
    running = bot.engine.add_habit("Running", owner=ann)
    bot.send(ANN, f"/edit_habit {running.id}")
    bot.press(ANN, "Name")
    bot.stop()
    with bot.engine.session():
        row = KeyValue.get((KeyValue.namespace == "bot.user_data") & (KeyValue.key == str(ANN)))
        data = json.loads(row.value)
        data["draft"] = data.pop("drafts")[str(ANN)]  # as the previous version stored it
        KeyValue.update(value=json.dumps(data)).where(KeyValue.id == row.id).execute()
    bot.restart()
    assert bot.send(ANN, "Jogging").text.startswith("✅ Saved.")
    assert bot.engine.get_habit(ann, running.id).name == "Jogging"
    with bot.engine.session():
        stored = KeyValue.get((KeyValue.namespace == "bot.user_data") & (KeyValue.key == str(ANN))).value
    assert "draft" not in json.loads(stored)


def test_editing_in_two_chats_changes_the_item_each_chat_picked(tg):
    bot = tg()
    ann = user(bot)
    running = bot.engine.add_habit("Running", owner=ann)
    reading = bot.engine.add_habit("Reading", owner=ann)
    bot.send(ANN, f"/edit_habit {running.id}")
    bot.press(ANN, "Name")
    bot.send(ANN, f"/edit_habit {reading.id}", chat_id=GROUP)
    bot.press(ANN, "Name", chat_id=GROUP)

    def names() -> tuple[str, str]:
        return bot.engine.get_habit(ann, running.id).name, bot.engine.get_habit(ann, reading.id).name

    assert bot.send(ANN, "Jogging").text.startswith("✅ Saved.\n<b>Jogging</b>")
    assert names() == ("Jogging", "Reading")
    assert bot.send(ANN, "Books", chat_id=GROUP).text.startswith("✅ Saved.\n<b>Books</b>")
    assert names() == ("Jogging", "Books")


def test_cancel_in_one_chat_keeps_the_other_chats_dialog(tg):
    bot = tg()
    ann = user(bot)
    bot.send(ANN, "/add_habit")
    bot.send(ANN, "Meditation")
    bot.send(ANN, "/add_reward", chat_id=GROUP)
    assert bot.send(ANN, "/cancel", chat_id=GROUP).text == "Cancelled. Nothing was changed."
    assert bot.send(ANN, "20").text.startswith("✅ Habit added: <b>Meditation</b> · weight 20")
    assert bot.engine.rewards_for(ann) == []


def test_only_this_bots_commands_leave_a_dialog(tg):
    """Another bot's command is ignored entirely and the dialog goes on; a typo in a private chat
    is told so, as outside a dialog, and the dialog goes on; this bot's command ends it."""
    bot = tg()
    ann = user(bot)
    unknown = "I don't know the command /habbits. /help lists what I can do."
    for chat in (ANN, GROUP):
        assert bot.send(ANN, "/add_habit", chat_id=chat).text.startswith("What is the new habit called?")
        others = ["/streaks@dice_bot", "/roll@dice_bot", "/cancel@dice_bot"] + (["/roll"] if chat == GROUP else [])
        for typed in others:
            assert bot.send(ANN, typed, chat_id=chat) == [], typed
        if chat == ANN:
            typo = bot.send(ANN, "/habbits")
            assert typo.text == unknown and buttons(typo) == ["🏠 Menu"]
        else:
            assert bot.send(ANN, "/habbits@habitreward_test_bot", chat_id=chat) == []  # a group: left alone
        # Still in the dialog: the next text is the habit's name.
        assert bot.send(ANN, f"Yoga{chat}", chat_id=chat).text.startswith(f"How important is <b>Yoga{chat}</b>?")
        # One of this bot's commands, addressed to it or not, ends the dialog and opens its screen.
        assert bot.send(ANN, "/streaks@habitreward_test_bot", chat_id=chat).text.startswith("You have no habits yet")
        assert "How important" not in bot.send(ANN, "Pilates", chat_id=chat).text  # not a name any more
    assert bot.engine.habits_for(ann) == []


def test_a_plugins_command_runs_and_ends_a_dialog(db_url, clock, botapi):
    from telegram.ext import CommandHandler

    from habitreward import hookimpl
    from habitreward.testing.driver import BotDriver
    from habitreward.testing.engines import make_engine

    class Wave:
        @hookimpl
        def habitreward_register_handlers(self, register, settings):
            async def wave(update, context):
                await update.effective_message.reply_text("👋")
            register(CommandHandler("wave", wave))  # group 0, after the bot's own handlers and the dialog

    engine = make_engine(db_url, clock=clock, load_entry_points=False, admin_telegram_ids=str(ADMIN))
    engine.pm.register(Wave(), name="wave")
    try:
        with BotDriver(engine, botapi) as bot:
            ann = user(bot)
            for chat in (ANN, GROUP):
                bot.send(ANN, "/add_habit", chat_id=chat)
                assert bot.send(ANN, "/wave", chat_id=chat).texts == ["👋"]
                # The dialog is over: the text is not a habit's name (no weight asked for it).
                answer = bot.send(ANN, "Yoga", chat_id=chat)
                assert not any("How important is" in text for text in answer.texts), answer.texts
            assert bot.engine.habits_for(ann) == []
    finally:
        engine.close()


def test_a_plugins_private_command_typed_in_a_group_leaves_the_dialog_alone(db_url, clock, botapi):
    """A plugin's command whose handler takes private chats only does not answer in a group:
    typed there, it must not end the dialog for nothing."""
    from telegram.ext import CommandHandler, filters

    from habitreward import hookimpl
    from habitreward.testing.driver import BotDriver
    from habitreward.testing.engines import make_engine

    class Ping:
        @hookimpl
        def habitreward_register_handlers(self, register, settings):
            async def ping(update, context):
                await update.effective_message.reply_text("pong")
            register(CommandHandler("ping", ping, filters=filters.ChatType.PRIVATE))

    engine = make_engine(db_url, clock=clock, load_entry_points=False, admin_telegram_ids=str(ADMIN))
    engine.pm.register(Ping(), name="ping")
    try:
        with BotDriver(engine, botapi) as bot:
            user(bot)
            bot.send(ANN, "/add_habit", chat_id=GROUP)
            assert bot.send(ANN, "/ping", chat_id=GROUP) == []
            assert "How important is <b>Yoga</b>" in bot.send(ANN, "Yoga", chat_id=GROUP).text
    finally:
        engine.close()


def test_a_habit_removed_while_its_new_value_is_typed_is_not_saved(tg, monkeypatch):
    """Another admin removes the habit between the bot's lookup and the change: the bot says it
    cannot be changed (it used to say "Saved" and change the removed habit)."""
    bot = tg()
    ann = user(bot)
    running = bot.engine.add_habit("Running", owner=ann)
    bot.send(ANN, f"/edit_habit {running.id}")
    bot.press(ANN, "Weight")
    looked_up = bot.engine.get_habit

    def then_removed(*args, **kwargs):
        habit = looked_up(*args, **kwargs)
        bot.engine.remove_habit(looked_up(*args, **kwargs))
        return habit

    monkeypatch.setattr(bot.engine, "get_habit", then_removed)
    assert bot.send(ANN, "50").text == "You cannot change that habit."
    monkeypatch.undo()
    assert [(h.name, h.weight) for h in bot.engine.all_habits(include_inactive=True)] == [("Running", 10)]
