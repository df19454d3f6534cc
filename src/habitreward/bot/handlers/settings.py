"""/settings: language (an explicit choice, never overridden by Telegram) and time zone.

Callback data: ``set``, ``lang``, ``lang:code``, ``tz`` (pick or type; a
step of the persistent dialog waits for the typed name), ``tz:Zone/Name``.
"""

from __future__ import annotations

from typing import Any

from telegram.ext import CallbackQueryHandler, CommandHandler, ConversationHandler, MessageHandler

from habitreward.bot.handlers.common import TEXT_INPUT, Screen, screen, translator_for
from habitreward.bot.handlers.router import on_callback, on_command
from habitreward.bot.i18n import LANGUAGE_NAMES
from habitreward.bot.keyboards import Rows, menu_row
from habitreward.bot.text import shorten
from habitreward.engine.validation import stored_zone, zone_label
from habitreward.errors import ValidationError

#: Offered as buttons; any other IANA name or a UTC offset can be typed.
COMMON_ZONES = (
    "UTC", "Europe/London", "Europe/Berlin", "Europe/Moscow", "Asia/Almaty", "Asia/Aqtobe",
    "Asia/Tashkent", "Asia/Dubai", "Asia/Kolkata", "Asia/Shanghai", "Asia/Tokyo",
    "America/New_York", "America/Chicago", "America/Los_Angeles",
)
TYPING_ZONE = "timezone"


@on_command("settings")
@on_callback("set")
async def settings_screen(s: Screen, args: list[str]) -> None:
    t = s.t
    moment = s.engine.now().astimezone(stored_zone(s.user.timezone))
    text = "\n".join([
        t._("⚙️ <b>Settings</b>"),
        t._("Language: {language}", language=LANGUAGE_NAMES.get(t.language, t.language)),
        t._("Time zone: {zone} (your time now: {time})", zone=zone_label(s.user.timezone),
             time=moment.strftime("%H:%M")),
    ])
    await s.show(text, [[(t._("🌐 Language"), "lang"), (t._("🕒 Time zone"), "tz")], menu_row(t)])


@on_callback("lang")
async def language(s: Screen, args: list[str]) -> None:
    t = s.t
    if not args:
        rows: Rows = [[(LANGUAGE_NAMES.get(code, code), f"lang:{code}")] for code in s.settings.supported_languages]
        rows.append(menu_row(t, back="set"))
        await s.show(t._("Choose your language:"), rows)
        return
    if args[0] not in s.settings.supported_languages:
        await s.refuse()
        return
    s.user = await s.run(s.engine.set_language, s.user, args[0])
    s.t = translator_for(s.user, s.update, s.settings)
    await s.show(s.t._("Language set to {language}.", language=LANGUAGE_NAMES.get(args[0], args[0])),
                 [[(s.t._("⚙️ Settings"), "set")], menu_row(s.t)])


def zone_rows(s: Screen) -> Rows:
    buttons = [(zone, f"tz:{zone}") for zone in COMMON_ZONES]
    rows: Rows = [buttons[i:i + 2] for i in range(0, len(buttons), 2)]
    rows.append(menu_row(s.t, back="set"))
    return rows


@screen()
async def ask_zone(s: Screen) -> str | int:
    await s.show(s.t._("Pick your time zone, or type one: an IANA name such as Europe/Berlin "
                       "or an offset such as UTC+5."), zone_rows(s))
    return TYPING_ZONE


async def _zone_set(s: Screen, zone: str) -> bool:
    t = s.t
    try:
        s.user = await s.run(s.engine.set_timezone, s.user, zone)
    except ValidationError:
        await s.send(t._("I don't know the time zone {zone}. Type an IANA name such as Europe/Berlin "
                         "or an offset such as UTC+5.", zone=shorten(zone)), zone_rows(s))
        return False
    moment = s.engine.now().astimezone(stored_zone(s.user.timezone))
    await s.show(t._("Time zone set to {zone}. Your time now: {time}.", zone=zone_label(s.user.timezone),
                     time=moment.strftime("%H:%M")), [[(t._("⚙️ Settings"), "set")], menu_row(t)])
    return True


@screen()
async def typed_zone(s: Screen) -> str | int:
    message = s.update.effective_message
    ok = await _zone_set(s, (message.text or "").strip() if message else "")
    return ConversationHandler.END if ok else TYPING_ZONE


@on_callback("tz")
async def zone_button(s: Screen, args: list[str]) -> None:
    if not args:  # only reached from inside the conversation's fallback
        await ask_zone.screen_func(s)  # type: ignore[attr-defined]
        return
    await _zone_set(s, ":".join(args))


def entry_points() -> list[Any]:
    return [CallbackQueryHandler(ask_zone, pattern=r"^tz$"), CommandHandler("timezone", ask_zone)]


def states() -> dict[str, list[Any]]:
    return {TYPING_ZONE: [MessageHandler(TEXT_INPUT, typed_zone)]}
