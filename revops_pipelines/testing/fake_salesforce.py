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
"""

from __future__ import annotations

import json
import re
import secrets
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from revops_pipelines.testing.fakes import LoopbackServer, Reply, Request

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
        self.objects = {k: [dict(r) for r in v] for k, v in objects.items()} if copy else objects
        self.client_id, self.client_secret = client_id, client_secret
        self.page_size = page_size
        self.version = version
        self.tokens: set[str] = set()
        self.served: Counter[str] = Counter()  # object -> records served
        self._locators: dict[str, list[dict]] = {}

    @classmethod
    def from_world(cls, root: str | Path, **kw: Any) -> FakeSalesforce:
        objects = {}
        for name in WORLD_OBJECTS:
            path = Path(root) / f"salesforce/{name}.jsonl"
            if not path.exists():  # a world from before the object was generated: the org has none
                continue
            with path.open(encoding="utf-8") as fh:
                objects[name] = [json.loads(line) for line in fh if line.strip()]
        return cls(objects, copy=False, **kw)

    # ---- changes a user would make --------------------------------------------------------------
    def _find(self, record_id: str) -> dict:
        for recs in self.objects.values():
            for r in recs:
                if r["Id"] == record_id:
                    return r
        raise KeyError(record_id)

    def touch(self, record_id: str, at: datetime, **fields: Any) -> None:
        r = self._find(record_id)
        r.update(fields)
        r["SystemModstamp"] = sf_stamp(at)

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

    def _rows(self, endpoint: str, soql: str) -> tuple[str, list[str], list[dict]] | None:
        m = SOQL.match(soql.strip())
        if not m:
            return None
        fields = [f.strip() for f in m.group("fields").split(",")]
        recs = self.objects.get(m.group("obj"), [])
        if endpoint == "query":
            recs = [r for r in recs if not r.get("IsDeleted")]
        if m.group("since"):
            since = sf_time(m.group("since"))
            recs = [r for r in recs if sf_time(r["SystemModstamp"]) >= since]
        recs = sorted(recs, key=lambda r: (sf_time(r["SystemModstamp"]), r["Id"]))
        return m.group("obj"), fields, recs

    def _bulk(self, req: Request, rest: str) -> Reply:
        import csv
        import io

        if req.method == "POST" and not rest:
            body = req.body if isinstance(req.body, dict) else {}
            parsed = self._rows(body.get("operation", "query"), body.get("query") or "")
            if parsed is None:
                return Reply(400, [{"message": "unsupported SOQL", "errorCode": "INVALIDJOB"}])
            job = "750" + uuid.uuid4().hex[:15]
            self._locators[job] = [{"fields": parsed[1], "obj": parsed[0]}, *parsed[2]]
            return Reply(200, {"id": job, "operation": body.get("operation"), "state": "UploadComplete"})
        job, _, what = rest.partition("/")
        if job not in self._locators:
            return Reply(404, [{"message": "job not found", "errorCode": "NOT_FOUND"}])
        if not what:
            return Reply(200, {"id": job, "state": "JobComplete"})
        head, *rows = self._locators[job]
        q = {k: v[0] for k, v in req.query.items()}
        offset, size = int(q.get("locator") or 0), int(q.get("maxRecords") or 50_000)
        page = rows[offset : offset + size]
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(head["fields"])
        for r in page:
            w.writerow(
                [
                    ""
                    if r.get(f) is None
                    else str(r.get(f)).lower()
                    if isinstance(r.get(f), bool)
                    else r.get(f)
                    for f in head["fields"]
                ]
            )
        self.served[head["obj"]] += len(page)
        nxt = offset + size
        headers = {
            "Content-Type": "text/csv",
            "Sforce-Locator": str(nxt) if nxt < len(rows) else "null",
            "Sforce-NumberOfRecords": str(len(page)),
        }
        return Reply(200, raw=out.getvalue().encode(), headers=headers)

    def _query(self, endpoint: str, soql: str) -> Reply:
        m = SOQL.match(soql.strip())
        if not m:
            return Reply(400, [{"message": f"unsupported SOQL: {soql[:80]}", "errorCode": "MALFORMED_QUERY"}])
        fields = [f.strip() for f in m.group("fields").split(",")]
        recs = self.objects.get(m.group("obj"), [])
        if endpoint == "query":
            recs = [r for r in recs if not r.get("IsDeleted")]
        if m.group("since"):
            since = sf_time(m.group("since"))
            recs = [r for r in recs if sf_time(r["SystemModstamp"]) >= since]
        recs = sorted(recs, key=lambda r: (sf_time(r["SystemModstamp"]), r["Id"]))
        rows = [
            {
                "attributes": {
                    "type": m.group("obj"),
                    "url": f"/services/data/v{self.version}/sobjects/{m.group('obj')}/{r['Id']}",
                },
                **{f: r.get(f) for f in fields},
            }
            for r in recs
        ]
        locator = "01g" + uuid.uuid4().hex[:15]
        self._locators[locator] = rows
        return self._page(endpoint, locator, 0, m.group("obj"))

    def _more(self, endpoint: str, ident: str) -> Reply:
        locator, _, offset = ident.rpartition("-")
        if (
            self.faults.take(f"/services/data/v{self.version}/{endpoint}/", ("expired_cursor",))
            or locator not in self._locators
        ):
            return Reply(400, [{"message": "invalid query locator", "errorCode": "INVALID_QUERY_LOCATOR"}])
        return self._page(endpoint, locator, int(offset), None)

    def _page(self, endpoint: str, locator: str, offset: int, obj: str | None) -> Reply:
        rows = self._locators[locator]
        page = rows[offset : offset + self.page_size]
        if offset and self.faults.take(f"/services/data/v{self.version}/{endpoint}/", ("duplicates",)):
            page = [rows[offset - 1], *page]
        for r in page:
            self.served[r["attributes"]["type"]] += 1
        nxt = offset + self.page_size
        body: dict[str, Any] = {"totalSize": len(rows), "done": nxt >= len(rows), "records": page}
        if nxt < len(rows):
            body["nextRecordsUrl"] = f"/services/data/v{self.version}/{endpoint}/{locator}-{nxt}"
        return Reply(200, body)
