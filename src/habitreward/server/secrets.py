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
from habitreward.redaction import url_secrets
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
        problem = _what_is_wrong(configured)
        if problem:
            # Names the setting and what is wrong, never the value (a log may keep this line).
            raise ConfigError(
                f"TELEGRAM_WEBHOOK_SECRET {problem}; it must be {MIN_SECRET_LENGTH}-256 characters of A-Z, a-z,"
                " 0-9, _ and -. Leave it unset to use one derived from the token, or make one with:"
                " python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return configured
    return derive_webhook_secret(settings.require("telegram_bot_token"))


def _what_is_wrong(secret: str) -> str | None:
    refused = list(dict.fromkeys(c for c in secret if not _ALLOWED.match(c)))
    if refused:  # the characters, not the secret: base64's + / =, a line end an editor left
        shown = ["a space" if c == " " else repr(c) for c in refused[:5]]
        listed = shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} and {shown[-1]}"
        return f"has {listed}{' (and more)' if len(refused) > 5 else ''} in it, which Telegram does not accept"
    if len(secret) > 256:
        return f"is {len(secret)} characters long; Telegram accepts at most 256"
    if len(secret) < MIN_SECRET_LENGTH:
        return (f"is only {len(secret)} characters long (a short secret can be guessed, and it is all a forged"
                " update needs)")
    return None


def secrets_of(settings: Settings) -> list[str]:
    """What no log line or message may show: the bot token, the webhook secrets (the
    configured one and the one derived from the token), LLM_API_KEY and the credentials in
    LLM_API_BASE, TELEGRAM_API_URL and TELEGRAM_WEBHOOK_URL (``https://user:password@host/...``,
    ``?api_key=...``).

    A configured secret shorter than MIN_SECRET_LENGTH is left out: refused, it is never
    sent or compared, and replacing a word such as "secret" wherever it occurs garbled
    messages (the refusal itself) and showed the word by where the marks stood."""
    token = settings.telegram_bot_token
    configured = settings.telegram_webhook_secret
    found = [token, configured if configured and len(configured) >= MIN_SECRET_LENGTH else None,
             derive_webhook_secret(token) if token else None, settings.llm_api_key,
             *url_secrets(settings.llm_api_base), *url_secrets(settings.telegram_api_url),
             *url_secrets(settings.telegram_webhook_url)]
    if token and ":" in token:  # its secret half alone: an HTTP client may quote just that part of a URL
        found.append(token.split(":", 1)[1])
    return [secret for secret in found if secret]


def secret_matches(expected: str, given: str | None) -> bool:
    """Constant-time comparison, so response timing tells nothing about the secret."""
    if given is None:
        return False
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace"))
