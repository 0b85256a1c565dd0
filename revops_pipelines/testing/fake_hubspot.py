"""A loopback HubSpot CRM v3 search API serving a sample world's objects — what hubspot-api-client
is exercised against in sample mode and in tests. It is not HubSpot.

``POST /crm/v3/objects/{type}/search`` with one filter ``{propertyName, operator: GTE, value: epoch
ms}`` on the last-modified property, sorted ascending, ``limit`` ≤ 100 and ``after`` paging. As in
HubSpot a query can page through at most ``max_results`` (10,000) results — asking beyond is HTTP 400 —
so clients must slide the window forward on the last timestamp. A bearer private-app token is
required (401 otherwise). Every ``hubspot/<type>.jsonl`` of the world is served (companies, contacts,
deals, and the engagement types calls, emails, meetings, notes, tasks); other types are empty unless
records are added to :attr:`objects`.

Associations: search results carry none, as in HubSpot. ``POST
/crm/v4/associations/{fromObjectType}/{toObjectType}/batch/read`` with ``{"inputs": [{"id", "after"?}]}``
answers ``{"status": "COMPLETE", "results": [{"from": {"id"}, "to": [{"toObjectId", "associationTypes"}],
"paging"?}]}``; an id with no association of that type is reported under ``errors`` (HTTP 207, as
HubSpot does). At most ``max_batch_inputs`` (1,000) inputs per request — more is HTTP 400 with
HubSpot's error body — and ``association_page_size`` associations per object, paged with ``after``.
The links come from the world's ``hubspot/associations.jsonl`` (or :meth:`associate`); the
transport faults (429, 5xx, timeouts, bad bodies) apply to this route as to every other.

:meth:`from_world` keeps each record as its deflated JSON line
(:class:`~revops_pipelines.testing.fakes.JsonLines`) with ``(modified ms, id, archived)`` beside it: a 50,000-account world took ~5.7 GB as parsed dicts.
Servers built from lists of dicts keep the dicts (tests change them in place).
"""

from __future__ import annotations

import bisect
import functools
import json
import uuid
from array import array
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from revops_pipelines.testing.fakes import JsonLines, LoopbackServer, Reply, Request, as_is, find_record

MODIFIED = {"contacts": "lastmodifieddate"}  # every other object: hs_lastmodifieddate


# names HubSpot accepts for an object type in a path (plural, singular, object type id)
OBJECT_ALIASES = {
    "companies": ("company", "0-2"),
    "contacts": ("contact", "0-1"),
    "deals": ("deal", "0-3"),
    "calls": ("call", "0-48"),
    "emails": ("email", "0-49"),
    "meetings": ("meeting", "meeting_event", "meeting_events", "0-47"),
    "notes": ("note", "0-46"),
    "tasks": ("task", "0-27"),
}
CANONICAL = {a: k for k, v in OBJECT_ALIASES.items() for a in (k, *v)}


def modified_property(object_type: str) -> str:
    return MODIFIED.get(object_type, "hs_lastmodifieddate")


def _epoch_ms(ts: str) -> int:
    return int(datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() * 1000)


_ms = functools.lru_cache(maxsize=1 << 18)(_epoch_ms)  # every search re-filters the same timestamps


# records of a type in search order as held (dicts or JsonLines lines), their modified ms, and what
# reads one of them
_Index = tuple[list[dict | bytes], array, Callable[[Any], dict]]


def _key(prop: str, rec: dict) -> tuple[int, str, bool]:
    """What search sorts and filters a stored record on: ``(modified ms, id, archived)``."""
    return _epoch_ms(rec["properties"][prop]), rec["id"], bool(rec.get("archived"))


