"""Every screen and button of the bot, driven through the real Application and the Bot API
stand-in, in each language, checking what the user sees and what the database holds."""

from __future__ import annotations

import datetime as dt
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from telegram.warnings import PTBUserWarning

from bot_support import ADMIN, ANN, BOB, LANGS, buttons, coffee_setup, crawl, crawl_setup, drivers, forge, user
from habitreward import hookimpl
from habitreward.bot.i18n import Translator
from habitreward.nlp.results import HabitMatch, MatchResult


@pytest.fixture
def tg(db_url, clock, botapi) -> Iterator:
    """``tg(**settings)`` -> a started BotDriver on a fresh engine (see bot_support.drivers)."""
    yield from drivers(db_url, clock, botapi)


# --- the main menu and every screen, per language ------------------------------------------------

SCREENS = [
    # (menu button label, command, a phrase of the screen)
    ("✅ Log a habit", "/habit_done", "Which habit did you do today?"),
    ("🔥 Streaks", "/streaks", "<b>Your streaks</b>"),
    ("📜 History", "/history", "<b>Your last {n} completion</b>"),
    ("🏆 My rewards", "/my_rewards", "<b>Your rewards</b>"),
    ("🎁 Claim a reward", "/claim_reward", "Nothing to claim yet: collect all pieces of a reward first."),
    ("🎲 Odds", "/odds", "Your chances of a reward for the next completion. Which habit?"),
    ("📋 All rewards", "/list_rewards", "<b>Rewards you can win</b>"),
    ("📝 Manage habits", "/manage_habits", "📝 You have {n} habit."),
    ("🎀 Manage rewards", "/manage_rewards", "🎀 There is {n} reward."),
    ("⚙️ Settings", "/settings", "⚙️ <b>Settings</b>"),
    ("❓ Help", "/help", "<b>How it works</b>"),
]


@pytest.mark.parametrize("lang", LANGS)
def test_every_menu_screen_by_button_and_by_command(tg, lang):
    bot = tg()
    ann = user(bot, lang=lang)
    coffee_setup(bot, ann)
    t = Translator(lang)
    bot.send(ANN, "/habit_done")
    bot.press(ANN, "Running")  # one completion, so history and progress have something
    start = bot.send(ANN, "/start")
    assert start.text == t._("Hi, {name}! What would you like to do?", name="User2")
    assert buttons(start)[0] == t._("✅ Log a habit") and t._("⚙️ Settings") in buttons(start)
    for label, command, phrase in SCREENS:
        by_button = bot.press(ANN, t._(label))
        if "{n}" in phrase:
            expected = t.ngettext(phrase, phrase.replace("habit.", "habits.").replace("reward.", "rewards.")
                                  .replace("completion", "completions").replace("There is", "There are"), 1)
        else:
            expected = t._(phrase)
        assert expected in by_button.text, (label, by_button.text)
        assert t._("🏠 Menu") in buttons(by_button), f"no way back from {label}"
        by_command = bot.send(ANN, command)
        assert by_command.text == by_button.text and by_command.buttons == by_button.buttons
        back = bot.press(ANN, t._("🏠 Menu"))
        assert back.text == t._("What would you like to do?")


@pytest.mark.parametrize("lang", LANGS)
def test_every_command_answers_in_the_users_language(tg, lang):
    from habitreward.bot.handlers.menu import COMMANDS

    bot = tg()
    ann = user(bot, lang=lang)
    coffee_setup(bot, ann)
    t = Translator(lang)
    way_out = {t._("🏠 Menu"), t._("✅ Log a habit")}
    names = [name for name, _ in COMMANDS] + ["menu", "timezone", "manage_habits", "manage_rewards", "done"]
    for name in names:
        reply = bot.send(ANN, f"/{name}", language_code="en")  # Telegram's language must not matter
        assert reply.text, name
        assert way_out & set(buttons(reply)), (name, reply.text, buttons(reply))
        if name in ("add_habit", "add_reward", "timezone"):
            bot.send(ANN, "/cancel")


def test_screens_really_are_translated(tg):
    bot = tg()
    user(bot, lang="ru")
    assert bot.send(ANN, "/start").text == "Привет, User2! Что вы хотите сделать?"
    user(bot, BOB, lang="kk")
    assert bot.send(BOB, "/streaks").text.startswith("Сізде әлі әдет жоқ")


# --- logging, undo, earlier day -------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGS)
def test_log_by_button_then_undo(tg, lang):
    bot = tg()
    ann = user(bot, lang=lang)
    habit, reward = coffee_setup(bot, ann)
    t = Translator(lang)
    keyboard = bot.send(ANN, "/habit_done")
    assert ("Running", f"d:{habit.id}") in keyboard.buttons[0]
    done = bot.press(ANN, "Running")
    assert t._("✅ <b>{habit}</b> done!", habit="Running") in done.text
    assert t.ngettext("🔥 Streak: {n} day", "🔥 Streak: {n} days", 1) in done.text
    assert t._("🎁 You won a piece: <b>{reward}</b> {earned}/{required}", reward="Coffee", earned=1, required=3) \
        in done.text
    assert t._("↩️ Undo") in buttons(done)
    assert len(bot.engine.history(ann)) == 1
    assert bot.engine.progress(ann)[0].pieces_earned == 1

    again = bot.send(ANN, "/habit_done")
    assert "✔️ Running" in buttons(again)  # marked as done today
    twice = bot.press(ANN, "✔️ Running")
    assert t._("☑️ You already logged <b>{habit}</b> today. One completion a day counts.", habit="Running") \
        == twice.text
    assert len(bot.engine.history(ann)) == 1

    undone = bot.press(ANN, t._("↩️ Undo"))
    assert t._("↩️ Undone: <b>{habit}</b> on {date}.", habit="Running", date=t.date(bot.engine.today(ann))) \
        in undone.text
    assert t._("The piece of <b>{reward}</b> was taken back.", reward="Coffee") in undone.text
    assert bot.engine.history(ann) == []
    assert bot.engine.progress(ann)[0].pieces_earned == 0
    # The same Undo button again (an old copy of the message): nothing to undo, nothing changes.
    undo_data = done.buttons[0][0][1]
    refused = forge(bot, ANN, undo_data, lang)
    assert refused.text == t._("There is nothing to undo here.")
    assert bot.engine.history(ann) == [] and bot.engine.progress(ann)[0].pieces_earned == 0


def _message(bot, message_id: int) -> tuple[str, list[str]]:
    """What the chat shows now of one of the bot's messages: its text and button labels."""
    message = bot.api.message(ANN, message_id)
    rows = (message.get("reply_markup") or {}).get("inline_keyboard") or []
    return message["text"], [button["text"] for row in rows for button in row]


@pytest.mark.parametrize("lang", LANGS)
def test_completion_message_stays_when_the_user_goes_on(tg, lang):
    """Log another, Claim it and Menu on a completion open their screen in a new message: the
    completion keeps what was logged and won, and its Undo, so each of several completions in a
    row can still be read and undone. Other screens still edit the message they are on."""
    bot = tg()
    ann = user(bot, lang=lang)
    coffee_setup(bot, ann, pieces=2)
    bot.engine.add_habit("Reading", owner=ann)
    t = Translator(lang)
    bot.send(ANN, "/habit_done")
    running = bot.press(ANN, "Running")
    running_id, running_text = running[-1]["message_id"], running.text
    assert t._("🎁 You won a piece: <b>{reward}</b> {earned}/{required}", reward="Coffee", earned=1, required=2) \
        in running_text

    another = bot.press(ANN, t._("✅ Log another"))
    keyboard_id = another[-1]["message_id"]
    assert keyboard_id > running_id and another[-1]["method"] == "sendMessage"
    assert t._("Which habit did you do today?") in another.text
    assert {"✔️ Running", "Reading"} <= set(buttons(another))
    assert _message(bot, running_id) == (running_text, [t._("↩️ Undo")])

    reading = bot.press(ANN, "Reading")  # the keyboard becomes the completion, as before
    assert reading[-1]["message_id"] == keyboard_id
    reading_text = reading.text
    assert t._("🎉 <b>{reward}</b> {earned}/{required}: achieved! Claim it with /claim_reward.",
               reward="Coffee", earned=2, required=2) in reading_text
    claim = bot.press(ANN, t._("🎁 Claim it"))
    assert claim[-1]["method"] == "sendMessage" and claim.text == t._("Claim <b>{reward}</b> now?", reward="Coffee")
    assert _message(bot, keyboard_id) == (reading_text, [t._("↩️ Undo")])
    back = bot.press(ANN, t._("⬅️ Back"))  # any other screen edits the message it is on
    assert back[-1]["method"] == "editMessageText" and back[-1]["message_id"] == claim[-1]["message_id"]

    # The first completion's Undo, after a later one: Running's last completion, undone alone.
    undone = bot.press(ANN, t._("↩️ Undo"), message_id=running_id)
    assert t._("↩️ Undone: <b>{habit}</b> on {date}.", habit="Running", date=t.date(bot.engine.today(ann))) \
        in undone.text
    assert undone[-1]["message_id"] == running_id
    assert [entry.habit_name for entry in bot.engine.history(ann)] == ["Reading"]
    assert bot.engine.progress(ann)[0].pieces_earned == 1
    assert _message(bot, keyboard_id) == (reading_text, [t._("↩️ Undo")])  # still there, and it works
    bot.press(ANN, t._("↩️ Undo"), message_id=keyboard_id)
    assert bot.engine.history(ann) == []

    bot.send(ANN, "/habit_done")
    again = bot.press(ANN, "Running")
    menu = bot.press(ANN, t._("🏠 Menu"), message_id=again[-1]["message_id"])
    assert menu[-1]["method"] == "sendMessage" and menu.text == t._("What would you like to do?")
    assert _message(bot, again[-1]["message_id"]) == (again.text, [t._("↩️ Undo")])


def test_undo_on_an_older_completion_of_the_same_habit(tg, clock):
    """Yesterday's completion message, pressed after today's completion of the same habit:
    it undoes yesterday's (that message's, as docs/rules.md says), says which day, and today's
    stays with its Undo."""
    bot = tg()
    ann = user(bot)
    coffee_setup(bot, ann)
    t = Translator("en")
    bot.send(ANN, "/habit_done")
    yesterday = bot.press(ANN, "Running")
    yesterday_day = bot.engine.today(ann)
    clock.advance(days=1)
    bot.press(ANN, t._("✅ Log another"), message_id=yesterday[-1]["message_id"])
    today = bot.press(ANN, "Running")
    assert t.ngettext("🔥 Streak: {n} day", "🔥 Streak: {n} days", 2) in today.text

    undone = bot.press(ANN, t._("↩️ Undo"), message_id=yesterday[-1]["message_id"])
    assert t._("↩️ Undone: <b>{habit}</b> on {date}.", habit="Running", date=t.date(yesterday_day)) in undone.text
    assert [entry.log.completed_on for entry in bot.engine.history(ann)] == [bot.engine.today(ann)]
    assert _message(bot, today[-1]["message_id"]) == (today.text, [t._("↩️ Undo"), t._("✅ Log another"),
                                                                    t._("🏠 Menu")])
    bot.press(ANN, t._("↩️ Undo"), message_id=today[-1]["message_id"])
    assert bot.engine.history(ann) == []


@pytest.mark.parametrize("lang", LANGS)
def test_streak_grows_over_days_and_achieved_reward_is_claimed(tg, clock, lang):
    bot = tg()
    ann = user(bot, lang=lang)
    coffee_setup(bot, ann)
    t = Translator(lang)
    for _ in range(3):
        bot.send(ANN, "/habit_done")
        reply = bot.press(ANN, "Running")
        clock.advance(days=1)
    assert t.ngettext("🔥 Streak: {n} day", "🔥 Streak: {n} days", 3) in reply.text
    assert t._("🎉 <b>{reward}</b> {earned}/{required}: achieved! Claim it with /claim_reward.",
               reward="Coffee", earned=3, required=3) in reply.text
    claim = bot.press(ANN, t._("🎁 Claim it"))
    assert claim.text == t._("Claim <b>{reward}</b> now?", reward="Coffee")
    assert bot.press(ANN, t._("⬅️ Back")).text == t._("Which reward do you want to claim?")
    bot.press(ANN, "Coffee")
    claimed = bot.press(ANN, t._("✅ Yes, claim it"))
    assert claimed.text == t._("🎉 Enjoy your <b>{reward}</b>!", reward="Coffee") + "\n" + \
        t.ngettext("Claimed {n} time so far.", "Claimed {n} times so far.", 1)
    assert bot.engine.progress(ann)[0].times_claimed == 1
    assert bot.send(ANN, "/claim_reward").text == t._("Nothing to claim yet: collect all pieces of a reward first.")


def test_group_chatter_is_not_a_habit_report(tg):
    bot = tg()
    ann = user(bot)
    coffee_setup(bot, ann)
    assert bot.send(ANN, "Running", chat_id=-100) == []
    assert bot.send(77, "hello all", chat_id=-100) == []  # a pending stranger in the group: no noise
    assert bot.engine.history(ann) == []


