"""The stand-ins built from a world file serve what stand-ins built from the same records serve."""

from __future__ import annotations

import csv
import io
import json
import urllib.parse
import urllib.request
from datetime import UTC, datetime

from revops_pipelines.testing.fake_gong import FakeGong
from revops_pipelines.testing.fake_hubspot import FakeHubSpot
from revops_pipelines.testing.fake_salesforce import WORLD_OBJECTS, FakeSalesforce
from revops_pipelines.testing.fakes import JsonLines
from tests.connectors.conftest import read_jsonl


def _post(url: str, body: dict, auth: str) -> dict:
    req = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json", "Authorization": auth}
    )
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read())


def _get(url: str, auth: str) -> dict:
    with urllib.request.urlopen(urllib.request.Request(url, headers={"Authorization": auth})) as r:
        return json.loads(r.read())


def test_gong_from_world_serves_the_world_records(small_world):
    calls = read_jsonl(small_world / "gong/calls.jsonl")
    transcripts = read_jsonl(small_world / "gong/transcripts.jsonl")
    ids = [c["metaData"]["id"] for c in calls]
    with FakeGong.from_world(small_world) as lazy, FakeGong(calls, transcripts) as eager:
        auth = "Basic " + lazy._basic
        for server in (lazy, eager):
            server.malformed[ids[1]] = "started"
        pages = [[], []]
        for n, server in enumerate((lazy, eager)):
            url = f"{server.url}/v2/calls?fromDateTime=2000-01-01T00:00:00Z&toDateTime=2100-01-01T00:00:00Z"
            while url:
                page = _get(url, auth)
                pages[n].extend(page["calls"])
                cursor = page["records"].get("cursor")
                url = f"{server.url}/v2/calls?cursor={cursor}" if cursor else None
        assert pages[0] == pages[1] and len(pages[0]) == len(calls)
        body = {"filter": {"callIds": ids[:5]}}
        got = [_post(f"{s.url}/v2/calls/extensive", body, auth)["calls"] for s in (lazy, eager)]
        assert got[0] == got[1] and got[0][1]["metaData"]["started"] == "not-a-date"
        assert got[0][0] == calls[0] or got[0][0] in calls  # the world's record, as written
        got = [_post(f"{s.url}/v2/calls/transcript", body, auth)["callTranscripts"] for s in (lazy, eager)]
        assert got[0] == got[1] and len(got[0]) == len({t["callId"] for t in transcripts} & set(ids[:5]))
        assert lazy.by_id.get("no-such-call") is None and set(lazy.transcripts) == set(eager.transcripts)


def test_hubspot_from_world_keeps_the_world_records_once(small_world):
    with FakeHubSpot.from_world(small_world) as server:
        companies = read_jsonl(small_world / "hubspot/companies.jsonl")
        assert isinstance(server.objects["companies"], JsonLines)
        assert server.objects["companies"] == companies
        auth = f"Bearer {server.token}"
        page = _post(f"{server.url}/crm/v3/objects/companies/search", {"limit": 100}, auth)
        assert page["total"] == len(companies)
        # the two directions of an association share one types list rather than a copy each, and
        # so do links with equal types
        (a, b), rows = next(iter(server.links.items()))
        to_id, types = rows[next(iter(rows))][0]
        assert any(t is types for _, t in server.links[(b, a)][to_id])
        used = [t for by_id in server.links.values() for rows in by_id.values() for _, t in rows]
        assert len({id(t) for t in used}) == len({json.dumps(t) for t in used}) < len(used)


def _hubspot_pages(server: FakeHubSpot, object_type: str, since_ms: int) -> list[dict]:
    """Every result of a GTE search on the modified property, 7 a page, as the server serves them."""
    auth, out, after = f"Bearer {server.token}", [], None
    prop = "lastmodifieddate" if object_type == "contacts" else "hs_lastmodifieddate"
    while True:
        body = {
            "filterGroups": [{"filters": [{"propertyName": prop, "operator": "GTE", "value": since_ms}]}],
            "properties": ["name", "email", "dealstage"],
            "limit": 7,
            **({"after": after} if after else {}),
        }
        page = _post(f"{server.url}/crm/v3/objects/{object_type}/search", body, auth)
        out.extend(page["results"])
        after = (page.get("paging") or {}).get("next", {}).get("after")
        if not after:
            return out


