"""The webhook secret Telegram sends in ``X-Telegram-Bot-Api-Secret-Token``.

``TELEGRAM_WEBHOOK_SECRET`` when set; otherwise derived from the bot token with
HMAC-SHA256 under a fixed label, so ``habitreward webhook set`` and
``habitreward serve --webhook`` agree without any extra configuration, and the
token itself never travels in the header.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from habitreward.errors import ConfigError
from habitreward.settings import Settings

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
#: What Telegram accepts as a secret_token: 1-256 characters of A-Z, a-z, 0-9, _ and -.
_ALLOWED = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
#: Shorter configured secrets are refused: a forged update needs only the secret, and a short
#: one is guessed by trying (Telegram itself accepts one character).
MIN_SECRET_LENGTH = 16
_LABEL = b"habitreward webhook secret v1"


def derive_webhook_secret(token: str) -> str:
    """A stable secret derived from ``token`` (64 hex characters, within Telegram's charset)."""
    return hmac.new(token.encode(), _LABEL, hashlib.sha256).hexdigest()


def webhook_secret(settings: Settings) -> str:
    """The secret in force: the configured one (checked) or the one derived from the token."""
    configured = settings.telegram_webhook_secret
    if configured:
        if not _ALLOWED.match(configured):
            raise ConfigError(
                f"TELEGRAM_WEBHOOK_SECRET must be {MIN_SECRET_LENGTH}-256 characters of A-Z, a-z, 0-9, _ and -"
                " (Telegram's characters)"
            )
        if len(configured) < MIN_SECRET_LENGTH:
            raise ConfigError(
                f"TELEGRAM_WEBHOOK_SECRET must be at least {MIN_SECRET_LENGTH} characters (a short one can be"
                " guessed): leave it unset to use one derived from the token, or make one with"
                " python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return configured
    return derive_webhook_secret(settings.require("telegram_bot_token"))


def secrets_of(settings: Settings) -> list[str]:
    """What no log line or message may show: the bot token, the webhook secrets (the
    configured one, valid or not, and the one derived from the token) and LLM_API_KEY."""
    token = settings.telegram_bot_token
    found = [token, settings.telegram_webhook_secret, derive_webhook_secret(token) if token else None,
             settings.llm_api_key]
    if token and ":" in token:  # its secret half alone: an HTTP client may quote just that part of a URL
        found.append(token.split(":", 1)[1])
    return [secret for secret in found if secret]


def secret_matches(expected: str, given: str | None) -> bool:
    """Constant-time comparison, so response timing tells nothing about the secret."""
    if given is None:
        return False
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace"))
