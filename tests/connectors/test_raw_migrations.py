"""The raw tables this connector work added or widened migrate forward in a warehouse that already
holds data: raw_hs_deals gains sf_opportunity_id and company_id, raw_hs_engagements gains company_id,
in place (rows kept), raw_gong_parties and the conversation tables are created, and all of them are in
the migration registry."""

import dataclasses

import pandas as pd

from assets.conversations import CALL_TRACKERS, SPEAKER_STATS
from assets.gong import PARTIES
from assets.hubspot import DEALS, ENGAGEMENT_TABLE
from revops_pipelines.warehouse.duckdb import DuckDBWarehouse
from revops_pipelines.warehouse.migrations import migrate, plan_table
from revops_pipelines.warehouse.registry import declared_schemas


def test_deals_gain_the_salesforce_link_in_place_and_new_tables_are_created(tmp_path):
    wh = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    added = ("sf_opportunity_id", "company_id")
    before = dataclasses.replace(  # the declaration before the Salesforce and company links
        DEALS, columns=tuple(c for c in DEALS.columns if c.name not in added), _by_name={}
    )
    assert set(added) <= set(DEALS.column_names) - set(before.column_names)
    wh.ensure_table(before)
    row = {c: None for c in before.column_names}
    row.update(deal_id="901", name="Renewal", updated_at=pd.Timestamp("2025-02-01"), archived=False)
    wh.merge(before, pd.DataFrame([row]))

    plans = {p.table: p for p in migrate(wh, [DEALS, PARTIES, SPEAKER_STATS, CALL_TRACKERS])}
    assert plans["raw_hs_deals"].action == "add_columns" and plans["raw_hs_deals"].added == list(added)
    assert {plans[t.name].action for t in (PARTIES, SPEAKER_STATS, CALL_TRACKERS)} == {"create"}
    got = wh.query("SELECT deal_id, name, sf_opportunity_id, company_id FROM raw_hs_deals")
    assert got.to_dict("records") == [
        {"deal_id": "901", "name": "Renewal", "sf_opportunity_id": None, "company_id": None}
    ]
    assert {
        p.action for p in (plan_table(wh, s) for s in (DEALS, PARTIES, SPEAKER_STATS, CALL_TRACKERS))
    } == {"current"}


def test_the_new_tables_are_declared_for_migrations():
    declared = {s.name: s for s in declared_schemas()}
    for schema in (DEALS, ENGAGEMENT_TABLE, PARTIES, SPEAKER_STATS, CALL_TRACKERS):
        assert declared[schema.name].signature() == schema.signature()


def test_engagements_gain_the_company_link_in_place(tmp_path):
    wh = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    cols = tuple(c for c in ENGAGEMENT_TABLE.columns if c.name != "company_id")
    before = dataclasses.replace(ENGAGEMENT_TABLE, columns=cols, _by_name={})  # the previous declaration
    wh.ensure_table(before)
    row = {c: None for c in before.column_names}
    row.update(
        engagement_type="calls", engagement_id="77", title="Intro", updated_at=pd.Timestamp("2025-03-01")
    )
    wh.merge(before, pd.DataFrame([{**row, "archived": False}]))

    [plan] = migrate(wh, [ENGAGEMENT_TABLE])
    assert plan.action == "add_columns" and plan.added == ["company_id"]
    got = wh.query("SELECT engagement_id, title, company_id FROM raw_hs_engagements")
    assert got.to_dict("records") == [{"engagement_id": "77", "title": "Intro", "company_id": None}]
    assert plan_table(wh, ENGAGEMENT_TABLE).action == "current"
    # a later sync fills the link into the kept row
    wh.merge(ENGAGEMENT_TABLE, pd.DataFrame([{**row, "archived": False, "company_id": "501"}]))
    assert wh.query("SELECT company_id FROM raw_hs_engagements")["company_id"].tolist() == ["501"]