def test_in_a_group_a_button_answers_only_the_member_its_message_is_for(tg, botapi):
    bot = tg()
    ann, bob = user(bot, ANN), user(bot, BOB, lang="ru")
    coffee_setup(bot, ann)
    screen = bot.send(ANN, "/habit_done", chat_id=-100)
    before = botapi.messages(-100)

    not_yours = "Это сообщение для другого участника. Отправьте /menu, чтобы открыть своё."
    for button in ("Running", "🏠 Menu"):
        pressed = bot.press(BOB, button, chat_id=-100)
        assert pressed == [] and pressed.alert == not_yours
    assert botapi.messages(-100) == before  # Ann's screen is left as it was
    assert bot.engine.history(bob) == [] and bot.engine.history(ann) == []

    # Ann's own presses work; a screen Bob asks for is his to press.
    assert "✅ <b>Running</b> done!" in bot.press(ANN, "Running", chat_id=-100).text
    bot.send(BOB, "/streaks", chat_id=-100)
    assert bot.press(ANN, "🏠 Меню", chat_id=-100).alert.startswith("This message is for someone else.")
    assert bot.press(BOB, "🏠 Меню", chat_id=-100).text == "Что вы хотите сделать?"
    assert screen[0]["message_id"] != botapi.sent(-100)[-1]["message_id"]
    # In a private chat nothing is remembered (no extra write on the usual path).
    bot.send(ANN, "/streaks")
    assert "message_owners" not in (bot.application.chat_data.get(ANN) or {})


def test_another_bots_command_in_a_group_registers_nobody(tg, botapi):
    """/roll is for a dice bot: its sender is not asked about, nor answered, nor told to wait."""
    bot = tg()
    user(bot, ADMIN, admin=True)
    for typed in ("/roll@dice_bot", "/roll", "/roll@dice_bot 2d6", "/start@dice_bot"):
        assert bot.send(77, typed, chat_id=-100) == [], typed
    assert bot.send(77, "/roll@dice_bot") == []  # in a private chat too
    assert bot.engine.find_user(77) is None
    assert botapi.sent(ADMIN) == [] and botapi.sent(-100) == []

    # Someone waiting for approval is not told so again and again for every /roll.
    bot.send(BOB, "/start")
    assert [m["text"] for m in botapi.sent(ADMIN)] == ["🆕 Test (id 3) wants to use the bot."]
    for typed in ("/roll", "/roll@dice_bot", "hello all"):
        assert bot.send(BOB, typed, chat_id=-100) == [], typed
    # A command for this bot, in a group, is still answered ...
    waiting = "Hello! An admin has been asked to approve you. I will write as soon as you are in."
    assert bot.send(BOB, "/streaks", chat_id=-100).text.startswith(waiting)
    assert bot.send(BOB, "/streaks@habitreward_test_bot", chat_id=-100).text.startswith(waiting)
    # ... and a newcomer who writes one to this bot in a group is registered, as before.
    # In a group the newcomer also learns how to get the bot's word when they are in.
    assert bot.send(78, "/start@habitreward_test_bot", chat_id=-100).text == (
        waiting + "\nOpen a private chat with me (@habitreward_test_bot) so that I can.")
    assert bot.send(79, "/start").text == waiting  # privately: the chat is there
    assert bot.engine.find_user(78) is not None


def test_an_anonymous_admin_or_a_channel_is_not_a_user(tg, botapi):
    """Telegram sends an anonymous group admin's messages from one bot account (GroupAnonymousBot,
    for every anonymous admin of every group) with the group as ``sender_chat``; a post on behalf
    of a channel comes from Channel_Bot with the channel. Neither is a person to register."""
    from habitreward.testing.builders import message_update

    bot = tg()
    user(bot, ADMIN, admin=True)
    anonymous = message_update(1087968824, "/start@habitreward_test_bot", chat_id=-100, first_name="Group")
    anonymous["message"]["from"]["is_bot"] = True
    anonymous["message"]["sender_chat"] = {"id": -100, "type": "supergroup", "title": "Test group"}
    channel = message_update(136817688, "/streaks", chat_id=-100, first_name="Channel")
    channel["message"]["from"]["is_bot"] = True
    channel["message"]["sender_chat"] = {"id": -1009, "type": "channel", "title": "News"}
    # A linked channel's post forwarded into its discussion group: from 777000, not flagged a bot.
    on_behalf = message_update(777000, "/start", chat_id=-100, first_name="Telegram")
    on_behalf["message"]["sender_chat"] = {"id": -1009, "type": "channel", "title": "News"}
    for update in (anonymous, channel, on_behalf):
        assert bot.process(update) == []
    assert [u.telegram_id for u in bot.engine.list_users()] == [ADMIN]
    assert botapi.sent(ADMIN) == []  # no approval request


@pytest.mark.parametrize("lang", LANGS)
def test_a_command_nothing_answers_is_told_so_in_a_private_chat_only(tg, lang):
    bot = tg()
    user(bot, lang=lang)
    t = Translator(lang)
    for typed in ("/strekas", "/Strekas@habitreward_test_bot now"):
        reply = bot.send(ANN, typed)
        assert reply.text == t._("I don't know the command {command}. /help lists what I can do.",
                                 command=typed.split()[0])
        assert buttons(reply) == [t._("🏠 Menu")]
    assert bot.send(ANN, "/strekas@another_bot") == []  # addressed to another bot
    assert bot.send(ANN, "/strekas", chat_id=-100) == []  # group chatter
    assert t._("<b>How it works</b>") in bot.send(ANN, "/help").text  # the real ones still work


def test_a_plugins_command_is_not_called_unknown(db_url, clock, botapi):
    from telegram.ext import CommandHandler

    from habitreward.testing.driver import BotDriver
    from habitreward.testing.engines import make_engine

    class Wave:
        @hookimpl
        def habitreward_register_handlers(self, register, settings):
            async def wave(update, context):
                await update.effective_message.reply_text("👋")
            register(CommandHandler("wave", wave))  # group 0, after the bot's own handlers

    engine = make_engine(db_url, clock=clock, load_entry_points=False, admin_telegram_ids=str(ADMIN))
    engine.pm.register(Wave(), name="wave")
    with BotDriver(engine, botapi) as bot:
        user(bot)
        assert bot.send(ANN, "/wave").texts == ["👋"]
    engine.close()


def older_coffee_setup(bot, clock, owner, *more_habits: str, days: int = 3):
    """:func:`coffee_setup` (and ``more_habits``) as made ``days`` ago: earlier days can be logged."""
    clock.advance(days=-days)
    made = coffee_setup(bot, owner)
    for name in more_habits:
        bot.engine.add_habit(name, owner=owner)
    clock.advance(days=days)
    return made


@pytest.mark.parametrize("lang", LANGS)
def test_earlier_day(tg, clock, lang):
    bot = tg()
    ann = user(bot, lang=lang)
    habit, _ = older_coffee_setup(bot, clock, ann)
    t = Translator(lang)
    bot.send(ANN, "/habit_done")
    days = bot.press(ANN, t._("📅 Earlier day"))
    assert days.text == t._("Which day? You can log up to {n} days back.", n=7)
    assert t._("Yesterday") in buttons(days)
    keyboard = bot.press(ANN, t._("Yesterday"))
    yesterday = bot.engine.today(ann).fromordinal(bot.engine.today(ann).toordinal() - 1)
    assert t._("Which habit did you do on {date}?", date=t.date(yesterday, "d MMMM")) in keyboard.text
    logged = bot.press(ANN, "Running")
    assert t._("✅ <b>{habit}</b> logged for {date}.", habit="Running", date=t.date(yesterday)) in logged.text
    assert bot.engine.history(ann)[0].log.completed_on == yesterday
    # Only the days since the habit was added (three) are offered...
    bot.send(ANN, "/habit_done")
    offered = bot.press(ANN, t._("📅 Earlier day"))
    three_back = bot.engine.today(ann) - dt.timedelta(days=3)
    day_buttons = [data for row in offered.buttons for _, data in row if data and data.startswith("done:0:")]
    assert len(day_buttons) == 3 and day_buttons[-1] == f"done:0:{three_back:%Y%m%d}"
    # ...and a week ago (an older day picker's button) is refused, as is an older habit keyboard's
    # button for that day, with a reason; nothing logged.
    week_ago = bot.engine.today(ann) - dt.timedelta(days=7)
    from habitreward.testing.builders import callback_update
    keyboard = bot.process(callback_update(ANN, f"done:0:{week_ago:%Y%m%d}", message_id=offered[-1]["message_id"],
                                           date=bot.engine.now()))
    assert keyboard.text == t._("Sorry, that button is not valid any more.")
    too_early = bot.process(callback_update(ANN, f"d:{habit.id}:{week_ago:%Y%m%d}",
                                            message_id=offered[-1]["message_id"], date=bot.engine.now()))
    assert t._("That day cannot be logged for <b>{habit}</b>: only the last {n} days since the habit was added "
               "count.", habit="Running", n=7) == too_early.text
    assert len(bot.engine.history(ann)) == 1


def test_an_earlier_days_keyboard_logs_the_day_it_shows_even_after_midnight(tg, clock):
    bot = tg()
    ann = user(bot)
    older_coffee_setup(bot, clock, ann)
    clock.set(dt.datetime.combine(bot.engine.today(ann), dt.time(23, 59), tzinfo=bot.engine.user_zone(ann)))
    shown_day = bot.engine.today(ann) - dt.timedelta(days=1)
    bot.send(ANN, "/habit_done")
    bot.press(ANN, "📅 Earlier day")
    assert f"Which habit did you do on {shown_day.day} " in bot.press(ANN, "Yesterday").text
    clock.advance(minutes=2)  # a new day: "yesterday" is another date now
    logged = bot.press(ANN, "Running")
    assert bot.engine.history(ann)[0].log.completed_on == shown_day
    assert f"logged for {shown_day:%b} {shown_day.day}, {shown_day.year}" in logged.text


def test_an_earlier_days_keyboard_offers_only_the_habits_that_existed_that_day(tg, clock):
    bot = tg()
    ann = user(bot)
    older_coffee_setup(bot, clock, ann, days=3)  # Running, added three days ago
    bot.engine.add_habit("Reading", owner=ann)
    clock.advance(days=1)  # Reading was added yesterday
    bot.send(ANN, "/habit_done")
    offered = bot.press(ANN, "📅 Earlier day")
    labels = {data: label for row in offered.buttons for label, data in row}
    yesterday, four_back = (bot.engine.today(ann) - dt.timedelta(days=n) for n in (1, 4))
    assert buttons(bot.press(ANN, labels[f"done:0:{yesterday:%Y%m%d}"]))[:2] == ["Reading", "Running"]
    bot.press(ANN, "📅 Another day")
    assert "Reading" not in buttons(bot.press(ANN, labels[f"done:0:{four_back:%Y%m%d}"]))


def test_no_earlier_day_is_offered_before_any_habit_existed(tg):
    bot = tg()
    ann = user(bot)
    bot.engine.add_habit("Running", owner=ann)  # added today
    bot.send(ANN, "/habit_done")
    none = bot.press(ANN, "📅 Earlier day")
    assert none.text == "Your habits were all added today: there is no earlier day to log yet."
    assert buttons(none) == ["⬅️ Back", "🏠 Menu"]


def test_an_older_button_with_days_back_still_logs(tg, clock):
    """Buttons sent before the day was a date carry a number of days back (d:<habit>:<n>)."""
    from habitreward.testing.builders import callback_update

    bot = tg()
    ann = user(bot)
    habit, _ = older_coffee_setup(bot, clock, ann)
    sent = bot.send(ANN, "/habit_done")
    bot.process(callback_update(ANN, f"d:{habit.id}:2", message_id=sent[-1]["message_id"],
                                date=bot.engine.now()))
    assert bot.engine.history(ann)[0].log.completed_on == bot.engine.today(ann) - dt.timedelta(days=2)


@pytest.mark.parametrize("lang", LANGS)
def test_odds_say_a_reward_drawn_its_most_today_is_back_tomorrow(tg, lang):
    bot = tg()
    ann = user(bot, lang=lang)
    t = Translator(lang)
    bot.engine.add_habit("Running", owner=ann)
    bot.engine.add_habit("Reading", owner=ann)
    bot.engine.add_reward("Movie", pieces_required=5, max_per_day=1, owner=ann)
    bot.send(ANN, "running")  # the only reward: a piece of Movie
    bot.send(ANN, "/odds")
    shown = bot.press(ANN, "Reading")
    assert t._("⏸ <b>{reward}</b> came out as often as it may today: back in the draw tomorrow.",
               reward="Movie") in shown.text
    assert t._("• No reward — {percent}", percent=t.percent(1.0)) in shown.text


@pytest.mark.parametrize("lang", LANGS)
def test_odds_of_a_habit_done_today_are_tomorrows(tg, lang):
    bot = tg()
    ann = user(bot, lang=lang)
    t = Translator(lang)
    bot.engine.add_habit("Running", owner=ann)
    bot.engine.add_reward("Movie", pieces_required=5, max_per_day=1, owner=ann)
    bot.send(ANN, "running")  # the only reward: a piece of Movie, as often as it may today
    bot.send(ANN, "/odds")
    shown = bot.press(ANN, "Running")
    assert t._("Done today: these are the odds for tomorrow's completion.") in shown.text
    assert t.ngettext("Streak: {n} day", "Streak: {n} days", 2) in shown.text  # the streak it would then have
    assert t._("• <b>{reward}</b> — {percent}", reward="Movie", percent=t.percent(1.0)) in shown.text
    assert t._("⏸ <b>{reward}</b> came out as often as it may today: back in the draw tomorrow.",
               reward="Movie") not in shown.text


