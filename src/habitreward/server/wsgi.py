"""The webhook as a plain WSGI application (served by waitress, usable under any WSGI server).

``POST <webhook path>``: check the secret header, the content type, the size and
the JSON; store the update in the inbox (committed); answer 200; hand the
update to the bot loop. Anything wrong gets a clear 4xx and changes nothing.
``GET /healthz``: the database and the bot loop, as JSON (200 or 503).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from habitreward.server.secrets import secret_matches

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024  # 1 MiB; a real Update is a few KiB
SECRET_ENVIRON_KEY = "HTTP_X_TELEGRAM_BOT_API_SECRET_TOKEN"
MAX_UPDATE_ID = 2**63 - 1

StartResponse = Callable[..., Any]


class BadRequest(Exception):
    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def parse_update(body: bytes, bot: Any = None) -> tuple[dict[str, Any], Any]:
    """The Update in ``body`` as JSON and as python-telegram-bot's ``Update`` (bound to
    ``bot``, so the loop can use it as it is), or BadRequest('400 ...') saying what is wrong."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest("400 Bad Request", f"malformed JSON: {exc}") from None
    except RecursionError:  # nested deeper than the decoder goes (no real Update is)
        raise BadRequest("400 Bad Request", "malformed JSON: nested too deeply") from None
    update_id = data.get("update_id") if isinstance(data, dict) else None
    if type(update_id) is not int or not 0 <= update_id <= MAX_UPDATE_ID:
        raise BadRequest("400 Bad Request", "not a Telegram Update: no integer update_id")
    if not any(isinstance(v, dict) for k, v in data.items() if k != "update_id"):
        raise BadRequest("400 Bad Request", "not a Telegram Update: no message, callback_query or other content")
    try:
        from telegram import Update

        update = Update.de_json(data, bot)
    except Exception as exc:  # whatever PTB cannot read would fail later, in the loop
        raise BadRequest("400 Bad Request", f"not a Telegram Update: {type(exc).__name__}") from None
    return data, update


class WebhookApp:
    """The WSGI callable. ``receive(update_id, payload, data, update) -> bool`` stores an update
    (committed) and hands it to the bot, False when it was seen before (``data``: the JSON,
    ``update``: PTB's Update, bound to ``bot``); ``health()`` -> (ok, details)."""

    def __init__(
        self,
        *,
        path: str,
        secret: str,
        receive: Callable[[int, str, dict[str, Any], Any], bool],
        health: Callable[[], tuple[bool, dict[str, Any]]],
        max_body: int = MAX_BODY_BYTES,
        bot: Any = None,
    ):
        self.bot = bot
        self.path = path
        self.secret = secret
        self.receive = receive
        self.health = health
        self.max_body = max_body
        self.accepting = True

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        method = environ.get("REQUEST_METHOD", "GET").upper()
        try:
            if path == self.path:
                if method != "POST":
                    raise BadRequest("405 Method Not Allowed", "use POST")
                return self._webhook(environ, start_response)
            if path == "/healthz":
                if method not in ("GET", "HEAD"):
                    raise BadRequest("405 Method Not Allowed", "use GET")
                return self._health(start_response)
            raise BadRequest("404 Not Found", "not found")
        except BadRequest as exc:
            extra = [("Allow", "POST" if path == self.path else "GET, HEAD")] if exc.status.startswith("405") else []
            return _json(start_response, exc.status, {"ok": False, "error": exc.message}, extra)

    def _webhook(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if not secret_matches(self.secret, environ.get(SECRET_ENVIRON_KEY)):
            raise BadRequest("403 Forbidden", "missing or wrong X-Telegram-Bot-Api-Secret-Token")
        if not self.accepting:
            raise BadRequest("503 Service Unavailable", "shutting down")
        content_type = (environ.get("CONTENT_TYPE") or "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise BadRequest("415 Unsupported Media Type", "Content-Type must be application/json")
        body = self._read_body(environ)
        data, update = parse_update(body, self.bot)
        update_id = data["update_id"]
        try:
            new = self.receive(update_id, body.decode("utf-8"), data, update)
        except Exception as exc:  # e.g. the database is down: not stored, so not 2xx; Telegram retries
            logger.error("update %s: could not be stored: %s", update_id, str(exc).strip())  # psycopg2 ends in \n
            raise BadRequest("503 Service Unavailable", "could not store the update; retry later") from None
        if not new:
            logger.info("update %s: seen before, acknowledged", update_id)
        return _json(start_response, "200 OK", {"ok": True})

    def _read_body(self, environ: dict[str, Any]) -> bytes:
        try:
            length = int(environ.get("CONTENT_LENGTH") or -1)
        except ValueError:
            raise BadRequest("400 Bad Request", "invalid Content-Length") from None
        if length > self.max_body:
            raise BadRequest("413 Content Too Large", f"body over {self.max_body} bytes")
        stream = environ["wsgi.input"]
        # Never read more than the cap, whatever the headers claim.
        body = stream.read(length if length >= 0 else self.max_body + 1)
        if len(body) > self.max_body:
            raise BadRequest("413 Content Too Large", f"body over {self.max_body} bytes")
        return body

    def _health(self, start_response: StartResponse) -> Iterable[bytes]:
        ok, details = self.health()
        return _json(start_response, "200 OK" if ok else "503 Service Unavailable", {"ok": ok, **details})


def _json(start_response: StartResponse, status: str, payload: dict[str, Any],
          extra_headers: list[tuple[str, str]] | None = None) -> list[bytes]:
    body = json.dumps(payload).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    start_response(status, headers + (extra_headers or []))
    return [body]
