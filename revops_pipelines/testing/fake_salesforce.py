"""A loopback Salesforce REST API (HTTPS, test certificate) serving a sample world's sObjects — what
simple-salesforce is exercised against in sample mode and in tests. It is not Salesforce.

Implemented as the connector uses it:

* ``POST /services/oauth2/token`` — client-credentials grant → ``{access_token, instance_url}``;
  a wrong client id/secret is ``400 invalid_client`` as in Salesforce.
* ``GET /services/data/vXX.X/query/?q=`` and ``/queryAll/`` — only the SOQL shape the connector
  sends: ``SELECT f1, f2 FROM Obj [WHERE SystemModstamp >= 2025-01-01T00:00:00Z]
  ORDER BY SystemModstamp, Id``. ``query`` hides deleted rows, ``queryAll`` returns them with
  ``IsDeleted = true``. ``page_size`` records per page; ``nextRecordsUrl`` pages on.
* A bad or missing bearer token is ``401 INVALID_SESSION_ID``; an expired query locator is
  ``400 INVALID_QUERY_LOCATOR``.
* Bulk API 2.0 queries: ``POST …/jobs/query`` (``query`` | ``queryAll``, same SOQL shape without
  ORDER BY), ``GET …/jobs/query/{id}`` (complete at once), ``GET …/jobs/query/{id}/results`` — CSV
  pages of ``maxRecords`` with ``Sforce-Locator`` / ``Sforce-NumberOfRecords`` headers.

:meth:`delete` and :meth:`touch` change records the way a user would (new ``SystemModstamp``), so
incremental syncs and deletes can be tested. An object without a file in the world (a world from an
older generator) is empty unless records are added to :attr:`objects`.

:meth:`from_world` keeps each record as its deflated JSON line
(:class:`~revops_pipelines.testing.fakes.JsonLines`) with ``(SystemModstamp, Id, IsDeleted)`` beside it, and sorts each object once per change: a
50,000-account world took ~5.9 GB as parsed dicts. Servers built from lists of dicts keep the dicts
(tests change them in place).
"""

from __future__ import annotations

import bisect
import re
import secrets
import uuid
from array import array
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from revops_pipelines.testing.fakes import JsonLines, LoopbackServer, Reply, Request, as_is, find_record

SOQL = re.compile(
    r"^SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<obj>\w+)"
    r"(?:\s+WHERE\s+SystemModstamp\s*>=\s*(?P<since>\S+))?"
    r"(?:\s+ORDER\s+BY\s+SystemModstamp(?:\s+ASC)?\s*,\s*Id(?:\s+ASC)?)?\s*$",
    re.IGNORECASE | re.DOTALL,
)
WORLD_OBJECTS = ("Account", "Contact", "Opportunity", "OpportunityHistory", "Case", "Task")


def sf_time(ts: str) -> datetime:
    """Parse Salesforce (``...000+0000``) and SOQL (``...Z``) datetimes."""
    ts = ts.replace("Z", "+00:00")
    if re.search(r"[+-]\d{4}$", ts):
        ts = ts[:-2] + ":" + ts[-2:]
    return datetime.fromisoformat(ts)