def test_escaped_names(tg):
    bot = tg()
    ann = user(bot)
    bot.engine.add_habit("<b>&", owner=ann)
    keyboard = bot.send(ANN, "/habit_done")
    assert "<b>&" in buttons(keyboard)  # button labels are plain text
    done = bot.press(ANN, "<b>&")
    assert "✅ <b>&lt;b&gt;&amp;</b> done!" in done.text and done[-1]["parse_mode"] == "HTML"


class Awarding:
    """A plugin that hands out three kinds of award on every completion."""

    @hookimpl
    def habitreward_habit_completed(self, engine, event):
        from habitreward.events import Award

        reward = engine.find_reward(event.user, "Coffee")
        return [
            Award(kind="plain", message="Nice <i>one</i> & more"),
            Award(kind="piece", reward=reward),
            Award(kind="translated", data={"message_id": "Early bird: {habit}!", "values": {"habit": "<x>"}}),
        ]


def test_plugin_awards_are_shown_escaped_and_translated(tg, tmp_path, monkeypatch):
    from habitreward.bot import i18n

    po = tmp_path / "ru" / "LC_MESSAGES" / "early.po"
    po.parent.mkdir(parents=True)
    po.write_text('msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=utf-8\\n"\n\n'
                  'msgid "Early bird: {habit}!"\nmsgstr "Ранняя пташка: {habit}!"\n', encoding="utf-8")
    monkeypatch.setattr(i18n, "_extra_dirs", [])
    i18n.register_catalog_dir(tmp_path, "early")
    try:
        bot = tg()
        ann = user(bot, lang="ru")
        coffee_setup(bot, ann)
        bot.engine.pm.register(Awarding(), name="awarding")
        text = bot.send(ANN, "Running").text
        assert "⭐ Nice &lt;i&gt;one&lt;/i&gt; &amp; more" in text
        assert "⭐ Бонусная часть: <b>Coffee</b>" in text
        assert "⭐ Ранняя пташка: &lt;x&gt;!" in text
    finally:
        i18n.translations.cache_clear()


# --- free text ------------------------------------------------------------------------------------


class Unsure:
    """A matcher plugin that is never sure: it proposes the first habit."""

    @hookimpl(tryfirst=True)
    def habitreward_match_habits(self, user, text, habits):
        if text in ("did something", "did something yesterday"):
            return MatchResult(matches=(HabitMatch(habits[0], 0.5, "fuzzy"),), confident=False)
        if text == "did things":
            return MatchResult(matches=tuple(HabitMatch(h, 0.5, "llm") for h in habits), confident=False)
        return None


@pytest.mark.parametrize(("text", "back"), [("ran yesterday", 1), ("вчера бегал", 1), ("позавчера бегал", 2),
                                           ("did yesterday's running", 1), ("бег, позавчерашняя тренировка", 2)])
def test_a_report_of_an_earlier_day_is_logged_for_that_day(tg, clock, text, back):
    bot = tg()
    ann = user(bot)
    older_coffee_setup(bot, clock, ann, "Бег")
    day = bot.engine.today(ann) - dt.timedelta(days=back)
    logged = bot.send(ANN, text)
    assert f"logged for {day:%b} {day.day}, {day.year}." in logged.text
    assert [e.log.completed_on for e in bot.engine.history(ann)] == [day]
    assert "Running" in buttons(bot.send(ANN, "/habit_done"))  # today's is still to log
    assert "✔️" not in " ".join(buttons(bot.send(ANN, "/habit_done")))


@pytest.mark.parametrize(("text", "back"), [("went running an hour ago", 1), ("бегал 2 часа назад", 1),
                                           ("бір сағат бұрын жүгірдім", 1), ("went running 10 minutes ago", 0),
                                           ("went running 30 hours ago", 2)])
def test_hours_ago_soon_after_midnight_is_the_day_of_that_hour(tg, clock, text, back):
    """Written at 00:20 in Kathmandu (UTC+5:45): an hour before was the day before."""
    bot = tg()
    ann = user(bot)
    ann = bot.engine.set_timezone(ann, "Asia/Kathmandu")
    older_coffee_setup(bot, clock, ann, "Бег", "Жүгіру")
    written = dt.datetime.combine(bot.engine.today(ann), dt.time(0, 20), tzinfo=bot.engine.user_zone(ann))
    clock.set(written + dt.timedelta(minutes=1))
    bot.send(ANN, text, date=written)
    assert [e.log.completed_on for e in bot.engine.history(ann)] == [written.date() - dt.timedelta(days=back)]


@pytest.mark.parametrize("text", ["I ran yesterday and read today", "ran today, read yesterday",
                                  "вчера бегал, а сегодня читал"])
def test_a_report_naming_two_days_is_asked_habit_by_day(tg, clock, text):
    """Not everything logged for one of the days: each habit on each day is a button."""
    bot = tg()
    ann = user(bot)
    older_coffee_setup(bot, clock, ann, "Reading", "Чтение", "Бег")
    asked = bot.send(ANN, text)
    assert asked.text == "Your message names more than one day. Which habit, on which day?"
    assert bot.engine.history(ann) == []
    habit = "Бег" if "бегал" in text else "Running"
    assert f"{habit} · Yesterday" in buttons(asked) and f"{habit} · Today" in buttons(asked)
    yesterday = bot.engine.today(ann) - dt.timedelta(days=1)
    logged = bot.press(ANN, f"{habit} · Yesterday")
    assert f"logged for {yesterday:%b} {yesterday.day}, {yesterday.year}." in logged.text
    assert [(e.habit_name, e.log.completed_on) for e in bot.engine.history(ann)] == [(habit, yesterday)]


def test_each_habit_of_a_report_naming_two_days_can_be_pressed(tg, clock):
    """ "ran yesterday and read today" reports both: pressing one left no way to log the other
    (the question became the completion), short of typing it again."""
    bot = tg()
    ann = user(bot)
    older_coffee_setup(bot, clock, ann, "Reading")
    today = bot.engine.today(ann)
    bot.send(ANN, "I ran yesterday and read today")
    first = bot.press(ANN, "Running · Yesterday")
    assert "<b>Running</b> logged for" in first.text
    question, _ = bot.find_button(ANN, "Reading · Today")
    left = [button["text"] for row in question["reply_markup"]["inline_keyboard"] for button in row]
    assert "Running · Yesterday" not in left and "❌ None of these" not in left  # one was done
    assert "Reading · Today" in left and "Running · Today" in left
    second = bot.press(ANN, "Reading · Today")
    assert "<b>Reading</b> done!" in second.text
    assert sorted((e.habit_name, e.log.completed_on) for e in bot.engine.history(ann)) == [
        ("Reading", today), ("Running", today - dt.timedelta(days=1))]


def test_a_report_naming_yesterday_and_the_day_before_logs_neither_at_once(tg, clock):
    bot = tg()
    ann = user(bot)
    older_coffee_setup(bot, clock, ann, "Бег")
    two_back = bot.engine.today(ann) - dt.timedelta(days=2)
    for text in ("ran yesterday and the day before", "бегал вчера и позавчера"):
        asked = bot.send(ANN, text)
        assert asked.text == "Your message names more than one day. Which habit, on which day?"
        assert f"{two_back:%a}, {two_back.day} {two_back:%b}" in " ".join(buttons(asked))
    assert bot.engine.history(ann) == []
    assert "logged for" in bot.send(ANN, "ran yesterday").text  # one day: logged at once


@pytest.mark.parametrize(("today", "text"), [
    *(((2026, 1, 5), text) for text in ("ran last week", "ran on 25 November", "ran on Monday",
                                        "на прошлой неделе бегал", "в понедельник бегал", "өткен аптада жүгірдім",
                                        "дүйсенбіде жүгірдім", "ran 10 days ago")),
    # dates in numbers the bot cannot log or tell
    ((2026, 11, 28), "пробежал 12.11"),  # beyond the 7 days back, as "ran 10 days ago"
    ((2026, 11, 28), "ran on 30/11"),  # ahead
    ((2026, 11, 28), "25.11.2025 жүгірдім"),  # a year back
    ((2026, 12, 12), "ran on 12/11"),  # 12 November, or (month first) yesterday: never guessed
    ((2026, 1, 5), "ran 12/25"),  # 25 December, 11 days back
    ((2026, 1, 5), "бегал 6-го"),  # the 6th is ahead: 6 December
])
def test_a_report_of_an_earlier_day_we_cannot_tell_is_not_logged_for_today(tg, clock, today, text):
    """The day picker instead: the user says which day, then which habit."""
    clock.set(dt.datetime(*today, 12, 0, tzinfo=dt.timezone.utc))
    bot = tg()
    ann = user(bot)
    older_coffee_setup(bot, clock, ann, "Бег", "Жүгіру")
    asked = bot.send(ANN, text)
    assert asked.text == "I could not tell which day that was.\n\nWhich day? You can log up to 7 days back."
    assert "Yesterday" in buttons(asked)
    assert bot.engine.history(ann) == []


@pytest.mark.parametrize(("text", "habit"), [("ran 3 days ago", "Running"), ("бегал 3 дня назад", "Бег"),
                                             ("3 күн бұрын жүгірдім", "Жүгіру")])
def test_a_report_of_n_days_ago_is_logged_for_that_day(tg, clock, text, habit):
    bot = tg()
    ann = user(bot)
    older_coffee_setup(bot, clock, ann, "Бег", "Жүгіру", days=5)
    day = bot.engine.today(ann) - dt.timedelta(days=3)
    assert f"logged for {day:%b} {day.day}, {day.year}." in bot.send(ANN, text).text
    assert [(e.habit_name, e.log.completed_on) for e in bot.engine.history(ann)] == [(habit, day)]


@pytest.mark.parametrize(("text", "habit"), [
    ("бегал 25.11", "Бег"), ("ran on 25/11", "Running"), ("25.11 жүгірдім", "Жүгіру"),
    ("ran 25.11.2026", "Running"), ("бегал 25.11.26, 5 км", "Бег"), ("ran on 2026-11-25", "Running"),
    ("ran on the 25th", "Running"), ("бегал 25-го", "Бег")])
def test_a_report_of_a_numeric_date_is_logged_for_that_day(tg, clock, text, habit):
    """Day first, as in Russian, Kazakh and most of the world."""
    clock.set(dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.timezone.utc))
    bot = tg()
    ann = user(bot)
    older_coffee_setup(bot, clock, ann, "Бег", "Жүгіру", days=5)
    assert "logged for Nov 25, 2026." in bot.send(ANN, text).text
    assert [(e.habit_name, e.log.completed_on) for e in bot.engine.history(ann)] == [(habit, dt.date(2026, 11, 25))]


@pytest.mark.parametrize("text", ["ran on 04.01", "бегал 4-го", "ran on 2026-01-04", "ran on the 4th"])
def test_a_date_in_numbers_that_is_yesterday_is_logged_for_yesterday(tg, clock, text):
    bot = tg()  # written on 5 January
    ann = user(bot)
    older_coffee_setup(bot, clock, ann, "Бег")
    assert "logged for Jan 4, 2026." in bot.send(ANN, text).text
    assert [e.log.completed_on for e in bot.engine.history(ann)] == [dt.date(2026, 1, 4)]


@pytest.mark.parametrize(("text", "habit"), [("в 10.11 бегал", "Бег"), ("ran at 10.11", "Running")])
def test_a_time_that_is_also_a_date_in_the_week_is_asked_about(tg, clock, text, habit):
    """Written on 11 November, "в 10.11" is 10:11 today or 10 November: the user says which."""
    clock.set(dt.datetime(2026, 11, 11, 12, 0, tzinfo=dt.timezone.utc))
    bot = tg()
    ann = user(bot)
    older_coffee_setup(bot, clock, ann, "Бег")
    asked = bot.send(ANN, text)
    assert asked.text == "Is 10.11 a time today or a date? Which habit, on which day?"
    assert f"{habit} · Today" in buttons(asked) and f"{habit} · Yesterday" in buttons(asked)
    assert bot.engine.history(ann) == []
    assert "logged for Nov 10, 2026." in bot.press(ANN, f"{habit} · Yesterday").text
    with pytest.raises(AssertionError, match="No button"):  # one report read two ways: the other reading goes
        bot.find_button(ANN, f"{habit} · Today")
    assert [(e.habit_name, e.log.completed_on) for e in bot.engine.history(ann)] == [(habit, dt.date(2026, 11, 10))]


@pytest.mark.parametrize(("written", "text"), [
    ((2026, 11, 11), "бегал в 10:11"),  # a colon: only a time
    ((2026, 11, 28), "в 10.11 бегал"),  # 10 November is out of the week: a time
    ((2026, 11, 10), "в 10.11 бегал"),  # today either way
    ((2026, 11, 11), "бегал в 10.30"),  # no 30th month: a time
    ((2026, 11, 11), "сағат 10.11 жүгірдім"),  # "10.11 o'clock"
])
def test_a_time_that_cannot_be_another_day_is_logged_for_today(tg, clock, written, text):
    clock.set(dt.datetime(*written, 12, 0, tzinfo=dt.timezone.utc))
    bot = tg()
    ann = user(bot)
    older_coffee_setup(bot, clock, ann, "Бег", "Жүгіру")
    assert "done!" in bot.send(ANN, text).text
    assert [e.log.completed_on for e in bot.engine.history(ann)] == [dt.date(*written)]


