"""What must never go wrong: forged buttons, inactive users, long lists, restarts, Telegram errors."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot_support import ADMIN, ANN, BOB, buttons, coffee_setup, drivers, forge, user
from habitreward.bot.handlers.completion import undo_data
from habitreward.bot.keyboards import MAX_CALLBACK_DATA
from habitreward.bot.text import fit
from habitreward.models import HabitLog, RewardProgress
from habitreward.testing.botapi import check_text
from habitreward.testing.driver import BotDriver


@pytest.fixture
def tg(db_url, clock, botapi) -> Iterator:
    """``tg(**settings)`` -> a started BotDriver on a fresh engine (see bot_support.drivers)."""
    yield from drivers(db_url, clock, botapi)


REFUSAL = "Sorry, that button is not valid any more."


def snapshot(engine) -> tuple:
    """Everything a button could change, to compare before and after."""
    with engine.session():
        logs = sorted((log.user_id, log.habit_id, str(log.completed_on)) for log in HabitLog.select())
        progress = sorted((p.user_id, p.reward_id, p.pieces_earned, p.claimed, p.times_claimed)
                          for p in RewardProgress.select())
    users = [(u.telegram_id, u.active, u.language, u.timezone) for u in engine.list_users()]
    habits = [(h.id, h.name, h.weight, h.active) for h in engine.all_habits(include_inactive=True)]
    rewards = [(r.id, r.name, r.active) for r in engine.all_rewards(include_inactive=True)]
    return logs, progress, users, habits, rewards


def test_forged_callback_data_is_refused_and_changes_nothing(tg):
    bot = tg()
    admin = user(bot, ADMIN, admin=True)
    ann, bob = user(bot, ANN), user(bot, BOB)
    water = bot.engine.add_habit("Water", actor=admin)  # shared
    bobs = bot.engine.add_habit("Bob's secret", owner=bob)
    gone = bot.engine.add_habit("Gone", owner=ann)
    coffee = bot.engine.add_reward("Coffee", pieces_required=3, max_per_day=0, owner=ann)
    bob_log = bot.engine.complete(bob, water).log
    gone_log = bot.engine.complete(ann, gone).log
    bot.engine.remove_habit(gone)
    bot.engine.add_user(9, "Pending")
    bot.send(ANN, "/start")
    before = snapshot(bot.engine)

    forged = {
        f"d:{bobs.id}": "That habit no longer exists.",              # another user's habit
        f"d:{gone.id}": "That habit no longer exists.",              # a removed habit
        undo_data(water.id, bob_log): "There is nothing to undo here.",  # another user's log
        undo_data(gone.id, gone_log): "There is nothing to undo here.",  # a removed habit's log
        undo_data(bobs.id, bob_log): "There is nothing to undo here.",
        f"u:{water.id}:{bob_log.id}": REFUSAL,  # no stamp: not a button the bot made
        f"o:{bobs.id}": "That habit no longer exists.",
        f"cl:{coffee.id}": "That reward is not ready to claim.",      # not achieved
        f"clx:{coffee.id}": "That reward is not ready to claim.",
        "clx:999999": "That reward is not ready to claim.",
        f"he:{bobs.id}": "You cannot change that habit.",
        f"hrx:{bobs.id}": "You cannot change that habit.",
        f"hrx:{water.id}": "You cannot change that habit.",            # shared: admins only
        f"rrx:{coffee.id + 1000}": "You cannot change that reward.",
        "ap:9": "Only an admin can do that.",                          # Ann is no admin
        "dc:9": "Only an admin can do that.",
        "d:abc": REFUSAL, "d:1:99": REFUSAL, "d:": REFUSAL, "u:1": REFUSAL, "u:x:y": REFUSAL, "u:1:1:!": REFUSAL,
        "u:1:1:zzzzzzzzzzzzzz": REFUSAL,
        # a completion message's way on names a screen of the bot, checked as that screen checks it
        "k": REFUSAL, "k:": REFUSAL, "k:zzz": REFUSAL, "k:k:m": REFUSAL,
        f"k:d:{bobs.id}": "That habit no longer exists.", f"k:cl:{coffee.id}": "That reward is not ready to claim.",
        "zzz": REFUSAL, "": REFUSAL, "lang:xx": REFUSAL, "done:0:-3": REFUSAL, "hw:500": REFUSAL,
    }
    for data, expected in forged.items():
        reply = forge(bot, ANN, data)
        assert reply.text == expected, repr(data)
        assert snapshot(bot.engine) == before, data
    # A forged time zone is validated like a typed one.
    assert forge(bot, ANN, "tz:Mars/Olympus").text.startswith("I don't know the time zone Mars/Olympus.")
    assert snapshot(bot.engine) == before


UNKNOWN_ZONE = "I don't know the time zone {}. Type an IANA name such as Europe/Berlin or an offset such as UTC+5."


@pytest.mark.parametrize("zone", ["Europe", "America", "UTC+23:5", "UTC*23:00", "Asia/" + "x" * 300])
def test_a_word_or_an_offset_that_is_no_zone_is_answered_not_crashed_on(tg, zone):
    """A region without its city is a directory of the tz database, a long name no file at all,
    and an offset is one only with a real sign inside -12:00..+14:00: each is just unknown,
    typed or from a forged button, and nothing is stored."""
    bot = tg()
    user(bot, ANN)
    quoted = zone if len(zone) <= 64 else zone[:63] + "…"  # typed text is quoted shortened
    bot.send(ANN, "/timezone")
    assert bot.send(ANN, zone).text == UNKNOWN_ZONE.format(quoted)
    assert bot.send(ANN, "/start").text  # the dialog was not left in a broken state
    assert forge(bot, ANN, f"tz:{zone}").text == UNKNOWN_ZONE.format(quoted)
    assert bot.engine.get_user(ANN).timezone == "UTC"
    assert bot.errors == []


HUGE = "9999999999999999999999999"
CANNOT_HABIT, CANNOT_REWARD = "You cannot change that habit.", "You cannot change that reward."


@pytest.mark.parametrize(("data", "expected"), [
    (f"d:{HUGE}", REFUSAL), (f"o:{HUGE}", "That habit no longer exists."),
    (f"he:{HUGE}", CANNOT_HABIT), (f"hr:{HUGE}", CANNOT_HABIT), (f"hrx:{HUGE}", CANNOT_HABIT),
    (f"re:{HUGE}", CANNOT_REWARD), (f"rr:{HUGE}", CANNOT_REWARD), (f"rrx:{HUGE}", CANNOT_REWARD),
    (f"u:{HUGE}:1:1", REFUSAL), (f"u:1:{HUGE}:1", REFUSAL),
    (f"hal:{HUGE}", CANNOT_HABIT), (f"hax:{HUGE}:abcd", CANNOT_HABIT), (f"haa:{HUGE}", CANNOT_HABIT),
    (f"hf:{HUGE}:name", CANNOT_HABIT), (f"rf:{HUGE}:name", CANNOT_REWARD),
    (f"ap:{HUGE}", REFUSAL), (f"dc:{HUGE}", REFUSAL), (f"cl:{HUGE}", "That reward is not ready to claim."),
    (f"d:{2**63}", REFUSAL),  # the first number a 64-bit id column cannot hold
    (f"d:{2**63 - 1}", "That habit no longer exists."),  # the last one it can: looked up, not there
    ("/edit_habit " + HUGE, CANNOT_HABIT), ("/remove_reward " + HUGE, CANNOT_REWARD),  # typed, not pressed
])
def test_a_forged_huge_id_is_refused_not_a_crash(tg, data, expected):
    """Ids beyond what the database's integer columns hold are refused before any query (SQLite's
    driver raised OverflowError, and the user got "Something went wrong")."""
    bot = tg()
    user(bot, ADMIN, admin=True)  # an admin: approve/decline get as far as reading the id
    bot.send(ADMIN, "/start")
    before = snapshot(bot.engine)

    reply = bot.send(ADMIN, data) if data.startswith("/") else forge(bot, ADMIN, data)

    assert reply.text == expected
    assert buttons(reply) == ["🏠 Menu"]
    assert bot.errors == []
    assert snapshot(bot.engine) == before


def test_a_stale_undo_button_cannot_revert_a_newer_completion(tg, clock, backend):
    """SQLite gives an undone log's id to the next completion: the first message's Undo names the
    old completion, not whatever now has its id."""
    bot = tg()
    ann = user(bot, ANN)
    habit, coffee = coffee_setup(bot, ann)
    bot.send(ANN, "/habit_done")
    first = bot.press(ANN, "Running")
    stale = first.buttons[0][0][1]  # the first completion message's Undo
    first_log = bot.engine.history(ann)[0].log
    assert bot.press(ANN, "↩️ Undo").text.startswith("↩️ Undone: <b>Running</b>")
    clock.advance(minutes=5, microseconds=123457)  # microseconds survive the round trip on both backends
    bot.send(ANN, "/habit_done")
    again = bot.press(ANN, "Running")
    assert again.text.startswith("✅ <b>Running</b> done!")
    new_log = bot.engine.history(ann)[0].log
    if backend == "sqlite":
        assert new_log.id == first_log.id  # the premise: the id was reused
    before = snapshot(bot.engine)

    refused = forge(bot, ANN, stale)
    assert refused.text == "There is nothing to undo here."
    assert snapshot(bot.engine) == before
    assert [e.log.id for e in bot.engine.history(ann)] == [new_log.id]
    assert bot.engine.progress(ann)[0].pieces_earned == 1
    # The newer message's Undo still works.
    assert bot.press(ANN, "↩️ Undo").text.startswith("↩️ Undone: <b>Running</b>")
    assert bot.engine.history(ann) == []


@pytest.mark.parametrize("first_name", ["\u00a0", "\u3000", "\u200b", " \u2003 "])
def test_a_newcomer_whose_name_is_only_blank_is_registered_by_id(tg, first_name):
    """Telegram allows a first name of a no-break or ideographic space: it was "The user name
    must not be empty" and "Something went wrong" on every message."""
    bot = tg(registration="open")
    reply = bot.send(BOB, "/start", first_name=first_name)
    assert reply.text == f"Hi, {BOB}! What would you like to do?"
    assert bot.engine.get_user(BOB).name == str(BOB)
    assert bot.send(BOB, "/streaks", first_name=first_name).text == "You have no habits yet. Add your first one!"
    assert bot.errors == []


