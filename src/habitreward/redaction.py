"""What no output may show: secrets in log lines and messages, credentials in URLs that are shown.

One place for the server (the filter on every log handler), the command line (its errors, the
settings ``habitreward stats`` shows, the pg_dump command ``backup`` prints) and the LLM matcher
(litellm's own log lines, a provider's error that quotes the key back). Standard library only:
the engine's layers import it without the server's.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping
from urllib.parse import unquote_plus, urlsplit

REDACTED = "[REDACTED]"

#: Query parameters that carry a credential (``?key=`` of Google's APIs, ``?api_key=``, ``?token=``,
#: ``?sig=`` of a signed URL, ``?password=`` of libpq...): the last word of the name decides.
_SECRET_NAME = re.compile(
    r"(?:^|[_.-])(?:api[_-]?key|apikey|key|token|secret|password|passwd|pwd|sig|signature|auth|credentials?)$",
    re.IGNORECASE,
)
#: Environment variables whose value may be a key litellm sends (OPENAI_API_KEY, HF_TOKEN...).
_SECRET_VARIABLE_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD")


def is_secret_name(name: str) -> bool:
    """Whether a URL query parameter called ``name`` holds a credential."""
    return bool(_SECRET_NAME.search(name.strip()))


def hide_url_credentials(
    url: str, *, keep_user: bool = False, mark: str | None = REDACTED,
    secret_name: Callable[[str], bool] = is_secret_name,
) -> str:
    """``url`` with its credentials replaced by ``mark``: the user info (``user:password@``, or just the
    password with ``keep_user``) and each query value whose name says it is a credential
    (``?api_key=``). ``mark=None`` leaves them out instead: the password with its ``:``, the query
    parameter whole (a command to run: pg_dump asks for a password it is not given)."""
    parts = urlsplit(url)
    netloc = parts.netloc
    userinfo, at, host = netloc.rpartition("@")
    if at:
        user, colon, _password = userinfo.partition(":")
        if keep_user:
            shown = f"{user}:{mark}" if colon and mark is not None else user
        else:
            shown = mark or ""
        netloc = f"{shown}@{host}" if shown else host
    pairs, hidden = [], False
    for pair in parts.query.split("&") if parts.query else []:
        name, equals, _value = pair.partition("=")
        if equals and secret_name(unquote_plus(name)):
            hidden = True
            if mark is None:
                continue
            pair = f"{name}={mark}"
        pairs.append(pair)
    if not at and not hidden:
        return url
    # Put together by hand: urlunsplit would drop a '?' or '#' left empty, and quote the mark.
    shown_url = (f"{parts.scheme}:" if parts.scheme else "") + f"//{netloc}" + parts.path
    if pairs:
        shown_url += "?" + "&".join(pairs)
    if parts.fragment:
        shown_url += "#" + parts.fragment
    return shown_url


#: Shorter credentials of a URL are not looked for in log lines: replacing a word such as "admin"
#: (``https://admin@host``) or "test" (``?key=test``) wherever it occurs garbles every line with it.
MIN_URL_SECRET_LENGTH = 8


def url_secrets(url: str | None) -> list[str]:
    """What no log line may show of ``url``: its password (or its user name when it has no password:
    ``https://TOKEN@host``) and each credential in its query, as written and decoded, when of
    :data:`MIN_URL_SECRET_LENGTH` characters or more (it is shown redacted whatever its length:
    :func:`hide_url_credentials`)."""
    if not url:
        return []
    parts = urlsplit(url)
    userinfo, at, _host = parts.netloc.rpartition("@")
    found: list[str] = []
    if at:
        user, colon, password = userinfo.partition(":")
        found.append(password if colon else user)
    for pair in parts.query.split("&") if parts.query else []:
        name, equals, value = pair.partition("=")
        if equals and is_secret_name(unquote_plus(name)):
            found.append(value)
    return [form for secret in found if secret for form in {secret, unquote_plus(secret)}
            if len(form) >= MIN_URL_SECRET_LENGTH]


def environment_keys(environ: Mapping[str, str] | None = None) -> set[str]:
    """Values of the environment that look like a key a library may take from it on its own
    (litellm: OPENAI_API_KEY, ANTHROPIC_API_KEY, HF_TOKEN...)."""
    environ = os.environ if environ is None else environ
    return {
        value for name, value in environ.items()
        if len(value) >= 8 and any(word in name.upper() for word in _SECRET_VARIABLE_WORDS)
    }


class RedactSecrets(logging.Filter):
    """Replaces each secret with ``[REDACTED]`` in the formatted message and the traceback."""

    def __init__(self, secrets: Iterable[str | None]):
        super().__init__()
        # Longest first, so a secret that contains another is replaced whole.
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def add(self, secrets: Iterable[str | None]) -> None:
        merged = set(self.secrets) | {s for s in secrets if s and len(s) >= 4}
        self.secrets = sorted(merged, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to the handler's own error path
            return True
        record.msg, record.args = self.redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


__all__ = ["REDACTED", "RedactSecrets", "environment_keys", "hide_url_credentials", "is_secret_name", "url_secrets"]