def test_a_plan_is_asked_about_and_a_past_report_logged(tg):
    bot = tg()
    ann = user(bot)
    coffee_setup(bot, ann)
    for name in ("Бег", "Жүгіру", "Кітап оқу"):
        bot.engine.add_habit(name, owner=ann)
    for text, habit in [("let's run", "Running"), ("вечером побегаю", "Бег"), ("давай побегаем", "Бег"),
                        ("жүгіремін", "Жүгіру"), ("жүгірейін", "Жүгіру"), ("кітап оқимын", "Кітап оқу")]:
        assert bot.send(ANN, text).text == f"Did you mean <b>{habit}</b>?", text
    assert bot.engine.history(ann) == []
    for text, habit in [("побегал", "Бег"), ("жүгірдім", "Жүгіру"), ("кітап оқыдым", "Кітап оқу")]:
        assert f"<b>{habit}</b> done!" in bot.send(ANN, text).text, text
    assert sorted(e.habit_name for e in bot.engine.history(ann)) == ["Бег", "Жүгіру", "Кітап оқу"]


def test_a_report_of_something_not_done_logs_nothing_without_asking(tg):
    bot = tg()
    ann = user(bot)
    coffee_setup(bot, ann)
    for name in ("Reading", "Push-ups", "Бег", "Жүгіру"):
        bot.engine.add_habit(name, owner=ann)
    for text in ("hadn't read", "0 push-ups", "zero push-ups today", "too tired to run", "almost ran",
                 "didn;t run", "dint run", "лень было бегать", "бегал бы, но дождь", "почти бегал",
                 "жүгірмей қалдым"):
        assert bot.send(ANN, text).text.startswith("Did you mean"), text
    for text in ("run ✅ read ❌", "instead of running I read"):
        assert bot.send(ANN, text).text == "Which of these did you do? Press each one.", text
    assert bot.engine.history(ann) == []
    for text in ("ran 10k", "read 20 pages", "did 30 push-ups"):
        assert "done!" in bot.send(ANN, text).text, text
    assert sorted(e.habit_name for e in bot.engine.history(ann)) == ["Push-ups", "Reading", "Running"]


def test_a_report_of_an_earlier_day_keeps_its_day_when_no_habit_is_certain(tg, clock):
    """Not recognised, or "Pick another habit" after a guess: the keyboard is the named day's."""
    bot = tg()
    ann = user(bot)
    older_coffee_setup(bot, clock, ann, "Reading")
    bot.engine.pm.register(Unsure(), name="unsure")
    yesterday = bot.engine.today(ann) - dt.timedelta(days=1)
    asked = f"Which habit did you do on {yesterday.day} {yesterday:%B}?"
    unknown = bot.send(ANN, "did the laundry yesterday")
    assert unknown.text == "I could not tell which habit that was.\n\n" + asked
    bot.press(ANN, "Reading")
    assert bot.send(ANN, "did something yesterday").text == "Did you mean <b>Reading</b>?"
    assert bot.press(ANN, "📋 Pick another habit").text == asked
    bot.send(ANN, "did something")  # a guess about today: today's keyboard
    assert "Which habit did you do today?" in bot.press(ANN, "📋 Pick another habit").text
    assert [e.log.completed_on for e in bot.engine.history(ann)] == [yesterday]


def test_yes_to_a_guess_about_a_day_before_the_habit_existed_logs_nothing(tg):
    bot = tg()
    ann = user(bot)
    bot.engine.add_habit("Running", owner=ann)  # added today
    bot.engine.pm.register(Unsure(), name="unsure")
    assert bot.send(ANN, "did something yesterday").text == "Did you mean <b>Running</b>?"
    refused = bot.press(ANN, "✅ Yes, log it")
    assert refused.text.startswith("That day cannot be logged for <b>Running</b>")
    assert bot.engine.history(ann) == []  # not logged for today instead


def test_the_typing_hint_is_only_where_typing_reports(tg):
    bot = tg()
    ann = user(bot)
    bot.engine.add_habit("Running", owner=ann)
    assert "You can also type what you did." in bot.send(ANN, "/habit_done").text
    in_group = bot.send(ANN, "/habit_done", chat_id=-100)
    assert in_group.text == "Which habit did you do today?"  # typed text in a group is no report
    assert bot.send(ANN, "Running", chat_id=-100) == []


def test_yes_to_a_guess_logs_the_day_the_message_was_written(tg, clock):
    bot = tg()
    ann = user(bot)
    older_coffee_setup(bot, clock, ann)
    bot.engine.pm.register(Unsure(), name="unsure")
    written = dt.datetime.combine(bot.engine.today(ann), dt.time(23, 58), tzinfo=bot.engine.user_zone(ann))
    clock.set(written)
    assert bot.send(ANN, "did something", date=written).text == "Did you mean <b>Running</b>?"
    clock.advance(minutes=5)  # answered after midnight
    bot.press(ANN, "✅ Yes, log it")
    assert bot.engine.history(ann)[0].log.completed_on == written.date()


@pytest.mark.parametrize("lang", LANGS)
def test_free_text_logs_confirms_or_asks(tg, lang):
    bot = tg()
    ann = user(bot, lang=lang)
    coffee_setup(bot, ann)
    bot.engine.add_habit("Reading", owner=ann)
    bot.engine.pm.register(Unsure(), name="unsure")
    t = Translator(lang)

    logged = bot.send(ANN, "reading")  # the exact name: logged at once
    assert t._("✅ <b>{habit}</b> done!", habit="Reading") in logged.text
    assert [e.habit_name for e in bot.engine.history(ann)] == ["Reading"]

    unsure = bot.send(ANN, "did something")
    assert unsure.text == t._("Did you mean <b>{habit}</b>?", habit="Reading")
    no = bot.press(ANN, t._("❌ No"))
    assert no.text == t._("OK, nothing was logged.")
    assert len(bot.engine.history(ann)) == 1

    unknown = bot.send(ANN, "qwertyuiop zxcvb")
    assert t._("I could not tell which habit that was.") in unknown.text
    assert "Running" in buttons(unknown)
    assert len(bot.engine.history(ann)) == 1

    several = bot.send(ANN, "did things")
    assert several.text == t._("Which of these did you do? Press each one.")
    assert buttons(several) == ["Reading", "Running", t._("❌ None of these"), t._("📋 Pick another habit")]
    assert t._("✅ <b>{habit}</b> done!", habit="Running") in bot.press(ANN, "Running").text
    assert len(bot.engine.history(ann)) == 2

    bot.send(ANN, "did something")
    yes = bot.press(ANN, t._("✅ Yes, log it"))  # already done today: said so, not logged twice
    assert yes.text == t._("☑️ You already logged <b>{habit}</b> today. One completion a day counts.",
                           habit="Reading")
    assert len(bot.engine.history(ann)) == 2


def test_typed_report_counts_for_the_day_it_was_written(tg, clock):
    """Written at 23:59:50, handled after midnight: it is the previous day's completion."""
    bot = tg()
    ann = user(bot)
    clock.advance(days=-1)
    coffee_setup(bot, ann)
    clock.set(dt.datetime(2026, 1, 5, 0, 0, 30, tzinfo=dt.timezone.utc))
    reply = bot.send(ANN, "Running", date=dt.datetime(2026, 1, 4, 23, 59, 50, tzinfo=dt.timezone.utc))
    assert "✅ <b>Running</b> logged for Jan 4, 2026." in reply.text
    assert bot.engine.history(ann)[0].log.completed_on == dt.date(2026, 1, 4)


def test_a_report_handled_after_midnight_offers_the_day_it_was_written(tg, clock):
    """Written at 23:58, handled at 00:03: what the bot asks is about the day written, and says so."""
    bot = tg()
    ann = user(bot)
    older_coffee_setup(bot, clock, ann, "Reading")
    written = dt.datetime.combine(bot.engine.today(ann), dt.time(23, 58), tzinfo=bot.engine.user_zone(ann))
    day = written.date()
    clock.set(written + dt.timedelta(minutes=5))
    unknown = bot.send(ANN, "qwertyuiop zxcvb", date=written)
    assert f"Which habit did you do on {day.day} {day:%B}?" in unknown.text
    assert "logged for" in bot.press(ANN, "Running").text
    assert [e.log.completed_on for e in bot.engine.history(ann)] == [day]

    asked = bot.send(ANN, "I ran yesterday and read today", date=written)
    before = day - dt.timedelta(days=1)  # the message's "today" is yesterday now
    assert buttons(asked)[:2] == ["Reading · Yesterday", f"Reading · {before:%a}, {before.day} {before:%b}"]
    bot.press(ANN, "Reading · Yesterday")
    assert [(e.habit_name, e.log.completed_on) for e in bot.engine.history(ann)][0] == ("Reading", day)


def test_without_any_matcher_only_the_exact_name_counts(tg):
    bot = tg()
    ann = user(bot)
    coffee_setup(bot, ann)
    for impl in bot.engine.pm.hook.habitreward_match_habits.get_hookimpls():
        bot.engine.pm.unregister(impl.plugin)
    assert bot.engine.hooks.match_habits(ann, "Running", bot.engine.habits_for(ann)) is None
    assert "I could not tell which habit that was." in bot.send(ANN, "went running").text
    assert bot.engine.history(ann) == []
    assert "✅ <b>Running</b> done!" in bot.send(ANN, "  RUNNING ").text
    assert len(bot.engine.history(ann)) == 1


def test_an_edited_message_is_not_a_second_report(tg):
    from habitreward.testing.builders import message_update

    bot = tg()
    ann = user(bot)
    coffee_setup(bot, ann)
    bot.engine.add_habit("Reading", owner=ann)
    bot.send(ANN, "Running")
    edited = message_update(ANN, "Reading", date=bot.engine.now())
    edited["edited_message"] = dict(edited.pop("message"), edit_date=int(bot.engine.now().timestamp()))
    assert bot.process(edited) == []
    assert [e.habit_name for e in bot.engine.history(ann)] == ["Running"]


def typed(bot, tid: int, message_id: int, text: str):
    """``tid`` sends ``text`` as their message ``message_id``."""
    from habitreward.testing.builders import message_update

    return bot.process(message_update(tid, text, date=bot.engine.now(), message_id=message_id))


def edited(bot, tid: int, message_id: int, text: str) -> dict:
    """The Update Telegram sends when ``tid`` edits their message ``message_id`` into ``text``."""
    from habitreward.testing.builders import message_update

    update = message_update(tid, text, date=bot.engine.now(), message_id=message_id)
    update["edited_message"] = dict(update.pop("message"), edit_date=int(bot.engine.now().timestamp()))
    return update


def test_an_edited_command_is_not_run_again(tg):
    bot = tg()
    ann = user(bot)
    coffee_setup(bot, ann)
    bot.engine.add_habit("Reading", owner=ann)
    assert "✅ <b>Running</b> done!" in typed(bot, ANN, 500, "/habit_done Running").text
    assert bot.process(edited(bot, ANN, 500, "/habit_done Reading")) == []
    assert [e.habit_name for e in bot.engine.history(ann)] == ["Running"]
    assert bot.process(edited(bot, ANN, 500, "/remove_habit")) == []  # no remove screen

    # In the middle of a dialog: an edited /cancel does not end it, an edited /add_reward or
    # /streaks does not replace it, and the next new message is still the answer.
    assert typed(bot, ANN, 501, "/add_habit").text.startswith("What is the new habit called?")
    for text in ("/cancel", "/add_reward", "/streaks", "/timezone"):
        assert bot.process(edited(bot, ANN, 501, text)) == [], text
    bot.send(ANN, "Swimming")
    bot.press(ANN, "20")
    assert bot.engine.find_habit(ann, "Swimming").weight == 20

    # Someone not let in yet is not told again why, for an edit.
    assert typed(bot, BOB, 502, "/streaks").text.endswith("Until then only /start and /help work.")
    assert bot.process(edited(bot, BOB, 502, "/history")) == []


def test_habit_done_with_words_reports_them(tg):
    bot = tg()
    ann = user(bot)
    coffee_setup(bot, ann)
    assert "✅ <b>Running</b> done!" in bot.send(ANN, "/habit_done running").text
    assert len(bot.engine.history(ann)) == 1


