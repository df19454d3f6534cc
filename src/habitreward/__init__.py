"""habitreward: a plugin-based, gamified habit tracker for Telegram.

The engine (:mod:`habitreward.engine`) is plain Python over Peewee models and
knows nothing about Telegram; plugins change its rules through the hooks in
:mod:`habitreward.hookspecs`.
"""

from habitreward.hookspecs import hookimpl

__version__ = "0.1.0"

__all__ = ["__version__", "hookimpl", "same_name"]


def same_name(name: str, other: str) -> bool:
    """Whether two habit or reward names are one name to habitreward, as ``engine.find_reward``,
    ``engine.find_habit`` and the check that names are unique compare them: spacing and invisible
    characters tidied as names are stored, case aside (a final sigma as any sigma). For a plugin
    that recognises an item by its name (perfect-day's bonus reward) among the ones it is handed.
    Worked out in Python: it agrees with the database on the alphabets the bot speaks, not on
    every letter (PostgreSQL lowers "İ" to "i")."""
    from habitreward.engine.validation import name_key, tidy_name  # not at import: the engine is big

    return name_key(tidy_name(name)) == name_key(tidy_name(other))