class FakeHubSpot(LoopbackServer):
    name = "fake-hubspot"

    def __init__(
        self,
        objects: dict[str, list[dict]],
        *,
        token: str = "hs-token",
        max_results: int = 10_000,
        associations: list[dict] | None = None,
        max_batch_inputs: int = 1_000,
        association_page_size: int = 500,
        copy: bool = True,
        **kw: Any,
    ):
        super().__init__(**kw)
        # copy=False: the records (and association types) are the server's own from now on — what
        # from_world does with what it has just read, so a large world is not held twice
        self._copy = copy
        self.objects: dict[str, list[dict] | JsonLines] = (
            {k: [json.loads(json.dumps(r)) for r in v] for k, v in objects.items()} if copy else objects
        )
        self.token = token
        self.max_results = max_results
        self.served: Counter[str] = Counter()
        self.max_batch_inputs = max_batch_inputs
        self.association_page_size = association_page_size
        # (from type, to type) -> from id -> [(to id, association types)]; one list per distinct
        # association types, shared (a 50,000-account world has ~1.4 million links and a few kinds)
        self.links: dict[tuple[str, str], dict[str, list[tuple[str, list[dict]]]]] = {}
        self._types: dict[str, list[dict]] = {}
        self.batch_sizes: list[int] = []  # inputs per association batch read, as received
        # object type -> (signature, records in search order as held, their modified ms): searches
        # bisect into it instead of filtering and sorting every record per page (O(N log N) per page)
        self._indexes: dict[tuple[str, bool], tuple[tuple, _Index]] = {}
        self._version = 0  # bumped by archive(); see _index for what else invalidates the index
        for link in associations or []:
            self.associate_link(link)

    @classmethod
    def from_world(cls, root: str | Path, **kw: Any) -> FakeHubSpot:
        """The world's records, each kept as its JSON line (see the module docstring), and its
        associations, read a line at a time."""
        objects: dict[str, list[dict] | JsonLines] = {}
        for path in sorted((Path(root) / "hubspot").glob("*.jsonl")):
            if path.stem != "associations":
                key = functools.partial(_key, modified_property(path.stem))
                objects[path.stem] = JsonLines.read(path, key=key)
        server = cls(objects, copy=False, **kw)
        path = Path(root) / "hubspot/associations.jsonl"
        if path.exists():
            with path.open("rb") as fh:
                for line in fh:
                    if line.strip():
                        server.associate_link(json.loads(line))
        return server

    def associate_link(self, link: dict) -> None:
        """:meth:`associate` from a link as the world's ``associations.jsonl`` holds it."""
        self.associate(
            link["fromObjectType"],
            str(link["fromObjectId"]),
            link["toObjectType"],
            str(link["toObjectId"]),
            link.get("associationTypes"),
        )

    def associate(
        self, from_type: str, from_id: str, to_type: str, to_id: str, types: list[dict] | None = None
    ) -> None:
        """Link two records (both directions, as HubSpot associations are). Links with the same
        association types share one list of them (a copy of ``types`` unless ``copy=False``)."""
        types = types or [{"category": "HUBSPOT_DEFINED", "typeId": 0, "label": None}]
        text = json.dumps(types)
        shared = self._types.get(text)
        if shared is None:
            shared = self._types[text] = json.loads(text) if self._copy else types
        for a, a_id, b, b_id in ((from_type, from_id, to_type, to_id), (to_type, to_id, from_type, from_id)):
            rows = self.links.setdefault((CANONICAL[a], CANONICAL[b]), {}).setdefault(a_id, [])
            if any(r[0] == b_id for r in rows):
                rows[:] = [r for r in rows if r[0] != b_id]
            rows.append((b_id, shared))

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
        if (
            req.method == "POST"
            and len(parts) == 7
            and parts[:3] == ["crm", "v4", "associations"]
            and parts[5:] == ["batch", "read"]
        ):
            return self._association_batch_read(parts[3], parts[4], req.body)
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
        recs, i = find_record(self.objects.values(), object_id, "id")
        r = recs[i]
        r.update(archived=True, archivedAt=at)
        recs[i] = r  # a JsonLines store keeps it as a new line
        self._version += 1

    def _index(self, object_type: str, archived: bool = False) -> _Index:
        """The (non-)archived records of a type sorted as search returns them (as held: dicts, or
        lines of a :class:`JsonLines` store), their modified ms, and what reads one.

        Built once and reused while the type's records are the same list (or store, unchanged) of
        the same length and nothing was archived; a record of a list changed in place by other means
        (its modified date, its id) needs :meth:`invalidate`."""
        recs = self.objects.get(object_type, [])
        stored = recs.version if isinstance(recs, JsonLines) else None
        sig = (recs, len(recs), self._version, stored)  # holds the list: its id is not reused meanwhile
        hit = self._indexes.get((object_type, archived))
        if hit is not None and hit[0][0] is recs and hit[0][1:] == sig[1:]:
            return hit[1]
        if isinstance(recs, JsonLines):
            items: list[dict | bytes] = recs.lines
            load: Callable[[Any], dict] = recs.load
            keys = recs.keys
            chosen = [i for i, k in enumerate(keys) if k[2] == archived]

            def order(i: int) -> tuple[int, int, str, int]:
                return keys[i][0], len(keys[i][1]), keys[i][1], i
        else:
            items, prop, load = recs, modified_property(object_type), as_is
            chosen = [i for i, r in enumerate(recs) if bool(r.get("archived")) == archived]

            def order(i: int) -> tuple[int, int, str, int]:
                r = recs[i]
                return _ms(r["properties"][prop]), len(r["id"]), r["id"], i

        ms = array("q")
        if not archived:  # archived records are listed in stored order
            keyed = sorted(map(order, chosen))
            chosen, ms = [k[3] for k in keyed], array("q", (k[0] for k in keyed))
        index = ([items[i] for i in chosen], ms, load)
        self._indexes[(object_type, archived)] = (sig, index)
        return index

    def invalidate(self) -> None:
        """Forget the search indexes (after changing records in place)."""
        self._indexes.clear()

    def _list(self, object_type: str, q: dict[str, str]) -> Reply:
        archived = q.get("archived", "false").lower() == "true"
        recs, _, load = self._index(object_type, archived)
        limit, after = min(int(q.get("limit") or 10), 100), int(q.get("after") or 0)
        out: dict[str, Any] = {"results": [load(r) for r in recs[after : after + limit]]}
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
        ordered, ms, load = self._index(object_type)
        start = 0  # every GTE filter on the modified property applies: the latest bound wins
        for group in body.get("filterGroups") or []:
            for f in group.get("filters") or []:
                if f.get("propertyName") == prop and f.get("operator") == "GTE":
                    start = max(start, bisect.bisect_left(ms, int(f["value"])))
        total = len(ordered) - start
        page = ordered[start + after : start + after + limit]
        if after and self.faults.take(f"/crm/v3/objects/{object_type}/search", ("duplicates",)):
            page = [ordered[start + after - 1], *page]
        wanted = set(body.get("properties") or []) | {prop, "hs_object_id", "createdate"}
        results = []
        for r in map(load, page):
            props = {k: v for k, v in r["properties"].items() if k in wanted}
            props["hs_object_id"] = r["id"]
            results.append({**r, "properties": props})
        self.served[object_type] += len(results)
        out: dict[str, Any] = {"total": total, "results": results}
        if after + limit < total:
            out["paging"] = {"next": {"after": str(after + limit)}}
        return Reply(200, out)

    @staticmethod
    def _error(status: int, message: str, category: str = "VALIDATION_ERROR", **extra: Any) -> Reply:
        body = {
            "status": "error",
            "message": message,
            "correlationId": str(uuid.uuid4()),
            "category": category,
        }
        return Reply(status, {**body, **extra})

    def _association_batch_read(self, from_raw: str, to_raw: str, body: Any) -> Reply:
        from_type, to_type = CANONICAL.get(from_raw.lower()), CANONICAL.get(to_raw.lower())
        if from_type is None or to_type is None:
            bad = from_raw if from_type is None else to_raw
            return self._error(400, f"Unable to infer object type from: {bad}")
        inputs = body.get("inputs") if isinstance(body, dict) else None
        if not isinstance(inputs, list) or not all(isinstance(i, dict) and i.get("id") for i in inputs):
            return self._error(400, "Invalid input JSON: inputs must be a list of objects with an id")
        self.batch_sizes.append(len(inputs))
        if len(inputs) > self.max_batch_inputs:
            return self._error(
                400,
                f"Batch input size {len(inputs)} exceeds the maximum allowed batch size of "
                f"{self.max_batch_inputs}",
                context={"maxBatchSize": [str(self.max_batch_inputs)]},
            )
        links = self.links.get((from_type, to_type), {})
        singular = {"companies": "company"}.get(to_type, to_type.rstrip("s"))
        results, errors = [], []
        for inp in inputs:
            oid = str(inp["id"])
            rows = links.get(oid, [])
            if not rows:
                errors.append(
                    {
                        "status": "error",
                        "category": "OBJECT_NOT_FOUND",
                        "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
                        "message": f"No {singular} is associated with {from_type.rstrip('s')} {oid}.",
                        "context": {"fromObjectId": [oid]},
                    }
                )
                continue
            start = int(inp.get("after") or 0)
            page = rows[start : start + self.association_page_size]
            res: dict[str, Any] = {
                "from": {"id": oid},
                "to": [{"toObjectId": int(to_id), "associationTypes": types} for to_id, types in page],
            }
            if start + self.association_page_size < len(rows):
                res["paging"] = {"next": {"after": str(start + self.association_page_size)}}
            results.append(res)
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        out: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": now, "completedAt": now}
        if errors:
            out.update(numErrors=len(errors), errors=errors)
        return Reply(207 if errors else 200, out)
