"""Loopback Slack Web API: ``chat.postMessage``, ``conversations.history``/``list``, ``auth.test``.

Request and reply shapes follow api.slack.com: bearer token in ``Authorization``; errors are HTTP 200
with ``{"ok": false, "error": "..."}``; rate limits are HTTP 429 with ``Retry-After`` seconds and
``{"ok": false, "error": "ratelimited"}``. Channels are addressed by name (``#cs-churn-alerts``) or
id; ``metadata`` (event_type + event_payload) is stored and returned by ``conversations.history`` with
``include_all_metadata``. Point ``slack_sdk.WebClient(base_url=fake.url + "/api/")`` at it.
"""

from __future__ import annotations

import json
import time
from typing import Any

from revops_pipelines.testing.loopback import LoopbackServer, Reply, json_body

RATE_LIMITED: Reply = (429, {"Retry-After": "0"}, {"ok": False, "error": "ratelimited"})
SERVER_ERROR: Reply = (500, {}, {"ok": False, "error": "internal_error"})


class FakeSlack(LoopbackServer):
    def __init__(
        self, token: str = "xoxb-test-token", channels: tuple[str, ...] = ("cs-churn-alerts", "revops-alerts")
    ):
        super().__init__()
        self.token = token
        self.channels = {name: f"C{i:08d}" for i, name in enumerate(channels, start=1)}
        self.messages: dict[str, list[dict[str, Any]]] = {cid: [] for cid in self.channels.values()}
        self._ts = time.time()
        self.lose_replies = 0  # store the next N messages but answer 500, as if the reply was lost

    def _channel(self, ref: str) -> str | None:
        ref = ref.lstrip("#")
        if ref in self.channels:
            return self.channels[ref]
        return ref if ref in self.messages else None

    def respond(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> Reply:
        if headers.get("authorization") != f"Bearer {self.token}":
            return 200, {}, {"ok": False, "error": "invalid_auth"}
        args = {**query, **json_body(headers, body)}
        if path == "/api/auth.test":
            return 200, {}, {"ok": True, "team": "Beacon", "user": "revops-bot", "bot_id": "B0001"}
        if path == "/api/chat.postMessage":
            cid = self._channel(str(args.get("channel", "")))
            if cid is None:
                return 200, {}, {"ok": False, "error": "channel_not_found"}
            if not args.get("text") and not args.get("blocks"):
                return 200, {}, {"ok": False, "error": "no_text"}
            self._ts += 0.000001
            ts = f"{self._ts:.6f}"
            meta = args.get("metadata")
            if isinstance(meta, str):
                meta = json.loads(meta)
            msg = {"type": "message", "ts": ts, "text": args.get("text", ""), "bot_id": "B0001"}
            if meta:
                msg["metadata"] = meta
            self.messages[cid].append(msg)
            if self.lose_replies > 0:
                self.lose_replies -= 1
                return SERVER_ERROR
            return 200, {}, {"ok": True, "channel": cid, "ts": ts, "message": msg}
        if path == "/api/conversations.list":
            chans = [{"id": cid, "name": name, "is_channel": True} for name, cid in self.channels.items()]
            return 200, {}, {"ok": True, "channels": chans, "response_metadata": {"next_cursor": ""}}
        if path == "/api/conversations.history":
            cid = str(args.get("channel", ""))  # like Slack: an id, not a #name
            if cid not in self.messages:
                return 200, {}, {"ok": False, "error": "channel_not_found"}
            msgs = list(reversed(self.messages[cid]))
            if args.get("latest") and str(args.get("inclusive")).lower() in ("true", "1"):
                msgs = [m for m in msgs if m["ts"] <= str(args["latest"])]
            if str(args.get("include_all_metadata")).lower() not in ("true", "1"):
                msgs = [{k: v for k, v in m.items() if k != "metadata"} for m in msgs]
            limit = int(args.get("limit") or 100)
            return 200, {}, {"ok": True, "messages": msgs[:limit], "has_more": len(msgs) > limit}
        return 404, {}, {"ok": False, "error": "unknown_method"}

    def posted(self, channel: str) -> list[dict[str, Any]]:
        cid = self._channel(channel)
        return list(self.messages.get(cid or "", []))
