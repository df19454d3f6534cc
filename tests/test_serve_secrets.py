"""The webhook secret and the log redaction, as units."""

from __future__ import annotations

import io
import logging
import re

import pytest

from habitreward.errors import ConfigError
from habitreward.server.logging_filters import RedactSecrets, install_redaction
from habitreward.server.secrets import derive_webhook_secret, secret_matches, webhook_secret
from habitreward.server.wsgi import BadRequest, parse_update
from habitreward.settings import Settings

pytestmark = pytest.mark.no_db


def settings(**env: str) -> Settings:
    return Settings.load(environ=env, env_file=None)


def test_derived_secret_is_stable_allowed_by_telegram_and_not_the_token():
    secret = webhook_secret(settings(TELEGRAM_BOT_TOKEN="1:abc"))
    assert secret == derive_webhook_secret("1:abc") == webhook_secret(settings(TELEGRAM_BOT_TOKEN="1:abc"))
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret)
    assert "abc" not in secret and secret != derive_webhook_secret("1:abd")


def test_configured_secret_wins_and_must_be_valid():
    configured = "s_1-X" * 4
    assert webhook_secret(settings(TELEGRAM_BOT_TOKEN="1:abc", TELEGRAM_WEBHOOK_SECRET=configured)) == configured
    with pytest.raises(ConfigError, match="TELEGRAM_WEBHOOK_SECRET"):
        webhook_secret(settings(TELEGRAM_WEBHOOK_SECRET="x" * 257))
    with pytest.raises(ConfigError, match="is only 15 characters long .a short secret can be guessed"):
        webhook_secret(settings(TELEGRAM_WEBHOOK_SECRET="x" * 15))
    with pytest.raises(ConfigError, match="TELEGRAM_BOT_TOKEN"):
        webhook_secret(settings())


def test_secret_comparison():
    assert secret_matches("abc", "abc")
    assert not secret_matches("abc", "abd") and not secret_matches("abc", None) and not secret_matches("abc", "")


def test_redaction_covers_message_arguments_and_tracebacks():
    stream = io.StringIO()
    logger = logging.getLogger("test_serve_secrets.redaction")
    logger.propagate = False
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    install_redaction(["123:TOKEN", "the-secret"], logger=logger)
    try:
        logger.warning("POST http://api/bot%s/sendMessage with %s", "123:TOKEN", "the-secret")
        try:
            raise RuntimeError("failed: http://api/bot123:TOKEN/getMe")
        except RuntimeError:
            logger.exception("request failed")
    finally:
        logger.removeHandler(handler)
    output = stream.getvalue()
    assert "123:TOKEN" not in output and "the-secret" not in output
    assert "RuntimeError: failed: http://api/bot[REDACTED]/getMe" in output
    assert "POST http://api/bot[REDACTED]/sendMessage with [REDACTED]" in output


def test_a_configured_secret_is_redacted_unless_too_short_to_be_used():
    from habitreward.server.secrets import secrets_of

    strong = "s_1-X" * 4
    assert strong in secrets_of(settings(TELEGRAM_BOT_TOKEN="1:abc", TELEGRAM_WEBHOOK_SECRET=strong))
    assert "not a valid one but long" in secrets_of(settings(TELEGRAM_WEBHOOK_SECRET="not a valid one but long"))
    # Refused and never sent: "secret" would be taken out of every message that says the word.
    assert "secret" not in secrets_of(settings(TELEGRAM_BOT_TOKEN="1:abc", TELEGRAM_WEBHOOK_SECRET="secret"))


def test_the_llm_api_key_is_one_of_the_secrets_no_log_line_shows():
    from habitreward.server.secrets import secrets_of

    found = secrets_of(settings(TELEGRAM_BOT_TOKEN="123:TOKEN", LLM_API_KEY="sk-the-llm-key"))
    assert "sk-the-llm-key" in found
    assert RedactSecrets(found).redact("litellm: bad key sk-the-llm-key") == "litellm: bad key [REDACTED]"


