"""Who may use the bot: registration on first contact, the inactive-user gate, admin approval.

Someone new is recorded with ``engine.register``. With ``REGISTRATION=approval``
every admin (``ADMIN_TELEGRAM_IDS`` and admins in the database) gets an
Approve / Decline message; ``open`` makes new users active at once; ``closed``
tells them to ask the admin. Until a user is active, only /start and /help
answer; everything else gets one line saying why.

A request no admin received (there was none, or Telegram refused it to each) stays
"unsent" in the database and is sent at the newcomer's next message (:func:`ask_admins`), or,
after a try that Telegram refused to every admin, at their first message ``REQUEST_RETRY`` (five
minutes) later; one an admin has is never sent again. The process sending it marks it "sending" first; one
that died doing so (killed, or its database write failed) leaves it "sending", and after
``SENDING_LEASE`` (ten minutes) the newcomer's next message sends it again.

An admin is an active user whose row says so (``is_admin``), for approving here as for
changing shared habits and rewards (the engine): ``users add --admin`` / ``users promote``
set the flag, and so does being listed in ``ADMIN_TELEGRAM_IDS`` (at registration, or in the
gate at the person's next update, which writes only when the row changes).

An admin made after a request was sent never got it: ``/requests`` sends an admin every request
still waiting (their /start says how many wait).

Callback data: ``ap:telegram_id`` approve, ``dc:telegram_id`` decline (admins only).
"""

from __future__ import annotations

import datetime as dt
import html
import logging
from typing import Any

from telegram import Update
from telegram.error import BadRequest, Forbidden, NetworkError
from telegram.ext import ApplicationHandlerStop

from habitreward.bot.api_calls import send_html
from habitreward.bot.handlers.common import (
    Screen,
    engine_of,
    int_args,
    remember_user,
    run_engine,
    someone_elses,
    take_gate_user,
    telegram_call,
    translator_for,
)
from habitreward.bot.handlers.menu import pending_text
from habitreward.bot.handlers.router import addressed_to_bot, command_of, on_callback, on_command
from habitreward.bot.i18n import Translator
from habitreward.bot.keyboards import inline_keyboard, main_menu, markup, menu_row
from habitreward.bot.state import (
    REQUEST_RETRY,
    SENDING,
    UNSENT,
    admin_ids,
    approval_of,
    give_back_unsent_request,
    request_received,
    request_sent,
    set_approval,
    take_unsent_request,
    waiting_requests,
)
from habitreward.bot.text import fit
from habitreward.errors import NotFound
from habitreward.models import User

log = logging.getLogger(__name__)

OPEN_TO_INACTIVE = ("start", "help")


def is_admin(engine: Any, user: User) -> bool:
    """The one definition, as the engine and the edit screens read it: the row's flag. Being
    listed in ADMIN_TELEGRAM_IDS sets that flag (at registration, or by the gate at the
    person's next update: :func:`listed_but_not_flagged`)."""
    return bool(user.active and user.is_admin)


def listed_but_not_flagged(engine: Any, user: User) -> bool:
    """Listed in ADMIN_TELEGRAM_IDS, but the row does not say admin (yet): listed after they
    registered, or demoted or deactivated in the database while still listed. The list wins."""
    return not (user.is_admin and user.active) and user.telegram_id in engine.settings.admin_telegram_ids


def _admins_to_notify(engine: Any, newcomer: User) -> list[tuple[int, User | None]]:
    """Every admin's Telegram id and user row (None: configured, never wrote to the bot)."""
    return [(admin_id, engine.find_user(admin_id)) for admin_id in admin_ids(engine)
            if admin_id != newcomer.telegram_id]


def _take_unsent(engine: Any, newcomer: User) -> list[tuple[int, User | None]] | None:
    """The admins to send the newcomer's request to now, taken (``take_unsent_request``) so
    that no other process sends it too; [] when there is no admin; None when there is nothing to
    send (an admin has it already, it was decided, or someone else took it)."""
    if approval_of(engine, newcomer.telegram_id) not in (UNSENT, SENDING):  # one look for those asked already
        return None
    admins = _admins_to_notify(engine, newcomer)
    if admins and not take_unsent_request(engine, newcomer.telegram_id):
        return None
    return admins


