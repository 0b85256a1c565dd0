"""A loopback HubSpot CRM v3 search API serving a sample world's objects — what hubspot-api-client
is exercised against in sample mode and in tests. It is not HubSpot.

``POST /crm/v3/objects/{type}/search`` with one filter ``{propertyName, operator: GTE, value: epoch
ms}`` on the last-modified property, sorted ascending, ``limit`` ≤ 100 and ``after`` paging. As in
HubSpot a query can page through at most ``max_results`` (10,000) results — asking beyond is HTTP 400 —
so clients must slide the window forward on the last timestamp. A bearer private-app token is
required (401 otherwise). Every ``hubspot/<type>.jsonl`` of the world is served (companies, contacts,
deals, and the engagement types calls, emails, meetings, notes, tasks); other types are empty unless
records are added to :attr:`objects`.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from revops_pipelines.testing.fakes import LoopbackServer, Reply, Request

MODIFIED = {"contacts": "lastmodifieddate"}  # every other object: hs_lastmodifieddate


def modified_property(object_type: str) -> str:
    return MODIFIED.get(object_type, "hs_lastmodifieddate")


@functools.lru_cache(maxsize=1 << 18)  # every search re-filters the same timestamps
def _ms(ts: str) -> int:
    return int(datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() * 1000)


class FakeHubSpot(LoopbackServer):
    name = "fake-hubspot"

    def __init__(
        self, objects: dict[str, list[dict]], *, token: str = "hs-token", max_results: int = 10_000, **kw: Any
    ):
        super().__init__(**kw)
        self.objects = {k: [json.loads(json.dumps(r)) for r in v] for k, v in objects.items()}
        self.token = token
        self.max_results = max_results
        self.served: Counter[str] = Counter()

    @classmethod
    def from_world(cls, root: str | Path, **kw: Any) -> FakeHubSpot:
        objects = {}
        for path in sorted((Path(root) / "hubspot").glob("*.jsonl")):
            with path.open(encoding="utf-8") as fh:
                objects[path.stem] = [json.loads(line) for line in fh if line.strip()]
        return cls(objects, **kw)

    def handle(self, req: Request) -> Reply:
        if (req.headers.get("Authorization") or "") != f"Bearer {self.token}":
            return Reply(
                401,
                {
                    "status": "error",
                    "message": "Authentication credentials not found.",
                    "correlationId": str(uuid.uuid4()),
                    "category": "INVALID_AUTHENTICATION",
                },
            )
        parts = req.path.strip("/").split("/")
        if req.method == "GET" and len(parts) == 4 and parts[:3] == ["crm", "v3", "objects"]:
            return self._list(parts[3], {k: v[0] for k, v in req.query.items()})
        if (
            req.method != "POST"
            or len(parts) != 5
            or parts[:3] != ["crm", "v3", "objects"]
            or parts[4] != "search"
        ):
            return Reply(404, {"status": "error", "message": f"no route {req.method} {req.path}"})
        return self._search(parts[3], req.body if isinstance(req.body, dict) else {})

    def archive(self, object_id: str, at: str) -> None:
        """Delete a record the way HubSpot does: archived, gone from search, listed with archived=true."""
        for recs in self.objects.values():
            for r in recs:
                if r["id"] == object_id:
                    r.update(archived=True, archivedAt=at)
                    return
        raise KeyError(object_id)

    def _list(self, object_type: str, q: dict[str, str]) -> Reply:
        archived = q.get("archived", "false").lower() == "true"
        recs = [r for r in self.objects.get(object_type, []) if bool(r.get("archived")) == archived]
        limit, after = min(int(q.get("limit") or 10), 100), int(q.get("after") or 0)
        out: dict[str, Any] = {"results": recs[after : after + limit]}
        if after + limit < len(recs):
            out["paging"] = {"next": {"after": str(after + limit)}}
        return Reply(200, out)

    def _search(self, object_type: str, body: dict) -> Reply:
        prop = modified_property(object_type)
        limit = min(int(body.get("limit") or 10), 100)
        after = int(body.get("after") or 0)
        if after and self.faults.take(f"/crm/v3/objects/{object_type}/search", ("expired_cursor",)):
            return Reply(
                400, {"status": "error", "category": "VALIDATION_ERROR", "message": "paging cursor expired"}
            )
        if after + limit > self.max_results:
            return Reply(
                400,
                {
                    "status": "error",
                    "category": "VALIDATION_ERROR",
                    "message": f"search results are limited to {self.max_results}; use a narrower filter",
                },
            )
        recs = [r for r in self.objects.get(object_type, []) if not r.get("archived")]
        for group in body.get("filterGroups") or []:
            for f in group.get("filters") or []:
                if f.get("propertyName") == prop and f.get("operator") == "GTE":
                    lo = int(f["value"])
                    recs = [r for r in recs if _ms(r["properties"][prop]) >= lo]
        recs = sorted(recs, key=lambda r: (_ms(r["properties"][prop]), len(r["id"]), r["id"]))
        page = recs[after : after + limit]
        if after and self.faults.take(f"/crm/v3/objects/{object_type}/search", ("duplicates",)):
            page = [recs[after - 1], *page]
        wanted = set(body.get("properties") or []) | {prop, "hs_object_id", "createdate"}
        results = []
        for r in page:
            props = {k: v for k, v in r["properties"].items() if k in wanted}
            props["hs_object_id"] = r["id"]
            results.append({**r, "properties": props})
        self.served[object_type] += len(results)
        out: dict[str, Any] = {"total": len(recs), "results": results}
        if after + limit < len(recs):
            out["paging"] = {"next": {"after": str(after + limit)}}
        return Reply(200, out)
