"""simple-salesforce against the HTTPS stand-in: paging, faults, kill + resume, deletes, quarantine."""

from collections import Counter
from datetime import UTC, datetime

import pytest

from revops_pipelines.connectors.base import (
    AuthenticationFailed,
    RateLimiter,
    RequestStats,
    RetryPolicy,
    StateStore,
)
from revops_pipelines.connectors.salesforce import SalesforceClient, SalesforceResource, SalesforceSync
from revops_pipelines.testing.fake_salesforce import WORLD_OBJECTS, FakeSalesforce
from revops_pipelines.testing.fakes import make_test_cert

from .conftest import read_jsonl

QUERY = "/services/data/v60.0/"


class Sink:
    def __init__(self, die_on_write=None):
        self.rows: dict[str, dict[str, dict]] = {}
        self.writes: Counter[str] = Counter()
        self.quarantine: list[dict] = []
        self.die_on_write, self.n = die_on_write, 0

    def write(self, obj, records):
        self.n += 1
        if self.n == self.die_on_write:
            raise KeyboardInterrupt("killed")
        for r in records:
            self.rows.setdefault(obj, {})[r["Id"]] = r
            self.writes[r["Id"]] += 1

    def write_quarantine(self, rows):
        self.quarantine.extend(rows)


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    return make_test_cert(tmp_path_factory.mktemp("cert"))


@pytest.fixture
def world(small_world):
    return {o: read_jsonl(small_world / f"salesforce/{o}.jsonl") for o in WORLD_OBJECTS}


@pytest.fixture
def server(world, cert):
    with FakeSalesforce(world, page_size=40, tls_cert=cert, timeout_hold_s=2.5) as s:
        yield s


def sync(server, cert, state_dir, sink, *, secret="sf-secret", stats=None, **kw):
    client = SalesforceClient(
        server.url,
        "sf-client",
        secret,
        limiter=RateLimiter("salesforce", 2000, 100_000),
        retry=RetryPolicy(max_attempts=4, backoff_s=0.01),
        timeout_s=1.0,  # under the fakes' 2.5 s hold; over a loaded machine's TLS round trip
        stats=stats,
        ca_bundle=str(cert[0]),
    )
    try:
        return SalesforceSync(client, StateStore(state_dir, "salesforce"), sink, **kw).run()
    finally:
        client.close()


def assert_exactly_once(sink, world, writes_once=True):
    for obj, recs in world.items():
        assert set(sink.rows.get(obj, {})) == {r["Id"] for r in recs}, obj
    if writes_once:
        assert set(sink.writes.values()) == {1}
    assert sink.quarantine == []


def test_every_object_arrives_once_with_deleted_rows_flagged(server, world, cert, tmp_path):
    sink = Sink()
    summary = sync(server, cert, tmp_path, sink)
    assert_exactly_once(sink, world)
    assert summary["deleted"]["Contact"] == sum(r["IsDeleted"] for r in world["Contact"])
    assert len(sink.rows["Task"]) == len(world["Task"]) > 0 and "Task" in summary["checkpoint"]


def test_bad_credentials_fail_with_an_error_naming_salesforce(server, cert, tmp_path):
    with pytest.raises(
        AuthenticationFailed, match=r"^salesforce: authentication failed \(HTTP 400 invalid_client"
    ):
        sync(server, cert, tmp_path, Sink(), secret="nope")


@pytest.mark.parametrize(
    "fault", ["429", "429_no_retry_after", "500", "503", "timeout", "truncated", "malformed"]
)
def test_transport_faults_lose_and_duplicate_nothing(server, world, cert, tmp_path, fault):
    server.faults.add(fault, path=QUERY, times=2)
    sink, stats = Sink(), RequestStats()
    sync(server, cert, tmp_path, sink, stats=stats)
    assert_exactly_once(sink, world)
    assert stats.retries == 2 and server.faults.pending() == 0


def test_expired_query_locator_restarts_from_the_checkpoint(server, world, cert, tmp_path):
    server.faults.add("expired_cursor", path=QUERY)
    sink = Sink()
    sync(server, cert, tmp_path, sink)
    assert_exactly_once(sink, world, writes_once=False)


def test_duplicates_across_pages_are_merged(server, world, cert, tmp_path):
    server.faults.add("duplicates", path=QUERY, times=3)
    sink = Sink()
    sync(server, cert, tmp_path, sink)
    assert_exactly_once(sink, world, writes_once=False)
    assert sum(sink.writes.values()) == sum(len(v) for v in world.values()) + 3


def test_kill_mid_object_resumes_at_the_saved_next_records_url(server, world, cert, tmp_path):
    with pytest.raises(KeyboardInterrupt):
        sync(server, cert, tmp_path, Sink(die_on_write=4))  # Account (1 page), Contact pages 1-2, dies on 3
    cp = StateStore(tmp_path, "salesforce").load()["Contact"]
    assert cp["next_url"].startswith(QUERY + "queryAll/")
    before = len(server.log)
    sink = Sink()
    sync(server, cert, tmp_path, sink)
    resumed = server.log[before:]
    assert cp["next_url"] in [r.path for r in resumed]
    assert not any("FROM Contact" in (r.query.get("q") or [""])[0] for r in resumed)  # no restart
    for obj in ("Opportunity", "Case"):
        assert set(sink.rows[obj]) == {r["Id"] for r in world[obj]}
    contacts = sorted(world["Contact"], key=lambda r: (r["SystemModstamp"], r["Id"]))
    assert set(sink.rows["Contact"]) == {r["Id"] for r in contacts[80:]}  # the rest; 0-79 came in run 1