async def ask_admins(context: Any, newcomer: User, username: str | None, *, first: bool = False) -> None:
    """Send a waiting request that no admin has yet to every admin. Called at each message of
    someone waiting, so a request nobody could get reaches the first admin there is at the
    newcomer's next message (no admin then), or at their first message ``REQUEST_RETRY`` after
    Telegram refused it to each (a try, and its WARNING, at most that often); one an admin has
    is never sent again. ``first``: the newcomer's first message (the operator is warned once
    when there is no admin)."""
    engine = engine_of(context)
    admins = await run_engine(engine, _take_unsent, engine, newcomer)
    if admins is None:
        return
    if not admins:  # nobody to ask: the newcomer is told so (pending_text); the operator is told here
        if first:
            log.warning("%s (id %s) asked to use the bot, and there is no admin to approve them: let them in"
                        " with `habitreward users activate %s`, or make someone an admin (ADMIN_TELEGRAM_IDS,"
                        " or `habitreward users promote ID`): their next message sends the request",
                        newcomer.name, newcomer.telegram_id, newcomer.telegram_id)
        return
    delivered = False
    try:
        for admin_id, admin in admins:
            delivered = await _send_request(context, admin_id, admin, newcomer, username) or delivered
    finally:
        if delivered:
            await run_engine(engine, request_sent, engine, newcomer.telegram_id)
        else:  # also when sending failed half-way: better sent twice than never
            await run_engine(engine, give_back_unsent_request, engine, newcomer.telegram_id)
            log.warning("%s (id %s) asked to use the bot, and no admin could be sent the request; it is tried"
                        " again at their first message in %d minutes (or let them in with `habitreward users"
                        " activate %s`)", newcomer.name, newcomer.telegram_id, REQUEST_RETRY // dt.timedelta(minutes=1),
                        newcomer.telegram_id)


def _request_message(t: Translator, newcomer: User, username: str | None) -> tuple[str, list]:
    """The text (HTML) and the Approve / Decline buttons of a request to an admin."""
    who = t._("{name} (id {id})", name=newcomer.name, id=newcomer.telegram_id)  # escaped here
    if username:
        who += " @" + html.escape(username, quote=False)
    # ``who`` is HTML already: filled in as is (t._ would escape "Tom &amp; Jerry" a second time).
    text = t._("🆕 {who} wants to use the bot.").format(who=who)
    return text, [[(t._("✅ Approve"), f"ap:{newcomer.telegram_id}"),
                   (t._("❌ Decline"), f"dc:{newcomer.telegram_id}")]]


async def _send_request(context: Any, admin_id: int, admin: User | None, newcomer: User,
                        username: str | None) -> bool:
    """One admin's Approve / Decline message; whether Telegram took it."""
    engine = engine_of(context)
    t = Translator(admin.language if admin else engine.settings.default_language)
    text, rows = _request_message(t, newcomer, username)
    try:
        sent = await telegram_call(lambda: context.bot.send_message(
            admin_id, text, parse_mode="HTML", reply_markup=markup(rows)), raise_forbidden=True)
    except (Forbidden, BadRequest, NetworkError) as exc:
        # Blocked, or never opened a chat with the bot (403, 400 "chat not found"), or Telegram out
        # of reach: counted as not received (at worst an admin gets the request twice).
        log.info("Cannot send admin %s the request of user %s: %s", admin_id, newcomer.telegram_id, exc.message)
        return False
    return sent is not None  # None: Telegram kept rate limiting


async def gate(update: Update, context: Any) -> None:
    """Runs before every handler (group -1): register newcomers and stop inactive users."""
    tg_user = update.effective_user
    if tg_user is None:
        return
    query = update.callback_query
    if tg_user.is_bot or (query is None and update.effective_message is not None
                          and update.effective_message.sender_chat is not None):
        # Not a person: Telegram's anonymous group admin (one account, id 1087968824, for every
        # anonymous admin of every group) or a message sent on behalf of a channel or group.
        # No user row (they would all share one), no answer.
        raise ApplicationHandlerStop
    engine = engine_of(context)
    user = await take_gate_user(engine, tg_user.id)
    if user is not None and listed_but_not_flagged(engine, user):  # a write only when it changed
        user = await run_engine(engine, engine.promote_user, user.telegram_id)
    if someone_elses(update, context):  # only ever True for a button in a group
        # Left as it is: the press would turn another member's screen into the presser's.
        t = translator_for(user, update, engine.settings)
        try:
            await telegram_call(lambda: query.answer(
                t._("This message is for someone else. Send /menu to get your own."), show_alert=True))
        except BadRequest:  # a query older than Telegram's limit: nothing to answer
            pass
        raise ApplicationHandlerStop
    if user is not None and user.active:
        remember_user(context, user)
        if query is not None and not query.data:
            # PTB lets a press without data match every pattern; it can only be forged.
            await Screen(update, context, user).refuse()
            raise ApplicationHandlerStop
        return
    # Someone unknown or not let in: registered, or told why, only for a button press or a new
    # message addressed to this bot. Not for group chatter, a command for another bot (/roll,
    # /x@other_bot), an edit of a message already handled (the bot's handlers ignore edits), or
    # another kind of update.
    if query is None and (update.message is None or not addressed_to_bot(update, context.application)):
        raise ApplicationHandlerStop
    parsed = command_of(update) if query is None else None
    created = False
    if user is None:
        user, created = await run_engine(engine, engine.register, tg_user.id, tg_user.full_name or str(tg_user.id),
                                         language_code=tg_user.language_code)
        if created and not user.active and engine.settings.registration == "approval":
            await run_engine(engine, set_approval, engine, user.telegram_id, UNSENT)
    remember_user(context, user)
    if user.active:  # "open" registration
        return
    if engine.settings.registration == "approval":  # a request no admin has yet is sent now
        await ask_admins(context, user, tg_user.username, first=created)
    if parsed is not None and parsed[0] in OPEN_TO_INACTIVE:
        return
    if query is not None and query.data == "help":
        return
    s = Screen(update, context, user)
    if query is not None:
        await s.answer(s.t._("Your account is not active yet."), alert=True)
    elif update.effective_message is not None:
        await s.send(await pending_text(s) + "\n" + s.t._("Until then only /start and /help work."))
    raise ApplicationHandlerStop


