"""hubspot-api-client against the search stand-in: the 10,000-result window, faults, kill + resume,
and the company links of deals and engagements read from the associations API."""

from collections import Counter

import pytest

from revops_pipelines.connectors.base import (
    AuthenticationFailed,
    RateLimiter,
    RequestStats,
    RetryPolicy,
    SourceError,
    StateStore,
)
from revops_pipelines.connectors.hubspot import (
    LINKED_TO_COMPANY,
    PROPERTIES,
    HubSpotClient,
    HubSpotResource,
    HubSpotSync,
)
from revops_pipelines.testing.fake_hubspot import FakeHubSpot

from .conftest import read_jsonl

SEARCH = "/crm/v3/objects/"


class Sink:
    def __init__(self, die_on_write=None):
        self.rows: dict[str, dict[str, dict]] = {}
        self.writes: Counter[str] = Counter()
        self.quarantine: list[dict] = []
        self.archived: dict[str, set] = {}
        self.die_on_write, self.n = die_on_write, 0

    def write(self, object_type, records):
        self.n += 1
        if self.n == self.die_on_write:
            raise KeyboardInterrupt("killed")
        for r in records:
            self.rows.setdefault(object_type, {})[r["id"]] = r
            self.writes[(object_type, r["id"])] += 1

    def write_quarantine(self, rows):
        self.quarantine.extend(rows)

    def mark_archived(self, object_type, ids):
        self.archived.setdefault(object_type, set()).update(ids)


@pytest.fixture
def world(small_world):
    """Every object type the sample world generates: companies, contacts, deals and engagements."""
    return {o: read_jsonl(small_world / f"hubspot/{o}.jsonl") for o in PROPERTIES}


@pytest.fixture
def links(small_world):
    """The world's deal and engagement -> company associations, as the associations API reports them."""
    return read_jsonl(small_world / "hubspot/associations.jsonl")


@pytest.fixture
def server(world, links):
    # a 60-result search window with 10-result pages, so the 170 contacts need the window slid forward
    with FakeHubSpot(world, max_results=60, timeout_hold_s=2.5, associations=links) as s:
        yield s


def client_for(server, **kw):
    return HubSpotClient(
        server.url,
        "hs-token",
        limiter=RateLimiter("hubspot", 2000, 100_000),
        retry=RetryPolicy(max_attempts=4, backoff_s=0.01),
        **kw,
    )


def company_ids(record):
    return [c["id"] for c in record["associations"]["companies"]["results"]]


def sync(server, state_dir, sink, *, token="hs-token", stats=None, limiter=None):
    client = HubSpotClient(
        server.url,
        token,
        limiter=limiter or RateLimiter("hubspot", 2000, 100_000),
        retry=RetryPolicy(max_attempts=4, backoff_s=0.01),
        timeout_s=1.0,  # under the fakes' 2.5 s hold; over a loaded machine's TLS round trip
        stats=stats,
    )
    return HubSpotSync(client, StateStore(state_dir, "hubspot"), sink, window=60, page_size=10).run()


def assert_all_arrived(sink, world):
    for obj, recs in world.items():
        assert set(sink.rows[obj]) == {r["id"] for r in recs}, obj
        assert all(sink.rows[obj][r["id"]]["properties"]["hs_object_id"] == r["id"] for r in recs)
    assert sink.quarantine == []


def test_every_object_arrives_and_the_window_slides(server, world, tmp_path):
    sink = Sink()
    summary = sync(server, tmp_path, sink)
    assert_all_arrived(sink, world)
    assert summary["window_slides"]["contacts"] >= 2
    # sliding re-reads only the records at the boundary timestamp
    assert all(world[t] for t in PROPERTIES)  # the sample world has records of every type
    assert sum(sink.writes.values()) - sum(len(v) for v in world.values()) <= 2 * sum(
        summary["window_slides"].values()
    )
    assert server.count(400) == 0  # never asked beyond the window


def test_bad_token_fails_with_an_error_naming_hubspot(server, tmp_path):
    with pytest.raises(AuthenticationFailed, match=r"^hubspot: authentication failed \(HTTP 401"):
        sync(server, tmp_path, Sink(), token="wrong")
    assert len(server.log) == 1


@pytest.mark.parametrize(
    "fault", ["429", "429_no_retry_after", "500", "503", "timeout", "truncated", "malformed"]
)
def test_transport_faults_lose_nothing(server, world, tmp_path, fault):
    server.faults.add(fault, path=SEARCH + "contacts", times=2)
    sink, stats = Sink(), RequestStats()
    sync(server, tmp_path, sink, stats=stats)
    assert_all_arrived(sink, world)
    assert stats.retries == 2 and server.faults.pending() == 0