def test_the_credentials_in_llm_api_base_are_secrets_no_log_line_shows():
    from habitreward.server.secrets import secrets_of

    url = "https://bot:pr0xy%40pass@llm.example/v1?key=q-key-1234&tier=2"
    line = RedactSecrets(secrets_of(settings(LLM_API_BASE=url))).redact(f"POST {url} (pr0xy@pass)")
    assert line == "POST https://bot:[REDACTED]@llm.example/v1?key=[REDACTED]&tier=2 ([REDACTED])"
    # A short one (a user name, a test key) is not looked for: it would garble every line with the word.
    short = secrets_of(settings(LLM_API_BASE="https://admin@llm.example/v1?key=test"))
    assert RedactSecrets(short).redact("admin: test run") == "admin: test run"


def test_the_credentials_in_telegram_api_url_are_secrets_no_log_line_shows():
    """A self-hosted Bot API server behind a proxy with a password: the builtin client sends it
    (Basic authorization), and an error or log line that quotes the URL must not show it."""
    from habitreward.server.secrets import secrets_of

    url = "https://bot:b0t-api-pass@botapi.example/bot"
    line = RedactSecrets(secrets_of(settings(TELEGRAM_API_URL=url))).redact(f"GET {url}123:T/getMe")
    assert line == "GET https://bot:[REDACTED]@botapi.example/bot123:T/getMe"


def test_the_credentials_in_telegram_webhook_url_are_secrets_no_log_line_shows():
    """A webhook behind a proxy with a password or a ?key=: Telegram posts to it, and a log line
    quoting the URL (a proxy's error, waitress's) must not show them."""
    from habitreward.server.secrets import secrets_of

    url = "https://hook:h00k-pass-1@bot.example/webhook/telegram?key=wh-key-12345"
    line = RedactSecrets(secrets_of(settings(TELEGRAM_WEBHOOK_URL=url))).redact(f"POST {url}")
    assert line == "POST https://hook:[REDACTED]@bot.example/webhook/telegram?key=[REDACTED]"


def test_redaction_filter_merges_when_installed_twice():
    logger = logging.getLogger("test_serve_secrets.twice")
    handler = logging.StreamHandler(io.StringIO())
    logger.addHandler(handler)
    try:
        install_redaction(["first-secret"], logger=logger)
        install_redaction(["second-secret"], logger=logger)
        filters = [f for f in handler.filters if isinstance(f, RedactSecrets)]
        assert len(filters) == 1 and set(filters[0].secrets) == {"first-secret", "second-secret"}
    finally:
        logger.removeHandler(handler)


@pytest.mark.parametrize("body", [b"", b"null", b"[]", b'{"update_id": true, "message": {}}',
                                  b'{"update_id": 1}', b'{"update_id": 1.5, "message": {}}',
                                  b'{"update_id": 1, "message": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"])
def test_what_is_not_an_update(body):
    with pytest.raises(BadRequest) as caught:
        parse_update(body)
    assert caught.value.status.startswith("400")


def test_an_update_that_cannot_be_stored_is_not_acknowledged():
    import io as _io
    import json

    from habitreward.server.wsgi import WebhookApp

    def receive(update_id, payload, data, update):
        raise RuntimeError("database is down")

    app = WebhookApp(path="/hook", secret="s3cret", receive=receive, health=lambda: (True, {}))
    body = json.dumps({"update_id": 1, "message": {"message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"}}})
    environ = {"PATH_INFO": "/hook", "REQUEST_METHOD": "POST", "CONTENT_TYPE": "application/json",
               "CONTENT_LENGTH": str(len(body)), "wsgi.input": _io.BytesIO(body.encode()),
               "HTTP_X_TELEGRAM_BOT_API_SECRET_TOKEN": "s3cret"}
    statuses = []
    answer = b"".join(app(environ, lambda status, headers: statuses.append(status)))
    assert statuses == ["503 Service Unavailable"] and b"retry" in answer  # Telegram delivers it again