def test_incremental_run_sees_updates_and_deletes_only(server, world, cert, tmp_path):
    sync(server, cert, tmp_path, Sink())
    later = datetime(2026, 1, 5, tzinfo=UTC)
    acct = world["Account"][3]["Id"]
    opp = world["Opportunity"][0]["Id"]
    server.delete(acct, later)
    server.touch(opp, later, StageName="Closed Won")
    sink = Sink()
    sync(server, cert, tmp_path, sink)
    assert sink.rows["Account"][acct]["IsDeleted"] is True
    assert sink.rows["Opportunity"][opp]["StageName"] == "Closed Won"
    # only the changed rows plus each object's boundary records (SystemModstamp == checkpoint) are re-read
    boundary = set()
    for recs in world.values():
        top = max(r["SystemModstamp"] for r in recs)
        boundary |= {r["Id"] for r in recs if r["SystemModstamp"] == top}
    assert set(sink.writes) == boundary | {acct, opp}


def test_history_and_tasks_are_synced_when_the_org_has_them(server, cert, tmp_path):
    server.objects["OpportunityHistory"] = [
        {
            "Id": "008000000000001AAA",
            "OpportunityId": "006000000000001AAA",
            "StageName": "Prospecting",
            "CreatedDate": "2025-01-01T00:00:00.000+0000",
            "SystemModstamp": "2025-01-01T00:00:00.000+0000",
            "IsDeleted": False,
        }
    ]
    server.objects["Task"] = [
        {
            "Id": "00T000000000001AAA",
            "AccountId": "001000000000001AAA",
            "Subject": "Call",
            "Status": "Completed",
            "CreatedDate": "2025-01-02T00:00:00.000+0000",
            "SystemModstamp": "2025-01-02T00:00:00.000+0000",
            "IsDeleted": False,
        }
    ]
    sink = Sink()
    sync(server, cert, tmp_path, sink)
    assert list(sink.rows["OpportunityHistory"]) == ["008000000000001AAA"]
    assert sink.rows["Task"]["00T000000000001AAA"]["Subject"] == "Call"


def test_malformed_record_is_quarantined_with_its_reason(server, world, cert, tmp_path):
    server.objects["Case"][0]["Id"] = "BROKEN"
    sink = Sink()
    summary = sync(server, cert, tmp_path, sink)
    [q] = sink.quarantine
    assert q["object"] == "Case" and q["record_id"] == "BROKEN" and "15/18-character" in q["reason"]
    assert summary["quarantined"] == 1
    assert len(sink.rows["Case"]) == len(world["Case"]) - 1


def test_sample_mode_resource_goes_through_https_and_simple_salesforce(small_world, world, tmp_path):
    res = SalesforceResource(sample_path=str(small_world), state_dir=str(tmp_path), requests_per_second=1000)
    sink = Sink()
    summary, stats = res.sync(sink)
    assert_exactly_once(sink, world)
    # token + per object a Bulk API 2.0 job: create, poll, one result page
    assert stats.requests == 1 + 6 * 3 and stats.http_429 == 0 and len(summary["bulk_loaded"]) == 6
    summary, stats = res.sync(Sink())  # the next run is incremental over REST: one page per object
    assert stats.requests == 1 + 6 and summary["bulk_loaded"] == []


def test_bulk_initial_load_brings_every_record_once_with_rest_types(server, world, cert, tmp_path):
    sink, stats = Sink(), RequestStats()
    server.faults.add("500", path=QUERY + "jobs/query/", times=1)
    summary = sync(server, cert, tmp_path, sink, stats=stats, bulk_initial_load=True, bulk_page_size=50)
    assert_exactly_once(sink, world)
    assert summary["bulk_loaded"] == [
        "Account",
        "Contact",
        "Opportunity",
        "OpportunityHistory",
        "Task",
        "Case",
    ]
    assert stats.retries == 1 and not any(r.path.endswith("/queryAll/") for r in server.log)
    rest = {r["Id"]: r for r in world["Opportunity"]}
    for rid, got in sink.rows["Opportunity"].items():
        for f in ("IsDeleted", "IsWon", "Amount", "Probability", "StageName", "CloseDate", "SystemModstamp"):
            assert got[f] == rest[rid][f], (rid, f)
    contacts = StateStore(tmp_path, "salesforce").load()["Contact"]
    assert contacts["modstamp"] == max(r["SystemModstamp"] for r in world["Contact"])
    again = Sink()
    sync(server, cert, tmp_path, again, bulk_initial_load=True)  # later runs: incremental over REST
    assert sum(again.writes.values()) < 30


def test_kill_during_a_bulk_load_repeats_that_job_without_gaps(server, world, cert, tmp_path):
    with pytest.raises(KeyboardInterrupt):
        sync(server, cert, tmp_path, Sink(die_on_write=3), bulk_initial_load=True, bulk_page_size=50)
    state = StateStore(tmp_path, "salesforce").load()
    assert "Account" in state and "Contact" not in state  # Contact's bulk job was cut short
    sink = Sink()
    sync(server, cert, tmp_path, sink, bulk_initial_load=True, bulk_page_size=50)
    for obj in ("Contact", "Opportunity", "Case"):
        assert set(sink.rows[obj]) == {r["Id"] for r in world[obj]}


def test_checkpoint_saves_stay_small_however_many_records_are_synced(
    server, world, cert, tmp_path, checkpoint_sizes
):
    sizes = checkpoint_sizes
    sink = Sink()
    sync(server, cert, tmp_path, sink)
    records = sum(len(recs) for recs in world.values())
    # one small checkpoint per object (high-water mark, next page), never the records' ids
    assert len(sizes) > 20 and records > 500
    assert max(sizes) < 200 * len(world)
    assert set(StateStore(tmp_path, "salesforce").load()) <= set(world)