def test_rejected_cursor_and_duplicates_are_harmless(server, world, tmp_path):
    server.faults.add("expired_cursor", path=SEARCH + "contacts")
    server.faults.add("duplicates", path=SEARCH + "companies", times=2)
    sink = Sink()
    sync(server, tmp_path, sink)
    assert_all_arrived(sink, world)


def test_kill_and_resume_continue_the_same_query_page(server, world, tmp_path):
    with pytest.raises(KeyboardInterrupt):
        sync(server, tmp_path, Sink(die_on_write=7))  # companies: 4 pages; contacts dies on its 3rd
    cp = StateStore(tmp_path, "hubspot").load()["contacts"]
    assert cp["after"] == "20"
    before = len(server.log)
    sink = Sink()
    sync(server, tmp_path, sink)
    first_contacts = next(r for r in server.log[before:] if r.path.endswith("/contacts/search"))
    assert first_contacts.body["after"] == "20"
    contacts = sorted(
        world["contacts"], key=lambda r: (r["properties"]["lastmodifieddate"], len(r["id"]), r["id"])
    )
    assert set(sink.rows["contacts"]) == {r["id"] for r in contacts[20:]}


def test_search_rate_limit_is_respected(world, tmp_path):
    with FakeHubSpot({"companies": world["companies"]}, rate_limit_per_s=4) as s:
        sink = Sink()
        client = HubSpotClient(s.url, "hs-token", limiter=RateLimiter("hubspot", 4, 1000))
        HubSpotSync(client, StateStore(tmp_path, "hs"), sink, object_types=("companies",), page_size=10).run()
        assert len(sink.rows["companies"]) == len(world["companies"]) and s.count(429) == 0


def test_deals_and_engagements_are_synced(server, tmp_path):
    server.objects["deals"] = [
        {
            "id": "901",
            "properties": {
                "dealname": "Renewal",
                "dealstage": "closedwon",
                "amount": "1200",
                "hs_lastmodifieddate": "2025-02-01T00:00:00.000Z",
            },
            "createdAt": "2025-01-01T00:00:00.000Z",
            "updatedAt": "2025-02-01T00:00:00.000Z",
            "archived": False,
        }
    ]
    server.objects["meetings"] = [
        {
            "id": "77",
            "properties": {
                "hs_meeting_title": "QBR",
                "hs_timestamp": "2025-03-01T10:00:00.000Z",
                "hs_lastmodifieddate": "2025-03-01T11:00:00.000Z",
            },
            "createdAt": "2025-03-01T09:00:00.000Z",
            "updatedAt": "2025-03-01T11:00:00.000Z",
            "archived": False,
        }
    ]
    sink = Sink()
    sync(server, tmp_path, sink)
    assert sink.rows["deals"]["901"]["properties"]["dealstage"] == "closedwon"
    assert sink.rows["meetings"]["77"]["properties"]["hs_meeting_title"] == "QBR"


def test_malformed_record_is_quarantined_with_its_reason(server, world, tmp_path):
    server.objects["companies"][0]["id"] = "not-a-number"
    sink = Sink()
    summary = sync(server, tmp_path, sink)
    [q] = sink.quarantine
    assert q["object_type"] == "companies" and "not a HubSpot object id" in q["reason"]
    assert summary["quarantined"] == 1 and len(sink.rows["companies"]) == len(world["companies"]) - 1


def test_sample_mode_resource(small_world, world, tmp_path):
    res = HubSpotResource(
        sample_path=str(small_world), state_dir=str(tmp_path), search_requests_per_second=1000
    )
    sink = Sink()
    summary, stats = res.sync(sink)
    assert_all_arrived(sink, world)
    assert stats.http_429 == 0 and summary["records"]["contacts"] == len(world["contacts"])


def test_archived_records_are_flagged_on_the_next_run(server, world, tmp_path):
    sync(server, tmp_path, Sink())
    gone = world["companies"][2]["id"]
    server.archive(gone, "2026-01-03T00:00:00.000Z")
    sink = Sink()
    summary = sync(server, tmp_path, sink)
    assert sink.archived == {"companies": {gone}} and summary["archived"] == {"companies": 1}
    assert gone not in sink.rows.get("companies", {})  # search no longer returns it


ASSOC = "/crm/v4/associations/"


