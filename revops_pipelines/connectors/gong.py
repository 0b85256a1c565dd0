"""Gong API v2 connector: an httpx client, the incremental sync, and the Dagster resource.

The sync never loses or duplicates a call:

* **Budget** — every request goes through one :class:`~revops_pipelines.connectors.base.RateLimiter`
  per Gong account and process (3 requests/s, 10,000/day by default); a 429's ``Retry-After`` pauses
  all of them; 5xx, timeouts and unreadable bodies are retried with backoff; when the day's budget is
  spent the run stops with :class:`BudgetExhausted` and the next run resumes.
* **Windows** — ``/v2/calls`` is listed for ``[from, to)``; ``from`` is the last completed window's
  ``to`` minus a lookback overlap (Gong processes calls after they happen). The checkpoint
  ``{from, to, cursor}`` is saved after every page, so a killed run resumes mid-window; an expired
  cursor restarts the window (merging by call id makes the re-read harmless).
* **Pending calls** — every listed call that is not already complete in the warehouse is remembered
  until both its extensive record and its transcript have been written. Calls Gong has not processed
  yet stay pending for a later run; complete calls are never fetched again.
* **Checkpoint cost** — the checkpoint file (``<state>.json``) holds only the windows and the
  high-water mark, so saving it after a page costs the same on page 1 and page 5,000. The pending
  calls are rows of a SQLite file beside it (``<state>.pending.sqlite``, a
  :class:`~revops_pipelines.connectors.base.KeyedStore`): a page inserts its new ids, a fetched batch
  updates or deletes its own, each in one transaction. A page's ids are committed *before* the
  cursor that passes them, so a kill in between re-lists that page and finds them already pending.
  A checkpoint written before this layout (pending ids inside the JSON) is moved into the SQLite
  file on the first run and then dropped from the JSON.
* **Quarantine** — an extensive record that fails validation is quarantined at once with its reason;
  a call id whose request keeps failing (after retries, in ``max_failures`` runs) is quarantined with
  the last error. Nothing is dropped silently.
* **Ordering** — records are handed to the sink (the warehouse merge) *before* the state that says
  they are done is saved; a crash in between means a harmless re-fetch, never a gap.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Protocol

from pydantic import Field

from revops_pipelines.connectors.base import (
    AuthenticationFailed,
    ConnectorResource,
    KeyedStore,
    RateLimiter,
    RequestStats,
    RetryPolicy,
    SourceError,
    SourceUnavailable,
    StateStore,
    TransientError,
    call_with_retries,
    quarantine_row,
)
from revops_pipelines.errors import ConfigurationError

SOURCE = "gong"


class CursorExpired(SourceError):
    """Gong no longer accepts the paging cursor; the window is listed again from its start."""


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


class GongClient:
    """The three endpoints the sync needs, each request budgeted and retried."""

    def __init__(
        self,
        base_url: str,
        auth_headers: dict[str, str],
        *,
        limiter: RateLimiter,
        retry: RetryPolicy | None = None,
        timeout_s: float = 30.0,
        stats: RequestStats | None = None,
    ):
        import httpx  # imported here: loading the definitions must stay light

        self.base_url = base_url.rstrip("/")
        self.limiter = limiter
        self.retry = retry or RetryPolicy()
        self.stats = stats or RequestStats()
        self._httpx = httpx
        self._http = httpx.Client(
            base_url=self.base_url, headers=auth_headers, timeout=timeout_s, trust_env=False
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> GongClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _request(
        self, method: str, path: str, *, params: dict | None = None, body: dict | None = None
    ) -> dict:
        httpx = self._httpx

        def attempt() -> dict:
            try:
                r = self._http.request(method, path, params=params, json=body)
            except httpx.TimeoutException as e:
                raise TransientError(f"timeout on {method} {path}", kind="timeout") from e
            except httpx.TransportError as e:
                raise TransientError(f"{type(e).__name__} on {method} {path}", kind="other") from e
            if r.status_code in (401, 403):
                raise AuthenticationFailed(
                    SOURCE,
                    f"authentication failed (HTTP {r.status_code} on {path}); check the Gong access key "
                    "and secret (GONG_ACCESS_KEY / GONG_ACCESS_KEY_SECRET) or the OAuth access token "
                    "(GONG_OAUTH_ACCESS_TOKEN, which expires; and GONG_API_BASE_URL for OAuth apps)",
                )
            if r.status_code == 429:
                ra = r.headers.get("Retry-After")
                raise TransientError(f"HTTP 429 on {path}", retry_after=float(ra) if ra else None, kind="429")
            if r.status_code >= 500:
                raise TransientError(f"HTTP {r.status_code} on {method} {path}", kind="5xx")
            try:
                data = r.json()
            except ValueError as e:
                raise TransientError(f"unreadable JSON body from {path}", kind="body") from e
            if r.status_code == 404 and path == "/v2/calls":
                return {"calls": [], "records": {}}  # Gong: no calls in the window
            if r.status_code == 400 and "cursor" in str(data.get("errors", "")).lower():
                raise CursorExpired(SOURCE, f"cursor rejected on {path}: {data.get('errors')}")
            if r.status_code >= 400:
                raise SourceError(SOURCE, f"HTTP {r.status_code} on {method} {path}: {data.get('errors')}")
            return data

        return call_with_retries(
            SOURCE, f"{method} {path}", attempt, limiter=self.limiter, policy=self.retry, stats=self.stats
        )

    def list_calls(
        self, start: str, end: str, cursor: str | None = None
    ) -> Iterator[tuple[list[dict], str | None]]:
        """Pages of ``/v2/calls`` for ``[start, end)`` as ``(calls, next_cursor)``, from ``cursor`` on."""
        while True:
            params = {"cursor": cursor} if cursor else {"fromDateTime": start, "toDateTime": end}
            data = self._request("GET", "/v2/calls", params=params)
            cursor = (data.get("records") or {}).get("cursor")
            yield data.get("calls") or [], cursor
            if not cursor:
                return

    def extensive(self, call_ids: list[str]) -> list[dict]:
        body: dict[str, Any] = {
            "filter": {"callIds": call_ids},
            "contentSelector": {
                "context": "Extended",
                "exposedFields": {
                    "parties": True,
                    "content": {"brief": True, "keyPoints": True, "topics": True, "trackers": True},
                    "interaction": {"speakers": True, "questions": True},
                },
            },
        }
        out: list[dict] = []
        while True:
            data = self._request("POST", "/v2/calls/extensive", body=body)
            out.extend(data.get("calls") or [])
            cursor = (data.get("records") or {}).get("cursor")
            if not cursor:
                return out
            body = {**body, "cursor": cursor}

    def transcripts(self, call_ids: list[str]) -> list[dict]:
        body: dict[str, Any] = {"filter": {"callIds": call_ids}}
        out: list[dict] = []
        while True:
            data = self._request("POST", "/v2/calls/transcript", body=body)
            out.extend(data.get("callTranscripts") or [])
            cursor = (data.get("records") or {}).get("cursor")
            if not cursor:
                return out
            body = {**body, "cursor": cursor}


# ---- the incremental sync ------------------------------------------------------------------------
class GongSink(Protocol):
    """Where synced records go (the warehouse in the asset, a dict in tests)."""

    def complete_call_ids(self, call_ids: list[str]) -> set[str]: ...
    def write_calls(self, records: list[dict]) -> None: ...
    def write_transcripts(self, records: list[dict]) -> None: ...
    def write_quarantine(self, rows: list[dict]) -> None: ...


def validate_call(rec: dict) -> str | None:
    """Why an extensive call record cannot be loaded, or None."""
    md = rec.get("metaData")
    if not isinstance(md, dict):
        return "metaData missing"
    if not md.get("id"):
        return "metaData.id missing"
    for f in ("started", "scheduled"):
        v = md.get(f)
        if v is not None:
            try:
                _parse(str(v))
            except ValueError:
                return f"metaData.{f} is not an ISO-8601 timestamp: {str(v)[:40]!r}"
    if md.get("duration") is not None and not isinstance(md.get("duration"), int | float):
        return "metaData.duration is not a number"
    return None


def is_ready(rec: dict) -> bool:
    """Gong returns a call before it has processed it; content/interaction come later."""
    return bool(rec.get("content")) or bool(rec.get("interaction"))


@dataclass
class GongSyncConfig:
    start: datetime
    lookback: timedelta = timedelta(days=1)
    batch_size: int = 100
    max_failures: int = 3
    max_cursor_restarts: int = 3


@dataclass
class SyncSummary:
    listed: int = 0
    listed_without_id: int = 0
    new_pending: int = 0
    calls_written: int = 0
    transcripts_written: int = 0
    quarantined: int = 0
    not_ready: int = 0
    pending_after: int = 0
    cursor_restarts: int = 0
    checkpoint: dict = field(default_factory=dict)


def pending_store(store: StateStore) -> KeyedStore:
    """Where the pending calls of the checkpoint ``store`` live: ``<name>.pending.sqlite`` beside it."""
    return KeyedStore(store.root, f"{store.name}.pending")


def saved_state(store: StateStore) -> dict[str, Any]:
    """The whole saved Gong state — the checkpoint document plus ``pending`` (call id → what it still
    needs) — as one dict, whichever layout wrote it (for inspection and tests)."""
    state = store.load()
    if "pending" not in state:  # the current layout; an old one still has them inline
        pending = pending_store(store)
        try:
            state["pending"] = pending.as_dict()
        finally:
            pending.close()
    return state


class GongSync:
    def __init__(
        self,
        client: GongClient,
        store: StateStore,
        config: GongSyncConfig,
        sink: GongSink,
        *,
        now: datetime,
        backfill: tuple[datetime, datetime] | None = None,
        log: Callable[[str], None] = lambda _m: None,
    ):
        self.client, self.store, self.config, self.sink = client, store, config, sink
        self.now, self.log = now, log
        self.backfill = backfill
        self.state: dict[str, Any] = store.load()
        self.pending = pending_store(store)
        legacy = self.state.pop("pending", None)
        if legacy is not None:  # a checkpoint from before the pending calls moved to SQLite
            # rows first: a kill before the JSON drops them just imports the same rows again
            self.pending.apply(put=legacy)
            self._save()
            self.log(
                f"gong: moved {len(legacy)} pending call(s) from {store.path.name} to {self.pending.path.name}"
            )
        self.summary = SyncSummary()
        self._current: dict | None = None

    def _save(self) -> None:
        self.store.save(self.state)

    # ---- listing ---------------------------------------------------------------------------------
    def _window(self) -> dict | None:
        if (
            self.backfill
        ):  # an explicit historic window, checkpointed on its own; the incremental one is untouched
            key = f"{_iso(self.backfill[0])}/{_iso(self.backfill[1])}"
            fills = self.state.setdefault("backfills", {})
            w = fills.get(key)
            if not w or w.get("done"):
                w = fills[key] = {
                    "from": _iso(self.backfill[0]),
                    "to": _iso(self.backfill[1]),
                    "cursor": None,
                    "done": False,
                }
                self._save()
            return w
        w = self.state.get("window")
        if w and not w.get("done"):
            return w  # resume the killed run's window from its cursor
        done_to = self.state.get("completed_to")
        start = _parse(done_to) - self.config.lookback if done_to else self.config.start
        start = max(start, self.config.start)
        if start >= self.now:
            return None
        w = {"from": _iso(start), "to": _iso(self.now), "cursor": None, "done": False}
        self.state["window"] = w
        self._save()
        return w

    def list_window(self) -> None:
        w = self._current = self._window()
        if w is None:
            return
        while True:
            try:
                for calls, nxt in self.client.list_calls(w["from"], w["to"], w["cursor"]):
                    ids = list(dict.fromkeys(str(c["id"]) for c in calls if c.get("id")))
                    no_id = sum(1 for c in calls if not c.get("id"))
                    if no_id:  # cannot be keyed or fetched: counted and logged, never silently skipped
                        self.log(f"gong: {no_id} listed call(s) without an id in {w['from']}..{w['to']}")
                        self.summary.listed_without_id += no_id
                    self.summary.listed += len(ids)
                    known = self.pending.present(ids) if ids else set()
                    fresh = [i for i in ids if i not in known]
                    complete = self.sink.complete_call_ids(fresh) if fresh else set()
                    new = {
                        i: {"need": ["extensive", "transcript"], "failures": 0, "last_error": None}
                        for i in fresh
                        if i not in complete
                    }
                    self.summary.new_pending += len(new)
                    # the page's ids before the cursor that passes them: a kill in between re-lists
                    # the page and finds them pending; both writes cost one page, not the whole sync
                    self.pending.apply(put=new)
                    w["cursor"] = nxt
                    self._save()
                break
            except CursorExpired as e:
                self.summary.cursor_restarts += 1
                if self.summary.cursor_restarts > self.config.max_cursor_restarts:
                    raise
                self.log(f"{e}; listing the window {w['from']}..{w['to']} again")
                w["cursor"] = None
        w["done"] = True
        if not self.backfill:
            self.state["completed_to"] = w["to"]
        self._save()

    # ---- details -------------------------------------------------------------------------------
    def _quarantine(self, call_id: str, stage: str, reason: str, raw: Any = None) -> None:
        self.sink.write_quarantine([quarantine_row(raw, reason, call_id=call_id, stage=stage)])
        self.summary.quarantined += 1

    def _done(self, call_ids: list[str], stage: str, entries: dict[str, dict]) -> None:
        """Record ``stage`` as done for ``call_ids`` (their ``entries`` as read): one transaction."""
        put: dict[str, dict] = {}
        delete: list[str] = []
        for cid in dict.fromkeys(call_ids):
            entry = entries.get(cid)
            if entry and stage in entry["need"]:
                need = [n for n in entry["need"] if n != stage]
                if need:
                    put[cid] = {**entry, "need": need}
                else:
                    delete.append(cid)
        self.pending.apply(put=put, delete=delete)

    def _fetch(self, stage: str, ids: list[str]) -> list[dict] | None:
        """Fetch one batch; on persistent failure fall back to one id at a time and count failures."""
        fn = self.client.extensive if stage == "extensive" else self.client.transcripts
        try:
            return fn(ids)
        except SourceUnavailable as e:
            if len(ids) > 1:
                self.log(f"gong: {stage} batch of {len(ids)} failed ({e}); retrying the ids one by one")
                out: list[dict] = []
                for i in ids:
                    got = self._fetch(stage, [i])
                    out.extend(got or [])
                return out
            entry = self.pending.get_many(ids)[ids[0]]
            entry["failures"] += 1
            entry["last_error"] = str(e)
            if entry["failures"] >= self.config.max_failures:
                self._quarantine(ids[0], stage, f"failed in {entry['failures']} runs: {e}")
                self.pending.apply(delete=ids)
            else:
                self.pending.apply(put={ids[0]: entry})
            return None

    def fetch_pending(self, stage: str) -> None:
        ids = [i for i, e in self.pending.items() if stage in e["need"]]
        for lo in range(0, len(ids), self.config.batch_size):
            batch = ids[lo : lo + self.config.batch_size]
            got = self._fetch(stage, batch)
            if got is None:
                continue
            entries = self.pending.get_many(batch)  # read after the fetch: failures may have changed them
            good: list[dict] = []
            finished: list[str] = []
            for rec in got:
                if stage == "extensive":
                    cid = str((rec.get("metaData") or {}).get("id") or "")
                    if cid not in entries:
                        continue
                    reason = validate_call(rec)
                    if reason:
                        self._quarantine(cid, stage, reason, rec)
                        finished.append(cid)
                    elif is_ready(rec):
                        good.append(rec)
                        finished.append(cid)
                else:
                    cid = str(rec.get("callId") or "")
                    if cid in entries and rec.get("transcript"):
                        good.append(rec)
                        finished.append(cid)
            self.summary.not_ready += len(set(batch) - set(finished))
            if good:  # the sink first, then the state that says these are done
                if stage == "extensive":
                    self.sink.write_calls(good)
                    self.summary.calls_written += len(good)
                else:
                    self.sink.write_transcripts(good)
                    self.summary.transcripts_written += len(good)
            self._done(finished, stage, entries)

    def run(self) -> SyncSummary:
        try:
            self.list_window()
            self.fetch_pending("extensive")
            self.fetch_pending("transcript")
            self.summary.pending_after = len(self.pending)
        finally:
            self.pending.close()
        w = self._current or {}
        self.summary.checkpoint = {
            "mode": "backfill" if self.backfill else "incremental",
            "from": w.get("from"),
            "to": w.get("to"),
            "cursor": w.get("cursor"),
            "window_done": bool(w.get("done")) if w else self._current is None,
            "completed_to": self.state.get("completed_to"),
            "pending": self.summary.pending_after,
        }
        return self.summary


# ---- the Dagster resource ------------------------------------------------------------------------
class GongResource(ConnectorResource):
    """Gong, live or in sample mode. In sample mode (the default) the same client talks to the
    loopback stand-in (:mod:`revops_pipelines.testing.fake_gong`) serving the generated world."""

    source: ClassVar[str] = SOURCE
    limiter_key: ClassVar[str] = "{account}:{per_second}:{per_day}"
    persist_budget: ClassVar[bool] = True  # a new run on the same day continues from what earlier runs spent

    base_url: str = Field(default="https://api.gong.io", description="Gong API base URL (live mode).")
    auth: str = Field(
        default="auto",
        description="'basic' (access key + secret), 'oauth' (bearer token) or 'auto' (the token if set).",
    )
    access_key: str | None = Field(default=None, description="Basic-auth access key (use dg.EnvVar).")
    access_key_secret: str | None = Field(default=None, description="Basic-auth secret (use dg.EnvVar).")
    bearer_token: str | None = Field(default=None, description="OAuth access token, instead of basic.")
    sample_path: str | None = Field(default=None, description="Sample world folder (sample mode).")
    state_dir: str = Field(description="Folder of connector state (checkpoints, pending ids).")
    requests_per_second: float = Field(default=3.0, gt=0)
    daily_budget: int = Field(default=10_000, gt=0)
    lookback_days: float = Field(default=1.0, ge=0)
    start_date: str = Field(default="2024-01-01", description="First day synced on an empty checkpoint.")
    batch_size: int = Field(default=100, ge=1, le=100)
    max_failures: int = Field(default=3, ge=1)

    def _auth(self) -> dict[str, str]:
        from revops_pipelines.credentials import ApiKeyCredential, BasicCredential

        if self.auth not in ("auto", "basic", "oauth"):
            raise ConfigurationError("gong.auth", f"must be basic, oauth or auto, got {self.auth!r}")
        if self.auth in ("auto", "oauth") and self.bearer_token:
            return ApiKeyCredential(token=self.bearer_token).headers()
        if self.auth == "oauth":
            raise ConfigurationError(
                "GONG_OAUTH_ACCESS_TOKEN", "Gong OAuth (GONG_AUTH=oauth) needs an access token"
            )
        if self.access_key and self.access_key_secret:
            return BasicCredential(username=self.access_key, password=self.access_key_secret).headers()
        raise ConfigurationError(
            "GONG_ACCESS_KEY",
            "Gong live mode needs GONG_ACCESS_KEY and GONG_ACCESS_KEY_SECRET, or GONG_OAUTH_ACCESS_TOKEN",
        )

    @contextmanager
    def client(self, stats: RequestStats | None = None) -> Iterator[tuple[GongClient, dict[str, Any]]]:
        """A ready client and facts about the run (``now``, ``start``, ``state_name``)."""
        world = self._world()
        if world is None:  # live; the credentials are checked by _auth (basic or OAuth)
            start = datetime.fromisoformat(self.start_date).replace(tzinfo=UTC)
            with GongClient(self.base_url, self._auth(), **self._transport(SOURCE, stats)) as c:
                yield c, {"now": datetime.now(UTC), "start": start, "state_name": SOURCE}
            return
        from revops_pipelines.credentials import BasicCredential
        from revops_pipelines.testing.fake_gong import FakeGong

        key, secret = "sample", secrets.token_urlsafe(16)
        with FakeGong.from_world(world.root, access_key=key, access_key_secret=secret) as server:
            auth = BasicCredential(username=key, password=secret).headers()
            with GongClient(server.url, auth, **self._transport(world.account, stats)) as c:
                facts = {
                    "now": datetime.fromisoformat(world.manifest["end"]).replace(tzinfo=UTC)
                    + timedelta(days=1),
                    "start": datetime.fromisoformat(world.manifest["start"]).replace(tzinfo=UTC),
                    "state_name": world.account,
                }
                yield c, facts

    def sync(
        self,
        sink: GongSink,
        log: Callable[[str], None] = lambda _m: None,
        backfill: tuple[datetime, datetime] | None = None,
        window: tuple[datetime, datetime] | None = None,
    ) -> tuple[SyncSummary, RequestStats]:
        """One incremental run; with ``backfill=(from, to)`` a (resumable) re-listing of that window
        that leaves the incremental checkpoint alone.

        ``window`` is a partition's time window: one that ends within a day of the source's "now" (the
        current day's partition, or yesterday's when a code location loaded yesterday still targets it)
        is the incremental run from the checkpoint; an older one is a backfill of exactly that window.
        An explicit ``backfill`` wins over ``window``."""
        stats = RequestStats()
        with self.client(stats) as (c, facts):
            if backfill is None and window is not None and window[1] < facts["now"] - timedelta(days=1):
                backfill = window
            cfg = GongSyncConfig(
                start=facts["start"],
                lookback=timedelta(days=self.lookback_days),
                batch_size=self.batch_size,
                max_failures=self.max_failures,
            )
            store = self._state(facts["state_name"])
            summary = GongSync(c, store, cfg, sink, now=facts["now"], backfill=backfill, log=log).run()
        return summary, stats