def test_hubspot_from_world_serves_what_the_records_serve_and_keeps_archives(small_world):
    objects = {p.stem: read_jsonl(p) for p in (small_world / "hubspot").glob("*.jsonl")}
    links = objects.pop("associations")
    with (
        FakeHubSpot.from_world(small_world, max_results=100_000) as lazy,
        FakeHubSpot(objects, associations=links, max_results=100_000) as eager,
    ):
        gone, kept = objects["deals"][2]["id"], objects["deals"][3]["id"]
        for server in (lazy, eager):
            assert len(_hubspot_pages(server, "deals", 0)) == len(objects["deals"])  # builds the index
            server.archive(gone, "2026-01-03T00:00:00.000Z")
        assert lazy.objects["deals"][2]["archived"] is True  # stored back as a new line
        stamps = sorted(
            int(datetime.fromisoformat(c["updatedAt"]).timestamp() * 1000) for c in objects["contacts"]
        )
        for object_type, since in (("deals", 0), ("contacts", stamps[len(stamps) // 2]), ("emails", 0)):
            got = [_hubspot_pages(s, object_type, since) for s in (lazy, eager)]
            assert got[0] == got[1] and got[0]
        deals = {r["id"] for r in _hubspot_pages(lazy, "deals", 0)}
        assert gone not in deals and kept in deals and len(deals) == len(objects["deals"]) - 1
        auth = f"Bearer {lazy.token}"
        listed = [
            _get(f"{s.url}/crm/v3/objects/deals?archived=true&limit=100", auth)["results"]
            for s in (lazy, eager)
        ]
        assert listed[0] == listed[1] and [r["id"] for r in listed[0]] == [gone]
        body = {"inputs": [{"id": r["id"]} for r in objects["deals"][:20]]}
        url = "/crm/v4/associations/deals/companies/batch/read"
        a, b = (_post(s.url + url, body, auth) for s in (lazy, eager))
        assert (a["results"], a.get("errors")) == (b["results"], b.get("errors")) and a["results"]


def _sf_auth(server: FakeSalesforce) -> str:
    form = {"grant_type": "client_credentials", "client_id": "sf-client", "client_secret": "sf-secret"}
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    req = urllib.request.Request(
        f"{server.url}/services/oauth2/token", urllib.parse.urlencode(form).encode(), headers
    )
    with urllib.request.urlopen(req) as r:
        return "Bearer " + json.loads(r.read())["access_token"]


def _sf_rows(server: FakeSalesforce, endpoint: str, soql: str) -> list[dict]:
    """Every record of a REST query, page by page."""
    auth = _sf_auth(server)
    page = _get(f"{server.url}/services/data/v60.0/{endpoint}/?q={urllib.parse.quote(soql)}", auth)
    rows = page["records"]
    while page.get("nextRecordsUrl"):
        page = _get(server.url + page["nextRecordsUrl"], auth)
        rows.extend(page["records"])
    return rows


def _sf_bulk(server: FakeSalesforce, operation: str, soql: str) -> list[dict]:
    """Every row of a Bulk API 2.0 query job's CSV results, 9 a page."""
    auth, base = _sf_auth(server), f"{server.url}/services/data/v60.0/jobs/query"
    job = _post(base, {"operation": operation, "query": soql}, auth)["id"]
    rows, locator = [], "0"
    while locator != "null":
        req = urllib.request.Request(
            f"{base}/{job}/results?maxRecords=9&locator={locator}", headers={"Authorization": auth}
        )
        with urllib.request.urlopen(req) as r:
            rows.extend(csv.DictReader(io.StringIO(r.read().decode())))
            locator = r.headers["Sforce-Locator"]
    return rows


def test_salesforce_from_world_serves_what_the_records_serve_and_keeps_changes(small_world):
    objects = {o: read_jsonl(small_world / f"salesforce/{o}.jsonl") for o in WORLD_OBJECTS}
    with (
        FakeSalesforce.from_world(small_world, page_size=25) as lazy,
        FakeSalesforce(objects, page_size=25) as eager,
    ):
        assert all(isinstance(lazy.objects[o], JsonLines) for o in WORLD_OBJECTS)
        acct, opp = objects["Account"][3]["Id"], objects["Opportunity"][0]["Id"]
        fields = "Id, Name, StageName, IsDeleted, SystemModstamp"
        soql = f"SELECT {fields} FROM Opportunity ORDER BY SystemModstamp, Id"
        assert _sf_rows(lazy, "query", soql) == _sf_rows(eager, "query", soql)  # sorts before the change
        later = datetime(2031, 1, 5, tzinfo=UTC)
        for server in (lazy, eager):
            server.delete(acct, later)
            server.touch(opp, later, StageName="Closed Won")
            server.faults.add("duplicates")  # the second page of the next query repeats a record
        assert lazy.objects["Account"][3]["IsDeleted"] is True  # stored back as a new line
        stamps = sorted(r["SystemModstamp"] for r in objects["Task"])
        queries = [
            ("query", "SELECT Id, Name, IsDeleted FROM Account ORDER BY SystemModstamp, Id"),
            ("queryAll", "SELECT Id, Name, IsDeleted FROM Account ORDER BY SystemModstamp ASC, Id ASC"),
            ("query", soql.replace(" ORDER", " WHERE SystemModstamp >= 2031-01-01T00:00:00Z ORDER")),
            ("queryAll", f"SELECT Id, Subject FROM Task WHERE SystemModstamp >= {stamps[len(stamps) // 2]}"),
        ]
        got = {q: [_sf_rows(s, *q) for s in (lazy, eager)] for q in queries}
        for q, (a, b) in got.items():
            assert a == b and a, q
        live, every, changed, tasks = (got[q][0] for q in queries)
        assert len({r["Id"] for r in live}) == len(objects["Account"]) - 1 and len(live) == len(
            objects["Account"]
        )
        assert every[-1]["Id"] == acct and every[-1]["IsDeleted"] is True
        assert [(r["Id"], r["StageName"]) for r in changed] == [(opp, "Closed Won")]
        assert 0 < len(tasks) < len(objects["Task"])
        bulk = [_sf_bulk(s, "queryAll", f"SELECT {fields} FROM Opportunity") for s in (lazy, eager)]
        assert bulk[0] == bulk[1] and len(bulk[0]) == len(objects["Opportunity"])
        assert bulk[0][-1] == {
            "Id": opp,
            "Name": objects["Opportunity"][0]["Name"],
            "StageName": "Closed Won",
            "IsDeleted": "false",
            "SystemModstamp": "2031-01-05T00:00:00.000+0000",
        }


def test_json_lines_read_back_what_was_stored_and_keep_changes_stored_back():
    recs = [
        {"id": str(i), "name": f"Zoë {i} — Société Générale", "n": i, "ok": i % 2 == 0} for i in range(100)
    ]
    store = JsonLines(recs, key=lambda r: r["n"])
    assert store == recs and store[3] == recs[3] and store[-2:] == recs[-2:] and store != recs[:-1]
    assert sum(map(len, store.lines)) < sum(len(json.dumps(r)) for r in recs) / 2  # deflated
    rec = store[5]
    rec.update(name="changed", n=500)
    assert store[5] == recs[5]  # what was read is a copy
    version = store.version
    store[5] = rec
    assert store[5] == rec and store.keys[5] == 500 and store.version == version + 1
    store.append({"id": "x", "n": 1000})
    assert len(store) == 101 and store.keys[-1] == 1000 and list(store)[-1] == {"id": "x", "n": 1000}