def test_every_deal_and_engagement_arrives_with_its_company(server, world, links, tmp_path):
    sink = Sink()
    summary = sync(server, tmp_path, sink)
    assert_all_arrived(sink, world)
    companies = {c["id"] for c in world["companies"]}
    want = {(a["fromObjectType"], a["fromObjectId"]): a["toObjectId"] for a in links}
    # every deal and engagement of the world has its company, and it is a known company
    assert set(want) == {(t, r["id"]) for t in LINKED_TO_COMPANY for r in world[t]}
    for (obj, rid), company in want.items():
        assert company_ids(sink.rows[obj][rid]) == [company] and company in companies
    assert sum(summary["company_linked"].values()) >= len(want) and summary["company_unlinked"] == {}
    # read in batches within HubSpot's 1,000-id limit; companies and contacts are not looked up
    sizes = server.batch_sizes
    assert sizes and max(sizes) <= 1000 and server.count(400) == 0
    paths = {r.path for r in server.log if r.path.startswith(ASSOC)}
    assert paths == {f"{ASSOC}{t}/companies/batch/read" for t in LINKED_TO_COMPANY}


def test_association_reads_are_batched_within_the_limit(links):
    calls = [{"id": str(9_000_000 + i)} for i in range(2_500)]
    assoc = [
        {
            "fromObjectType": "calls",
            "fromObjectId": c["id"],
            "toObjectType": "companies",
            "toObjectId": str(i % 7 + 1),
        }
        for i, c in enumerate(calls)
        if i % 10  # every tenth call has no company
    ]
    with FakeHubSpot({"calls": calls}, associations=assoc) as s:
        got = client_for(s).associated("calls", [c["id"] for c in calls])
        assert s.batch_sizes == [1000, 1000, 500]  # never more than 1,000 ids per request
    assert got == {c["id"]: ([] if i % 10 == 0 else [str(i % 7 + 1)]) for i, c in enumerate(calls)}


def test_a_batch_over_the_vendor_limit_is_refused_with_hubspots_error(links):
    with FakeHubSpot({}, associations=links, max_batch_inputs=10) as s:
        ids = [a["fromObjectId"] for a in links if a["fromObjectType"] == "calls"][:11]
        with pytest.raises(SourceError, match=r"HTTP 400 .*exceeds the maximum allowed batch size of 10"):
            client_for(s).associated("calls", ids, batch_size=11)
        assert s.count(400) == 1
        with pytest.raises(ValueError, match="1..1000"):
            client_for(s).associated("calls", ids, batch_size=1001)  # refused before any request
        assert len(s.log) == 1


@pytest.mark.parametrize("fault", ["429", "429_no_retry_after", "500", "503", "truncated"])
def test_faults_during_association_reads_are_retried_and_nothing_is_lost(
    server, world, links, tmp_path, fault
):
    server.faults.add(fault, path=ASSOC + "meetings/companies/batch/read", times=2)
    server.faults.add(fault, path=ASSOC + "deals/companies/batch/read", times=1)
    sink, stats = Sink(), RequestStats()
    sync(server, tmp_path, sink, stats=stats)
    assert server.faults.pending() == 0 and stats.retries == 3
    if fault.startswith("429"):
        assert stats.http_429 == 3
    assert_all_arrived(sink, world)
    for a in links:
        assert company_ids(sink.rows[a["fromObjectType"]][a["fromObjectId"]]) == [a["toObjectId"]]


def test_an_objects_links_are_paged_and_the_primary_company_comes_first(links):
    deal = next(a["fromObjectId"] for a in links if a["fromObjectType"] == "deals")
    with FakeHubSpot({}, association_page_size=1) as s:
        for company, label in (("11", None), ("12", None), ("13", "Primary")):
            types = [{"category": "HUBSPOT_DEFINED", "typeId": 5 if label else 341, "label": label}]
            s.associate("deals", deal, "companies", company, types)
        got = client_for(s).associated("deals", [deal, "404"])
        assert got == {deal: ["13", "11", "12"], "404": []}
        inputs = [r.body["inputs"] for r in s.log]
        assert inputs[0] == [{"id": deal}, {"id": "404"}] and inputs[1] == [{"id": deal, "after": "1"}]


def test_an_engagement_without_a_company_is_written_without_one(server, world, tmp_path):
    note = world["notes"][0]["id"]
    server.links[("notes", "companies")].pop(note)
    sink = Sink()
    summary = sync(server, tmp_path, sink)
    assert company_ids(sink.rows["notes"][note]) == [] and summary["company_unlinked"] == {"notes": 1}
    assert len(sink.rows["notes"]) == len(world["notes"])


def test_checkpoint_saves_stay_small_however_many_records_are_synced(
    server, world, tmp_path, checkpoint_sizes
):
    sizes = checkpoint_sizes
    sync(server, tmp_path, Sink())
    records = sum(len(recs) for recs in world.values())
    # one small checkpoint per object type (since, after), never the records' ids
    assert len(sizes) > 20 and records > 300
    assert max(sizes) < 200 * len(world)
    assert set(StateStore(tmp_path, "hubspot").load()) <= set(world)
