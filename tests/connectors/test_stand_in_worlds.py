"""The stand-ins built from a world file serve what stand-ins built from the same records serve."""

from __future__ import annotations

import json
import urllib.request

from revops_pipelines.testing.fake_gong import FakeGong
from revops_pipelines.testing.fake_hubspot import FakeHubSpot
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
        assert server.objects["companies"] == companies
        auth = f"Bearer {server.token}"
        page = _post(f"{server.url}/crm/v3/objects/companies/search", {"limit": 100}, auth)
        assert page["total"] == len(companies)
        # the two directions of an association share one types list rather than a copy each
        (a, b), rows = next(iter(server.links.items()))
        row = rows[next(iter(rows))][0]
        back = server.links[(b, a)][row["toObjectId"]]
        assert any(r["associationTypes"] is row["associationTypes"] for r in back)
