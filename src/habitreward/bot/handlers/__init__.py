"""All of the bot's own handlers. ``register(application)`` adds them to an Application.

Order matters (python-telegram-bot runs the first matching handler of each group):

* group -1: the registration gate (newcomers are recorded; inactive users stop here
  unless they asked for /start or /help);
* group 0: the ``dialog`` conversation (steps that wait for typed text), then every
  command, then every button (routed by callback-data prefix), then free text,
  which is read as a habit report, then a private chat's command that no handler
  (the bot's or a plugin's) answers, which is told so.
"""

from __future__ import annotations

import warnings
from typing import Any

from telegram import Update
from telegram.ext import CommandHandler, TypeHandler

from habitreward.bot.handlers import (  # noqa: F401  (importing registers the screens)
    approval,
    completion,
    dialog,
    habit_admin,
    habit_aliases,
    menu,
    reward_admin,
    rewards,
    settings,
    views,
)
from habitreward.bot.handlers.common import NEW_MESSAGE
from habitreward.bot.handlers.menu import set_commands
from habitreward.bot.handlers.router import (
    COMMANDS,
    ButtonHandler,
    FreeTextHandler,
    UnknownCommandHandler,
    route_callback,
    route_command,
)

__all__ = ["register", "set_commands"]


def register(application: Any) -> None:
    """Add every built-in handler to ``application`` and register the command list at start-up."""
    application.add_handler(TypeHandler(Update, approval.gate), group=-1)
    application.read_gate_user_early = True  # the gate reads every update's user
    with warnings.catch_warnings():
        # PTB warns that CallbackQueryHandlers in a per_message=False conversation are tracked
        # per chat, not per message: exactly what we want (one dialog per chat and person).
        warnings.filterwarnings("ignore", message=".*per_message.*")
        application.add_handler(dialog.conversation(application))
    application.add_handler(CommandHandler(list(COMMANDS), route_command, filters=NEW_MESSAGE))
    application.add_handler(ButtonHandler(application, route_callback))
    # Free text is a habit report only in a private chat: in a group, people talk to each other.
    application.add_handler(FreeTextHandler(application, completion.free_text))
    # Last: a command nothing above (nor a plugin's CommandHandler) answers.
    application.add_handler(UnknownCommandHandler(application, menu.unknown_command))

    application.add_error_handler(menu.on_error)

    # setMyCommands once the bot is up (run_polling/run_webhook call post_init).
    previous = application.post_init

    async def post_init(app: Any) -> None:
        if previous is not None:
            await previous(app)
        await set_commands(app.bot, app.engine.settings, getattr(app, "plugin_commands", ()))

    application.post_init = post_init
