"""An in-process stand-in for Telegram's Bot API, for tests and ``habitreward chat``.

It is a real HTTP server on 127.0.0.1 (an ephemeral port, a background thread), so
the bot under test goes through python-telegram-bot's real request code. It answers
the methods the bot uses with realistic JSON, records every call, remembers the
messages it "delivered" (with edits applied) and can be told to fail a method, so
tests read what a user would see and exercise error handling::

    with BotApiStandIn() as api:
        app = build_application(engine, token="123456:TEST", base_url=api.base_url)
        ...
        api.last_text(42), api.last_buttons(42)
"""

from __future__ import annotations

import copy
import email.parser
import email.policy
import html
import json
import re
import socket
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

# Parameters Telegram takes as plain strings. PTB sends every other parameter JSON
# encoded, so these must not be decoded (a text "42" is a string, a chat_id 42 is not).
STRING_PARAMS = frozenset(
    {
        "text", "caption", "parse_mode", "callback_query_id", "inline_message_id", "url",
        "secret_token", "language_code", "description", "short_description", "name", "query",
        "ip_address", "action", "emoji", "title", "sticker", "photo", "document",
        "certificate", "message_effect_id", "business_connection_id",
    }
)

#: Methods whose result is a message the user sees (and ``sent()`` reports).
MESSAGE_METHODS = frozenset(
    {"sendmessage", "editmessagetext", "editmessagereplymarkup", "sendphoto", "senddocument", "editmessagecaption"}
)

BOT_ID_DEFAULT = 123456

# Telegram's limits, as its servers enforce them (core.telegram.org/bots/api and observed).
MAX_TEXT = 4096  # UTF-16 code units after entity parsing (an emoji such as 🏃 is 2)
MAX_CAPTION = 1024
MAX_CALLBACK_DATA_BYTES = 64
MAX_INLINE_BUTTONS, MAX_INLINE_PER_ROW = 100, 8
MAX_REPLY_BUTTONS, MAX_REPLY_PER_ROW = 300, 12
MAX_MARKUP_JSON = 10_000
HTML_TAGS = frozenset({"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a",
                       "code", "pre", "blockquote", "tg-emoji"})
_TAG_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]*")


def _decode_value(key: str, value: str) -> Any:
    if key in STRING_PARAMS:
        return value
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return value


def buttons_of(markup: dict | None) -> list[list[tuple[str, str | None]]]:
    """Rows of (text, callback_data) of an inline keyboard, or (text, None) of a reply keyboard."""
    if not markup:
        return []
    if "inline_keyboard" in markup:
        return [[(b.get("text", ""), b.get("callback_data")) for b in row] for row in markup["inline_keyboard"]]
    if "keyboard" in markup:
        return [
            [((b.get("text", "") if isinstance(b, dict) else str(b)), None) for b in row]
            for row in markup["keyboard"]
        ]
    return []


class _ApiError(Exception):
    def __init__(self, error_code: int, description: str):
        super().__init__(description)
        self.error_code = error_code
        self.description = description


def _bad(description: str) -> _ApiError:
    return _ApiError(400, f"Bad Request: {description}")


def visible_text(text: str, parse_mode: str | None) -> str:
    """What the user reads: for HTML, checked as Telegram parses it (supported tags,
    properly nested), tags removed and entities decoded."""
    if (parse_mode or "").lower() != "html":
        return text
    stack: list[str] = []
    pos = 0
    while True:
        start = text.find("<", pos)
        if start == -1:
            break
        offset = len(text[:start].encode("utf-8"))
        end = text.find(">", start)
        if end == -1:
            raise _bad(f"can't parse entities: Unclosed start tag at byte offset {offset}")
        inner = text[start + 1:end]
        closing = inner.startswith("/")
        match = _TAG_NAME.match(inner[1:] if closing else inner)
        name = match.group(0).lower() if match else ""
        if name not in HTML_TAGS:
            raise _bad(f'can\'t parse entities: Unsupported start tag "{name or inner}" at byte offset {offset}')
        if closing:
            if not stack or stack[-1] != name:
                expected = f"</{stack[-1]}>" if stack else "nothing"
                raise _bad(f'can\'t parse entities: Unmatched end tag at byte offset {offset}, '
                           f'expected "{expected}", found "</{name}>"')
            stack.pop()
        else:
            stack.append(name)
        pos = end + 1
    if stack:
        raise _bad(f'can\'t parse entities: Can\'t find end tag corresponding to start tag "{stack[-1]}"')
    return html.unescape(re.sub(r"<[^>]*>", "", text))


