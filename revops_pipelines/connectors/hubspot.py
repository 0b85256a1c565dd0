"""HubSpot connector: hubspot-api-client CRM v3 search on the last-modified property.

Per object type one search ``{last-modified >= checkpoint}`` sorted ascending, 100 per page, paged
with ``after``. HubSpot serves at most 10,000 results per query, so before ``after`` would pass that
window the query is started again from the last timestamp written (``>=`` re-reads the boundary; the
merge on id makes that harmless). The checkpoint ``{since, query_since, after}`` is saved after each
page is written, so a killed run resumes with the same query and page. Search is rate limited
(~4 requests/s per account): every request goes through the shared limiter; 429s honour
``Retry-After``; 5xx, timeouts and unreadable bodies are retried.

Objects: companies, contacts, deals, and the engagement objects calls, emails, meetings, notes, tasks.
Archived (deleted) records never appear in search; after each type's search the list endpoint with
``archived=true`` is paged and those ids are flagged ``archived`` in the warehouse (rows are kept).

Company links: search results carry no associations, so for every page of deals and engagements the
associations API (v4 batch read, ``POST /crm/v4/associations/{type}/companies/batch/read``, at most
1,000 ids per request, each object's links paged with ``after``) is read before the page is written,
through the same limiter and retries. The records are written with HubSpot's object shape
``associations.companies.results`` (the primary company first); a record with no company gets none.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol

from pydantic import Field

from revops_pipelines.connectors.base import (
    AuthenticationFailed,
    ConnectorResource,
    RateLimiter,
    RequestStats,
    RetryPolicy,
    SourceError,
    StateStore,
    TransientError,
    call_with_retries,
    screen,
)

SOURCE = "hubspot"
WINDOW = 10_000
PAGE = 100
ENGAGEMENTS = ("calls", "emails", "meetings", "notes", "tasks")
LINKED_TO_COMPANY = ("deals", *ENGAGEMENTS)  # object types whose company is read from the associations API
MAX_ASSOCIATION_BATCH = 1_000  # ids per associations batch read (HubSpot's limit since 2025-02)
NO_ASSOCIATIONS = "NO_ASSOCIATIONS_FOUND"
PROPERTIES: dict[str, tuple[str, ...]] = {
    "companies": (
        "name",
        "domain",
        "industry",
        "numberofemployees",
        "annualrevenue",
        "lifecyclestage",
        "salesforceaccountid",
        "createdate",
        "hs_lastmodifieddate",
    ),
    "contacts": (
        "email",
        "firstname",
        "lastname",
        "jobtitle",
        "associatedcompanyid",
        "createdate",
        "lastmodifieddate",
    ),
    "deals": (
        "dealname",
        "dealstage",
        "pipeline",
        "amount",
        "closedate",
        "hubspot_owner_id",
        "salesforceopportunityid",
        "createdate",
        "hs_lastmodifieddate",
    ),
    **{
        e: ("hs_timestamp", "hubspot_owner_id", "hs_body_preview", "hs_createdate", "hs_lastmodifieddate")
        + {
            "calls": ("hs_call_title",),
            "emails": ("hs_email_subject",),
            "meetings": ("hs_meeting_title",),
            "notes": (),
            "tasks": ("hs_task_subject",),
        }[e]
        for e in ENGAGEMENTS
    },
}


def modified_property(object_type: str) -> str:
    return "lastmodifieddate" if object_type == "contacts" else "hs_lastmodifieddate"


def _ms(ts: str) -> int:
    return int(datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() * 1000)


class CursorRejected(SourceError):
    """HubSpot rejected the paging cursor; the query restarts from the checkpoint."""


def validate_object(object_type: str, rec: dict) -> str | None:
    rid = rec.get("id")
    if not isinstance(rid, str) or not rid.isdigit():
        return f"id is not a HubSpot object id: {str(rid)[:40]!r}"
    prop = modified_property(object_type)
    value = (rec.get("properties") or {}).get(prop)
    try:
        _ms(str(value))
    except ValueError:
        return f"{prop} is not a timestamp: {str(value)[:40]!r}"
    return None


class HubSpotClient:
    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        limiter: RateLimiter,
        retry: RetryPolicy | None = None,
        timeout_s: float = 30.0,
        stats: RequestStats | None = None,
    ):
        from hubspot import HubSpot
        from urllib3.util.retry import Retry

        from revops_pipelines.logging import register_secret

        register_secret(token)
        # retries are ours (budgeted, counted); urllib3's own are switched off
        self.hs = HubSpot(
            access_token=token, host=base_url.rstrip("/"), retry=Retry(total=0, raise_on_status=False)
        )
        self.limiter, self.retry = limiter, retry or RetryPolicy()
        self.stats = stats or RequestStats()
        self.timeout_s = timeout_s

    def _do_search(self, object_type: str, body: dict) -> Any:
        kw = {"_preload_content": False, "_request_timeout": self.timeout_s}
        crm = self.hs.crm
        if object_type in ("companies", "contacts", "deals"):
            api = getattr(crm, object_type).search_api
            return api.do_search(public_object_search_request=body, **kw)
        return crm.objects.search_api.do_search(object_type, public_object_search_request=body, **kw)

    def search(self, object_type: str, since_ms: int | None, after: str | None, limit: int = PAGE) -> dict:
        prop = modified_property(object_type)
        body: dict[str, Any] = {
            "filterGroups": [
                {"filters": [{"propertyName": prop, "operator": "GTE", "value": str(since_ms or 0)}]}
            ],
            "sorts": [{"propertyName": prop, "direction": "ASCENDING"}],
            "properties": list(PROPERTIES[object_type]),
            "limit": limit,
        }
        if after:
            body["after"] = after
        return self._call(f"search {object_type}", lambda: self._do_search(object_type, body), bool(after))

    def archived_page(self, object_type: str, after: str | None, limit: int = PAGE) -> dict:
        """One page of the object type's archived (deleted) records — the search API never returns them."""
        kw: dict[str, Any] = {"archived": True, "limit": limit, "_preload_content": False}
        kw["_request_timeout"] = self.timeout_s
        if after:
            kw["after"] = after
        crm = self.hs.crm
        if object_type in ("companies", "contacts", "deals"):
            fn = lambda: getattr(crm, object_type).basic_api.get_page(**kw)  # noqa: E731
        else:
            fn = lambda: crm.objects.basic_api.get_page(object_type, **kw)  # noqa: E731
        return self._call(f"list archived {object_type}", fn, bool(after))

    def association_batch(self, from_type: str, to_type: str, inputs: list[dict]) -> dict:
        """One v4 associations batch read: ``inputs`` are ``{"id", "after"?}`` (at most 1,000)."""
        if not 0 < len(inputs) <= MAX_ASSOCIATION_BATCH:
            raise ValueError(
                f"an associations batch read takes 1 to {MAX_ASSOCIATION_BATCH} ids, got {len(inputs)}"
            )
        kw = {"_preload_content": False, "_request_timeout": self.timeout_s}
        api = self.hs.crm.associations.v4.batch_api
        return self._call(
            f"read {from_type} -> {to_type} associations",
            lambda: api.get_page(
                from_type,
                to_type,
                batch_input_public_fetch_associations_batch_request={"inputs": inputs},
                **kw,
            ),
            False,
        )

    def associated(
        self,
        from_type: str,
        ids: list[str],
        to_type: str = "companies",
        batch_size: int = MAX_ASSOCIATION_BATCH,
    ) -> dict[str, list[str]]:
        """The ``to_type`` records each of ``ids`` is associated with (primary first; [] when none),
        read in batches of at most ``batch_size`` ids, every object's links paged to the end."""
        if not 0 < batch_size <= MAX_ASSOCIATION_BATCH:
            raise ValueError(f"association batch_size must be 1..{MAX_ASSOCIATION_BATCH}, got {batch_size}")
        found: dict[str, list[tuple[bool, str]]] = {str(i): [] for i in ids}
        pending = [{"id": str(i)} for i in dict.fromkeys(found)]
        while pending:
            batch, pending = pending[:batch_size], pending[batch_size:]
            data = self.association_batch(from_type, to_type, batch)
            for res in data.get("results") or []:
                oid = str((res.get("from") or {}).get("id"))
                if oid not in found:
                    continue
                for link in res.get("to") or []:
                    primary = any(
                        (t.get("label") or "").lower() == "primary"
                        for t in link.get("associationTypes") or []
                    )
                    found[oid].append((primary, str(link["toObjectId"])))
                after = ((res.get("paging") or {}).get("next") or {}).get("after")
                if after:
                    pending.append({"id": oid, "after": str(after)})
            for err in data.get("errors") or []:
                if NO_ASSOCIATIONS not in str(err.get("subCategory") or ""):
                    raise SourceError(
                        SOURCE,
                        f"associations batch read {from_type} -> {to_type} failed: "
                        f"{err.get('category')}: {str(err.get('message'))[:200]}",
                    )
        out = {}
        for oid, links in found.items():
            ordered = [to for _p, to in sorted(links, key=lambda x: not x[0])]  # stable: primary first
            out[oid] = list(dict.fromkeys(ordered))
        return out

    def _call(self, what: str, request: Callable[[], Any], paging: bool) -> dict:
        import urllib3

        after = paging

        def attempt() -> dict:
            try:
                resp = request()
            except urllib3.exceptions.HTTPError as e:
                timeout = isinstance(e, urllib3.exceptions.TimeoutError) or isinstance(
                    getattr(e, "reason", None), urllib3.exceptions.TimeoutError
                )
                raise TransientError(
                    f"{type(e).__name__} on {what}", kind="timeout" if timeout else "other"
                ) from e
            except Exception as e:
                status = getattr(e, "status", None)
                if status is None or not type(e).__module__.startswith("hubspot."):
                    raise
                if status in (401, 403):
                    raise AuthenticationFailed(
                        SOURCE,
                        f"authentication failed (HTTP {status} on {what}); check the private app token "
                        "(HUBSPOT_ACCESS_TOKEN) and its CRM scopes",
                    ) from e
                if status == 429:
                    headers = getattr(e, "headers", None) or {}
                    ra = headers.get("Retry-After") if hasattr(headers, "get") else None
                    raise TransientError(
                        f"HTTP 429 on {what}", retry_after=float(ra) if ra else None, kind="429"
                    ) from e
                if status == 0 or status >= 500:
                    raise TransientError(f"HTTP {status} on {what}", kind="5xx") from e
                text = (e.body.decode("utf-8", "replace") if isinstance(e.body, bytes) else str(e.body))[:300]
                if status == 400 and after and "cursor" in text.lower():
                    raise CursorRejected(SOURCE, f"paging cursor rejected on {what}") from e
                raise SourceError(SOURCE, f"HTTP {status} on {what}: {text}") from e
            try:
                return json.loads(resp.data)
            except ValueError as e:
                raise TransientError(f"unreadable JSON body on {what}", kind="body") from e

        return call_with_retries(
            SOURCE, what, attempt, limiter=self.limiter, policy=self.retry, stats=self.stats
        )


