"""A local stand-in for Airtable's list-records API, for import tests (no network).

``GET /v0/{base}/{table}`` answers like Airtable: ``{"records": [{id, createdTime,
fields}], "offset": "..."}`` in pages of ``pageSize`` (at most 100), with a bearer
token check, 404 for an unknown base or table, and on demand HTTP 429 answers
(``rate_limit(table, times)``) that a client must retry.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

PAGE_SIZE = 100


class AirtableStandIn:
    def __init__(self, base_id: str = "appTEST", api_key: str = "patTEST"):
        self.base_id = base_id
        self.api_key = api_key
        self.tables: dict[str, list[dict[str, Any]]] = {}
        self.requests: list[tuple[str, int]] = []  # (path with query, status answered)
        self._rate_limited: dict[str, int] = {}
        self._failing: dict[str, tuple[int, int]] = {}
        self._failing_once: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # --- test set-up ---------------------------------------------------------------------

    def rate_limit(self, table: str, times: int = 1) -> None:
        """Answer the next ``times`` requests for ``table`` with 429."""
        self._rate_limited[table] = times

    def fail_from(self, table: str, record: int, status: int = 503) -> None:
        """Answer every request for ``table``'s page starting at ``record`` (> 0) with ``status``:
        an Airtable that breaks down in the middle of a table."""
        self._failing[table] = (record, status)

    def fail_once_at(self, table: str, record: int, status: int = 503) -> None:
        """Answer the next request for ``table``'s page starting at ``record`` with ``status``, once:
        a moment in which Airtable (or a proxy before it) is unwell."""
        self._failing_once[table] = (record, status)

    def answered(self, status: int) -> int:
        return sum(1 for _, code in self.requests if code == status)

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> AirtableStandIn:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                status, body = standin._list_records(self.path, self.headers.get("Authorization", ""))
                with standin._lock:
                    standin.requests.append((self.path, status))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output clean
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # --- the API ---------------------------------------------------------------------------

    def _list_records(self, raw_path: str, authorization: str) -> tuple[int, dict[str, Any]]:
        if authorization != f"Bearer {self.api_key}":
            return 401, {"error": {"type": "AUTHENTICATION_REQUIRED", "message": "Authentication required"}}
        parsed = urlparse(raw_path)
        parts = [unquote(p) for p in parsed.path.split("/") if p]
        if len(parts) != 3 or parts[0] != "v0" or parts[1] != self.base_id or parts[2] not in self.tables:
            return 404, {"error": "NOT_FOUND"}
        table = parts[2]
        with self._lock:
            if self._rate_limited.get(table, 0) > 0:
                self._rate_limited[table] -= 1
                return 429, {
                    "errors": [{"error": "RATE_LIMIT_REACHED", "message": "Rate limit exceeded. Retry in 30 seconds."}]
                }
        query = parse_qs(parsed.query)
        size = min(int(query.get("pageSize", [PAGE_SIZE])[0]), PAGE_SIZE)
        offset = query.get("offset", [""])[0]
        start = int(offset.removeprefix("itr")) if offset else 0
        with self._lock:
            once = self._failing_once.get(table)
            if once is not None and start == once[0]:
                del self._failing_once[table]
                return once[1], {"error": {"type": "SERVICE_UNAVAILABLE", "message": "Try again later"}}
        if table in self._failing and start >= self._failing[table][0]:
            return self._failing[table][1], {"error": {"type": "SERVICE_UNAVAILABLE", "message": "Try again later"}}
        records = self.tables[table]
        body: dict[str, Any] = {"records": records[start : start + size]}
        if start + size < len(records):
            body["offset"] = f"itr{start + size}"
        return 200, body


def record(record_id: str, created: str = "2025-01-01T08:00:00.000Z", **fields: Any) -> dict[str, Any]:
    """An Airtable record as the API returns it (empty fields left out, as Airtable does)."""
    return {
        "id": record_id,
        "createdTime": created,
        "fields": {k: v for k, v in fields.items() if not (v is None or v is False or v == "" or v == [])},
    }