def test_unknown_and_inactive_users_reach_only_start_and_help(tg, botapi):
    bot = tg()
    user(bot, ADMIN, admin=True)
    pending = "Hello! An admin has been asked to approve you. I will write as soon as you are in."
    first = bot.send(BOB, "/streaks", first_name="Bob")
    assert bot.engine.get_user(BOB).active is False  # recorded as pending
    assert [m["text"] for m in first if m["chat_id"] == BOB] == [pending + "\nUntil then only /start and /help work."]
    assert bot.send(BOB, "/start").text == pending
    help_text = bot.send(BOB, "/help").text
    assert "/habit_done — Log a habit" in help_text and "only /start and /help work for now" in help_text
    for attempt in ("/habit_done", "/add_habit", "Running", "/settings", "/claim_reward"):
        assert bot.send(BOB, attempt).text.endswith("Until then only /start and /help work."), attempt
    pressed = forge(bot, BOB, "st")
    assert pressed == [] and pressed.alert == "Your account is not active yet."
    assert forge(bot, BOB, "help").text.startswith("<b>How it works</b>")
    assert bot.engine.history(bot.engine.get_user(BOB)) == []
    assert len([m for m in botapi.sent(ADMIN) if "wants to use the bot" in m["text"]]) == 1  # asked once

    # A deactivated user is back to /start and /help only.
    ann = user(bot, ANN)
    bot.engine.add_habit("Running", owner=ann)
    bot.engine.deactivate_user(ANN)
    assert bot.send(ANN, "Running").text.endswith("Until then only /start and /help work.")
    assert bot.engine.history(ann) == []


