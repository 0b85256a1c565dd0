"""Loopback HubSpot CRM (tasks) and a webhook receiver.

HubSpot shapes (developers.hubspot.com, CRM v3): ``POST /crm/v3/objects/tasks`` with
``{"properties": {...}, "associations": [{"to": {"id"}, "types": [{"associationCategory",
"associationTypeId"}]}]}`` → 201 with ``{"id", "properties", "createdAt", "updatedAt", "archived"}``;
``GET /crm/v3/objects/tasks/{id}``; ``POST /crm/v3/objects/tasks/search`` with ``filterGroups``.
Errors are JSON ``{"status": "error", "message", "category", "correlationId"}``; the secondly rate
limit is HTTP 429 with category ``RATE_LIMITS`` and ``X-HubSpot-RateLimit-*`` headers. Bearer auth.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from revops_pipelines.testing.loopback import LoopbackServer, Reply, json_body
from revops_pipelines.webhooks.signatures import SignatureError, verify_generic

TASKS = "/crm/v3/objects/tasks"
RATE_LIMITED: Reply = (
    429,
    {"X-HubSpot-RateLimit-Secondly": "10", "X-HubSpot-RateLimit-Secondly-Remaining": "0", "Retry-After": "0"},
    {
        "status": "error",
        "message": "You have reached your secondly limit.",
        "errorType": "RATE_LIMIT",
        "correlationId": "c0ffee00-0000-0000-0000-000000000000",
        "policyName": "SECONDLY",
        "category": "RATE_LIMITS",
    },
)
SERVER_ERROR: Reply = (502, {}, {"status": "error", "message": "Bad gateway", "category": "INTERNAL_ERROR"})


def _error(status: int, message: str, category: str = "VALIDATION_ERROR") -> Reply:
    return (
        status,
        {},
        {"status": "error", "message": message, "category": category, "correlationId": str(uuid.uuid4())},
    )


class FakeHubSpot(LoopbackServer):
    def __init__(self, token: str = "pat-test-token"):
        super().__init__()
        self.token = token
        self.tasks: dict[str, dict[str, Any]] = {}
        self.lose_replies = 0  # create the next N tasks but answer 502, as if the reply was lost

    def respond(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> Reply:
        if headers.get("authorization") != f"Bearer {self.token}":
            return _error(401, "Authentication credentials not found.", "INVALID_AUTHENTICATION")
        if path == TASKS and method == "POST":
            data = json_body(headers, body)
            props = data.get("properties") or {}
            missing = [p for p in ("hs_timestamp", "hs_task_subject") if not props.get(p)]
            if missing:
                return _error(400, f"Property values were not valid: missing {', '.join(missing)}")
            now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
            tid = str(len(self.tasks) + 1000)
            task = {
                "id": tid,
                "properties": {**props, "hs_object_id": tid, "hs_createdate": now},
                "associations": data.get("associations") or [],
                "createdAt": now,
                "updatedAt": now,
                "archived": False,
            }
            self.tasks[tid] = task
            if self.lose_replies > 0:
                self.lose_replies -= 1
                return SERVER_ERROR
            return 201, {}, {k: v for k, v in task.items() if k != "associations"}
        if path == f"{TASKS}/search" and method == "POST":
            data = json_body(headers, body)
            out = []
            for t in self.tasks.values():
                for group in data.get("filterGroups", []):
                    if all(
                        f.get("operator") == "EQ"
                        and str(t["properties"].get(f["propertyName"])) == str(f["value"])
                        for f in group.get("filters", [])
                    ):
                        out.append(t)
                        break
            results = [{k: v for k, v in t.items() if k != "associations"} for t in out]
            return 200, {}, {"total": len(results), "results": results}
        if path.startswith(TASKS + "/") and method == "GET":
            tid = path.rsplit("/", 1)[1]
            if tid not in self.tasks:
                return _error(
                    404, f"Object not found.  objectId are usually numeric. {tid}", "OBJECT_NOT_FOUND"
                )
            t = self.tasks[tid]
            return 200, {}, {k: v for k, v in t.items() if k != "associations"}
        return _error(404, "Not found", "OBJECT_NOT_FOUND")


class WebhookReceiver(LoopbackServer):
    """Accepts ``POST /hooks/revops`` signed with the generic webhook scheme (``X-RevOps-Timestamp``,
    ``X-RevOps-Nonce``, ``X-RevOps-Signature``, checked by the receiver's own
    :func:`~revops_pipelines.webhooks.signatures.verify_generic`); rejects bad signatures and timestamps
    more than 5 minutes off (401)."""

    def __init__(self, secret: str = "whsec-test"):
        super().__init__()
        self.secret = secret
        self.received: list[dict[str, Any]] = []

    def respond(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> Reply:
        if path != "/hooks/revops" or method != "POST":
            return 404, {}, {"error": "not found"}
        try:
            verify_generic(self.secret, headers, body)
        except SignatureError as e:
            return 401, {}, {"error": e.code}
        event = json.loads(body)
        key = headers.get("idempotency-key")
        if key and any(e["key"] == key for e in self.received):
            return 200, {}, {"received": True, "duplicate": True}
        self.received.append({"key": key, "event": event})
        return 202, {}, {"received": True}