# --- views -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGS)
def test_streaks_history_odds_rewards(tg, clock, lang):
    bot = tg(progress_bar_length="6", recent_logs_limit="2")
    ann = user(bot, lang=lang)
    habit, reward = coffee_setup(bot, ann)
    bot.engine.add_reward("Nothing", type="none", weight=3, owner=ann)
    t = Translator(lang)
    for _ in range(3):
        bot.engine.complete(ann, habit)
        clock.advance(days=1)
    streaks = bot.send(ANN, "/streaks")
    assert t.ngettext("🔥 <b>{habit}</b>: {n} day", "🔥 <b>{habit}</b>: {n} days", 3, habit="Running") \
        in streaks.text
    history = bot.send(ANN, "/history")
    assert t.ngettext("<b>Your last {n} completion</b>", "<b>Your last {n} completions</b>", 2) in history.text
    assert history.text.count("Running") == 2  # RECENT_LOGS_LIMIT
    bot.send(ANN, "/odds")
    shown = bot.press(ANN, "Running")
    assert t._("🎲 <b>Odds for {habit}</b>", habit="Running") in shown.text
    rows = {(r.reward.name if r.reward else None): r.probability for r in bot.engine.odds(ann, habit).rows}
    assert t._("• <b>{reward}</b> — {percent}", reward="Coffee", percent=t.percent(rows["Coffee"])) in shown.text
    assert t._("• No reward — {percent}", percent=t.percent(rows[None])) in shown.text
    mine = bot.send(ANN, "/my_rewards")
    earned = bot.engine.progress(ann)[0].pieces_earned
    bar = "█" * round(6 * min(earned, 3) / 3) + "░" * (6 - round(6 * min(earned, 3) / 3))
    assert f"{bar} {earned}/3" in mine.text
    listed = bot.send(ANN, "/list_rewards")
    assert "<b>Coffee</b>" in listed.text and t._("no reward") in listed.text


@pytest.mark.parametrize(("lang", "weight", "multiplier", "coffee", "nothing"), [
    ("en", "2.5", "×1.10", "• <b>Coffee</b> — 73.3%", "No reward — 26.7%"),
    ("ru", "2,5", "×1,10", "• <b>Coffee</b> — 73,3%", "Без награды — 26,7%"),
    ("kk", "2,5", "×1,10", "• <b>Coffee</b> — 73,3%", "Сыйлықсыз — 26,7%"),
])
def test_numbers_are_written_with_the_languages_decimal_sign(tg, lang, weight, multiplier, coffee, nothing):
    """Russian and Kazakh write 2,5: the bot asks for "such as 1 or 2,5" there, took "2,5", then
    showed the weight as 2.5 and the odds as 73.3%, ×1.10."""
    bot = tg()
    ann = user(bot, lang=lang)
    bot.engine.add_habit("Running", owner=ann)
    bot.engine.add_reward("Coffee", weight=1, owner=ann)
    bot.engine.add_reward("Nothing", type="none", weight=1, owner=ann)
    t = Translator(lang)
    bot.send(ANN, "/edit_reward")
    bot.press(ANN, "Coffee")
    bot.press(ANN, t._("Weight"))
    saved = bot.send(ANN, weight)
    assert t._("weight {weight}", weight=weight) in saved.text
    assert t._("weight {weight}", weight=weight) in bot.send(ANN, "/list_rewards").text
    bot.send(ANN, "/odds")
    odds = bot.press(ANN, "Running").text
    assert multiplier in odds and coffee in odds and nothing in odds


@pytest.mark.parametrize("lang", LANGS)
def test_rewards_a_plugin_keeps_out_of_the_draw_show_no_weight(tg, lang):
    """A reward a plugin weighs 0 (perfect-day's bonus, which it gives itself) is never drawn and
    /odds leaves it out: /rewards showed its weight as the others', which a user reads as a chance."""
    class KeepsBonusOut:
        @hookimpl(wrapper=True)
        def habitreward_weigh_rewards(self):
            weighted = yield
            return [c.with_weight(0) if c.reward.name == "Perfect day" else c for c in weighted]

    bot = tg()
    bot.engine.pm.register(KeepsBonusOut(), name="keeps_bonus_out")
    ann = user(bot, lang=lang)
    coffee_setup(bot, ann)
    bot.engine.add_reward("Perfect day", weight=5, pieces_required=3)
    t = Translator(lang)

    listed = bot.send(ANN, "/rewards").text
    assert " · ".join([t._("<b>{reward}</b>", reward="Perfect day"), t._("virtual"),
                       t.ngettext("{n} piece", "{n} pieces", 3), t._("not in the draw: comes as a bonus")]) in listed
    assert t._("weight {weight}", weight="5") not in listed
    assert " · ".join([t._("<b>{reward}</b>", reward="Coffee"), t._("virtual"),
                       t.ngettext("{n} piece", "{n} pieces", 3), t._("weight {weight}", weight="1"),
                       t._("yours")]) in listed
    bot.send(ANN, "/odds")
    odds = bot.press(ANN, "Running").text
    assert "Coffee" in odds and "Perfect day" not in odds


# --- settings -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGS)
def test_settings_language_and_timezone(tg, lang):
    bot = tg()
    ann = user(bot, lang=lang)
    t = Translator(lang)
    bot.send(ANN, "/settings")
    picker = bot.press(ANN, t._("🌐 Language"))
    assert buttons(picker)[:3] == ["English", "Русский", "Қазақша"]
    other = "kk" if lang != "kk" else "ru"
    done = bot.press(ANN, f"lang:{other}")
    assert done.text == Translator(other)._("Language set to {language}.",
                                            language={"ru": "Русский", "kk": "Қазақша"}[other])
    assert bot.engine.get_user(ANN).language == other and bot.engine.get_user(ANN).language_chosen
    # Telegram's language_code does not override the explicit choice.
    assert bot.send(ANN, "/start", language_code="en").text == \
        Translator(other)._("Hi, {name}! What would you like to do?", name=ann.name)

    t = Translator(other)
    bot.send(ANN, "/settings")
    zones = bot.press(ANN, t._("🕒 Time zone"))
    assert "Asia/Almaty" in buttons(zones)
    picked = bot.press(ANN, "Asia/Almaty")
    assert t._("Time zone set to {zone}. Your time now: {time}.", zone="Asia/Almaty", time="17:00") == picked.text
    bot.press(ANN, t._("⚙️ Settings"))
    bot.press(ANN, t._("🕒 Time zone"))
    wrong = bot.send(ANN, "Mars/Olympus")
    assert wrong.text == t._("I don't know the time zone {zone}. Type an IANA name such as Europe/Berlin "
                             "or an offset such as UTC+5.", zone="Mars/Olympus")
    nowhere = bot.send(ANN, "UTC-13")  # no place is 13 hours behind UTC (Etc/GMT+13 does not exist)
    assert nowhere.text == t._("I don't know the time zone {zone}. Type an IANA name such as Europe/Berlin "
                               "or an offset such as UTC+5.", zone="UTC-13")
    typed = bot.send(ANN, "UTC+3")
    assert typed.text == t._("Time zone set to {zone}. Your time now: {time}.", zone="UTC+3", time="15:00")
    assert bot.engine.get_user(ANN).timezone == "Etc/GMT-3"
    assert t._("Time zone: {zone} (your time now: {time})", zone="UTC+3", time="15:00") in \
        bot.send(ANN, "/settings").text


@pytest.mark.parametrize(("typed", "zone", "time"), [
    ("asia/almaty", "Asia/Almaty", "17:00"), ("Almaty", "Asia/Almaty", "17:00"),
    ("new york", "America/New_York", "07:00"), ("America/New York", "America/New_York", "07:00"),
])
def test_a_time_zone_typed_as_people_type_it_is_found(tg, typed, zone, time):
    """A phone keyboard writes "asia/almaty", people write "Almaty": the zone is the one they
    meant, not "I don't know the time zone"."""
    bot = tg()
    user(bot, lang="ru")
    t = Translator("ru")
    bot.send(ANN, "/timezone")
    assert bot.send(ANN, typed).text == t._("Time zone set to {zone}. Your time now: {time}.", zone=zone, time=time)
    assert bot.engine.get_user(ANN).timezone == zone


def test_language_follows_telegram_until_chosen(tg):
    bot = tg(registration="open")
    assert bot.send(BOB, "/start", language_code="ru").text.startswith("Привет")
    assert bot.send(BOB, "/start", language_code="kk").text.startswith("Сәлем")


def test_command_list_is_registered_in_every_language(tg, botapi):
    tg()
    assert {c["command"] for c in botapi.commands()} >= {"start", "habit_done", "claim_reward", "settings"}
    ru = {c["command"]: c["description"] for c in botapi.commands(language_code="ru")}
    kk = {c["command"]: c["description"] for c in botapi.commands(language_code="kk")}
    assert ru["habit_done"] == "Отметить привычку" and kk["habit_done"] == "Әдетті белгілеу"


def test_plugin_commands_join_the_menu_in_every_language(engine, botapi):
    from telegram.ext import CommandHandler

    from habitreward import hookimpl
    from habitreward.testing.driver import BotDriver

    async def pong(update, context):
        await update.message.reply_text("pong")

    class Ping:
        @hookimpl
        def habitreward_register_handlers(self, register, settings):
            register(CommandHandler("ping", pong), description="Check that the bot answers")
            register(CommandHandler("start", pong), description="A plugin cannot take over /start")

    engine.pm.register(Ping())
    with BotDriver(engine, botapi) as bot:
        for language in ("", "en", "ru", "kk"):
            menu = [(c["command"], c["description"]) for c in botapi.commands(language_code=language)]
            assert menu[-1] == ("ping", "Check that the bot answers"), language
            assert [name for name, _ in menu].count("start") == 1
            assert dict(menu)["start"] != "A plugin cannot take over /start"
        user(bot)
        help_text = bot.send(ANN, "/help").text  # /help lists them as the menu does
        assert help_text.splitlines()[-1] == "/ping — Check that the bot answers"
        assert "A plugin cannot take over /start" not in help_text


@pytest.fixture
def mood_plugin(engine, tmp_path, monkeypatch) -> Iterator[None]:
    """A plugin with a Russian catalog of its own (registered as a plugin registers it) and a
    /mood command, described in the menu, that answers in the user's language through
    ``habitreward.bot.translator``."""
    from telegram.ext import CommandHandler

    from habitreward.bot import i18n, translator

    po = tmp_path / "ru" / "LC_MESSAGES" / "moody.po"
    po.parent.mkdir(parents=True)
    po.write_text('msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=utf-8\\n"\n\n'
                  'msgid "Rate your mood"\nmsgstr "Оцените настроение"\n\n'
                  'msgid "How do you feel, {name}?"\nmsgstr "Как настроение, {name}?"\n', encoding="utf-8")
    monkeypatch.setattr(i18n, "_extra_dirs", [])
    i18n.register_catalog_dir(tmp_path, "moody")

    async def mood(update, context):
        t = await translator(update, context)
        await update.message.reply_html(t._("How do you feel, {name}?", name="<Ann>"))

    class Mood:
        @hookimpl
        def habitreward_register_handlers(self, register, settings):
            register(CommandHandler("mood", mood), description="Rate your mood")

    engine.pm.register(Mood())
    yield
    i18n.translations.cache_clear()


def test_a_plugin_command_description_is_translated_through_its_catalog(engine, botapi, mood_plugin):
    """A plugin that ships a Russian catalog has its command described in Russian in the
    Russian menu and /help; a language it has no catalog for shows its English."""
    from habitreward.testing.driver import BotDriver

    with BotDriver(engine, botapi) as bot:
        menus = {lang: dict((c["command"], c["description"]) for c in botapi.commands(language_code=lang))
                 for lang in ("en", "ru", "kk")}
        assert [menus[lang]["mood"] for lang in ("en", "ru", "kk")] == [
            "Rate your mood", "Оцените настроение", "Rate your mood"]
        user(bot, lang="ru")
        assert bot.send(ANN, "/help").text.splitlines()[-1] == "/mood — Оцените настроение"


def test_a_plugin_handler_speaks_the_users_language(engine, botapi, mood_plugin):
    """``habitreward.bot.translator`` gives a plugin's handler the language the bot speaks to
    the user: the one chosen in /settings, whatever Telegram's app language says."""
    from habitreward.testing.driver import BotDriver

    with BotDriver(engine, botapi) as bot:
        ann = user(bot, lang="ru")
        assert bot.send(ANN, "/mood", language_code="en").text == "Как настроение, &lt;Ann&gt;?"  # escaped for HTML
        engine.set_language(ann, "kk")
        assert bot.send(ANN, "/mood", language_code="ru").text == "How do you feel, &lt;Ann&gt;?"  # no kk catalog


def test_a_plugins_buttons_reach_its_handler_in_a_dialog_or_not(engine, botapi):
    """A plugin's CallbackQueryHandler, added after the bot's own, gets its presses; data that
    no handler takes is still refused politely."""
    from telegram import InlineKeyboardButton, InlineKeyboardMarkup
    from telegram.ext import CallbackQueryHandler, CommandHandler

    from habitreward import hookimpl
    from habitreward.testing.driver import BotDriver

    async def offer(update, context):
        await update.message.reply_text("Wave?", reply_markup=InlineKeyboardMarkup(
            [[InlineKeyboardButton("👋 Wave", callback_data="wave:1")]]))

    async def wave(update, context):
        await update.callback_query.answer("👋 waved")

    class Waving:
        @hookimpl
        def habitreward_register_handlers(self, register, settings):
            register(CommandHandler("offer", offer), description="Offer a wave")
            register(CallbackQueryHandler(wave, pattern=r"^wave:"))

    engine.pm.register(Waving())
    with BotDriver(engine, botapi) as bot:
        user(bot)
        bot.send(ANN, "/offer")
        assert bot.press(ANN, "👋 Wave").alert == "👋 waved"
        bot.send(ANN, "/add_habit")  # a dialog asks for a name
        assert bot.press(ANN, "👋 Wave").alert == "👋 waved"
        assert "How important is <b>Swim</b>" in bot.send(ANN, "Swim").text  # the dialog goes on
        assert forge(bot, ANN, "zzz:1").text == "Sorry, that button is not valid any more."