def test_two_hundred_habits_are_paginated_within_telegram_limits(tg):
    bot = tg(recent_logs_limit="100")
    ann = user(bot)
    names = [f"Habit {i:03d}" + " x" * (i % 45) for i in range(200)]  # up to 98 characters
    for name in names:
        bot.engine.add_habit(name, owner=ann)
    for name in names[:100]:
        bot.engine.complete(ann, bot.engine.find_habit(ann, name))

    def check(reply) -> None:
        message = reply[-1]
        assert len(message["text"]) <= 4096 and not message["text"].endswith("\n…")  # never cut
        flat = [b for row in message["buttons"] for b in row]
        assert len(flat) <= 100 and len(message["buttons"]) <= 20
        assert all(len(data.encode()) <= MAX_CALLBACK_DATA for _, data in flat)

    seen: list[str] = []
    page = bot.send(ANN, "/habit_done")
    while True:
        check(page)
        seen += [text.removeprefix("✔️ ") for text, data in (b for row in page.buttons for b in row)
                 if data.startswith("d:")]
        if "Next »" not in buttons(page):
            break
        page = bot.press(ANN, "Next »")
    assert sorted(seen) == sorted(names)  # every habit reachable, each once
    assert page.buttons[-3][-1][0] == "20/20"

    for command, prefix in (("/streaks", "st"), ("/history", "hi")):
        reply = bot.send(ANN, command)
        lines = 0
        while True:
            check(reply)
            lines += sum(1 for line in reply.text.splitlines() if "Habit " in line)
            if "Next »" not in buttons(reply):
                break
            reply = bot.press(ANN, "Next »")
        assert lines == (200 if prefix == "st" else 100), command
    for command in ("/odds", "/edit_habit", "/remove_habit"):
        check(bot.send(ANN, command))


