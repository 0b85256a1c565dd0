"""A loopback Gong API v2 that serves a sample world's calls — the stand-in the Gong client is
exercised against in sample mode and in tests. It is not Gong.

Implemented as the client uses it (see DESIGN.md §3):

* ``GET /v2/calls?fromDateTime=&toDateTime=&cursor=`` — calls whose ``started`` is in
  ``[from, to)``, oldest first, ``page_size`` per page; the last page has no cursor; an empty window
  is HTTP 404 as in Gong.
* ``POST /v2/calls/extensive`` with ``{filter: {callIds}}`` — the world's extensive records.
* ``POST /v2/calls/transcript`` with ``{filter: {callIds}}`` — ``callTranscripts``.
* Basic auth (access key : secret) or a bearer token; anything else is HTTP 401.

Besides the transport faults of :mod:`revops_pipelines.testing.fakes` it can hold back a call's
extensive content or transcript for the next N requests (``not_ready``: "Gong has not processed the
call yet"), serve a broken extensive record (``malformed``), keep failing for one call id
(``failing``), expire a cursor and repeat a record across pages.
"""

from __future__ import annotations

import base64
import bisect
import json
import threading
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from revops_pipelines.testing.fakes import (
    JsonLinesById,
    LineCodec,
    LoopbackServer,
    Reply,
    Request,
    jsonl_lines,
)


def _z(ts: str) -> str:
    """Normalise an ISO timestamp to ``...Z`` so string comparison is chronological."""
    return ts.replace("+00:00", "Z")


