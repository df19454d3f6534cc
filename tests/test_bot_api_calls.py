"""The screens' sendMessage/editMessageText calls that skip parsing Telegram's answer
(habitreward.bot.api_calls) send exactly what python-telegram-bot's own methods send,
through the same bot, and fail with the same errors."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden

from habitreward.bot.api_calls import edit_html, send_html
from habitreward.bot.keyboards import inline_keyboard, markup
from habitreward.bot.request import AiohttpRequest

TOKEN = "123456:AAHsecretTOKENvalue_-x9"
KEYBOARD = InlineKeyboardMarkup([[InlineKeyboardButton("✅ Бег", callback_data="done:1"),
                                  InlineKeyboardButton("Menu", callback_data="menu")]])
TEXT = "<b>Бег</b> logged: streak 3 🔥 https://example.org"


def run_with_bot(botapi: Any, scenario: Any) -> Any:
    async def main() -> Any:
        async with Bot(TOKEN, base_url=botapi.base_url, request=AiohttpRequest()) as bot:
            return await scenario(bot)

    return asyncio.run(main())


def test_send_html_sends_what_send_message_sends(botapi):
    async def scenario(bot: Bot) -> Any:
        await bot.send_message(42, TEXT, parse_mode=ParseMode.HTML, reply_markup=KEYBOARD,
                               disable_web_page_preview=True)
        return await send_html(bot, 42, TEXT, KEYBOARD)

    answer = run_with_bot(botapi, scenario)
    theirs, ours = botapi.calls_of("sendMessage")
    assert ours == theirs
    assert ours["link_preview_options"] == {"is_disabled": True}
    assert botapi.last_text(42) == TEXT and botapi.last_buttons(42) == [[("✅ Бег", "done:1"), ("Menu", "menu")]]
    # The answer is the Bot API's JSON, not a telegram.Message
    assert isinstance(answer, dict) and answer["text"] == TEXT and answer["chat"]["id"] == 42


def test_a_keyboard_as_json_is_the_keyboard_ptb_sends(botapi):
    rows = [[("✅ Бег", "done:1"), ("📖 Чтение", "done:2")], [("🏠 Menu", "m")]]

    async def scenario(bot: Bot) -> None:
        await send_html(bot, 42, TEXT, markup(rows))
        await send_html(bot, 42, TEXT, inline_keyboard(rows))

    run_with_bot(botapi, scenario)
    theirs, ours = botapi.calls_of("sendMessage")
    assert ours == theirs and botapi.last_buttons(42) == rows
    assert inline_keyboard([]) is None and inline_keyboard(None) is None


def test_send_html_without_a_keyboard(botapi):
    run_with_bot(botapi, lambda bot: send_html(bot, 42, "plain", None))
    (call,) = botapi.calls_of("sendMessage")
    assert "reply_markup" not in call and call["text"] == "plain"


def test_edit_html_edits_what_edit_message_text_edits(botapi):
    async def scenario(bot: Bot) -> Any:
        first = await bot.send_message(42, "before")
        await bot.edit_message_text(TEXT, chat_id=42, message_id=first.message_id, parse_mode=ParseMode.HTML,
                                    reply_markup=KEYBOARD, disable_web_page_preview=True)
        await bot.edit_message_text("again", chat_id=42, message_id=first.message_id)
        return first.message_id, await edit_html(bot, 42, first.message_id, TEXT, KEYBOARD)

    message_id, answer = run_with_bot(botapi, scenario)
    theirs, _, ours = botapi.calls_of("editMessageText")
    assert ours == theirs
    assert answer["message_id"] == message_id and answer["text"] == TEXT


@pytest.mark.parametrize(("code", "description", "error"), [
    (403, "Forbidden: bot was blocked by the user", Forbidden),
    (400, "Bad Request: message is not modified", BadRequest),
])
def test_telegram_refusals_are_ptbs_errors(botapi, code, description, error):
    botapi.fail_next("sendMessage", code, description)
    botapi.fail_next("editMessageText", code, description)
    with pytest.raises(error, match="(?i)" + description.split(": ", 1)[1]):
        run_with_bot(botapi, lambda bot: send_html(bot, 42, TEXT, None))
    with pytest.raises(error):
        run_with_bot(botapi, lambda bot: edit_html(bot, 42, 1, TEXT, None))