def test_many_rewards_are_paginated_too(tg):
    bot = tg()
    ann = user(bot)
    names = [f"Reward {i:02d} " + "y" * 80 for i in range(45)]
    for name in names:
        reward = bot.engine.add_reward(name, owner=ann)
        bot.engine.grant_piece(ann, reward)  # achieved: all 45 are claimable
    for command in ("/claim_reward", "/my_rewards", "/list_rewards"):
        reply, seen = bot.send(ANN, command), set()
        while True:
            message = reply[-1]
            assert len(message["text"]) <= 4096 and not message["text"].endswith("\n…")
            assert sum(len(row) for row in message["buttons"]) <= 100
            seen |= {name for name in names if name in message["text"] or name in buttons(reply)}
            if "Next »" not in buttons(reply):
                break
            reply = bot.press(ANN, "Next »")
        assert seen == set(names), command
    bot.engine.add_habit("Running", owner=ann)
    for i in range(30):
        bot.engine.add_reward(f"Other {i:02d} " + "z" * 90, owner=ann)
    bot.send(ANN, "/odds")
    odds = bot.press(ANN, "Running")
    assert len(odds.text) <= 4096 and not odds.text.endswith("\n…")
    assert "…and 10 more rewards" in odds.text and "…and 42 more rewards" in odds.text
    bot.send(ANN, "/claim_reward")
    for _ in range(4):
        bot.press(ANN, "Next »")
    assert bot.press(ANN, names[-1]).text == f"Claim <b>{names[-1]}</b> now?"
    bot.press(ANN, "✅ Yes, claim it")
    assert len(bot.engine.claimable(ann)) == 44


def utf16(text: str) -> int:
    """A message's length as Telegram counts it (the stand-in refuses more than 4096)."""
    return len(text.encode("utf-16-le")) // 2


def emoji_name(i: int) -> str:
    """100 characters, 198 of Telegram's UTF-16 units: a letter, two digits and 97 runners."""
    return f"a{i:02d}" + "🏃" * 97