def sf_stamp(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def _us(ts: str) -> int:
    """A Salesforce/SOQL datetime as microseconds since the epoch (ordered as :func:`sf_time`)."""
    return (sf_time(ts) - _EPOCH) // _US


# what a query selects: object, fields, records in query order as held (dicts or JsonLines lines),
# and what reads one of them
_Selection = tuple[str, list[str], list[dict | bytes], Callable[[Any], dict]]


def _key(rec: dict) -> tuple[int, str, bool]:
    """What a query filters and sorts a record on: ``(SystemModstamp µs, Id, IsDeleted)``."""
    return _us(rec["SystemModstamp"]), rec["Id"], bool(rec.get("IsDeleted"))


class FakeSalesforce(LoopbackServer):
    name = "fake-salesforce"

    def __init__(
        self,
        objects: dict[str, list[dict]],
        *,
        client_id: str = "sf-client",
        client_secret: str = "sf-secret",
        page_size: int = 2000,
        version: str = "60.0",
        copy: bool = True,
        **kw: Any,
    ):
        super().__init__(**kw)
        # copy=False: the records are the server's own (from_world: a large world is not held twice)
        self.objects: dict[str, list[dict] | JsonLines] = (
            {k: [dict(r) for r in v] for k, v in objects.items()} if copy else objects
        )
        self.client_id, self.client_secret = client_id, client_secret
        self.page_size = page_size
        self.version = version
        self.tokens: set[str] = set()
        self.served: Counter[str] = Counter()  # object -> records served
        # query locator / bulk job -> (object, fields, its records in query order as held, reader)
        self._locators: dict[str, _Selection] = {}
        self._orders: dict[str, tuple[JsonLines, int, array, array]] = {}  # see _select

    @classmethod
    def from_world(cls, root: str | Path, **kw: Any) -> FakeSalesforce:
        """The world's records, each kept as its JSON line (see the module docstring)."""
        objects: dict[str, list[dict] | JsonLines] = {}
        for name in WORLD_OBJECTS:
            path = Path(root) / f"salesforce/{name}.jsonl"
            if not path.exists():  # a world from before the object was generated: the org has none
                continue
            objects[name] = JsonLines.read(path, key=_key)
        return cls(objects, copy=False, **kw)

    # ---- changes a user would make --------------------------------------------------------------
    def touch(self, record_id: str, at: datetime, **fields: Any) -> None:
        recs, i = find_record(self.objects.values(), record_id, "Id")
        r = recs[i]
        r.update(fields)
        r["SystemModstamp"] = sf_stamp(at)
        recs[i] = r  # a JsonLines store keeps it as a new line

    def delete(self, record_id: str, at: datetime) -> None:
        self.touch(record_id, at, IsDeleted=True)

    # ---- protocol --------------------------------------------------------------------------------
    def handle(self, req: Request) -> Reply:
        if req.path == "/services/oauth2/token":
            return self._token(req)
        auth = req.headers.get("Authorization") or ""
        if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
            return Reply(401, [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])
        base = f"/services/data/v{self.version}/"
        if req.path.startswith(base + "jobs/query"):
            return self._bulk(req, req.path[len(base + "jobs/query") :].strip("/"))
        m = re.match(rf"^{re.escape(base)}(query|queryAll)/?(?P<locator>[^/]*)$", req.path)
        if not m:
            return Reply(
                404, [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}]
            )
        if m.group("locator"):
            return self._more(m.group(1), m.group("locator"))
        return self._query(m.group(1), (req.query.get("q") or [""])[0])

    def _token(self, req: Request) -> Reply:
        body = req.body if isinstance(req.body, dict) else {}
        if body.get("client_id") != self.client_id or body.get("client_secret") != self.client_secret:
            return Reply(400, {"error": "invalid_client", "error_description": "invalid client credentials"})
        token = secrets.token_urlsafe(24)
        self.tokens.add(token)
        return Reply(200, {"access_token": token, "instance_url": self.url, "token_type": "Bearer"})

    def _rows(self, endpoint: str, soql: str) -> _Selection | None:
        """What a query selects: its object, its fields, its records in ``SystemModstamp, Id`` order
        (``query`` without the deleted ones) as the server holds them, and what reads one."""
        m = SOQL.match(soql.strip())
        if not m:
            return None
        fields = [f.strip() for f in m.group("fields").split(",")]
        obj = m.group("obj")
        recs = self.objects.get(obj, [])
        if isinstance(recs, JsonLines):
            keys, items, load = recs.keys, recs.lines, recs.load
            order, stamps = self._order(obj, recs)
        else:  # records that tests may have changed in place: keyed afresh per query
            keys, items, load = [_key(r) for r in recs], recs, as_is
            order = sorted(range(len(keys)), key=lambda i: keys[i][:2])
            stamps = [keys[i][0] for i in order]
        start = bisect.bisect_left(stamps, _us(m.group("since"))) if m.group("since") else 0
        live = endpoint == "query"
        return obj, fields, [items[i] for i in order[start:] if not (live and keys[i][2])], load

    def _order(self, obj: str, recs: JsonLines) -> tuple[array, array]:
        """A stored object's record positions in ``SystemModstamp, Id`` order and their stamps,
        sorted once per version of the store."""
        hit = self._orders.get(obj)
        if hit is None or hit[0] is not recs or hit[1] != recs.version:
            keys = recs.keys
            order = array("q", sorted(range(len(keys)), key=lambda i: keys[i][:2]))
            hit = (recs, recs.version, order, array("q", (keys[i][0] for i in order)))
            self._orders[obj] = hit
        return hit[2], hit[3]

    def _bulk(self, req: Request, rest: str) -> Reply:
        import csv
        import io

        if req.method == "POST" and not rest:
            body = req.body if isinstance(req.body, dict) else {}
            parsed = self._rows(body.get("operation", "query"), body.get("query") or "")
            if parsed is None:
                return Reply(400, [{"message": "unsupported SOQL", "errorCode": "INVALIDJOB"}])
            job = "750" + uuid.uuid4().hex[:15]
            self._locators[job] = parsed
            return Reply(200, {"id": job, "operation": body.get("operation"), "state": "UploadComplete"})
        job, _, what = rest.partition("/")
        if job not in self._locators:
            return Reply(404, [{"message": "job not found", "errorCode": "NOT_FOUND"}])
        if not what:
            return Reply(200, {"id": job, "state": "JobComplete"})
        obj, fields, rows, load = self._locators[job]
        q = {k: v[0] for k, v in req.query.items()}
        offset, size = int(q.get("locator") or 0), int(q.get("maxRecords") or 50_000)
        page = rows[offset : offset + size]
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(fields)
        for item in page:
            r = load(item)
            w.writerow(
                [
                    ""
                    if r.get(f) is None
                    else str(r.get(f)).lower()
                    if isinstance(r.get(f), bool)
                    else r.get(f)
                    for f in fields
                ]
            )
        self.served[obj] += len(page)
        nxt = offset + size
        headers = {
            "Content-Type": "text/csv",
            "Sforce-Locator": str(nxt) if nxt < len(rows) else "null",
            "Sforce-NumberOfRecords": str(len(page)),
        }
        return Reply(200, raw=out.getvalue().encode(), headers=headers)

    def _query(self, endpoint: str, soql: str) -> Reply:
        parsed = self._rows(endpoint, soql)
        if parsed is None:
            return Reply(400, [{"message": f"unsupported SOQL: {soql[:80]}", "errorCode": "MALFORMED_QUERY"}])
        locator = "01g" + uuid.uuid4().hex[:15]
        self._locators[locator] = parsed
        return self._page(endpoint, locator, 0)

    def _more(self, endpoint: str, ident: str) -> Reply:
        locator, _, offset = ident.rpartition("-")
        if (
            self.faults.take(f"/services/data/v{self.version}/{endpoint}/", ("expired_cursor",))
            or locator not in self._locators
        ):
            return Reply(400, [{"message": "invalid query locator", "errorCode": "INVALID_QUERY_LOCATOR"}])
        return self._page(endpoint, locator, int(offset))

    def _page(self, endpoint: str, locator: str, offset: int) -> Reply:
        obj, fields, rows, load = self._locators[locator]
        items = rows[offset : offset + self.page_size]
        if offset and self.faults.take(f"/services/data/v{self.version}/{endpoint}/", ("duplicates",)):
            items = [rows[offset - 1], *items]
        page = []
        for item in items:
            r = load(item)
            url = f"/services/data/v{self.version}/sobjects/{obj}/{r['Id']}"
            page.append({"attributes": {"type": obj, "url": url}, **{f: r.get(f) for f in fields}})
        self.served[obj] += len(page)
        nxt = offset + self.page_size
        body: dict[str, Any] = {"totalSize": len(rows), "done": nxt >= len(rows), "records": page}
        if nxt < len(rows):
            body["nextRecordsUrl"] = f"/services/data/v{self.version}/{endpoint}/{locator}-{nxt}"
        return Reply(200, body)