@pytest.mark.parametrize("group", [0, 1])
def test_a_plugins_conversation_started_by_a_button_runs(engine, botapi, group):
    """A plugin's ConversationHandler with a button entry point, in the bot's group or another:
    the press starts it (not refused as "not valid" first), and the text it waits for is its
    answer alone, not also a habit report."""
    from telegram import InlineKeyboardButton, InlineKeyboardMarkup
    from telegram.ext import CallbackQueryHandler, CommandHandler, ConversationHandler, MessageHandler, filters

    from habitreward import hookimpl
    from habitreward.testing.driver import BotDriver

    async def offer(update, context):
        await update.message.reply_text("Quiz?", reply_markup=InlineKeyboardMarkup(
            [[InlineKeyboardButton("Start quiz", callback_data="quiz:start")]]))

    async def start(update, context):
        await update.callback_query.answer()
        await update.effective_message.reply_text("Type your answer")
        return 1

    async def answer(update, context):
        await update.message.reply_text(f"You said {update.message.text}")
        return ConversationHandler.END

    class Quiz:
        @hookimpl
        def habitreward_register_handlers(self, register, settings):
            register(CommandHandler("quiz", offer))
            with warnings.catch_warnings():  # meant: per chat and person (docs/plugins.md)
                warnings.filterwarnings("ignore", message="If 'per_message=False'", category=PTBUserWarning)
                register(ConversationHandler(
                    entry_points=[CallbackQueryHandler(start, pattern=r"^quiz:")],
                    states={1: [MessageHandler(filters.TEXT & ~filters.COMMAND, answer)]}, fallbacks=[],
                    per_message=False), group=group)

    engine.pm.register(Quiz())
    with BotDriver(engine, botapi) as bot:
        user(bot)
        bot.send(ANN, "/quiz")
        assert bot.press(ANN, "Start quiz").texts == ["Type your answer"]
        assert bot.send(ANN, "42").texts == ["You said 42"]
        assert bot.send(ANN, "43").texts == ["You have no habits yet. Add your first one!"]  # a report again


def test_the_button_conversation_in_plugins_md_runs_without_a_warning(engine, botapi, tmp_path, monkeypatch):
    """docs/plugins.md's ConversationHandler started by a button: built without PTB's per_message
    warning, the press starts it, the typed answer is its own, then text is a report again."""
    import importlib
    import re

    from habitreward.testing.driver import BotDriver

    doc = (Path(__file__).resolve().parent.parent / "docs" / "plugins.md").read_text(encoding="utf-8")
    code = re.search(r"<!-- example: mood_plugin.py -->\n```python\n(.*?)```", doc, re.S)[1]
    (tmp_path / "mood_plugin.py").write_text(code, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "mood_plugin", raising=False)
    engine.pm.register(importlib.import_module("mood_plugin"), name="mood_plugin")
    with warnings.catch_warnings():
        warnings.simplefilter("error", PTBUserWarning)
        with BotDriver(engine, botapi) as bot:
            user(bot)
            bot.send(ANN, "/mood")
            assert bot.press(ANN, "Tell me").texts == ["In one word?"]
            assert bot.send(ANN, "calm").texts == ["Noted: calm"]
            assert bot.send(ANN, "calm").texts == ["You have no habits yet. Add your first one!"]
    sys.modules.pop("mood_plugin", None)


def test_a_buttons_only_conversation_per_message_is_the_pressed_messages(engine, botapi):
    """docs/plugins.md: per_message=True, every step a button, builds without a warning; each step
    edits the pressed message, and a button of that conversation on a new message starts nothing."""
    from telegram import InlineKeyboardButton, InlineKeyboardMarkup
    from telegram.ext import CallbackQueryHandler, CommandHandler, ConversationHandler

    from habitreward.testing.driver import BotDriver

    def keyboard(*labels):
        return InlineKeyboardMarkup([[InlineKeyboardButton(label, callback_data=f"poll:{label}") for label in labels]])

    async def offer(update, context):
        await update.message.reply_text("Poll", reply_markup=keyboard("Open"))

    async def opened(update, context):
        await update.callback_query.answer()
        await update.callback_query.edit_message_text("Pick one", reply_markup=keyboard("Tea", "Coffee"))
        return 1

    async def picked(update, context):
        await update.callback_query.answer()
        await update.callback_query.edit_message_text(f"You picked {update.callback_query.data[5:]}")
        return ConversationHandler.END

    class Poll:
        @hookimpl
        def habitreward_register_handlers(self, register, settings):
            register(CommandHandler("poll", offer))
            register(CommandHandler("stray", lambda u, c: u.message.reply_text("Stray", reply_markup=keyboard("Tea"))))
            register(ConversationHandler(
                entry_points=[CallbackQueryHandler(opened, pattern=r"^poll:Open$")],
                states={1: [CallbackQueryHandler(picked, pattern=r"^poll:(Tea|Coffee)$")]}, fallbacks=[],
                per_chat=True, per_user=True, per_message=True))

    engine.pm.register(Poll())
    with warnings.catch_warnings():
        warnings.simplefilter("error", PTBUserWarning)
        with BotDriver(engine, botapi) as bot:
            user(bot)
            bot.send(ANN, "/poll")
            assert bot.press(ANN, "Open").texts == ["Pick one"]
            bot.send(ANN, "/stray")  # the same button on a new message: not that conversation's
            assert bot.press(ANN, "Tea").text == "Sorry, that button is not valid any more."
            assert bot.press(ANN, "Coffee").texts == ["You picked Coffee"]  # on the poll, edited in place


def test_help_lists_as_many_plugin_commands_as_fit_in_one_message(engine, botapi):
    from telegram.ext import CommandHandler

    from habitreward import hookimpl
    from habitreward.testing.driver import BotDriver

    async def pong(update, context):
        await update.message.reply_text("pong")

    class Many:
        @hookimpl
        def habitreward_register_handlers(self, register, settings):
            for i in range(80):  # Telegram takes up to 100 commands of up to 256 characters
                register(CommandHandler(f"cmd{i:02d}", pong), description=f"Command {i} " + "x" * 240)

    engine.pm.register(Many())
    with BotDriver(engine, botapi) as bot:
        user(bot)
        shown = bot.send(ANN, "/help").text  # delivered: the stand-in refuses over 4096 units
        listed = [line for line in shown.splitlines() if line.startswith("/cmd")]
        assert 0 < len(listed) < 80
        assert shown.splitlines()[-1] == f"…and {80 - len(listed)} more in the command menu"


def test_a_failing_command_registration_does_not_stop_the_bot(tg, botapi):
    botapi.fail_next("setMyCommands", 400, "Bad Request: something odd", times=10)
    bot = tg()
    user(bot)
    assert bot.send(ANN, "/start").text == "Hi, User2! What would you like to do?"


def test_flood_control_of_the_command_menu_at_startup_is_given_up_after_the_limiters_retries(engine, botapi,
                                                                                           caplog):
    """setMyCommands runs before any update: a 429 the rate limiter waited out and retried twice
    is not retried three more times (each with the limiter's retries: twelve tries, and as many
    pauses of the start, for each language's menu)."""
    from habitreward.bot.app import RATE_LIMIT_RETRIES
    from habitreward.testing.driver import BotDriver

    botapi.fail_next("setMyCommands", 429, retry_after=1, times=1 + RATE_LIMIT_RETRIES)  # the default menu's
    with BotDriver(engine, botapi) as bot:
        languages = len(engine.settings.supported_languages)  # then a menu per language, not refused
        assert len(botapi.calls_of("setMyCommands")) == 1 + RATE_LIMIT_RETRIES + languages
        assert bot.send(ANN, "/start").texts  # the bot works without the default menu
    assert "giving up on the command menu" in caplog.text
    assert "what the user did is saved" not in caplog.text  # no user did anything


# --- approval ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGS)
def test_a_newcomer_with_no_admin_to_ask_is_told_so_and_the_operator_is_warned(tg, botapi, caplog, lang):
    """No ADMIN_TELEGRAM_IDS and no admin in the database (users added from the command line):
    nobody can be asked, so nobody is said to have been, and the log says how to let them in."""
    bot = tg(admin_telegram_ids="")
    user(bot, ANN)  # active, no admin
    t = Translator(lang)
    hello = bot.send(BOB, "/start", language_code=lang, first_name="Bob")
    nobody = t._("Hello! This bot has no admin yet who could let you in. Please ask whoever runs it.")
    assert hello.texts == [nobody]
    assert "Bob (id 3) asked to use the bot, and there is no admin to approve them" in caplog.text
    assert "habitreward users activate 3" in caplog.text
    assert bot.send(BOB, "/streaks", language_code=lang).text.startswith(nobody)
    assert botapi.sent(ANN) == []  # nobody was asked


NOT_REACHED = ("Hello! I could not reach an admin to approve you yet. Write to me again in a few minutes and I "
               "will try again; you can also ask whoever runs this bot.")


def requests_to(botapi, admin: int) -> list[dict]:
    """The Approve/Decline messages an admin was sent."""
    return [m for m in botapi.sent(admin) if "wants to use the bot" in m["text"]]


@pytest.mark.parametrize("how", ["promote", "listed"])
def test_a_request_nobody_could_get_reaches_the_first_admin_at_the_newcomers_next_message(tg, botapi, how):
    """Bob asked while the bot had no admin. Once someone is one (`users promote`, or listed in
    ADMIN_TELEGRAM_IDS and restarted), Bob's next message sends them his request, once, and only
    then is Bob told an admin has been asked; the admin's Approve lets him in."""
    bot = tg(admin_telegram_ids="")
    user(bot, ANN)  # active, no admin
    assert bot.send(BOB, "/start", first_name="Bob").text.startswith("Hello! This bot has no admin yet")
    if how == "promote":
        bot.engine.promote_user(ANN)  # `habitreward users promote 2`
    else:
        bot.stop()
        bot = tg(admin_telegram_ids=str(ANN))  # the operator lists Ann and restarts
    again = bot.send(BOB, "hi", first_name="Bob")
    assert again.text == ("Hello! An admin has been asked to approve you. I will write as soon as you are in.\n"
                          "Until then only /start and /help work.")
    [request] = requests_to(botapi, ANN)
    assert request["text"] == "🆕 Bob (id 3) wants to use the bot."
    assert bot.send(BOB, "/start").text.startswith("Hello! An admin has been asked")
    assert len(requests_to(botapi, ANN)) == 1  # asked once, not at every message
    approved = bot.press(ANN, "✅ Approve")
    assert "✅ Bob is approved." in approved.texts
    assert bot.send(BOB, "/start").text == "Hi, Bob! What would you like to do?"


@pytest.mark.parametrize(("status", "description", "lang"), [
    (403, "Forbidden: bot was blocked by the user", "ru"), (400, "Bad Request: chat not found", "kk")])
def test_a_request_no_admin_received_is_sent_again_at_the_newcomers_next_message(tg, botapi, caplog, clock,
                                                                                   status, description, lang):
    """Telegram refused the request to the only admin (they blocked the bot, or never opened a
    chat with it): Bob is not told an admin has been asked, the log says so, and his next
    message tries again; once delivered, it is not sent again."""
    bot = tg()
    bot.send(ADMIN, "/start")
    t = Translator(lang)
    botapi.fail_next("sendMessage", status, description, chat_id=ADMIN)
    first = bot.send(BOB, "/start", first_name="Bob", language_code=lang)
    assert first.texts == [t._(NOT_REACHED)]
    assert first.texts[0] != NOT_REACHED  # translated
    assert requests_to(botapi, ADMIN) == [] and bot.errors == []
    assert "Bob (id 3) asked to use the bot, and no admin could be sent the request" in caplog.text
    clock.advance(minutes=5)  # tried again at his first message five minutes on (REQUEST_RETRY)
    second = bot.send(BOB, "hi", first_name="Bob", language_code=lang)
    assert second.text.startswith(t._("Hello! An admin has been asked to approve you. I will write as soon as "
                                      "you are in."))
    assert [m["text"] for m in requests_to(botapi, ADMIN)] == ["🆕 Bob (id 3) wants to use the bot."]
    bot.send(BOB, "hi again")
    assert len(requests_to(botapi, ADMIN)) == 1
    assert "✅ Bob is approved." in bot.press(ADMIN, "✅ Approve").texts