def test_names_of_emoji_fit_in_every_message(tg, clock):
    """20 lines of 100-character names stayed under 4096 characters, but Telegram counts an emoji
    twice: /streaks, the odds (of every user, with 20 shared rewards) and the habit edit screen
    with 20 aliases were refused as too long, and the user got silence."""
    bot = tg()
    admin = user(bot, ADMIN, admin=True)
    ann = user(bot)
    for i in range(20):
        bot.engine.add_habit(emoji_name(i), owner=ann)
        bot.engine.add_reward(emoji_name(i), actor=admin)  # shared: on everyone's odds screen
    first = bot.engine.find_habit(ann, emoji_name(0))
    for i in range(20):
        bot.engine.add_alias(first, f"x{i:02d}" + "🏃" * 97, actor=ann)

    seen, reply = [], bot.send(ANN, "/streaks")
    while True:
        seen += [name for name in map(emoji_name, range(20)) if f"<b>{name}</b>" in reply.text]
        if "Next »" not in buttons(reply):
            break
        reply = bot.press(ANN, "Next »")
    assert seen == [emoji_name(i) for i in range(20)]  # every habit on some page, once

    bot.send(ANN, "/odds")
    odds = bot.press(ANN, emoji_name(0))
    assert odds.text.startswith(f"🎲 <b>Odds for {emoji_name(0)}</b>")
    shown = sum(f"<b>{emoji_name(i)}</b> — " in odds.text for i in range(20))
    assert 0 < shown < 20 and f"…and {20 - shown} more rewards" in odds.text
    assert utf16(odds.text) <= 4096

    bot.send(ANN, "/edit_habit")
    edit = bot.press(ANN, emoji_name(0))
    assert "🏷 Aliases: x00" in edit.text and "more aliases" in edit.text
    assert edit.text.endswith("What do you want to change?")
    aliases = bot.press(ANN, "🏷 Aliases")
    listed = sum(f"• x{i:02d}" in aliases.text for i in range(20))
    assert 0 < listed < 20 and f"…and {20 - listed} more aliases" in aliases.text
    assert sum(text.startswith("✖️ x") for text in buttons(aliases)) == 20  # each one still removable
    assert bot.errors == []


def test_history_pages_by_size_so_every_completion_is_on_a_page(tg, clock):
    """With RECENT_LOGS_LIMIT 20 and long names the page was cut to fit, and the lines cut were
    on no page."""
    bot = tg(recent_logs_limit="20")
    ann = user(bot)
    habit = bot.engine.add_habit(emoji_name(0), owner=ann)
    bot.engine.add_reward(emoji_name(1), pieces_required=1000, max_per_day=0, owner=ann)
    for _ in range(20):
        bot.engine.complete(ann, habit)
        clock.advance(days=1)
    pages, reply = [], bot.send(ANN, "/history")
    while True:
        assert not reply.text.endswith("\n…")  # never cut
        pages.append(reply.text)
        if "Next »" not in buttons(reply):
            break
        reply = bot.press(ANN, "Next »")
    assert len(pages) > 1
    assert sum(text.count(f"<b>{emoji_name(0)}</b> · 🔥") for text in pages) == 20
    assert all(f"/{len(pages)}" in b for b in buttons(reply) if "/" in b)


@pytest.mark.no_db
@pytest.mark.parametrize(("text", "start"), [
    ("x" * 5000, "x" * 4000),                         # no newline: was text[:-1] + "\n…", still too long
    ("<b>" + "🏃" * 3000 + "</b>", "🏃" * 2000),       # 3000 characters but 6000 UTF-16 units
    ("Title\n<b>" + "y" * 4100 + "</b>", "Title\n…"),  # the lines that fit
    ("line 🏃\n" * 800, "line 🏃\n" * 500),
])
def test_fit_keeps_any_message_inside_telegram_s_limit(text, start):
    """The last line of defence: whatever a screen builds, Telegram accepts what is sent."""
    fitted = fit(text)
    check_text(fitted, "HTML")  # the stand-in's check: HTML that parses, at most 4096 UTF-16 units
    assert fitted.startswith(start) and fitted.endswith("…")


