"""The HubSpot multi-asset: sample mode through hubspot-api-client, and archived records flagged."""

import dagster as dg

from assets.hubspot import WarehouseHubSpotSink, frame, hubspot_sync
from revops_pipelines.connectors.hubspot import ENGAGEMENTS, HubSpotResource
from revops_pipelines.warehouse.duckdb import DuckDBWarehouse

from .conftest import read_jsonl


def test_sync_asset_loads_every_object(small_world, tmp_path):
    wh = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    hs = HubSpotResource(
        sample_path=str(small_world), state_dir=str(tmp_path / "s"), search_requests_per_second=1000
    )
    result = dg.materialize([hubspot_sync], resources={"warehouse": wh, "hubspot": hs})
    assert result.success
    for name, table in (
        ("companies", "raw_hs_companies"),
        ("contacts", "raw_hs_contacts"),
        ("deals", "raw_hs_deals"),
    ):
        assert wh.row_count(table) == len(read_jsonl(small_world / f"hubspot/{name}.jsonl")) > 0
    for etype in ENGAGEMENTS:  # every generated engagement arrives once, under its type
        want = {r["id"] for r in read_jsonl(small_world / f"hubspot/{etype}.jsonl")}
        got = wh.query("SELECT engagement_id FROM raw_hs_engagements WHERE engagement_type = ?", [etype])
        assert want and sorted(got["engagement_id"]) == sorted(want), etype
    deals = wh.query("SELECT d.sf_opportunity_id FROM raw_hs_deals d")
    mirrored = {
        r["properties"]["salesforceopportunityid"] for r in read_jsonl(small_world / "hubspot/deals.jsonl")
    }
    assert set(deals["sf_opportunity_id"]) == mirrored
    assert wh.row_count("raw_hs_quarantine") == 0
    [check] = result.get_asset_check_evaluations()
    assert check.passed


def test_archived_ids_are_flagged_not_deleted(tmp_path):
    wh = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    sink = WarehouseHubSpotSink(wh)
    meeting = {
        "id": "77",
        "properties": {"hs_meeting_title": "QBR", "hs_lastmodifieddate": "2025-03-01T11:00:00Z"},
        "createdAt": "2025-03-01T09:00:00Z",
        "updatedAt": "2025-03-01T11:00:00Z",
        "archived": False,
    }
    sink.write("meetings", [meeting])
    sink.write("calls", [{**meeting, "properties": {"hs_call_title": "Intro"}}])  # same id, another type
    sink.mark_archived("meetings", ["77"])
    df = wh.query("SELECT engagement_type, title, archived FROM raw_hs_engagements ORDER BY engagement_type")
    assert df.to_dict("records") == [
        {"engagement_type": "calls", "title": "Intro", "archived": False},
        {"engagement_type": "meetings", "title": "QBR", "archived": True},
    ]
    assert list(frame("meetings", [meeting])["title"]) == ["QBR"]
