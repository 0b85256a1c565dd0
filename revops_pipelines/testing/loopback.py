"""Fakes of the vendors the Execution Agent writes to (Slack, HubSpot tasks, webhook receivers), on
the stand-ins' loopback server (:class:`revops_pipelines.testing.fakes.LoopbackServer`).

Subclasses implement :meth:`LoopbackServer.respond` ``(method, path, query, headers, body) ->
(status, headers, json_body)`` (lower-case header names, the raw body). Replies can be scripted per
path with :meth:`fail_next`, e.g. two ``429`` replies with ``Retry-After`` then normal service — the
vendors' rate-limit behaviour; every request is kept as a dict (:meth:`calls`).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from revops_pipelines.testing import fakes

Reply = tuple[int, dict[str, str], Any]


class LoopbackServer(fakes.LoopbackServer):
    def __init__(self) -> None:
        super().__init__()
        self.requests: list[dict[str, Any]] = []
        self._script: dict[str, list[Reply]] = {}

    def fail_next(self, path: str, *replies: Reply) -> None:
        """Answer the next requests to ``path`` with ``replies`` (in order) before serving normally."""
        with self._lock:
            self._script.setdefault(path, []).extend(replies)

    def calls(self, path: str) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.requests if r["path"] == path]

    def respond(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> Reply:
        raise NotImplementedError

    def handle(self, req: fakes.Request) -> fakes.Reply:
        headers = {k.lower(): v for k, v in req.headers.items()}
        query = {k: v[-1] for k, v in req.query.items()}
        with self._lock:
            self.requests.append(
                {"method": req.method, "path": req.path, "query": query, "headers": headers, "body": req.raw}
            )
            scripted = self._script.get(req.path)
            reply = scripted.pop(0) if scripted else None
        if reply is None:
            reply = self.respond(req.method, req.path, query, headers, req.raw)
        status, rheaders, body = reply
        return fakes.Reply(
            status,
            headers={"Content-Type": "application/json; charset=utf-8", **rheaders},
            raw=b"" if body is None else json.dumps(body).encode(),
        )


def json_body(headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """Decode a JSON or form-encoded request body (slack-sdk sends either)."""
    if not body:
        return {}
    if "json" in headers.get("content-type", ""):
        return json.loads(body)
    return {k: v[-1] for k, v in parse_qs(body.decode()).items()}
