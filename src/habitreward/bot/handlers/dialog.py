"""The one persistent conversation: every step that waits for typed text.

Add/edit habit, adding an alias, add/edit reward and typing a time zone are states of a single
``ConversationHandler`` named ``dialog`` rather than one handler each: with
``allow_reentry`` any flow's entry point (a button or a command) starts that
flow even in the middle of another, so a user is never stuck in a state that
swallows the next thing they type. Its state and the answers so far
(``user_data["drafts"]``, keyed by chat id as the state is kept per chat and person, see
``common.DRAFTS``) are stored in the database by the bot's persistence, so a restart, or
another process, continues the dialog.
"""

from __future__ import annotations

from typing import Any

from telegram.ext import CommandHandler, ConversationHandler

from habitreward.bot.handlers import habit_admin, habit_aliases, reward_admin, settings
from habitreward.bot.handlers.common import NEW_MESSAGE
from habitreward.bot.handlers.menu import standard_fallbacks

NAME = "dialog"


def conversation(application: Any) -> ConversationHandler:
    states: dict = {}
    entry_points: list = []
    for module in (habit_admin, habit_aliases, reward_admin, settings):
        entry_points += module.entry_points()
        states.update(module.states())
    for handler in entry_points:
        _new_messages_only(handler)
    return ConversationHandler(
        entry_points=entry_points,
        states=states,
        fallbacks=standard_fallbacks(application),
        name=NAME,
        persistent=application.persistence is not None,
        allow_reentry=True,
        per_message=False,
    )


def _new_messages_only(handler: Any) -> None:
    """An entry point's command answers new messages only: PTB's CommandHandler also takes an
    edited one, so editing an old "/add_habit" would restart the dialog. Done here, for every
    module's entry points at once, so none can forget it."""
    if isinstance(handler, CommandHandler):
        handler.filters = handler.filters & NEW_MESSAGE