def test_a_very_long_unknown_time_zone_is_answered_shortened(tg):
    bot = tg()
    user(bot)
    bot.send(ANN, "/timezone")
    typed = "Mars/" + "x" * 4000
    reply = bot.send(ANN, typed)
    assert reply.text.startswith("I don't know the time zone Mars/xxx")
    assert typed not in reply.text and "…" in reply.text and len(reply.text) < 300
    assert bot.send(ANN, "UTC+5").text.startswith("Time zone set to UTC+5.")


def test_restart_in_the_middle_of_add_habit(tg):
    bot = tg()
    ann = user(bot)
    bot.send(ANN, "/add_habit")
    bot.send(ANN, "Reading")
    bot.restart()  # a new Application on the same database
    assert bot.press(ANN, "20").text.startswith("✅ Habit added: <b>Reading</b> · weight 20")
    assert bot.engine.find_habit(ann, "Reading").weight == 20

    bot.send(ANN, "/add_reward")
    bot.send(ANN, "Tea")
    bot.restart(crash=True)  # no clean shutdown: only what was already stored survives
    assert bot.press(ANN, "🎁 Real").text.startswith("How many pieces make <b>Tea</b> complete?")
    bot.send(ANN, "2")
    bot.restart()
    bot.send(ANN, "1")
    tea = bot.engine.find_reward(ann, "Tea")
    assert (tea.type, tea.pieces_required, tea.weight) == ("real", 2, 1.0)


def test_restart_in_the_middle_of_claim(tg):
    bot = tg()
    ann = user(bot)
    habit, reward = coffee_setup(bot, ann, pieces=1)
    bot.engine.complete(ann, habit)
    bot.send(ANN, "/claim_reward")
    assert bot.press(ANN, "Coffee").text == "Claim <b>Coffee</b> now?"
    bot.restart()
    claimed = bot.press(ANN, "✅ Yes, claim it")
    assert claimed.text.startswith("🎉 Enjoy your <b>Coffee</b>!")
    assert bot.engine.progress(ann)[0].times_claimed == 1
    # Pressing the old confirm button again claims nothing more.
    assert forge(bot, ANN, f"clx:{reward.id}").text == "That reward is not ready to claim."
    assert bot.engine.progress(ann)[0].times_claimed == 1


def test_telegram_errors_lose_nothing(tg, botapi):
    bot = tg()
    ann = user(bot)
    coffee_setup(bot, ann)
    bot.send(ANN, "/streaks")
    # "message is not modified" (the same screen pressed twice) is ignored.
    botapi.fail_next("editMessageText", 400, "Bad Request: message is not modified")
    assert bot.press(ANN, "🏠 Menu") == []  # nothing new to show, and no error either
    assert bot.errors == []
    # Flood control: waited out, then delivered.
    botapi.fail_next("sendMessage", 429, retry_after=1)
    assert bot.send(ANN, "/history").text == "Nothing logged yet."
    # The user blocked the bot: the completion is saved even though the answer cannot be delivered.
    botapi.fail_next("sendMessage", 403, times=3)
    bot.send(ANN, "Running")
    assert [e.habit_name for e in bot.engine.history(ann)] == ["Running"]


def test_a_dialog_moves_between_two_applications(tg, botapi):
    """Two Applications on one database (as two webhook workers): each update may land on either.

    (One engine: peewee models are bound to one database per process; separate processes
    are the botkit tests' business.)"""
    one = tg()
    two = BotDriver(one.engine, botapi).start()
    try:
        ann = user(one)
        one.send(ANN, "/add_reward")
        two.send(ANN, "Cinema")
        one.press(ANN, "🎁 Real")
        two.press(ANN, "5")
        assert one.press(ANN, "2").text.startswith("✅ Reward added: <b>Cinema</b> · real · 5 pieces · weight 2")
        cinema = two.engine.find_reward(ann, "Cinema")
        assert (cinema.pieces_required, cinema.weight) == (5, 2.0)
        # The dialog is over in both: text is a habit report again.
        assert "You have no habits yet" in two.send(ANN, "Cinema").text
    finally:
        two.stop()