def check_markup(markup: Any) -> None:
    """Refuse a keyboard Telegram would refuse (too many buttons, oversized callback data)."""
    if not isinstance(markup, dict):
        return
    if len(json.dumps(markup, ensure_ascii=False).encode("utf-8")) > MAX_MARKUP_JSON:
        raise _bad("reply markup is too long")
    if "inline_keyboard" in markup:
        rows, max_total, max_row = markup["inline_keyboard"], MAX_INLINE_BUTTONS, MAX_INLINE_PER_ROW
    elif "keyboard" in markup:
        rows, max_total, max_row = markup["keyboard"], MAX_REPLY_BUTTONS, MAX_REPLY_PER_ROW
    else:
        return
    if sum(len(row) for row in rows) > max_total or any(len(row) > max_row for row in rows):
        raise _bad("reply markup is too long")
    for row in rows:
        for button in row:
            if not isinstance(button, dict):
                continue
            if "inline_keyboard" in markup and len(button) == 1:  # a text and no action
                raise _bad("text buttons are unallowed in the inline keyboard")
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode("utf-8")) <= MAX_CALLBACK_DATA_BYTES:
                raise _bad("BUTTON_DATA_INVALID")


def check_text(text: Any, parse_mode: str | None, *, limit: int = MAX_TEXT, caption: bool = False) -> None:
    visible = visible_text(str(text or ""), parse_mode)
    if not caption and not visible.strip():
        raise _bad("message text is empty")
    if len(visible.encode("utf-16-le")) // 2 > limit:  # Telegram counts UTF-16 code units
        raise _bad("message caption is too long" if caption else "message is too long")