class HubSpotSink(Protocol):
    def write(self, object_type: str, records: list[dict]) -> None: ...
    def mark_archived(self, object_type: str, ids: list[str]) -> None: ...
    def write_quarantine(self, rows: list[dict]) -> None: ...


class HubSpotSync:
    def __init__(
        self,
        client: HubSpotClient,
        store: StateStore,
        sink: HubSpotSink,
        object_types: tuple[str, ...] = tuple(PROPERTIES),
        *,
        window: int = WINDOW,
        page_size: int = PAGE,
        max_cursor_restarts: int = 3,
        log: Callable[[str], None] = lambda _m: None,
    ):
        self.client, self.store, self.sink = client, store, sink
        self.object_types = object_types
        self.window, self.page_size = window, page_size
        self.max_cursor_restarts, self.log = max_cursor_restarts, log
        self.state: dict[str, Any] = store.load()
        self.counts: dict[str, int] = {}
        self.slides: dict[str, int] = {}
        self.archived: dict[str, int] = {}
        self.quarantined = 0
        self.linked: dict[str, int] = {}  # records written with a company, per type
        self.unlinked: dict[str, int] = {}  # records HubSpot reports no company for

    def sync_type(self, object_type: str) -> None:
        prop = modified_property(object_type)
        cp = dict(self.state.get(object_type) or {})
        if not cp.get("after"):
            cp["query_since"] = cp.get("since")
        restarts = 0
        while True:
            try:
                data = self.client.search(
                    object_type,
                    _ms(cp["query_since"]) if cp.get("query_since") else None,
                    cp.get("after"),
                    self.page_size,
                )
            except CursorRejected as e:
                restarts += 1
                if restarts > self.max_cursor_restarts:
                    raise
                self.log(f"{e}; searching {object_type} again from {cp.get('since')}")
                cp.update(after=None, query_since=cp.get("since"))
                continue
            good, bad = screen(
                data.get("results") or [],
                lambda rec: validate_object(object_type, rec),
                lambda rec: {"object_type": object_type, "record_id": str(rec.get("id"))[:40]},
            )
            if bad:
                self.sink.write_quarantine(bad)
                self.quarantined += len(bad)
            if good and object_type in LINKED_TO_COMPANY:
                good = self.with_companies(object_type, good)
            if good:
                self.sink.write(object_type, good)  # written first; the checkpoint that says so after
                self.counts[object_type] = self.counts.get(object_type, 0) + len(good)
                cp["since"] = max((r["properties"][prop] for r in good), key=_ms)
            nxt = ((data.get("paging") or {}).get("next") or {}).get("after")
            if not nxt:
                cp.update(after=None, query_since=cp.get("since"))
                cp["synced_at"] = datetime.now(UTC).isoformat()
                self.state[object_type] = cp
                self.store.save(self.state)
                return
            if (
                int(nxt) + self.page_size > self.window
            ):  # the next page is beyond the 10,000-result window: slide
                if cp.get("since") == cp.get("query_since"):
                    raise SourceError(
                        SOURCE,
                        f"more than {self.window} {object_type} share the last-modified time {cp['since']}",
                    )
                self.slides[object_type] = self.slides.get(object_type, 0) + 1
                cp.update(after=None, query_since=cp.get("since"))
            else:
                cp["after"] = nxt
            self.state[object_type] = cp
            self.store.save(self.state)

    def with_companies(self, object_type: str, records: list[dict]) -> list[dict]:
        """The records with their companies (read from the associations API) in HubSpot's object
        shape ``associations.companies.results``; a record without a company gets an empty list."""
        links = self.client.associated(object_type, [r["id"] for r in records], "companies")
        singular = object_type.rstrip("s")
        out = []
        for r in records:
            companies = links.get(str(r["id"])) or []
            key = "linked" if companies else "unlinked"
            getattr(self, key)[object_type] = getattr(self, key).get(object_type, 0) + 1
            results = [{"id": c, "type": f"{singular}_to_company"} for c in companies]
            assoc = {**(r.get("associations") or {}), "companies": {"results": results}}
            out.append({**r, "associations": assoc})
        return out

    def sync_archived(self, object_type: str) -> None:
        """Flag the records HubSpot has archived (deleted); idempotent, so a killed run just repeats it."""
        after = None
        while True:
            data = self.client.archived_page(object_type, after, self.page_size)
            ids = [str(r["id"]) for r in data.get("results") or [] if r.get("id")]
            if ids:
                self.sink.mark_archived(object_type, ids)
                self.archived[object_type] = self.archived.get(object_type, 0) + len(ids)
            after = ((data.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return

    def run(self) -> dict[str, Any]:
        for t in self.object_types:
            self.sync_type(t)
            self.sync_archived(t)
        return {
            "records": self.counts,
            "archived": self.archived,
            "window_slides": self.slides,
            "quarantined": self.quarantined,
            "company_linked": self.linked,
            "company_unlinked": self.unlinked,
            "checkpoint": {t: {"since": (self.state.get(t) or {}).get("since")} for t in self.object_types},
        }


class HubSpotResource(ConnectorResource):
    """HubSpot, live or in sample mode (loopback stand-in serving the generated world)."""

    source: ClassVar[str] = SOURCE
    rate_field: ClassVar[str] = "search_requests_per_second"
    limiter_key: ClassVar[str] = "hubspot-search:{account}:{per_second}"
    live_credentials: ClassVar[tuple[str, ...]] = ("access_token",)
    missing_credentials: ClassVar[tuple[str, str]] = (
        "HUBSPOT_ACCESS_TOKEN",
        "HubSpot live mode needs a private app token",
    )

    base_url: str = Field(default="https://api.hubapi.com")
    access_token: str | None = Field(default=None, description="Private app token (dg.EnvVar).")
    search_requests_per_second: float = Field(default=4.0, gt=0)
    daily_budget: int = Field(default=250_000, gt=0)

    @contextmanager
    def client(self, stats: RequestStats | None = None) -> Iterator[tuple[HubSpotClient, str]]:
        world = self._world()
        if world is None:  # live
            yield HubSpotClient(self.base_url, self.access_token, **self._transport("live", stats)), SOURCE
            return
        from revops_pipelines.testing.fake_hubspot import FakeHubSpot

        token = secrets.token_urlsafe(16)
        with FakeHubSpot.from_world(world.root, token=token) as fake:
            yield HubSpotClient(fake.url, token, **self._transport(world.account, stats)), world.account

    def sync(
        self, sink: HubSpotSink, log: Callable[[str], None] = lambda _m: None
    ) -> tuple[dict, RequestStats]:
        stats = RequestStats()
        with self.client(stats) as (c, account):
            summary = HubSpotSync(c, self._state(account), sink, log=log).run()
        return summary, stats