def test_a_request_no_admin_can_get_is_tried_again_at_most_every_five_minutes(tg, botapi, caplog, clock):
    """The only admin blocked the bot: every message of Bob's sent his request again (to be
    refused again) and logged a WARNING. Now it is tried at most once in five minutes
    (REQUEST_RETRY), with one WARNING per try; meanwhile each of Bob's messages tells him no admin
    has it yet, and his first message once five minutes are over tries again and reaches the admin."""
    import logging

    bot = tg()
    bot.send(ADMIN, "/start")
    botapi.fail_next("sendMessage", 403, chat_id=ADMIN, times=2)  # blocked for the first two tries

    def tries() -> int:
        return len([c for c in botapi.calls_of("sendMessage") if "wants to use the bot" in c["text"]])

    def warnings() -> int:
        return len([r for r in caplog.records if r.levelno == logging.WARNING
                    and "no admin could be sent the request" in r.getMessage()])

    assert bot.send(BOB, "/start", first_name="Bob").texts == [NOT_REACHED]
    for _ in range(4):
        clock.advance(minutes=1)
        assert bot.send(BOB, "hi").text.startswith(NOT_REACHED)
    assert (tries(), warnings()) == (1, 1)
    clock.advance(minutes=1)  # five minutes after the first try: the next message tries again
    assert bot.send(BOB, "hi").text.startswith(NOT_REACHED)
    assert (tries(), warnings()) == (2, 2)
    clock.advance(minutes=4)
    assert bot.send(BOB, "hi").text.startswith(NOT_REACHED)
    assert tries() == 2
    clock.advance(minutes=1)  # the admin unblocked the bot meanwhile
    assert bot.send(BOB, "hi").text.startswith("Hello! An admin has been asked to approve you.")
    assert [m["text"] for m in requests_to(botapi, ADMIN)] == ["🆕 Bob (id 3) wants to use the bot."]
    clock.advance(minutes=10)
    bot.send(BOB, "hi again")
    assert tries() == 3 and warnings() == 2 and bot.errors == []
    assert "✅ Bob is approved." in bot.press(ADMIN, "✅ Approve").texts


@pytest.mark.parametrize("lang", LANGS)
def test_an_admin_made_later_is_told_who_waits_and_gets_their_requests_with_requests(tg, botapi, clock, lang):
    """Bob's request reached the admin there was; Cid's reached nobody (that admin had blocked the
    bot). Ann, made an admin afterwards (`users promote`), was never sent either, and nothing in
    the bot showed them to her. Her /start now says how many wait and names /requests, which
    sends her each waiting request with Approve and Decline. Cid's is then one an admin has: his
    next message does not send it again, to her or anyone, and he is told an admin was asked."""
    cid = 5
    bot = tg()
    bot.send(ADMIN, "/start")
    user(bot, ANN, lang=lang)
    t = Translator(lang)
    bot.send(BOB, "/start", first_name="Bob")
    botapi.fail_next("sendMessage", 403, chat_id=ADMIN)
    assert bot.send(cid, "/start", first_name="Cid").text == NOT_REACHED
    assert bot.send(ANN, "/requests").text == t._("Only an admin can do that.")
    bot.engine.promote_user(ANN)  # `habitreward users promote 2`
    assert requests_to(botapi, ANN) == []
    waiting = t.ngettext("{n} person is waiting to be let in: /requests",
                         "{n} people are waiting to be let in: /requests", 2)
    assert bot.send(ANN, "/start").text == t._("Hi, {name}! What would you like to do?", name="User2") + "\n" + waiting
    shown = bot.send(ANN, "/requests")
    assert [(m["text"], m["buttons"]) for m in shown] == [
        (t._("🆕 {who} wants to use the bot.").format(who=t._("{name} (id {id})", name=name, id=tid)),
         [[(t._("✅ Approve"), f"ap:{tid}"), (t._("❌ Decline"), f"dc:{tid}")]])
        for tid, name in ((BOB, "Bob"), (cid, "Cid"))]
    clock.advance(minutes=10)
    assert bot.send(cid, "hi").text.startswith("Hello! An admin has been asked to approve you.")
    to_ann = [m for m in botapi.sent(ANN) if m["buttons"] and m["buttons"][0][0][1].startswith("ap:")]
    assert len(to_ann) == 2 and len(requests_to(botapi, ADMIN)) == 1  # Bob's, once each
    assert t._("✅ {name} is approved.", name="Cid") in bot.press(ANN, f"ap:{cid}").texts
    assert bot.send(cid, "/start").text == "Hi, Cid! What would you like to do?"
    assert bot.send(ANN, "/start").text == t._("Hi, {name}! What would you like to do?", name="User2") + "\n" + \
        t.ngettext("{n} person is waiting to be let in: /requests", "{n} people are waiting to be let in: /requests", 1)
    assert t._("❌ {name} was declined.", name="Bob") in bot.press(ANN, f"dc:{BOB}").texts
    assert bot.send(ANN, "/start").text == t._("Hi, {name}! What would you like to do?", name="User2")
    assert bot.send(ANN, "/requests").text == t._("Nobody is waiting to be let in.")
    assert bot.errors == []


def test_requests_sends_the_oldest_ten_and_says_how_many_more_wait(tg, botapi):
    """/requests is one message per request: past ten, the rest are counted and the command that
    lists them all is named."""
    from habitreward.bot.state import UNSENT, set_approval

    bot = tg()
    bot.send(ADMIN, "/start")
    for tid in range(100, 112):
        bot.engine.register(tid, f"New{tid}")
        set_approval(bot.engine, tid, UNSENT)
    shown = bot.send(ADMIN, "/requests")
    assert [m["text"] for m in shown] == [f"🆕 New{tid} (id {tid}) wants to use the bot." for tid in range(100, 110)] \
        + ["…and 2 more: habitreward users list --waiting"]


def test_requests_in_a_group_shows_nobody_there(tg, botapi):
    """Everyone in a group would read who asked to use the bot: /requests answers only in the
    admin's private chat and says so in the group."""
    bot = tg()
    bot.send(ADMIN, "/start")
    bot.send(BOB, "/start", first_name="Bob")
    in_group = bot.send(ADMIN, "/requests", chat_id=-100)
    assert in_group.texts == ["Send me /requests in our private chat: it shows who asked to use the bot."]
    assert "waiting" not in bot.send(ADMIN, "/start", chat_id=-100).text
    assert "1 person is waiting to be let in: /requests" in bot.send(ADMIN, "/start").text
    assert not any("Bob" in m["text"] for m in botapi.sent(-100))
    assert [m["text"] for m in bot.send(ADMIN, "/requests")] == ["🆕 Bob (id 3) wants to use the bot."]


def test_a_request_that_arrived_though_the_answer_was_lost_can_be_approved(tg, botapi):
    """The connection broke on Telegram's answer: the admin has the request, the bot cannot know
    and counts it as not received. The admin's Approve still decides (a request waits whether an
    admin was sent it or not); Bob's next message would send it once more, never worse."""
    bot = tg()
    botapi.cut_next("sendMessage")
    bot.send(BOB, "/start", first_name="Bob")
    assert [m["text"] for m in requests_to(botapi, ADMIN)] == ["🆕 Bob (id 3) wants to use the bot."]
    approved = bot.press(ADMIN, "✅ Approve")
    assert "✅ Bob is approved." in approved.texts
    assert any(m["chat_id"] == BOB and m["text"].startswith("🎉 You're in! Bob") for m in approved)


def test_a_request_whose_sender_died_is_sent_at_the_newcomers_next_message_after_ten_minutes(tg, botapi, clock):
    """A process took Bob's request to send it and was killed before it had (or its database
    write after failing to send it failed): the request said "an admin has it" for ever, and Bob
    waited for an admin who was never asked. Meanwhile nobody sends it twice; ten minutes later
    Bob's next message sends it."""
    from habitreward.bot.state import take_unsent_request

    bot = tg(admin_telegram_ids="")
    bot.send(BOB, "/start", first_name="Bob")  # no admin: nobody asked
    bot.engine.add_user(ADMIN, "Boss", admin=True)
    assert take_unsent_request(bot.engine, BOB)  # another process takes it, and is killed
    assert bot.send(BOB, "hi").text.startswith("Hello! An admin has been asked")
    assert requests_to(botapi, ADMIN) == []  # it may still be sending it: not sent twice
    clock.advance(minutes=11)
    assert bot.send(BOB, "hi").text.startswith("Hello! An admin has been asked")
    assert [m["text"] for m in requests_to(botapi, ADMIN)] == ["🆕 Bob (id 3) wants to use the bot."]
    bot.send(BOB, "hi again")
    assert len(requests_to(botapi, ADMIN)) == 1
    assert "✅ Bob is approved." in bot.press(ADMIN, "✅ Approve").texts


def test_an_admin_who_answers_before_the_sender_recorded_delivery_decides(tg, botapi):
    """The admin has the request and presses Decline while the process that sent it has not yet
    written "requested" (the request still says "sending"): the answer counts, once."""
    from habitreward.bot.state import take_unsent_request

    bot = tg(admin_telegram_ids="")
    bot.send(BOB, "/start", first_name="Bob")
    bot.engine.add_user(ADMIN, "Boss", admin=True)
    assert take_unsent_request(bot.engine, BOB)
    assert bot.engine.decide_request(BOB, approve=False)[1]
    assert bot.send(BOB, "hi").text.startswith("Sorry, your request to use this bot was declined.")
    assert requests_to(botapi, ADMIN) == []


def test_a_request_one_admin_received_is_not_sent_again(tg, botapi):
    """Of two admins one blocked the bot: the other has the request, so Bob has been asked for."""
    bot = tg(admin_telegram_ids="1,5")
    botapi.fail_next("sendMessage", 403, chat_id=5)
    assert bot.send(BOB, "/start", first_name="Bob").text.startswith("Hello! An admin has been asked")
    bot.send(BOB, "hi")
    assert len(requests_to(botapi, ADMIN)) == 1 and requests_to(botapi, 5) == []


def test_another_process_does_not_send_a_request_again(tg, botapi, db_url, clock):
    """The request's state is in the database: a second process (its own engine) that gets Bob's
    next message knows the admin has it already; and of two processes taking the same unsent
    request at once, only one sends it."""
    import random

    from habitreward.bot.state import UNSENT, approval_of, set_approval, take_unsent_request
    from habitreward.testing.driver import BotDriver
    from habitreward.testing.engines import make_engine

    bot = tg(admin_telegram_ids="")
    bot.send(BOB, "/start", first_name="Bob")  # no admin: nobody asked
    bot.engine.add_user(ADMIN, "Boss", admin=True)
    other_engine = make_engine(db_url, clock=clock, rng=random.Random(7), load_entry_points=False,
                               admin_telegram_ids="")
    try:
        bot.send(BOB, "hi")  # this process sends it
        assert len(requests_to(botapi, ADMIN)) == 1
        with BotDriver(other_engine, botapi) as other:
            assert other.send(BOB, "hi").text.startswith("Hello! An admin has been asked")
        assert len(requests_to(botapi, ADMIN)) == 1
        set_approval(bot.engine, BOB, UNSENT)
        assert [take_unsent_request(engine, BOB) for engine in (bot.engine, other_engine)] == [True, False]
        assert approval_of(other_engine, BOB) == "sending"
    finally:
        other_engine.close()


@pytest.mark.parametrize("lang", LANGS)
def test_approval(tg, lang):
    bot = tg()
    bot.send(ADMIN, "/start")
    t = Translator(lang)
    hello = bot.send(ANN, "/start", language_code=lang, first_name="Ann")
    assert t._("Hello! An admin has been asked to approve you. I will write as soon as you are in.") in hello.texts
    request = [m for m in hello if m["chat_id"] == ADMIN][0]
    assert request["text"] == "🆕 Ann (id 2) wants to use the bot."
    assert not bot.engine.get_user(ANN).active
    approved = bot.press(ADMIN, "✅ Approve")
    assert "✅ Ann is approved." in approved.texts
    welcome = [m for m in approved if m["chat_id"] == ANN][0]
    assert welcome["text"].startswith(t._("🎉 You're in! {name}, welcome.", name="Ann"))
    assert bot.engine.get_user(ANN).active


def test_the_approval_request_shows_a_name_as_typed(tg, botapi):
    from habitreward.testing.botapi import visible_text

    bot = tg()
    bot.send(ADMIN, "/start")
    bot.send(BOB, "/start", first_name="Tom & <Jerry>", username="tom_j")
    request = botapi.sent(ADMIN)[-1]
    assert visible_text(request["text"], "HTML") == "🆕 Tom & <Jerry> (id 3) @tom_j wants to use the bot."
    approved = bot.press(ADMIN, "✅ Approve")
    to_admin = [m for m in approved if m["chat_id"] == ADMIN]
    assert visible_text(to_admin[0]["text"], "HTML") == "✅ Tom & <Jerry> is approved."


def test_admins_in_the_database_are_asked_too(tg, botapi):
    bot = tg(admin_telegram_ids="")
    bot.engine.add_user(5, "Dbadmin", admin=True, language="kk")
    bot.send(BOB, "/start", first_name="Bob")
    request = botapi.sent(5)[-1]
    assert request["text"] == Translator("kk")._("🆕 {who} wants to use the bot.", who="Bob (id 3)")
    approved = bot.press(5, Translator("kk")._("✅ Approve"))
    assert bot.engine.get_user(BOB).active
    assert any(m["chat_id"] == BOB and m["text"].startswith("🎉 You're in! Bob") for m in approved)