async def _decide(s: Screen, args: list[str], approve: bool) -> None:
    t = s.t
    if not is_admin(s.engine, s.user):
        await s.refuse(t._("Only an admin can do that."))
        return
    ids = int_args(args, 1)
    try:
        newcomer = await s.run(s.engine.get_user, ids[0]) if ids else None
    except NotFound:
        newcomer = None
    if newcomer is None:
        await s.refuse()
        return
    # The first answer wins (engine.decide_request): of an Approve and a Decline pressed at the
    # same moment, by two admins or on two copies, only one reaches the newcomer.
    newcomer, decided = await s.run(s.engine.decide_request, newcomer.telegram_id, approve)
    if not decided:  # decided already (by another admin, or at the command line): told once
        request = await s.run(approval_of, s.engine, newcomer.telegram_id)
        if newcomer.active:
            text = t._("{name} is already active.", name=newcomer.name)
        elif request == "declined" and approve:
            text = t._("{name} was already declined: the first answer counts. To let them in after all: "
                       "habitreward users activate {id}", name=newcomer.name, id=newcomer.telegram_id)
        elif request == "declined":
            text = t._("{name} was already declined.", name=newcomer.name)
        else:  # let in earlier and taken out again since: not waiting for anyone
            text = t._("{name} is not waiting for an answer any more.", name=newcomer.name)
        await s.show(text, [menu_row(t)])
        return
    if approve:
        if await _welcome(s, newcomer):
            await s.show(t._("✅ {name} is approved.", name=newcomer.name), [menu_row(t)])
        else:
            await s.show(t._("✅ {name} is in, but I cannot write to them until they open a private chat "
                             "with me.", name=newcomer.name), [menu_row(t)])
    else:
        await s.show(t._("❌ {name} was declined.", name=newcomer.name), [menu_row(t)])
        nt = Translator(newcomer.language)
        await s.send(nt._("Sorry, your request to use this bot was declined."), chat_id=newcomer.telegram_id)


async def _welcome(s: Screen, newcomer: User) -> bool:
    """Send the newcomer the menu; False when Telegram will not let the bot write to them (403,
    or 400 "chat not found"):
    someone who only ever wrote in a group has no private chat with the bot until they open
    one ("bot can't initiate conversation with a user"), or they blocked it."""
    nt = Translator(newcomer.language)
    text = nt._("🎉 You're in! {name}, welcome.", name=newcomer.name) + "\n" + nt._("What would you like to do?")
    await s.answer()
    try:
        await telegram_call(lambda: send_html(s.context.bot, newcomer.telegram_id, fit(text),
                                              inline_keyboard(main_menu(nt))), raise_forbidden=True)
    except (Forbidden, BadRequest) as exc:  # 400 "chat not found": no chat with them either
        log.info("Cannot welcome user %s: %s", newcomer.telegram_id, exc.message)
        return False
    return True


#: How many waiting requests one /requests sends (a message each); it counts the rest.
SHOWN_REQUESTS = 10


@on_command("requests")
async def requests(s: Screen, args: list[str]) -> None:
    """An admin's copy of every request waiting for an answer, oldest first, each with Approve and
    Decline: the only way to one for an admin made after it was sent (requests go to the admins
    there are when they are sent). One no admin had is one an admin has now (``request_received``):
    the newcomer's next message does not send it again."""
    t = s.t
    if not is_admin(s.engine, s.user):
        await s.refuse(t._("Only an admin can do that."))
        return
    chat = s.update.effective_chat
    if chat is not None and chat.type != "private":  # newcomers' names and ids stay out of groups
        await s.refuse(t._("Send me /requests in our private chat: it shows who asked to use the bot."))
        return
    count, first = await s.run(waiting_requests, s.engine, SHOWN_REQUESTS)
    if not count:
        await s.show(t._("Nobody is waiting to be let in."), [menu_row(t)])
        return
    for newcomer in first:
        if await s.send(*_request_message(t, newcomer, None)) is not None:
            await s.run(request_received, s.engine, newcomer.telegram_id)
    if count > len(first):
        await s.send(t.ngettext("…and {n} more: habitreward users list --waiting",
                                "…and {n} more: habitreward users list --waiting", count - len(first)))


@on_callback("ap")
async def approve(s: Screen, args: list[str]) -> None:
    await _decide(s, args, approve=True)


@on_callback("dc")
async def decline(s: Screen, args: list[str]) -> None:
    await _decide(s, args, approve=False)

