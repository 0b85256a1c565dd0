"""hubspot-api-client against the search stand-in: the 10,000-result window, faults, kill + resume."""

from collections import Counter

import pytest

from revops_pipelines.connectors.base import (
    AuthenticationFailed,
    RateLimiter,
    RequestStats,
    RetryPolicy,
    StateStore,
)
from revops_pipelines.connectors.hubspot import PROPERTIES, HubSpotClient, HubSpotResource, HubSpotSync
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
def server(world):
    # a 60-result search window with 10-result pages, so the 170 contacts need the window slid forward
    with FakeHubSpot(world, max_results=60, timeout_hold_s=2.5) as s:
        yield s


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