def test_a_bug_is_not_silence(tg, botapi, monkeypatch):
    bot = tg()
    user(bot, lang="ru")
    quiet = BotDriver(bot.engine, botapi, raise_errors=False).start()
    try:
        def broken(*args, **kwargs):
            raise RuntimeError("a bug")

        monkeypatch.setattr(bot.engine, "streaks", broken)
        reply = quiet.send(ANN, "/streaks")
        assert reply.text == "😕 У меня что-то пошло не так. Попробуйте ещё раз."
        assert buttons(reply) == ["🏠 Меню"]
        assert isinstance(quiet.errors[-1], RuntimeError)
    finally:
        quiet.stop()


def test_a_bug_in_the_http_client_is_a_bug_not_a_reply_lost_to_the_network(tg, botapi, monkeypatch, caplog,
                                                                             backend):
    """An exception our HTTP client raises (not the network's) reaches the handler as PTB's
    NetworkError: it was logged as one WARNING "may not have reached Telegram", which an outage
    also logs, so the bug went unseen. It is an ERROR with the client's traceback."""
    import logging
    import re

    from habitreward.bot.request import BotApiRequest

    if backend == "postgres":
        pytest.skip("what is logged does not depend on the database (seen on SQLite)")
    bot = tg()
    ann = user(bot)
    coffee_setup(bot, ann)
    quiet = BotDriver(bot.engine, botapi, raise_errors=False).start()
    send = BotApiRequest._send

    async def broken(self, url, *args):
        if url.endswith("/sendMessage"):
            raise TypeError("planted bug in the client")
        return await send(self, url, *args)

    monkeypatch.setattr(BotApiRequest, "_send", broken)
    try:
        with caplog.at_level(logging.WARNING, logger="habitreward"):
            quiet.send(ANN, "Running")
    finally:
        quiet.stop()
    assert [e.habit_name for e in bot.engine.history(ann)] == ["Running"]  # saved all the same
    records = [r for r in caplog.records if r.name.startswith("habitreward")]
    assert [r.levelname for r in records] == ["ERROR"], [r.getMessage() for r in records]
    assert re.fullmatch(rf"update \d+ \(user {ANN}\): a handler failed: NetworkError: Unknown error in HTTP"
                        r" implementation: TypeError\('planted bug in the client'\)", records[0].getMessage())
    assert isinstance(records[0].exc_info[1].__cause__, TypeError)  # the client's traceback


def test_a_bug_whose_apology_cannot_be_sent_is_still_one_error_record(tg, botapi, monkeypatch, caplog, backend):
    """A handler's bug while Telegram answers 502: the "Something went wrong" message failed in the
    error handler, which python-telegram-bot logged as a second ERROR with a second traceback."""
    import logging
    import re

    if backend == "postgres":
        pytest.skip("what is logged does not depend on the database (seen on SQLite)")
    bot = tg()
    user(bot)
    quiet = BotDriver(bot.engine, botapi, raise_errors=False).start()

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(bot.engine, "streaks", broken)
    botapi.fail_next("sendMessage", 502, "Bad Gateway")  # the apology, the only message sent
    try:
        with caplog.at_level(logging.WARNING):
            quiet.send(ANN, "/streaks")
    finally:
        quiet.stop()
    logged = [(r.levelname, r.name, re.sub(r"^update \d+", "update N", r.getMessage())) for r in caplog.records]
    assert logged == [
        ("ERROR", "habitreward.bot.app", f"update N (user {ANN}): a handler failed: RuntimeError: a bug"),
        ("WARNING", "habitreward.bot.handlers.menu",
         f"update N: the message that something went wrong may not have reached chat {ANN} (NetworkError: Bad"
         " Gateway)"),
    ], logged
    assert sum(r.exc_info is not None for r in caplog.records) == 1
