"""The scripted journey of issue 3: from a stranger's first message to a claimed reward and an undo."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot_support import ADMIN, ANN, buttons, drivers


@pytest.fixture
def tg(db_url, clock, botapi) -> Iterator:
    """``tg(**settings)`` -> a started BotDriver on a fresh engine (see bot_support.drivers)."""
    yield from drivers(db_url, clock, botapi)


def test_the_whole_journey(tg, clock):
    bot = tg()
    engine = bot.engine
    assert bot.send(ADMIN, "/start", first_name="Boss").text == "Hi, Boss! What would you like to do?"

    # A new user writes; the admin approves.
    hello = bot.send(ANN, "hello", first_name="Ann", username="ann")
    assert "🆕 Ann (id 2) @ann wants to use the bot." in hello.texts
    assert engine.get_user(ANN).active is False
    approved = bot.press(ADMIN, "✅ Approve")
    assert "🎉 You're in! Ann, welcome.\nWhat would you like to do?" in approved.texts

    # Time zone and language.
    bot.press(ANN, "⚙️ Settings")
    bot.press(ANN, "🕒 Time zone")
    assert bot.send(ANN, "Asia/Almaty").text == "Time zone set to Asia/Almaty. Your time now: 17:00."
    bot.press(ANN, "⚙️ Settings")
    bot.press(ANN, "🌐 Language")
    assert bot.press(ANN, "Русский").text == "Язык: Русский."
    ann = engine.get_user(ANN)
    assert (ann.timezone, ann.language, ann.language_chosen) == ("Asia/Almaty", "ru", True)

    # Two habits and a 3-piece reward (the only reward, one piece a day at most).
    for name, weight in (("Бег", "20"), ("Чтение", "10")):
        bot.send(ANN, "/add_habit")
        bot.send(ANN, name)
        assert bot.press(ANN, weight).text.startswith("✅ Привычка добавлена: <b>" + name)
    bot.send(ANN, "/add_reward")
    bot.send(ANN, "Кофе")
    bot.press(ANN, "✨ Виртуальная")
    bot.press(ANN, "3")
    assert bot.press(ANN, "5").text.startswith("✅ Награда добавлена: <b>Кофе</b> · виртуальная · 3 части")

    # Day 1: a button and a typed message.
    bot.send(ANN, "/habit_done")
    day1 = bot.press(ANN, "Бег")
    assert day1.text == "✅ Выполнено: <b>Бег</b>!\n🔥 Серия: 1 день\n🎁 Вы выиграли часть: <b>Кофе</b> 1/3"
    assert bot.send(ANN, "чтение").text.startswith("✅ Выполнено: <b>Чтение</b>!\n🔥 Серия: 1 день")
    # Day 2: typed, then a button.
    clock.advance(days=1)
    assert "🎁 Вы выиграли часть: <b>Кофе</b> 2/3" in bot.send(ANN, "бег").text
    bot.send(ANN, "/habit_done")
    assert "🔥 Серия: 2 дня" in bot.press(ANN, "Чтение").text
    # Day 3: the third piece.
    clock.advance(days=1)
    bot.send(ANN, "/habit_done")
    day3 = bot.press(ANN, "Бег")
    assert "🔥 Серия: 3 дня" in day3.text
    assert "🎉 <b>Кофе</b> 3/3: собрано! Получите награду через /claim_reward." in day3.text

    # Streaks, history and odds.
    streaks = bot.send(ANN, "/streaks").text
    assert "🔥 <b>Бег</b>: 3 дня (сегодня выполнено)" in streaks and "🔥 <b>Чтение</b>: 2 дня" in streaks
    history = bot.send(ANN, "/history").text
    assert history.startswith("<b>Последние выполнения (5)</b>") and history.count("Бег") == 3
    bot.send(ANN, "/odds")
    odds = bot.press(ANN, "Бег").text
    # Kофе is achieved and not yet claimed: out of the draw until claimed, so no reward is certain.
    assert "🎲 <b>Шансы: Бег</b>" in odds and "• Без награды — 100%" in odds
    assert "⏸ Награда <b>Кофе</b> не участвует в розыгрыше, пока вы её не получите." in odds

    # Claim it.
    assert "🎉 можно получить" in bot.send(ANN, "/my_rewards").text
    bot.send(ANN, "/claim_reward")
    assert bot.press(ANN, "Кофе").text == "Получить <b>Кофе</b> сейчас?"
    claimed = bot.press(ANN, "✅ Да, получить")
    assert claimed.text == "🎉 Наслаждайтесь: <b>Кофе</b>!\nПолучена уже 1 раз."
    progress = engine.progress(ann)[0]
    assert (progress.status.value, progress.times_claimed) == ("claimed", 1)

    # A mistaken completion, undone.
    mistake = bot.send(ANN, "Чтение")
    assert "🔥 Серия: 3 дня" in mistake.text
    undone = bot.press(ANN, "↩️ Отменить")
    assert undone.text.startswith("↩️ Отменено: <b>Чтение</b>")
    assert "🔥 Серия теперь: 2 дня" in undone.text
    assert [e.habit_name for e in engine.history(ann)].count("Чтение") == 2
    assert buttons(undone) == ["✅ Отметить привычку", "🏠 Меню"]
