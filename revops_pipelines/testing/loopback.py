"""A tiny threaded HTTP server on 127.0.0.1 for vendor fakes (Slack, HubSpot, webhook receivers).

Subclasses implement :meth:`LoopbackServer.handle` ``(method, path, query, headers, body) ->
(status, headers, json_body)``. Failures can be scripted per route with :meth:`fail_next`, e.g. two
``429`` replies with ``Retry-After`` then normal service — the vendors' rate-limit behaviour.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

Reply = tuple[int, dict[str, str], Any]


class LoopbackServer:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self._script: dict[str, list[Reply]] = {}
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                with outer._lock:
                    outer.requests.append(
                        {
                            "method": self.command,
                            "path": parts.path,
                            "query": query,
                            "headers": headers,
                            "body": raw,
                        }
                    )
                    scripted = outer._script.get(parts.path)
                    reply = scripted.pop(0) if scripted else None
                if reply is None:
                    reply = outer.handle(self.command, parts.path, query, headers, raw)
                status, rheaders, body = reply
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for k, v in rheaders.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def fail_next(self, path: str, *replies: Reply) -> None:
        """Answer the next requests to ``path`` with ``replies`` (in order) before serving normally."""
        with self._lock:
            self._script.setdefault(path, []).extend(replies)

    def calls(self, path: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] == path]

    def handle(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> Reply:
        raise NotImplementedError

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def json_body(headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """Decode a JSON or form-encoded request body (slack-sdk sends either)."""
    if not body:
        return {}
    if "json" in headers.get("content-type", ""):
        return json.loads(body)
    return {k: v[-1] for k, v in parse_qs(body.decode()).items()}
