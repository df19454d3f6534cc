"""One table of screens, reachable by command and by button.

Callback data is ``prefix[:arg[:arg]]``; the prefix picks the screen and the
arguments are validated by the screen against the current user through the
engine (``engine.get_habit(user, id)`` raises NotFound for anything that is
not theirs). Unknown or malformed data gets a polite refusal.

Conversations use :func:`leave_conversation` and :class:`LeavingCommandHandler` as
their fallbacks, so a command of this bot or a menu button pressed in the middle of one
ends it and opens that screen: there is always a way out.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Update
from telegram.ext import (
    ApplicationHandlerStop,
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)

from habitreward.bot.handlers.common import TEXT_INPUT, Screen, drop_draft, user_for

ScreenFunc = Callable[..., Awaitable[Any]]

CALLBACKS: dict[str, tuple[ScreenFunc, bool]] = {}
COMMANDS: dict[str, tuple[ScreenFunc, bool]] = {}


def on_callback(*prefixes: str, active: bool = True) -> Callable[[ScreenFunc], ScreenFunc]:
    """Register ``async def f(s, args)`` for callback data starting with ``prefix``."""

    def wrap(func: ScreenFunc) -> ScreenFunc:
        for prefix in prefixes:
            CALLBACKS[prefix] = (func, active)
        return func

    return wrap


def on_command(*names: str, active: bool = True) -> Callable[[ScreenFunc], ScreenFunc]:
    """Register ``async def f(s, args)`` for ``/name`` (args: the words after the command)."""

    def wrap(func: ScreenFunc) -> ScreenFunc:
        for name in names:
            COMMANDS[name] = (func, active)
        return func

    return wrap


async def _screen_for(update: Update, context: Any, active: bool) -> Screen | None:
    tg_user = update.effective_user
    if tg_user is None:
        return None
    user = await user_for(context, tg_user.id)
    if user is None or (active and not user.active):
        return None
    return Screen(update, context, user)


def command_of(update: Update) -> tuple[str, list[str]] | None:
    message = update.effective_message
    text = (message.text or "") if message is not None else ""
    if not text.startswith("/"):
        return None
    word, *rest = text.split()
    return word[1:].split("@", 1)[0].lower(), rest


async def route_command(update: Update, context: Any) -> None:
    parsed = command_of(update)
    if parsed is None or parsed[0] not in COMMANDS:
        return
    func, active = COMMANDS[parsed[0]]
    s = await _screen_for(update, context, active)
    if s is not None:
        await func(s, parsed[1])


def _handled_commands(handlers: Any) -> set[str]:
    """Every command a CommandHandler among ``handlers`` answers (conversations included)."""
    found: set[str] = set()
    for handler in handlers:
        if isinstance(handler, CommandHandler):
            found |= set(handler.commands)
        elif isinstance(handler, ConversationHandler):
            found |= _handled_commands(handler.entry_points)
            found |= _handled_commands(handler.fallbacks)
            for state_handlers in handler.states.values():
                found |= _handled_commands(state_handlers)
    return found


def for_another_bot(update: Update, bot: Any) -> bool:
    """A command addressed ``/x@name`` to a bot that is not this one (also when this bot's own
    name cannot be told: it is not initialized). PTB's CommandHandler applies the same rule."""
    message = update.effective_message
    words = ((message.text or "") if message is not None else "").split()
    addressee = words[0].partition("@")[2] if words else ""
    if not addressee:
        return False
    try:
        ours = bot.username or ""
    except RuntimeError:  # the bot is not initialized: whose name it is cannot be told
        return True
    return addressee.lower() != ours.lower()


def answered_here(application: Any, command: str) -> bool:
    """Whether a handler of ``application`` (the bot's or a plugin's) answers ``/command``."""
    if command in COMMANDS:
        return True
    return command in _handled_commands(h for group in application.handlers.values() for h in group)


def addressed_to_bot(update: Update, application: Any) -> bool:
    """Whether a new message is for this bot: anything in a private chat except a command for
    another bot (``/x@other_bot``); in a group only a command for this bot: ``/x@this_bot``,
    or ``/x`` that this bot (or a plugin) answers. ``/roll`` in a group is some other bot's."""
    chat = update.effective_chat
    parsed = command_of(update)
    if parsed is not None and for_another_bot(update, application.bot):
        return False
    if chat is not None and chat.type == "private":
        return True
    if parsed is None:
        return False  # group chatter
    first = (update.effective_message.text or "").split()[0]  # type: ignore[union-attr]
    return "@" in first or answered_here(application, parsed[0])


class UnknownCommandHandler(BaseHandler[Update, Any, None]):
    """A command in a private chat that no handler of the application answers (a typo, an
    old command): told so, instead of silence. Commands for another bot (``/x@other_bot``)
    are left alone, and so is any command a plugin's CommandHandler answers, in any group."""

    def __init__(self, application: Any, callback: Any):
        super().__init__(callback)
        self.application = application

    def check_update(self, update: object) -> bool:
        if not isinstance(update, Update) or update.message is None or update.effective_chat is None:
            return False
        if update.effective_chat.type != "private" or command_of(update) is None:
            return False
        if for_another_bot(update, self.application.bot):
            return False
        return not answered_here(self.application, command_of(update)[0])  # type: ignore[index]


