"""Keep the bot token and the webhook secret out of every log line.

python-telegram-bot's HTTP client (httpx) logs request URLs, and Bot API URLs
contain the token (``.../bot<token>/sendMessage``). A filter on every handler
of the root logger rewrites each record, message, arguments and traceback
included, before any handler formats it (:class:`habitreward.redaction.RedactSecrets`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from habitreward.redaction import REDACTED, RedactSecrets  # noqa: F401 - where the server took them from


def install_redaction(secrets: Iterable[str | None], logger: logging.Logger | None = None) -> RedactSecrets:
    """Attach one :class:`RedactSecrets` to every handler of ``logger`` (default: root).

    Call it after logging is configured. httpx's per-request INFO lines are
    turned down to WARNING (noise at one line per Bot API call) unless the
    root logger is at DEBUG (``-vv``), where they show, redacted.
    """
    target = logger or logging.getLogger()
    secrets = list(secrets)
    redactor = RedactSecrets(secrets)
    if not target.handlers:
        logging.basicConfig(level=logging.WARNING)
    for handler in target.handlers:
        existing = next((f for f in handler.filters if isinstance(f, RedactSecrets)), None)
        if existing is not None:  # called again (e.g. serve --set-webhook): one filter, more secrets
            existing.add(secrets)
            redactor = existing
        else:
            handler.addFilter(redactor)
    if logging.getLogger("httpx").level == logging.NOTSET and logging.getLogger().level > logging.DEBUG:
        logging.getLogger("httpx").setLevel(logging.WARNING)
    return redactor


class QueueDepthLog:
    """waitress's queue logger, for one task dispatcher: at most one line per ``seconds``,
    the next one saying how many were held back.

    Under load waitress warns "Task queue depth is N" for every request that has to
    wait for a thread, thousands of lines a minute. The check runs before a log
    record is made (a logging filter would pay for the record first: about 2% of the
    server's CPU under load). waitress calls it with its dispatcher lock held.
    """

    def __init__(self, logger: logging.Logger, seconds: float, clock: Callable[[], float] = time.monotonic):
        self.logger = logger
        self.seconds = seconds
        self.clock = clock
        self._next = 0.0
        self._held = 0

    def warning(self, msg: str, *args: Any) -> None:
        now = self.clock()
        if now < self._next:
            self._held += 1
            return
        self._next = now + self.seconds
        held, self._held = self._held, 0
        if held:
            msg = f"{msg} ({held} similar warning(s) held back)"
        self.logger.warning(msg, *args)

    def __getattr__(self, name: str) -> Any:  # anything else waitress may ask of a logger
        return getattr(self.logger, name)


def limit_queue_warnings(dispatcher: Any, seconds: float = 60.0) -> None:
    """waitress's queue-depth warning from ``dispatcher``: at most one line per ``seconds``."""
    if not isinstance(dispatcher.queue_logger, QueueDepthLog):
        dispatcher.queue_logger = QueueDepthLog(logging.getLogger("waitress.queue"), seconds)