class _QuietHTTPServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (a timeout, an outage, a cut): nothing to print."""
        import sys

        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class BotApiStandIn:
    """A fake Bot API server. Thread-safe; use as a context manager or ``start()``/``stop()``.

    It refuses what Telegram refuses, with Telegram's 400 descriptions: HTML that does
    not parse (unsupported or unclosed tags, e.g. an unescaped user-supplied name), text
    over 4096 UTF-16 code units (an emoji counts twice) or empty, callback data over 64 bytes, keyboards over 100
    inline buttons (8 a row); editing a message to exactly what it already shows
    ("message is not modified") or a message that is not there ("message to edit not
    found"). ``validate=False`` / ``lenient_edits=True`` switch these off.
    """

    def __init__(self, *, host: str = "127.0.0.1", bot_username: str = "habitreward_test_bot",
                 bot_first_name: str = "HabitReward", lenient_edits: bool = False, validate: bool = True):
        self.host = host
        self.lenient_edits = lenient_edits
        self.validate = validate
        self.bot_username = bot_username
        self.bot_first_name = bot_first_name
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._call_times: list[float] = []  # time.monotonic() of each of ``calls``
        self._lock = threading.RLock()
        self._updates_changed = threading.Condition(self._lock)
        self._updates: list[dict[str, Any]] = []
        self._sent: list[dict[str, Any]] = []
        self._messages: dict[tuple[int, int], dict[str, Any]] = {}
        self._next_message_id: dict[int, int] = defaultdict(lambda: 1)
        self._failures: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._delays: dict[str, list[float]] = defaultdict(list)
        self._cuts: dict[str, int] = defaultdict(int)
        self._connections: set[socket.socket] = set()
        self._port = 0  # kept across an outage: the bot comes back to the same address
        self._down = False
        self._commands: dict[str, list[dict[str, Any]]] = {}
        self._webhook: dict[str, Any] = {"url": "", "has_custom_certificate": False, "pending_update_count": 0}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> BotApiStandIn:
        if self._server is not None:
            return self
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes; without TCP_NODELAY each call
            # waits for a delayed ACK (~40 ms), which dominates bot tests.
            disable_nagle_algorithm = True

            def do_POST(self) -> None:  # noqa: N802 (http.server naming)
                standin._handle_http(self)

            do_GET = do_POST  # noqa: N815

            def setup(self) -> None:
                super().setup()
                with standin._lock:
                    standin._connections.add(self.connection)

            def finish(self) -> None:
                with standin._lock:
                    standin._connections.discard(self.connection)
                try:
                    super().finish()
                except OSError:  # cut by cut_next or an outage
                    pass

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass  # keep test output clean

        self._stopping = False
        self._server = _QuietHTTPServer((self.host, self._port), Handler)
        self._port = self._server.server_address[1]
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="BotApiStandIn",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        with self._lock:
            self._stopping = True
            self._updates_changed.notify_all()  # release long polls
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def go_down(self) -> None:
        """Become unreachable, as when the network or Telegram is down: connections to the port
        are refused and those already open (a long poll, a pooled keep-alive one) are cut, until
        :meth:`come_back` listens on the same port again."""
        with self._lock:
            self._down = True  # a call arriving meanwhile on an open connection is cut, not answered
            self._updates_changed.notify_all()
        self.stop()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def come_back(self) -> BotApiStandIn:
        """Listen again, on the port of before :meth:`go_down` (state and queued updates kept)."""
        self._down = False
        return self.start()

    def __enter__(self) -> BotApiStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("BotApiStandIn is not started")
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        """What to pass as ``base_url`` to PTB (it appends the token)."""
        return f"http://{self.host}:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://{self.host}:{self.port}/file/bot"

    # --- test-facing API -------------------------------------------------------------------

    def queue_update(self, update: dict[str, Any]) -> None:
        """Make ``update`` available to getUpdates (long polling)."""
        with self._lock:
            self._updates.append(copy.deepcopy(update))
            self._updates_changed.notify_all()

    def pending_updates(self) -> int:
        with self._lock:
            return len(self._updates)

    def fail_next(self, method: str, error_code: int = 429, description: str | None = None,
                  retry_after: int | None = None, *, times: int = 1, chat_id: int | None = None) -> None:
        """Make the next ``times`` calls of ``method`` fail as Telegram would (``chat_id``: only
        those to that chat, as Telegram's flood control of one chat)."""
        if description is None:
            description = {
                429: f"Too Many Requests: retry after {retry_after or 1}",
                403: "Forbidden: bot was blocked by the user",
                400: "Bad Request: message is not modified",
            }.get(error_code, "Error")
        if error_code == 429 and retry_after is None:
            retry_after = 1
        failure: dict[str, Any] = {"ok": False, "error_code": error_code, "description": description}
        if retry_after is not None:
            failure["parameters"] = {"retry_after": retry_after}
        with self._lock:
            self._failures[method.lower()].extend(
                {"chat_id": chat_id, "answer": copy.deepcopy(failure)} for _ in range(times))

    def delay_next(self, method: str, seconds: float, *, times: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` ``seconds`` late (a slow Telegram): the
        call is done (a message delivered) only then, and answered as usual if the client still
        listens."""
        with self._lock:
            self._delays[method.lower()].extend([seconds] * times)

    def cut_next(self, method: str, *, times: int = 1) -> None:
        """Cut the connection in the middle of the answer to the next ``times`` calls of
        ``method``: the call is done (a message delivered), the client gets half an answer and a
        closed connection, as when a connection is reset on the way back."""
        with self._lock:
            self._cuts[method.lower()] += times

    def clear(self) -> None:
        """Forget recorded calls and messages (message ids keep increasing)."""
        with self._lock:
            self.calls.clear()
            self._call_times.clear()
            self._sent.clear()
            self._messages.clear()

    def call_count(self) -> int:
        with self._lock:
            return len(self.calls)

    def calls_since(self, index: int) -> list[tuple[str, dict[str, Any]]]:
        with self._lock:
            return copy.deepcopy(self.calls[index:])

    def calls_of(self, method: str) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(p) for m, p in self.calls if m.lower() == method.lower()]

    def timed_calls_of(self, method: str) -> list[tuple[float, dict[str, Any]]]:
        """Like :meth:`calls_of`, each call with the ``time.monotonic()`` it arrived at."""
        with self._lock:
            return [(at, copy.deepcopy(p)) for at, (m, p) in zip(self._call_times, self.calls, strict=True)
                    if m.lower() == method.lower()]

    def sent(self, chat_id: int | None = None) -> list[dict[str, Any]]:
        """Messages sent or edited, in order: dicts with method, chat_id, message_id, text,
        parse_mode, reply_markup and buttons (rows of (text, callback_data))."""
        with self._lock:
            return [copy.deepcopy(m) for m in self._sent if chat_id is None or m["chat_id"] == chat_id]

    def sent_count(self) -> int:
        with self._lock:
            return len(self._sent)

    def sent_since(self, index: int) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(m) for m in self._sent[index:]]

    def last_message(self, chat_id: int) -> dict[str, Any] | None:
        sent = self.sent(chat_id)
        return sent[-1] if sent else None

    def last_text(self, chat_id: int) -> str | None:
        last = self.last_message(chat_id)
        return last["text"] if last else None

    def last_buttons(self, chat_id: int) -> list[list[tuple[str, str | None]]]:
        """The keyboard of the last message sent or edited in ``chat_id`` ([] without one)."""
        last = self.last_message(chat_id)
        return last["buttons"] if last else []

    def messages(self, chat_id: int) -> list[dict[str, Any]]:
        """Current state (edits applied) of the messages in ``chat_id``, newest last."""
        with self._lock:
            found = [m for (c, _), m in self._messages.items() if c == chat_id]
            return copy.deepcopy(sorted(found, key=lambda m: m["message_id"]))

    def message(self, chat_id: int, message_id: int) -> dict[str, Any] | None:
        with self._lock:
            found = self._messages.get((chat_id, message_id))
            return copy.deepcopy(found) if found else None

    def answers(self, callback_query_id: str | None = None) -> list[dict[str, Any]]:
        """answerCallbackQuery calls (the toast or alert a user sees after pressing a button)."""
        return [
            a for a in self.calls_of("answerCallbackQuery")
            if callback_query_id is None or str(a.get("callback_query_id")) == str(callback_query_id)
        ]

    def allocate_message_id(self, chat_id: int) -> int:
        """A fresh message id in ``chat_id`` (incoming user messages share the counter)."""
        with self._lock:
            message_id = self._next_message_id[chat_id]
            self._next_message_id[chat_id] = message_id + 1
            return message_id

    def commands(self, language_code: str = "", scope: str = "default") -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._commands.get(f"{scope}:{language_code}", []))

    # --- HTTP ----------------------------------------------------------------------

    def _handle_http(self, request: BaseHTTPRequestHandler) -> None:
        path = urlsplit(request.path).path
        parts = path.strip("/").split("/")
        if len(parts) != 2 or not parts[0].startswith("bot"):
            self._reply(request, 404, {"ok": False, "error_code": 404, "description": "Not Found"})
            return
        token, method = parts[0][3:], parts[1]
        try:
            params = self._read_params(request)
        except ValueError as exc:
            self._reply(request, 400, {"ok": False, "error_code": 400, "description": f"Bad Request: {exc}"})
            return
        with self._lock:
            delays = self._delays.get(method.lower())
            delay = delays.pop(0) if delays else 0.0
        if delay:
            time.sleep(delay)
        if self._down:  # went down meanwhile: no answer
            self._hang_up(request)
            return
        status, body = self.handle_call(token, method, params)
        if self._down:  # a long poll the outage ended
            self._hang_up(request)
            return
        with self._lock:
            cut = self._cuts.get(method.lower(), 0) > 0
            if cut:
                self._cuts[method.lower()] -= 1
        if cut:
            self._cut(request, status, body)
            return
        self._reply(request, status, body)

    @staticmethod
    def _hang_up(request: BaseHTTPRequestHandler) -> None:
        request.close_connection = True
        try:
            request.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    @classmethod
    def _cut(cls, request: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode("utf-8")
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data[: len(data) // 2])
        request.wfile.flush()
        cls._hang_up(request)

    @staticmethod
    def _read_params(request: BaseHTTPRequestHandler) -> dict[str, Any]:
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length) if length else b""
        content_type = request.headers.get("Content-Type", "")
        params: dict[str, Any] = {}
        query = urlsplit(request.path).query
        for key, value in parse_qsl(query, keep_blank_values=True):
            params[key] = _decode_value(key, value)
        if not raw:
            return params
        if content_type.startswith("application/json"):
            params.update(json.loads(raw.decode("utf-8")))
        elif content_type.startswith("multipart/form-data"):
            message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                f"Content-Type: {content_type}\r\n\r\n".encode() + raw
            )
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                if not name:
                    continue
                if part.get_filename():
                    content = part.get_payload(decode=True)
                    params[name] = {"filename": part.get_filename(), "size": len(content), "content": content,
                                    "content_type": part.get_content_type()}
                else:
                    params[name] = _decode_value(name, part.get_content())
        else:
            for key, value in parse_qsl(raw.decode("utf-8"), keep_blank_values=True):
                params[key] = _decode_value(key, value)
        return params

    @staticmethod
    def _reply(request: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode("utf-8")
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    # --- Bot API methods -----------------------------------------------------------------

    def handle_call(self, token: str, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Answer one Bot API call: (HTTP status, JSON body). Public so subclasses can extend it."""
        key = method.lower()
        with self._lock:
            self.calls.append((method, copy.deepcopy(params)))
            self._call_times.append(time.monotonic())
            failures = self._failures.get(key)
            for index, failure in enumerate(failures or ()):
                if failure["chat_id"] is None or str(failure["chat_id"]) == str(params.get("chat_id")):
                    del failures[index]  # type: ignore[union-attr]
                    return failure["answer"]["error_code"], failure["answer"]
        if key == "getupdates":
            return 200, {"ok": True, "result": self._get_updates(params)}
        with self._lock:
            handler = getattr(self, f"_api_{key}", None)
            try:
                result = handler(token, params) if handler else True
            except _ApiError as exc:
                return exc.error_code, {"ok": False, "error_code": exc.error_code, "description": exc.description}
            return 200, {"ok": True, "result": result}

    def _bot_user(self, token: str) -> dict[str, Any]:
        prefix = token.split(":", 1)[0]
        bot_id = int(prefix) if prefix.isdigit() else BOT_ID_DEFAULT
        return {"id": bot_id, "is_bot": True, "first_name": self.bot_first_name, "username": self.bot_username}

    def _api_getme(self, token: str, params: dict[str, Any]) -> dict[str, Any]:
        return {**self._bot_user(token), "can_join_groups": True, "can_read_all_group_messages": False,
                "supports_inline_queries": False, "can_connect_to_business": False, "has_main_web_app": False}

    def _store_message(self, method: str, message: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        chat_id = message["chat"]["id"]
        self._messages[(chat_id, message["message_id"])] = message
        markup = message.get("reply_markup") or params.get("reply_markup")
        self._sent.append({
            "method": method,
            "chat_id": chat_id,
            "message_id": message["message_id"],
            "text": message.get("text", message.get("caption")),
            "parse_mode": params.get("parse_mode"),
            "reply_markup": copy.deepcopy(markup),
            "buttons": buttons_of(markup),
        })
        return message

    def _chat(self, chat_id: Any) -> dict[str, Any]:
        chat_id = int(chat_id)
        if chat_id > 0:
            return {"id": chat_id, "type": "private", "first_name": "Test"}
        return {"id": chat_id, "type": "supergroup", "title": "Test group"}

    def _new_message(self, token: str, params: dict[str, Any], **content: Any) -> dict[str, Any]:
        chat_id = int(params["chat_id"])
        message_id = self._next_message_id[chat_id]
        self._next_message_id[chat_id] = message_id + 1
        message = {"message_id": message_id, "from": self._bot_user(token), "chat": self._chat(chat_id),
                   "date": int(time.time()), **content}
        markup = params.get("reply_markup")
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            message["reply_markup"] = markup  # Telegram echoes only inline keyboards
        return message

    def _check(self, params: dict[str, Any], *, text_key: str | None = "text") -> None:
        if not self.validate:
            return
        if text_key == "text":
            check_text(params.get("text"), params.get("parse_mode"))
        elif text_key == "caption" and params.get("caption"):
            check_text(params.get("caption"), params.get("parse_mode"), limit=MAX_CAPTION, caption=True)
        check_markup(params.get("reply_markup"))

    def _api_sendmessage(self, token: str, params: dict[str, Any]) -> dict[str, Any]:
        self._check(params)
        message = self._new_message(token, params, text=str(params.get("text", "")))
        return self._store_message("sendMessage", message, params)

    def _api_sendphoto(self, token: str, params: dict[str, Any]) -> dict[str, Any]:
        self._check(params, text_key="caption")
        photo = [{"file_id": "photo-1", "file_unique_id": "p1", "width": 90, "height": 90}]
        message = self._new_message(token, params, photo=photo, caption=params.get("caption"))
        return self._store_message("sendPhoto", message, params)

    def _api_senddocument(self, token: str, params: dict[str, Any]) -> dict[str, Any]:
        self._check(params, text_key="caption")
        document = {"file_id": "document-1", "file_unique_id": "d1"}
        message = self._new_message(token, params, document=document, caption=params.get("caption"))
        return self._store_message("sendDocument", message, params)

    def _edit(self, method: str, token: str, params: dict[str, Any], **changes: Any) -> dict[str, Any] | bool:
        if "inline_message_id" in params:
            return True
        chat_id, message_id = int(params["chat_id"]), int(params["message_id"])
        current = self._messages.get((chat_id, message_id))
        if current is None:
            if not self.lenient_edits:
                raise _ApiError(400, "Bad Request: message to edit not found")
            current = {"message_id": message_id, "from": self._bot_user(token), "chat": self._chat(chat_id),
                       "date": int(time.time())}
        message = {**copy.deepcopy(current), **changes, "edit_date": int(time.time())}
        markup = params.get("reply_markup")
        if isinstance(markup, dict) and "inline_keyboard" in markup and markup["inline_keyboard"]:
            message["reply_markup"] = markup
        else:
            message.pop("reply_markup", None)  # an edit without reply_markup removes the keyboard
        if not self.lenient_edits and all(
            message.get(k) == current.get(k) for k in ("text", "caption", "reply_markup")
        ):
            raise _ApiError(400, "Bad Request: message is not modified: specified new message content and "
                                 "reply markup are exactly the same as a current content and reply markup "
                                 "of the message")
        return self._store_message(method, message, params)

    def _api_editmessagetext(self, token: str, params: dict[str, Any]) -> dict[str, Any] | bool:
        self._check(params)
        return self._edit("editMessageText", token, params, text=str(params.get("text", "")))

    def _api_editmessagecaption(self, token: str, params: dict[str, Any]) -> dict[str, Any] | bool:
        self._check(params, text_key="caption")
        return self._edit("editMessageCaption", token, params, caption=params.get("caption"))

    def _api_editmessagereplymarkup(self, token: str, params: dict[str, Any]) -> dict[str, Any] | bool:
        self._check(params, text_key=None)
        return self._edit("editMessageReplyMarkup", token, params)

    def _api_deletemessage(self, token: str, params: dict[str, Any]) -> bool:
        self._messages.pop((int(params["chat_id"]), int(params["message_id"])), None)
        return True

    def _scope_key(self, params: dict[str, Any]) -> str:
        scope = params.get("scope") or {"type": "default"}
        return f"{scope.get('type', 'default')}:{params.get('language_code', '')}"

    def _api_setmycommands(self, token: str, params: dict[str, Any]) -> bool:
        self._commands[self._scope_key(params)] = list(params.get("commands") or [])
        return True

    def _api_getmycommands(self, token: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        return self._commands.get(self._scope_key(params), [])

    def _api_deletemycommands(self, token: str, params: dict[str, Any]) -> bool:
        self._commands.pop(self._scope_key(params), None)
        return True

    def _api_setwebhook(self, token: str, params: dict[str, Any]) -> bool:
        self._webhook = {
            "url": params.get("url", ""),
            "has_custom_certificate": "certificate" in params,
            "pending_update_count": len(self._updates),
            "max_connections": params.get("max_connections", 40),
            "allowed_updates": params.get("allowed_updates") or [],
            "secret_token": params.get("secret_token"),  # not in Telegram's answer; kept for tests
        }
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    def _api_deletewebhook(self, token: str, params: dict[str, Any]) -> bool:
        self._webhook = {"url": "", "has_custom_certificate": False, "pending_update_count": len(self._updates)}
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    def _api_getwebhookinfo(self, token: str, params: dict[str, Any]) -> dict[str, Any]:
        info = {k: v for k, v in self._webhook.items() if k != "secret_token"}
        info["pending_update_count"] = len(self._updates)
        return info

    @property
    def webhook(self) -> dict[str, Any]:
        """The current webhook registration, including the secret token it was set with."""
        with self._lock:
            return copy.deepcopy(self._webhook)

    def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        timeout = float(params.get("timeout") or 0)
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                if offset:
                    # Confirming an offset forgets everything before it, as Telegram does.
                    self._updates = [u for u in self._updates if u.get("update_id", 0) >= offset]
                if self._down:
                    return []  # the connection is cut, this answer is never sent
                if self._updates or self._stopping:
                    return copy.deepcopy(self._updates[:limit])
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                self._updates_changed.wait(min(remaining, 0.5))

