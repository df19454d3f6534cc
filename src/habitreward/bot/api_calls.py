"""The two Bot API calls every screen makes, without reading Telegram's answer into objects.

``bot.send_message(...)`` turns the message Telegram sends back into a
:class:`telegram.Message` (its chat, sender, keyboard, entities): on a habit
completion that took as much CPU as the engine's whole transaction, for an object
no screen reads. These functions make the same request through the same bot
(``ExtBot``: its defaults, its rate limiter, its request object and errors) and
return the answer as the Bot API's JSON (a ``dict``, or ``True`` for an edit of
an inline message).

``Bot._post`` is python-telegram-bot's one entry point for every API method (its
own methods and ``do_api_request`` call it); tests/test_bot_api_calls.py checks
that the requests are the ones ``send_message``/``edit_message_text`` make.
"""

from __future__ import annotations

from typing import Any

from telegram.constants import ParseMode

#: Screens never show link previews (the texts hold no links meant to be opened).
_NO_PREVIEW = {"is_disabled": True}


#: ``reply_markup``: a keyboard as the Bot API's JSON (:func:`habitreward.bot.keyboards.inline_keyboard`)
#: or as PTB's object.
Markup = Any


async def send_html(bot: Any, chat_id: int, text: str, reply_markup: Markup) -> Any:
    """sendMessage with HTML formatting and no link preview; the sent message as JSON."""
    return await bot._post("sendMessage", {  # noqa: SLF001 - see the module's docstring
        "chat_id": chat_id, "text": text, "parse_mode": ParseMode.HTML,
        "link_preview_options": _NO_PREVIEW, "reply_markup": reply_markup,
    })


async def edit_html(bot: Any, chat_id: int, message_id: int, text: str,
                    reply_markup: Markup) -> Any:
    """editMessageText of a chat's message, HTML and no link preview; the edited message as JSON."""
    return await bot._post("editMessageText", {  # noqa: SLF001
        "chat_id": chat_id, "message_id": message_id, "text": text, "parse_mode": ParseMode.HTML,
        "link_preview_options": _NO_PREVIEW, "reply_markup": reply_markup,
    })