def test_one_definition_of_admin_for_approving_and_for_shared_habits(tg, botapi):
    """ADMIN_TELEGRAM_IDS makes an admin (its row is flagged at their next message), and so does the
    flag alone (`users add --admin`): the same person may approve newcomers and change shared habits,
    or neither."""
    bot = tg(admin_telegram_ids="1,2")
    boss = user(bot, ADMIN, admin=True)
    water = bot.engine.add_habit("Water", actor=boss)  # shared: admins only
    user(bot, ANN)  # registered before her id was added to the list
    user(bot, 5, admin=True)  # an admin in the database only
    listed_later = bot.engine.get_user(ANN)
    assert not listed_later.is_admin

    bot.send(BOB, "/start", first_name="Bob")  # all three are asked
    assert "✅ Bob is approved." in bot.press(ANN, "✅ Approve").texts
    for admin in (ANN, 5):
        edit = forge(bot, admin, f"he:{water.id}")
        assert "What do you want to change?" in edit.text, admin
    assert bot.engine.get_user(ANN).is_admin  # `users list` says so too

    # Demoted in the database while still listed: the list wins, for both rights alike.
    bot.engine.promote_user(ANN, admin=False)
    assert "What do you want to change?" in bot.send(ANN, f"/edit_habit {water.id}").text
    # Neither listed nor flagged: neither right.
    bot.send(6, "/start", first_name="Cid")
    assert forge(bot, BOB, f"he:{water.id}").text == "You cannot change that habit."
    assert forge(bot, BOB, "ap:6").text == "Only an admin can do that."


def test_a_second_admin_pressing_approve_later_welcomes_nobody_twice(tg, botapi):
    bot = tg(admin_telegram_ids="1,5")
    bot.send(ADMIN, "/start")
    bot.send(5, "/start", first_name="Second")
    bot.send(ANN, "/start", first_name="Ann")  # both admins are asked
    assert "✅ Ann is approved." in bot.press(ADMIN, "✅ Approve").texts
    late = bot.press(5, "✅ Approve")  # on the second admin's own copy of the request
    assert late.text == "Ann is already active."
    welcomes = [m for m in botapi.sent(ANN) if m["text"].startswith("🎉 You're in!")]
    assert len(welcomes) == 1


def test_a_second_admin_pressing_decline_later_tells_nobody_twice(tg, botapi):
    bot = tg(admin_telegram_ids="1,5")
    bot.send(ADMIN, "/start")
    bot.send(5, "/start", first_name="Second")
    bot.send(BOB, "/start", first_name="Bob")  # both admins are asked
    assert "❌ Bob was declined." in bot.press(ADMIN, "❌ Decline").texts
    late = bot.press(5, "❌ Decline")  # on the second admin's own copy of the request
    assert late.texts == ["Bob was already declined."]  # Bob is not told again
    declines = [m for m in botapi.sent(BOB) if m["text"] == "Sorry, your request to use this bot was declined."]
    assert len(declines) == 1
    # Declining someone another admin approved meanwhile tells neither of them they were declined.
    bot.send(ANN, "/start", first_name="Ann")
    bot.press(ADMIN, "✅ Approve")
    too_late = bot.press(5, "❌ Decline")
    assert too_late.texts == ["Ann is already active."]
    assert bot.engine.get_user(ANN).active
    assert not any("declined" in m["text"] for m in botapi.sent(ANN))
    # Let in, then taken out at the command line: an old Decline button decides nothing any more.
    bot.engine.deactivate_user(ANN)
    assert forge(bot, 5, f"dc:{ANN}").texts == ["Ann is not waiting for an answer any more."]
    assert bot.send(ANN, "/start").text == "Hello! This bot is private. Please ask the admin to give you access."


@pytest.mark.parametrize("lang", LANGS)
def test_an_approve_after_another_admins_decline_decides_nothing(tg, botapi, lang):
    """The first answer wins: the newcomer hears one of them, never "declined" and then "welcome"."""
    bot = tg(admin_telegram_ids="1,5")
    bot.send(ADMIN, "/start")
    bot.send(5, "/start", first_name="Second", language_code=lang)
    bot.send(BOB, "/start", first_name="Bob")  # both admins are asked
    t = Translator(lang)
    assert "❌ Bob was declined." in bot.press(ADMIN, "❌ Decline").texts
    late = bot.press(5, t._("✅ Approve"), language_code=lang)  # on the second admin's own copy
    assert late.texts == [t._("{name} was already declined: the first answer counts. To let them in after all: "
                              "habitreward users activate {id}", name="Bob", id=BOB)]
    assert not bot.engine.get_user(BOB).active
    assert [m["text"] for m in botapi.sent(BOB)][-1] == "Sorry, your request to use this bot was declined."
    assert not any(m["text"].startswith("🎉 You're in!") for m in botapi.sent(BOB))


@pytest.mark.parametrize("first", ["dc", "ap"])
def test_approve_and_decline_at_the_same_moment_reach_the_newcomer_once(tg, botapi, first):
    from habitreward.testing.builders import callback_update

    bot = tg(admin_telegram_ids="1,5")
    bot.send(ADMIN, "/start")
    bot.send(5, "/start", first_name="Second")
    bot.send(BOB, "/start", first_name="Bob")  # both admins are asked
    presses = {admin: bot.find_button(admin, f"{data}:{BOB}")[0]["message_id"]
               for admin, data in ((ADMIN, "ap"), (5, "dc"))}
    updates = [callback_update(ADMIN, f"ap:{BOB}", message_id=presses[ADMIN]),
               callback_update(5, f"dc:{BOB}", message_id=presses[5])]
    bot.process_concurrently(updates if first == "ap" else updates[::-1])
    to_bob = [m["text"] for m in botapi.sent(BOB)][1:]  # after "an admin has been asked"
    assert len(to_bob) == 1, to_bob
    approved = to_bob[0].startswith("🎉 You're in!")
    assert approved or to_bob == ["Sorry, your request to use this bot was declined."]
    assert bot.engine.get_user(BOB).active is approved
    told = {admin: botapi.sent(admin)[-1]["text"] for admin in (ADMIN, 5)}
    if approved:
        assert told == {ADMIN: "✅ Bob is approved.", 5: "Bob is already active."}
    else:
        assert told == {5: "❌ Bob was declined.", ADMIN: "Bob was already declined: the first answer counts. "
                        "To let them in after all: habitreward users activate 3"}


@pytest.mark.parametrize(("status", "description"), [
    (403, "Forbidden: bot can't initiate conversation with a user"), (400, "Bad Request: chat not found")])
def test_approving_someone_the_bot_cannot_write_to_tells_the_admin(tg, botapi, status, description):
    """Someone who only ever wrote in a group has no private chat with the bot: Telegram refuses
    the welcome (403, or 400 "chat not found"), so the admin is told, and the newcomer is in all the same."""
    group = -100
    bot = tg()
    bot.send(ADMIN, "/start")
    waiting = bot.send(BOB, "/start@habitreward_test_bot", chat_id=group, first_name="Bob")
    assert waiting.text.startswith("Hello! An admin has been asked to approve you.")
    botapi.fail_next("sendMessage", status, description)
    approved = bot.press(ADMIN, "✅ Approve")
    assert approved.texts == ["✅ Bob is in, but I cannot write to them until they open a private chat with me."]
    assert buttons(approved) == ["🏠 Menu"]
    assert bot.engine.get_user(BOB).active and bot.errors == []
    # Their next message, in the group or privately, works as for any active user.
    assert bot.send(BOB, "/streaks", chat_id=group).text.startswith("You have no habits yet")
    assert bot.send(BOB, "/start").text == "Hi, Bob! What would you like to do?"


def test_a_request_settled_at_the_command_line_is_not_pending_any_more(tg):
    bot = tg()
    bot.send(ANN, "/start", first_name="Ann")  # the admins are asked
    bot.engine.activate_user(ANN)  # `habitreward users activate 2`
    bot.engine.deactivate_user(ANN)  # ...and later taken out again
    assert bot.send(ANN, "/start").text == "Hello! This bot is private. Please ask the admin to give you access."


def test_decline_and_other_modes(tg, botapi):
    bot = tg()
    bot.send(ADMIN, "/start")
    bot.send(BOB, "hi", first_name="Bob")
    declined = bot.press(ADMIN, "❌ Decline")
    assert "❌ Bob was declined." in declined.texts
    assert "Sorry, your request to use this bot was declined." in declined.texts
    assert not bot.engine.get_user(BOB).active
    # Coming back, Bob is told the decision, not that an admin is looking at his request.
    assert bot.send(BOB, "/start").text == "Sorry, your request to use this bot was declined."
    assert bot.send(BOB, "hi").text.startswith("Sorry, your request to use this bot was declined.")
    assert len([m for m in botapi.sent(ADMIN) if "wants to use the bot" in m["text"]]) == 1  # asked once
    # Someone deactivated after using the bot was never waiting for an admin either.
    bot.engine.add_user(9, "Zed", active=True)
    bot.engine.deactivate_user(9)
    assert bot.send(9, "/start").text == "Hello! This bot is private. Please ask the admin to give you access."
    bot.engine.activate_user(BOB)
    bot.engine.delete_user(BOB)  # the record of the request goes with the person
    from habitreward.bot.state import approval_of
    assert approval_of(bot.engine, BOB) is None
    bot.stop()

    open_bot = tg(registration="open")
    assert open_bot.send(7, "/start", first_name="Eve").text == "Hi, Eve! What would you like to do?"
    assert open_bot.engine.get_user(7).active
    open_bot.stop()

    closed = tg(registration="closed")
    before = len(botapi.sent(ADMIN))
    answer = closed.send(8, "/start")
    assert answer.text == "Hello! This bot is private. Please ask the admin to give you access."
    assert len(botapi.sent(ADMIN)) == before  # no approval request in closed mode


# --- every button, by crawling ------------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGS)
def test_crawl_every_button(tg, clock, lang):
    """Press every button the bot ever shows (breadth first from /start) as an admin with data:
    no handler fails, every screen has a way back, and everything stays inside Telegram's limits."""
    bot = tg()
    crawl_setup(bot, clock, lang)
    back = {"m", "set", "hm", "rm", "he", "re", "hr", "rr", "cl", "done", "ed", "od", "k:m", "k:done"}

    def check(data: str, message: dict) -> None:
        assert len(message["text"]) <= 4096 and not message["text"].endswith("\n…")
        if message["method"] == "editMessageReplyMarkup":
            return  # a completion that keeps only its Undo: the way on is the new message below it
        flat = [d for row in message["buttons"] for _, d in row]
        assert flat, f"{data!r} shows a screen without buttons: {message['text']!r}"
        assert set(flat) & back or any(d.startswith(("he:", "re:")) for d in flat), \
            f"no way back from {data!r}: {message['text']!r}"

    seen = crawl(bot, ADMIN, lang, check)
    # Every kind of screen was reached.
    prefixes = {data.split(":")[0] for data in seen}
    assert prefixes >= {"done", "d", "u", "k", "ed", "st", "hi", "my", "cl", "clx", "od", "o", "rw", "hm", "ha", "he",
                        "hf", "hal", "haa", "hax", "hr", "hrx",
                        "rm", "ra", "re", "rf", "rr", "rrx", "set", "lang", "tz", "help", "m"}


def test_a_group_forgets_its_oldest_screens_even_after_a_restart(tg, botapi):
    """The group's screens are remembered by message id; stored as JSON with sorted keys they come
    back in string order ("10101" before "9703"), yet the oldest (smallest id) are the ones dropped."""
    group = -100
    bot = tg()
    ann, bob = user(bot, ANN), user(bot, BOB)
    coffee_setup(bot, ann)
    for _ in range(9699):  # the group's messages are numbered from 9700 on
        botapi.allocate_message_id(group)
    for _ in range(200):  # Bob's screens 9701 ... 10099
        bot.send(BOB, "/streaks", chat_id=group)
    anns = bot.send(ANN, "/habit_done", chat_id=group)[-1]["message_id"]
    assert anns == 10101
    bot.restart()
    for _ in range(60):  # newer screens push out the 60 oldest (9701 ... 9819), not Ann's
        bot.send(BOB, "/streaks", chat_id=group)
    pressed = bot.press(BOB, "Running", chat_id=group, message_id=anns)
    assert pressed == [] and pressed.alert == "This message is for someone else. Send /menu to get your own."
    assert bot.engine.history(bob) == [] and bot.engine.history(ann) == []
    # The oldest one is forgotten: anyone's press counts there, as for any older screen.
    assert bot.press(ANN, "🏠 Menu", chat_id=group, message_id=9701).text == "What would you like to do?"


def test_a_time_that_is_also_a_date_logs_each_habit_on_one_of_its_two_days(tg, clock):
    """ "ran and read at 10.11" reads two ways, 10:11 today or 10 November, for both habits: each
    habit can be pressed, but once on one day its button for the other reading goes (it was left,
    and pressing it logged one run on two days)."""
    clock.set(dt.datetime(2026, 11, 11, 12, 0, tzinfo=dt.timezone.utc))
    bot = tg()
    ann = user(bot)
    older_coffee_setup(bot, clock, ann, "Reading")
    asked = bot.send(ANN, "ran and read at 10.11")
    assert asked.text == "Is 10.11 a time today or a date? Which habit, on which day?"
    assert "logged for Nov 10, 2026." in bot.press(ANN, "Running · Yesterday").text
    question, _ = bot.find_button(ANN, "Reading · Today")
    left = [button["text"] for row in question["reply_markup"]["inline_keyboard"] for button in row]
    assert "Running · Today" not in left and "Running · Yesterday" not in left  # Running has its day
    assert "Reading · Today" in left and "Reading · Yesterday" in left
    assert "<b>Reading</b> done!" in bot.press(ANN, "Reading · Today").text
    assert sorted((e.habit_name, e.log.completed_on) for e in bot.engine.history(ann)) == [
        ("Reading", dt.date(2026, 11, 11)), ("Running", dt.date(2026, 11, 10))]
