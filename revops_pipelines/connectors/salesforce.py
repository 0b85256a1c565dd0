"""Salesforce connector: simple-salesforce over REST, incremental on ``SystemModstamp``.

Per object the sync runs ``SELECT … FROM Obj WHERE SystemModstamp >= :checkpoint ORDER BY
SystemModstamp, Id`` through ``queryAll`` (``include_deleted=True``), so deleted rows arrive with
``IsDeleted = true`` and overwrite the warehouse row (downstream filters ``NOT is_deleted``). After
each page is written the checkpoint ``{modstamp, next_url}`` is saved: a killed run resumes at the
saved ``nextRecordsUrl``, and an expired query locator restarts from ``modstamp`` (``>=`` re-reads
the boundary records; the merge on ``Id`` makes that harmless). Records without a usable ``Id`` or
``SystemModstamp`` are quarantined with the reason.

Pointing simple-salesforce at a loopback server: it always builds ``https://`` URLs from
``instance_url`` and its login flows only go to Salesforce hosts, so we fetch the OAuth token
ourselves (client-credentials grant) and pass ``instance_url``/``session_id`` plus a
``requests.Session`` with ``trust_env = False`` (otherwise ``REQUESTS_CA_BUNDLE`` overrides ``verify``).

Initial loads can go through Bulk API 2.0 (``bulk_initial_load``): one ``queryAll`` job per object,
results read page by page (``Sforce-Locator``) as CSV and typed back (booleans, numbers, empty →
null). Bulk results are unordered, so the checkpoint (the largest ``SystemModstamp`` seen) is saved
only when the job's last page is written; a run killed during a bulk load starts that object's bulk
job again (the merge on ``Id`` makes the repeat harmless). Later runs are incremental over REST.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Protocol

from pydantic import Field

from revops_pipelines.connectors.base import (
    AuthenticationFailed,
    BudgetExhausted,
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

SOURCE = "salesforce"
COMMON = ("Id", "CreatedDate", "SystemModstamp", "IsDeleted")

OBJECT_FIELDS: dict[str, tuple[str, ...]] = {
    "Account": (
        *COMMON,
        "Name",
        "Industry",
        "Type",
        "NumberOfEmployees",
        "AnnualRevenue",
        "BillingCountry",
        "OwnerId",
        "Segment__c",
        "Plan__c",
        "Seats__c",
        "ARR__c",
        "Billing_Frequency__c",
        "Customer_Since__c",
        "Churn_Date__c",
    ),
    "Contact": (*COMMON, "AccountId", "FirstName", "LastName", "Email", "Title"),
    "Opportunity": (
        *COMMON,
        "AccountId",
        "Name",
        "Type",
        "StageName",
        "Amount",
        "CloseDate",
        "IsClosed",
        "IsWon",
        "Probability",
        "OwnerId",
        "MEDDPICC_Metrics__c",
        "MEDDPICC_Economic_Buyer__c",
        "MEDDPICC_Decision_Criteria__c",
        "MEDDPICC_Decision_Process__c",
        "MEDDPICC_Paper_Process__c",
        "MEDDPICC_Identify_Pain__c",
        "MEDDPICC_Champion__c",
        "MEDDPICC_Competition__c",
    ),
    "OpportunityHistory": (*COMMON, "OpportunityId", "StageName", "Amount", "CloseDate", "Probability"),
    "Task": (
        *COMMON,
        "AccountId",
        "WhoId",
        "WhatId",
        "Subject",
        "Status",
        "Priority",
        "ActivityDate",
        "TaskSubtype",
        "OwnerId",
    ),
    "Case": (
        *COMMON,
        "AccountId",
        "ContactId",
        "CaseNumber",
        "Subject",
        "Description",
        "Status",
        "Priority",
        "Origin",
        "Type",
        "Product_Feature__c",
        "ClosedDate",
        "IsClosed",
    ),
}


BOOLEAN_FIELDS = {"IsDeleted", "IsClosed", "IsWon"}
INTEGER_FIELDS = {"NumberOfEmployees", "Seats__c"}
FLOAT_FIELDS = {"AnnualRevenue", "ARR__c", "Amount", "Probability"}


def typed_csv_value(field: str, value: str) -> Any:
    """Bulk API 2.0 returns CSV text; give values the types the REST API returns."""
    if value == "":
        return None
    if field in BOOLEAN_FIELDS:
        return value.lower() == "true"
    if field in INTEGER_FIELDS:
        return int(float(value))
    if field in FLOAT_FIELDS:
        return float(value)
    return value


class CursorExpired(SourceError):
    """The query locator (``nextRecordsUrl``) expired; the query restarts from the checkpoint."""


def parse_time(ts: str) -> datetime:
    ts = ts.replace("Z", "+00:00")
    if len(ts) >= 5 and ts[-5] in "+-" and ts[-3] != ":":
        ts = ts[:-2] + ":" + ts[-2:]
    return datetime.fromisoformat(ts)


def soql_time(ts: str) -> str:
    """A SOQL datetime literal, truncated to the second (``>=`` then includes the boundary)."""
    return parse_time(ts).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def validate_record(rec: dict) -> str | None:
    rid = rec.get("Id")
    if not isinstance(rid, str) or len(rid) not in (15, 18):
        return f"Id is not a 15/18-character Salesforce id: {str(rid)[:40]!r}"
    ms = rec.get("SystemModstamp")
    try:
        parse_time(str(ms))
    except ValueError:
        return f"SystemModstamp is not a datetime: {str(ms)[:40]!r}"
    return None


class SalesforceClient:
    """simple-salesforce with our token fetch, rate limiter and retries around every request."""

    def __init__(
        self,
        login_url: str,
        client_id: str,
        client_secret: str,
        *,
        limiter: RateLimiter,
        retry: RetryPolicy | None = None,
        timeout_s: float = 60.0,
        stats: RequestStats | None = None,
        ca_bundle: str | None = None,
        version: str = "60.0",
    ):
        import requests
        from simple_salesforce import Salesforce

        from revops_pipelines.logging import register_secret

        self.limiter, self.retry = limiter, retry or RetryPolicy()
        self.stats = stats or RequestStats()
        self.timeout_s = timeout_s
        self._requests = requests
        session = requests.Session()
        session.trust_env = False
        if ca_bundle:
            session.verify = ca_bundle
        register_secret(client_secret)
        token = self._call("token", lambda: self._token(session, login_url, client_id, client_secret))
        register_secret(token["access_token"])
        self.sf = Salesforce(
            instance_url=token["instance_url"],
            session_id=token["access_token"],
            session=session,
            version=version,
        )

    def _token(self, session: Any, login_url: str, client_id: str, client_secret: str) -> dict:
        r = session.post(
            login_url.rstrip("/") + "/services/oauth2/token",
            data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret},
            timeout=self.timeout_s,
        )
        if r.status_code in (400, 401, 403):
            try:
                err = r.json().get("error", "")
            except ValueError:
                err = ""
            raise AuthenticationFailed(
                SOURCE,
                f"authentication failed (HTTP {r.status_code} {err} from the token endpoint); check the "
                "connected app's client id and secret (SALESFORCE_CLIENT_ID / SALESFORCE_CLIENT_SECRET)",
            )
        if r.status_code == 429 or r.status_code >= 500:
            raise TransientError(f"HTTP {r.status_code} from the token endpoint", kind="5xx")
        return r.json()

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        from simple_salesforce.exceptions import SalesforceError

        requests = self._requests

        def attempt() -> Any:
            try:
                return fn()
            except (TransientError, SourceError):
                raise
            except requests.Timeout as e:
                raise TransientError(f"timeout on {what}", kind="timeout") from e
            except requests.ConnectionError as e:
                raise TransientError(f"connection error on {what}", kind="other") from e
            except SalesforceError as e:
                code = json.dumps(e.content)[:300]
                if e.status == 401:
                    raise AuthenticationFailed(
                        SOURCE, f"authentication failed (HTTP 401 on {what}): session rejected"
                    ) from e
                if e.status == 403 and "REQUEST_LIMIT_EXCEEDED" in code:
                    raise BudgetExhausted(SOURCE, f"the org's API request limit is spent ({what})") from e
                if e.status == 403:
                    raise AuthenticationFailed(
                        SOURCE, f"permission denied (HTTP 403 on {what}): {code}"
                    ) from e
                if e.status == 400 and "INVALID_QUERY_LOCATOR" in code:
                    raise CursorExpired(SOURCE, f"query locator expired on {what}") from e
                if e.status == 429:
                    raise TransientError(f"HTTP 429 on {what}", kind="429") from e
                if e.status >= 500:
                    raise TransientError(f"HTTP {e.status} on {what}", kind="5xx") from e
                raise SourceError(SOURCE, f"HTTP {e.status} on {what}: {code}") from e
            except ValueError as e:  # truncated or malformed JSON body
                raise TransientError(f"unreadable JSON body on {what}", kind="body") from e

        return call_with_retries(
            SOURCE, what, attempt, limiter=self.limiter, policy=self.retry, stats=self.stats
        )

    def first_page(self, obj: str, fields: tuple[str, ...], since: str | None) -> dict:
        where = f" WHERE SystemModstamp >= {soql_time(since)}" if since else ""
        soql = f"SELECT {', '.join(fields)} FROM {obj}{where} ORDER BY SystemModstamp, Id"
        return self._call(
            f"queryAll {obj}", lambda: self.sf.query(soql, include_deleted=True, timeout=self.timeout_s)
        )

    def next_page(self, url: str) -> dict:
        return self._call(
            "queryAll (more)", lambda: self.sf.query_more(url, identifier_is_url=True, timeout=self.timeout_s)
        )

    def bulk_query_all(
        self, obj: str, fields: tuple[str, ...], page_size: int = 50_000
    ) -> Iterator[list[dict]]:
        """Pages of a Bulk API 2.0 ``queryAll`` job over every record of ``obj`` (deleted included)."""
        import csv
        import io

        from simple_salesforce.bulk2 import Operation

        bulk = getattr(self.sf.bulk2, obj)._client
        soql = f"SELECT {', '.join(fields)} FROM {obj}"
        job = self._call(f"bulk job {obj}", lambda: bulk.create_job(Operation.query_all, soql))
        self._call(f"bulk job {obj} (wait)", lambda: bulk.wait_for_job(job["id"], True, 0))
        locator = ""
        while True:
            page = self._call(
                f"bulk results {obj}", lambda loc=locator: bulk.get_query_results(job["id"], loc, page_size)
            )
            rows = list(csv.DictReader(io.StringIO(page["records"])))
            yield [{k: typed_csv_value(k, v) for k, v in r.items()} for r in rows]
            locator = page["locator"]
            if not locator:
                return

    def close(self) -> None:
        self.sf.session.close()


class SalesforceSink(Protocol):
    def write(self, obj: str, records: list[dict]) -> None: ...
    def write_quarantine(self, rows: list[dict]) -> None: ...


class SalesforceSync:
    def __init__(
        self,
        client: SalesforceClient,
        store: StateStore,
        sink: SalesforceSink,
        objects: dict[str, tuple[str, ...]] | None = None,
        *,
        bulk_initial_load: bool = False,
        bulk_page_size: int = 50_000,
        max_cursor_restarts: int = 3,
        log: Callable[[str], None] = lambda _m: None,
    ):
        self.client, self.store, self.sink = client, store, sink
        self.bulk_initial_load, self.bulk_page_size = bulk_initial_load, bulk_page_size
        self.bulk_loaded: list[str] = []
        self.objects = objects or OBJECT_FIELDS
        self.max_cursor_restarts = max_cursor_restarts
        self.log = log
        self.state: dict[str, Any] = store.load()
        self.counts: dict[str, int] = {}
        self.deleted: dict[str, int] = {}
        self.quarantined = 0

    def _page(self, obj: str, page: dict, cp: dict, save: bool = True) -> None:
        good, bad = screen(
            page.get("records") or [],
            validate_record,
            lambda rec: {"object": obj, "record_id": str(rec.get("Id"))[:40]},
        )
        for rec in good:
            rec.pop("attributes", None)
        if bad:
            self.sink.write_quarantine(bad)
            self.quarantined += len(bad)
        if good:
            self.sink.write(obj, good)  # written first; the checkpoint that says so is saved after
            self.counts[obj] = self.counts.get(obj, 0) + len(good)
            self.deleted[obj] = self.deleted.get(obj, 0) + sum(1 for r in good if r.get("IsDeleted"))
            cp["modstamp"] = max((r["SystemModstamp"] for r in good), key=parse_time)
        cp["next_url"] = page.get("nextRecordsUrl")
        if save:
            self.state[obj] = cp
            self.store.save(self.state)

    def bulk_load(self, obj: str) -> None:
        cp: dict[str, Any] = {"next_url": None}
        top: str | None = None
        for page in self.client.bulk_query_all(obj, self.objects[obj], self.bulk_page_size):
            self._page(obj, {"records": page}, cp, save=False)
            if cp.get("modstamp") and (top is None or parse_time(cp["modstamp"]) > parse_time(top)):
                top = cp["modstamp"]
        cp["modstamp"] = top  # only now: bulk pages are unordered
        cp["synced_at"] = datetime.now(UTC).isoformat()
        cp["bulk_loaded"] = True
        self.state[obj] = cp
        self.store.save(self.state)
        self.bulk_loaded.append(obj)

    def sync_object(self, obj: str) -> None:
        if self.bulk_initial_load and not self.state.get(obj):
            self.bulk_load(obj)
            return
        cp = dict(self.state.get(obj) or {})
        restarts = 0
        while True:
            try:
                url = cp.get("next_url")
                page = (
                    self.client.next_page(url)
                    if url
                    else self.client.first_page(obj, self.objects[obj], cp.get("modstamp"))
                )
                self._page(obj, page, cp)
                while cp.get("next_url"):
                    self._page(obj, self.client.next_page(cp["next_url"]), cp)
                break
            except CursorExpired as e:
                restarts += 1
                if restarts > self.max_cursor_restarts:
                    raise
                self.log(f"{e}; querying {obj} again from {cp.get('modstamp')}")
                cp["next_url"] = None
        cp["synced_at"] = datetime.now(UTC).isoformat()
        self.state[obj] = cp
        self.store.save(self.state)

    def run(self) -> dict[str, Any]:
        for obj in self.objects:
            self.sync_object(obj)
        return {
            "records": self.counts,
            "deleted": self.deleted,
            "quarantined": self.quarantined,
            "bulk_loaded": self.bulk_loaded,
            "checkpoint": {o: {"modstamp": (self.state.get(o) or {}).get("modstamp")} for o in self.objects},
        }


class SalesforceResource(ConnectorResource):
    """Salesforce, live or in sample mode (HTTPS loopback stand-in with a throwaway certificate)."""

    source: ClassVar[str] = SOURCE
    live_credentials: ClassVar[tuple[str, ...]] = ("client_id", "client_secret")
    missing_credentials: ClassVar[tuple[str, str]] = (
        "SALESFORCE_CLIENT_ID",
        "Salesforce live mode needs a client id and secret",
    )

    login_url: str = Field(default="https://login.salesforce.com", description="My Domain / login URL.")
    client_id: str | None = Field(default=None, description="Connected app client id (dg.EnvVar).")
    client_secret: str | None = Field(default=None, description="Connected app client secret (dg.EnvVar).")
    requests_per_second: float = Field(default=10.0, gt=0)
    daily_budget: int = Field(default=100_000, gt=0)
    page_size: int = Field(default=2000, ge=1, description="Records per page (stand-in only).")
    bulk_initial_load: bool = Field(
        default=True, description="Load an object with no checkpoint yet through Bulk API 2.0 (then REST)."
    )
    timeout_s: float = Field(default=60.0, gt=0)

    @contextmanager
    def client(self, stats: RequestStats | None = None) -> Iterator[tuple[SalesforceClient, str]]:
        world = self._world()
        if world is None:  # live
            c = SalesforceClient(
                self.login_url, self.client_id, self.client_secret, **self._transport("live", stats)
            )
            try:
                yield c, SOURCE
            finally:
                c.close()
            return
        import tempfile

        from revops_pipelines.testing.fake_salesforce import FakeSalesforce
        from revops_pipelines.testing.fakes import make_test_cert

        with tempfile.TemporaryDirectory() as tmp:
            cert = make_test_cert(Path(tmp))
            cid, secret = "sample-app", secrets.token_urlsafe(16)
            fake = FakeSalesforce.from_world(
                world.root, client_id=cid, client_secret=secret, page_size=self.page_size, tls_cert=cert
            )
            with fake:
                c = SalesforceClient(
                    fake.url, cid, secret, ca_bundle=str(cert[0]), **self._transport(world.account, stats)
                )
                try:
                    yield c, world.account
                finally:
                    c.close()

    def sync(
        self, sink: SalesforceSink, log: Callable[[str], None] = lambda _m: None
    ) -> tuple[dict, RequestStats]:
        stats = RequestStats()
        with self.client(stats) as (c, account):
            store = self._state(account)
            summary = SalesforceSync(c, store, sink, bulk_initial_load=self.bulk_initial_load, log=log).run()
        return summary, stats
