"""The HubSpot multi-asset: sample mode through hubspot-api-client, archived records flagged, and the
engagements' company links checked."""

import dagster as dg

from assets.hubspot import CHECKS, COMPANIES, ENGAGEMENT_TABLE, WarehouseHubSpotSink, frame, hubspot_sync
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
    # every deal and engagement carries the company the associations API links it to
    want = {
        (a["fromObjectType"], a["fromObjectId"]): a["toObjectId"]
        for a in read_jsonl(small_world / "hubspot/associations.jsonl")
    }
    got = wh.query("SELECT engagement_type, engagement_id, company_id FROM raw_hs_engagements")
    got_deals = wh.query("SELECT 'deals' AS t, deal_id, company_id FROM raw_hs_deals")
    assert {(r[0], r[1]): r[2] for r in [*got.values.tolist(), *got_deals.values.tolist()]} == want
    evals = company_checks(wh)
    assert evals == {
        "raw_hs_engagements_company_id_references_raw_hs_companies": True,
        "raw_hs_engagements_company_linked": True,
    }


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


COMPANY_CHECKS = (
    "raw_hs_engagements_company_id_references_raw_hs_companies",
    "raw_hs_engagements_company_linked",
)


def company_evaluations(wh):
    """Run the two engagement -> company checks against the warehouse as it is."""
    keys = [dg.AssetCheckKey(dg.AssetKey(ENGAGEMENT_TABLE.name), name) for name in COMPANY_CHECKS]
    checks = [c for c in CHECKS if set(keys) & set(c.check_keys)]
    result = dg.materialize(
        [dg.AssetSpec(ENGAGEMENT_TABLE.name), dg.AssetSpec(COMPANIES.name), *checks],
        resources={"warehouse": wh},
        selection=dg.AssetSelection.checks(*keys),
        raise_on_error=False,
    )
    return {e.check_name: e for e in result.get_asset_check_evaluations() if e.check_name in COMPANY_CHECKS}


def company_checks(wh):
    return {name: e.passed for name, e in company_evaluations(wh).items()}


def test_engagement_company_checks_warn_on_none_and_fail_on_unknown(tmp_path):
    wh = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    sink = WarehouseHubSpotSink(wh)
    wh.ensure_table(COMPANIES)
    sink.write(
        "companies", [{"id": "501", "properties": {"name": "Acme"}, "updatedAt": "2025-01-01T00:00:00Z"}]
    )
    base = {"properties": {"hs_call_title": "Intro"}, "updatedAt": "2025-03-01T11:00:00Z", "archived": False}

    def call(cid, company):
        results = [{"id": company, "type": "call_to_company"}] if company else []
        return {**base, "id": cid, "associations": {"companies": {"results": results}}}

    sink.write("calls", [call("1", "501")])
    assert company_checks(wh) == {
        "raw_hs_engagements_company_id_references_raw_hs_companies": True,
        "raw_hs_engagements_company_linked": True,
    }
    sink.write("calls", [call("2", None)])  # no company: a warning only
    checks = company_evaluations(wh)
    linked = checks["raw_hs_engagements_company_linked"]
    assert not linked.passed and linked.severity == dg.AssetCheckSeverity.WARN
    assert linked.metadata["offending_rows"].value == 1
    assert checks["raw_hs_engagements_company_id_references_raw_hs_companies"].passed
    sink.write("calls", [call("3", "999")])  # a company HubSpot never sent: fails, blocking
    ref = company_evaluations(wh)["raw_hs_engagements_company_id_references_raw_hs_companies"]
    assert not ref.passed and ref.severity == dg.AssetCheckSeverity.ERROR
    assert ref.metadata["offending_rows"].value == 1
    blocking = {spec.name: spec.blocking for c in CHECKS for spec in c.check_specs}
    assert blocking["raw_hs_engagements_company_id_references_raw_hs_companies"] is True
    assert blocking["raw_hs_engagements_company_linked"] is False
    df = wh.query(
        "SELECT engagement_id, COALESCE(company_id, '-') AS company_id FROM raw_hs_engagements ORDER BY 1"
    )
    assert df.to_dict("records") == [
        {"engagement_id": "1", "company_id": "501"},
        {"engagement_id": "2", "company_id": "-"},
        {"engagement_id": "3", "company_id": "999"},
    ]
