"""habitreward: a plugin-based, gamified habit tracker for Telegram.

The engine (:mod:`habitreward.engine`) is plain Python over Peewee models and
knows nothing about Telegram; plugins change its rules through the hooks in
:mod:`habitreward.hookspecs`.
"""

from habitreward.hookspecs import hookimpl

__version__ = "0.1.0"

__all__ = ["__version__", "hookimpl"]
