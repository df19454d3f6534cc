"""Registering the webhook with Telegram: setWebhook, getWebhookInfo, deleteWebhook.

Everything goes through ``TELEGRAM_API_URL`` when it is set (a self-hosted Bot
API server, or the test stand-in).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlparse

from habitreward.errors import ConfigError
from habitreward.server.secrets import webhook_secret
from habitreward.settings import Settings

#: The update types the bot handles; Telegram sends nothing else.
ALLOWED_UPDATES: tuple[str, ...] = ("message", "callback_query")
DEFAULT_MAX_CONNECTIONS = 40
DEFAULT_WEBHOOK_PATH = "/webhook/telegram"


def webhook_path(settings: Settings) -> str:
    """The path the server listens on: the path of TELEGRAM_WEBHOOK_URL (``/`` for none: Telegram
    posts to the root then), or /webhook/telegram when it is unset.
    ConfigError for a value that is not a URL (no request could ever reach its "path")."""
    url = settings.telegram_webhook_url
    if url:
        parts = urlparse(url)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise ConfigError(f"TELEGRAM_WEBHOOK_URL must be a URL like https://bot.example.org{DEFAULT_WEBHOOK_PATH}"
                              f", got {url!r}")
        return parts.path or "/"
    return DEFAULT_WEBHOOK_PATH


def _public_url(settings: Settings) -> str:
    url = settings.require("telegram_webhook_url")
    parts = urlparse(url)
    if parts.scheme != "https" or not parts.netloc:
        raise ConfigError(f"TELEGRAM_WEBHOOK_URL must be an https:// URL (Telegram only posts to HTTPS), got {url!r}")
    return url


def make_bot(settings: Settings) -> Any:
    """A plain telegram.Bot on the configured API URL, with the HTTP client ``serve`` uses
    (``TELEGRAM_HTTP_CLIENT``, see :func:`habitreward.bot.request.make_bot_request`)."""
    from telegram import Bot

    from habitreward.bot.request import make_bot_request

    kwargs: dict[str, Any] = {}
    if settings.telegram_api_url:
        kwargs["base_url"] = settings.telegram_api_url
    # One call at the command line: a refused connection is said at once, not tried again.
    request = make_bot_request(settings, pool_size=1, retry_not_connected=False)
    if request is not None:
        kwargs["request"] = request
    return Bot(settings.require("telegram_bot_token"), **kwargs)


def _with_bot(settings: Settings, call: Callable[[Any], Awaitable[Any]]) -> Any:
    async def run() -> Any:
        bot = make_bot(settings)
        async with bot:
            return await call(bot)

    return asyncio.run(run())


def registration(settings: Settings) -> tuple[str, str]:
    """The URL and the secret ``set_webhook`` registers; ConfigError when either could not be.
    ``serve --set-webhook`` asks before it starts anything: a start refused then is one line."""
    return _public_url(settings), webhook_secret(settings)


def set_webhook(
    settings: Settings, *, max_connections: int = DEFAULT_MAX_CONNECTIONS, drop_pending: bool = False
) -> dict[str, Any]:
    """Point Telegram at TELEGRAM_WEBHOOK_URL with the secret; what was registered."""
    url, secret = registration(settings)

    async def call(bot: Any) -> None:
        await bot.set_webhook(
            url,
            secret_token=secret,
            max_connections=max_connections,
            allowed_updates=list(ALLOWED_UPDATES),
            drop_pending_updates=drop_pending,
        )

    _with_bot(settings, call)
    return {
        "url": url,
        "max_connections": max_connections,
        "allowed_updates": list(ALLOWED_UPDATES),
        "drop_pending_updates": drop_pending,
    }


def webhook_info(settings: Settings) -> dict[str, Any]:
    """Telegram's getWebhookInfo, as a dict."""

    async def call(bot: Any) -> dict[str, Any]:
        return (await bot.get_webhook_info()).to_dict()

    return _with_bot(settings, call)


def delete_webhook(settings: Settings, *, drop_pending: bool = False) -> bool:
    async def call(bot: Any) -> bool:
        return bool(await bot.delete_webhook(drop_pending_updates=drop_pending))

    return _with_bot(settings, call)