async def route_callback(update: Update, context: Any) -> None:
    query = update.callback_query
    data = (query.data or "") if query is not None else ""
    prefix, *args = data.split(":")
    entry = CALLBACKS.get(prefix)
    s = await _screen_for(update, context, entry[1] if entry else True)
    if s is None:
        if query is not None:
            await query.answer()
        return
    if entry is None:
        await s.refuse()
        return
    await entry[0](s, args)


class ButtonHandler(CallbackQueryHandler):
    """The bot's buttons: ``callback`` (:func:`route_callback`, or a dialog's way out) takes the
    presses of the bot's own prefixes, and of anything no other handler takes (refused politely).
    A press a plugin's CallbackQueryHandler matches, in any group, is left to that handler, so
    a plugin's button works whether its handler was added before or after the bot's, in a
    dialog or not."""

    def __init__(self, application: Any, callback: Callable[[Update, Any], Awaitable[Any]]):
        super().__init__(callback)
        self.application = application

    def check_update(self, update: object) -> Any:
        check = super().check_update(update)
        if not check:
            return check
        prefix = (update.callback_query.data or "").split(":")[0]  # type: ignore[union-attr]
        if prefix in CALLBACKS:
            return check
        return None if _taken_by_another(self.application, update) else check


class FreeTextHandler(MessageHandler):
    """Text in a private chat outside the bot's dialog: a habit report (``callback``), unless a
    plugin's ConversationHandler waits for this chat's text (in any group): then the answer is
    the plugin's alone."""

    def __init__(self, application: Any, callback: Callable[[Update, Any], Awaitable[Any]]):
        super().__init__(TEXT_INPUT & filters.ChatType.PRIVATE, callback)
        self.application = application

    def check_update(self, update: object) -> Any:
        check = super().check_update(update)
        if not check:
            return check
        return None if _taken_by_another(self.application, update, ()) else check


def _is_the_dialog(handler: object) -> bool:
    """The bot's own dialog: the ConversationHandler whose ways out are ours."""
    return isinstance(handler, ConversationHandler) and any(
        isinstance(f, (ButtonHandler, LeavingCommandHandler)) for f in handler.fallbacks)


def _taken_by_another(application: Any, update: object, kinds: tuple[type, ...] = (CallbackQueryHandler,)) -> bool:
    """Whether a plugin's handler of ``kinds`` (a CallbackQueryHandler, a CommandHandler) or a
    plugin's ConversationHandler (in the state it is in for this chat) takes ``update``."""
    for handlers in application.handlers.values():
        for handler in handlers:
            if isinstance(handler, (ButtonHandler, LeavingCommandHandler)) or _is_the_dialog(handler):
                continue
            if isinstance(handler, (*kinds, ConversationHandler)):
                check = handler.check_update(update)
                if check is not None and check is not False:
                    return True
    return False


async def leave_conversation(update: Update, context: Any) -> int:
    """Conversation fallback for a button: end the dialog and show what the button asked for."""
    drop_draft(update, context)  # this chat's dialog is over; one in another chat keeps its answers
    await route_callback(update, context)
    return ConversationHandler.END


class LeavingCommandHandler(BaseHandler[Update, Any, Any]):
    """The dialog's fallback for a command: a command this bot answers (its own or a plugin's)
    and that is addressed to it ends the dialog and runs as it would outside one.

    Anything else is not taken, so it is handled as outside a dialog and the dialog goes on:
    another bot's command (``/roll`` in a group, ``/roll@dice_bot``, ``/streaks@dice_bot``)
    is ignored entirely, and a command nothing answers (a typo) in a private chat is told so by
    :class:`UnknownCommandHandler`. Edited messages are not taken (an edited command ends
    nothing)."""

    def __init__(self, application: Any):
        super().__init__(self._leave)
        self.application = application

    def check_update(self, update: object) -> bool:
        if not isinstance(update, Update) or update.message is None:
            return False
        parsed = command_of(update)
        if parsed is None or not addressed_to_bot(update, self.application):
            return False
        # A handler that really takes it (its filters too: a plugin's private-chat command typed
        # in a group is not taken), the bot's own screens included.
        return _taken_by_another(self.application, update, (CommandHandler,))

    async def _leave(self, update: Update, context: Any) -> int:
        drop_draft(update, context)  # this chat's dialog is over; one in another chat keeps its answers
        try:
            await self._run_as_outside(update, context)
        except ApplicationHandlerStop:  # a plugin's handler stops the other groups: still the end
            raise ApplicationHandlerStop(ConversationHandler.END) from None
        return ConversationHandler.END

    async def _run_as_outside(self, update: Update, context: Any) -> None:
        """Run the handler that would take the command in the dialog's group had there been no
        dialog: the bot's screen (``route_command``) or a plugin's CommandHandler registered in
        that group (one in another group runs anyway, as python-telegram-bot runs one handler
        per group)."""
        for handlers in list(self.application.handlers.values()):
            for index, handler in enumerate(handlers):
                if isinstance(handler, ConversationHandler) and self in handler.fallbacks:
                    for later in handlers[index + 1:]:
                        check = later.check_update(update)
                        if check is None or check is False:
                            continue
                        coroutine = later.handle_update(update, self.application, check, context)
                        if later.block is False:
                            self.application.create_task(coroutine, update=update)
                        else:
                            await coroutine
                        return
                    return
