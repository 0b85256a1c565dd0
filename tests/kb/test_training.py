"""Training data: classification sets and decision examples, labelled through the taxonomies."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pandas as pd

from revops_pipelines.kb.resource import KnowledgeBaseResource
from revops_pipelines.kb.taxonomy import load_taxonomies
from revops_pipelines.kb.training import (
    TaxonomyLabels,
    call_topic_examples,
    decision_examples,
    revenue_events,
    ticket_examples,
    time_split,
)

KB = Path(__file__).resolve().parents[2] / "kb_assets"
TAX = load_taxonomies(KB / "taxonomies")


def test_time_split_is_by_time_not_random():
    order = pd.Series(
        pd.to_datetime(["2025-01-05", "2025-01-01", "2025-01-03", "2025-01-02", "2025-01-04"] * 2)
    )
    split = time_split(order, test_fraction=0.2, valid_fraction=0.2)
    assert split.count("test") == 2 and split.count("valid") == 2
    latest = order.sort_values().index[-2:]
    assert {split[i] for i in latest} == {"test"}


def test_a_source_label_is_the_node_it_names_or_else_a_keyword_of():
    features = TAX["product_features"]
    labels = TaxonomyLabels(features, roots_only=True)
    assert labels(" Integrations ") == labels("integrations") == "product_feature.integrations"
    assert labels("dashboards") == "product_feature.dashboards"  # a keyword of the Dashboards root
    assert labels("Teleportation") is None and labels(None) is None and labels(float("nan")) is None
    assert labels.unmapped == {"Teleportation": 1, "<empty>": 2}
    # a child node is a label only when the whole taxonomy is used
    child = next(n for n in features if n.parent)
    assert TaxonomyLabels(features, roots_only=True)(child.name) != child.id
    assert TaxonomyLabels(features)(child.name) == child.id
    # a Series: the same answers, each miss counted once per row
    many = TaxonomyLabels(features, roots_only=True)
    values = pd.Series(["Integrations", "Teleportation", None, "Teleportation", "DASHBOARDS"])
    out = many.series(values)
    assert list(out.fillna("unknown")) == [
        "product_feature.integrations", "unknown", "unknown", "unknown", "product_feature.dashboards"
    ]  # fmt: skip
    assert many.unmapped == {"Teleportation": 2, "<empty>": 1}


def test_ticket_labels_come_from_the_feature_taxonomy():
    cases = pd.DataFrame(
        [
            ("c1", "a", "2025-01-01", "Salesforce sync failing", "AUTH_EXPIRED on the connector", "Problem", "High", "Integrations"),
            ("c2", "a", "2025-01-02", "Invite user", "seat limit reached", "Question", "Low", "User Management"),
            ("c3", "b", "2025-01-03", "Hello", "question", "Question", "Low", "Teleportation"),
            ("c4", "b", "2025-01-04", "Widget", "slow dashboard widget", "Problem", "Medium", "dashboards"),
        ],
        columns=["case_id", "account_id", "created_at", "subject", "description", "type", "priority", "product_feature"],
    )  # fmt: skip
    df, notes = ticket_examples(cases, TAX["product_features"], test_fraction=0.34, valid_fraction=0.0)
    assert list(df["label"]) == [
        "product_feature.integrations",
        "product_feature.user_management",
        "product_feature.dashboards",
    ]
    assert notes["dropped_unmapped"] == 1 and notes["unmapped_values"] == {"Teleportation": 1}
    assert df.loc[0, "keyword_label"] == "product_feature.integrations" and bool(df.loc[0, "keyword_agrees"])
    assert list(df["split"]) == ["train", "train", "test"]
    assert set(df["taxonomy_version"]) == {TAX["product_features"].version}


def test_call_topics_are_multi_label_with_a_primary_topic():
    calls = pd.DataFrame(
        [
            ("k1", "a", "2025-02-01", "QBR", "QBR", "brief", '["a point"]',
             json.dumps([{"name": "Reporting", "duration": 100}, {"name": "Pricing", "duration": 300}])),
            ("k2", "a", "2025-02-02", "Check-in", "Hi", "", "[]", json.dumps([{"name": "Weather", "duration": 5}])),
        ],
        columns=["call_id", "account_id", "started", "purpose", "title", "brief", "key_points", "topics"],
    )  # fmt: skip
    transcripts = pd.DataFrame({"call_id": ["k1", "k1"], "seq": [1, 0], "text": ["second", "first"]})
    df, notes = call_topic_examples(calls, transcripts, TAX["call_topics"])
    assert len(df) == 1
    assert json.loads(df.loc[0, "topics"]) == ["call_topic.pricing", "call_topic.reporting"]
    assert df.loc[0, "primary_topic"] == "call_topic.pricing"
    assert df.loc[0, "text"].endswith("first\nsecond")
    assert notes["unknown_topics"] == {"Weather": 1} and notes["dropped_without_topics"] == 1


def test_revenue_events_follow_the_taxonomy_rules(small_world):
    wh, groups = small_world
    opps = wh.query("SELECT * FROM raw_sf_opportunities")
    inv = wh.query("SELECT * FROM raw_billing_invoices")
    acc = wh.query("SELECT account_id, seats, arr, billing_frequency FROM raw_sf_accounts")
    df, notes = revenue_events(opps, inv, acc, TAX["revenue_events"])
    by = {(r.account_id, r.source_id): r for r in df.itertuples()}
    healthy = groups["healthy"][0]
    assert by[(healthy, f"{healthy}-o0")].label == "revenue_event.new"
    assert by[(healthy, f"{healthy}-o2")].label == "revenue_event.expansion.seats"
    renewal_up = by[(healthy, f"{healthy}-o3")]
    assert set(json.loads(renewal_up.labels)) >= {"revenue_event.renewal", "revenue_event.expansion"}
    churned_paid_failed = groups["struggling"][0]  # i=0: churned, with an uncollectible invoice
    churned_voluntary = groups["struggling"][3]  # i=3: churned, no failed payment
    assert by[(churned_paid_failed, f"{churned_paid_failed}-o3")].label == "revenue_event.churn.involuntary"
    assert by[(churned_voluntary, f"{churned_voluntary}-o3")].label == "revenue_event.churn.voluntary"
    invoice_events = df[df["source"] == "billing_invoice"]
    assert len(invoice_events) and set(invoice_events["label"]) == {"revenue_event.contraction.seats"}
    assert notes["events"] == len(df) and set(df["label"]) <= set(TAX["revenue_events"].nodes)


def test_decision_examples_link_situation_action_outcome(small_world):
    wh, groups = small_world
    features = wh.query("SELECT * FROM account_features")
    accounts = wh.query("SELECT account_id, employees FROM raw_sf_accounts")
    calls = wh.query("SELECT call_id, account_id, started, purpose FROM raw_gong_calls")
    renewals = wh.query(
        "SELECT account_id, close_date, is_closed, is_won FROM raw_sf_opportunities WHERE type = 'Renewal'"
    )
    df, notes = decision_examples(
        features, accounts, calls, renewals, TAX["customer_segmentation"], TAX["cs_actions"]
    )
    assert len(df) == 40 and notes["snapshots"] == 2
    row = df[(df.account_id == groups["healthy"][0]) & (df.snapshot_date.astype(str) == "2025-04-01")].iloc[0]
    assert row.action == "cs_action.business_review" and str(row.action_date) == "2025-04-05"
    assert row.situation == "segment.behaviour.power_user"
    assert row.renewal_outcome == "won" and pd.isna(
        row.arr_after
    )  # the snapshot 3 months later is not observed
    bad = df[
        (df.account_id == groups["struggling"][0]) & (df.snapshot_date.astype(str) == "2025-04-01")
    ].iloc[0]
    assert bad.situation == "segment.behaviour.at_risk" and bad.action == "cs_action.escalation_call"
    assert bad.renewal_outcome == "lost" and bad.churned_in_horizon and bad.arr_after == 0.0
    late = df[df.snapshot_date.astype(str) == "2025-05-01"]
    assert set(late["action"]) == {"cs_action.no_touch"}  # no call in the 30 days after 1 May
    assert (
        pd.to_datetime(df["action_date"]).dropna()
        > pd.to_datetime(df.loc[df.action_date.notna(), "snapshot_date"])
    ).all()


def test_training_assets_write_tables_and_pass_their_checks(small_world, tmp_path):
    from kb_assets.assets import kb_taxonomy_nodes
    from kb_assets.training import ASSETS, CHECKS

    wh, _ = small_world
    result = dg.materialize(
        [kb_taxonomy_nodes, *ASSETS, *CHECKS],
        resources={"warehouse": wh, "knowledge_base": KnowledgeBaseResource(uri=str(tmp_path / "lance"))},
    )
    assert result.success
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert len(checks) == sum(len(c.check_keys) for c in CHECKS) == 6 and all(checks.values()), checks
    counts = {t: wh.row_count(t) for t in ("training_ticket_labels", "training_call_topics",
                                           "training_revenue_events", "training_decision_examples")}  # fmt: skip
    assert counts["training_ticket_labels"] == 50 and counts["training_call_topics"] == 60
    assert counts["training_decision_examples"] == 40 and counts["training_revenue_events"] > 40
    assert wh.row_count("kb_taxonomy_nodes") == sum(len(TAX[t]) for t in TAX)
    # lineage: every training table depends on its raw sources and on the validated content
    deps = {k.to_user_string() for k in ASSETS[0].asset_deps[dg.AssetKey("training_ticket_labels")]}
    assert deps == {"raw_sf_cases", "kb_content"}
    # rerunning replaces, never duplicates
    again = dg.materialize(
        ASSETS,
        resources={"warehouse": wh, "knowledge_base": KnowledgeBaseResource(uri=str(tmp_path / "lance"))},
    )
    assert again.success and wh.row_count("training_ticket_labels") == 50