class FakeGong(LoopbackServer):
    name = "fake-gong"

    def __init__(
        self,
        calls: list[dict],
        transcripts: list[dict],
        *,
        access_key: str = "gong-key",
        access_key_secret: str = "gong-secret",
        bearer_token: str | None = None,
        page_size: int = 100,
        **kw: Any,
    ):
        super().__init__(**kw)
        self.calls = sorted(calls, key=lambda c: (_z(c["metaData"]["started"]), c["metaData"]["id"]))
        self._starts = [_z(c["metaData"]["started"]) for c in self.calls]  # sorted: windows by bisection
        self.by_id = {c["metaData"]["id"]: c for c in self.calls}
        self.transcripts = {t["callId"]: t for t in transcripts}
        self.page_size = page_size
        self._basic = base64.b64encode(f"{access_key}:{access_key_secret}".encode()).decode()
        self._bearer = bearer_token
        self.not_ready_extensive: dict[str, int] = {}
        self.not_ready_transcript: dict[str, int] = {}
        self.malformed: dict[str, str] = {}  # call id -> which field to break
        self.failing: set[str] = set()  # extensive requests including these ids fail with 500
        self.fetched_extensive: Counter[str] = Counter()
        self.fetched_transcripts: Counter[str] = Counter()
        self._cursor_lock = threading.Lock()
        self._last_page_tail: dict | None = None

    @classmethod
    def from_world(cls, root: str | Path, **kw: Any) -> FakeGong:
        """The world's calls and transcripts, held as deflated JSON lines (see
        :class:`~revops_pipelines.testing.fakes.JsonLinesById`: a 50,000-account world's ~850 MB of
        them took about 5 GB as parsed dicts, and a served record is read once or twice); the listing
        serves each call's metadata, parsed once. A record changed after reading it from
        :attr:`by_id` or :attr:`transcripts` is kept only when stored back there."""
        root = Path(root)
        calls_at, transcripts_at = root / "gong/calls.jsonl", root / "gong/transcripts.jsonl"
        listed: list[dict] = []
        calls, transcripts = (
            JsonLinesById(LineCodec.sample(calls_at)),
            JsonLinesById(LineCodec.sample(transcripts_at)),
        )
        for line in jsonl_lines(calls_at):
            meta = json.loads(line)["metaData"]
            listed.append({"metaData": meta})
            calls.put_line(meta["id"], line)
        for line in jsonl_lines(transcripts_at):
            transcripts.put_line(json.loads(line)["callId"], line)
        server = cls(listed, [], **kw)
        server.by_id, server.transcripts = calls, transcripts
        return server

    # ---- helpers -------------------------------------------------------------------------------
    def _authorised(self, req: Request) -> bool:
        auth = req.headers.get("Authorization") or req.headers.get("authorization") or ""
        if auth == f"Basic {self._basic}":
            return True
        return bool(self._bearer) and auth == f"Bearer {self._bearer}"

    @staticmethod
    def _encode(cursor: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(cursor).encode()).decode()

    @staticmethod
    def _decode(cursor: str) -> dict:
        return json.loads(base64.urlsafe_b64decode(cursor.encode()))

    def _ids(self, req: Request) -> list[str]:
        body = req.body if isinstance(req.body, dict) else {}
        return [str(i) for i in ((body.get("filter") or {}).get("callIds") or [])]

    def handle(self, req: Request) -> Reply:
        if not self._authorised(req):
            return Reply(401, {"requestId": uuid.uuid4().hex, "errors": ["Unauthorized"]})
        if req.method == "GET" and req.path == "/v2/calls":
            return self._list(req)
        if req.method == "POST" and req.path == "/v2/calls/extensive":
            return self._extensive(req)
        if req.method == "POST" and req.path == "/v2/calls/transcript":
            return self._transcript(req)
        return Reply(404, {"errors": [f"no route {req.method} {req.path}"]})

    def _list(self, req: Request) -> Reply:
        q = {k: v[0] for k, v in req.query.items()}
        cursor = q.get("cursor")
        if cursor:
            if self.faults.take(req.path, ("expired_cursor",)):
                return Reply(400, {"requestId": uuid.uuid4().hex, "errors": ["cursor has expired"]})
            state = self._decode(cursor)
            lo, hi, offset, page_no = state["f"], state["t"], state["o"], state["p"]
        else:
            lo, hi = _z(q.get("fromDateTime") or "0000"), _z(q.get("toDateTime") or "9999")
            offset, page_no = 0, 1
        window = self.calls[bisect.bisect_left(self._starts, lo) : bisect.bisect_left(self._starts, hi)]
        if not window:
            return Reply(404, {"errors": ["No calls found corresponding to the provided filters"]})
        page = [c["metaData"] for c in window[offset : offset + self.page_size]]
        with self._cursor_lock:
            if offset and self.faults.take(req.path, ("duplicates",)):
                page = [window[offset - 1]["metaData"], *page]
        records: dict[str, Any] = {
            "totalRecords": len(window),
            "currentPageSize": len(page),
            "currentPageNumber": page_no - 1,
        }
        nxt = offset + self.page_size
        if nxt < len(window):
            records["cursor"] = self._encode({"f": lo, "t": hi, "o": nxt, "p": page_no + 1})
        return Reply(200, {"requestId": uuid.uuid4().hex, "records": records, "calls": page})

    def _extensive(self, req: Request) -> Reply:
        ids = self._ids(req)
        if any(i in self.failing for i in ids):
            return Reply(500, {"errors": ["Internal error while loading calls"]})
        out = []
        for i in ids:
            call = self.by_id.get(i)
            if call is None:
                continue
            self.fetched_extensive[i] += 1
            if self.not_ready_extensive.get(i, 0) > 0:
                self.not_ready_extensive[i] -= 1
                out.append({"metaData": call["metaData"], "context": call.get("context")})
                continue
            if i in self.malformed:
                call = json.loads(json.dumps(call))
                call["metaData"][self.malformed[i]] = "not-a-date"
            out.append(call)
        records = {"totalRecords": len(out), "currentPageSize": len(out), "currentPageNumber": 0}
        return Reply(200, {"requestId": uuid.uuid4().hex, "records": records, "calls": out})

    def _transcript(self, req: Request) -> Reply:
        out = []
        for i in self._ids(req):
            t = self.transcripts.get(i)
            if t is None:
                continue
            self.fetched_transcripts[i] += 1
            if self.not_ready_transcript.get(i, 0) > 0:
                self.not_ready_transcript[i] -= 1
                continue
            out.append(t)
        records = {"totalRecords": len(out), "currentPageSize": len(out), "currentPageNumber": 0}
        return Reply(200, {"requestId": uuid.uuid4().hex, "records": records, "callTranscripts": out})
