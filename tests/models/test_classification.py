"""Taxonomy classifiers (tickets, call topics, revenue events) and segmentation, on the session world."""

from __future__ import annotations

import json

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from models import classification, segmentation
from models.text_classifier import UNKNOWN, fit_text_classifier, per_class_metrics
from revops_pipelines.kb.resource import KnowledgeBaseResource


@pytest.fixture(scope="module")
def training_revenue_events(world):
    """The knowledge base's labelled ARR movements, built with its own (Dagster-free) builder."""
    from revops_pipelines.kb.training import REVENUE_EVENTS, revenue_events

    wh = world["warehouse"]
    df, _ = revenue_events(
        wh.query(
            "SELECT opportunity_id, account_id, type, stage_name, amount, close_date, is_closed, is_won, "
            "is_deleted FROM raw_sf_opportunities"
        ),
        wh.query(
            "SELECT invoice_id, account_id, amount_due, status, period_start, due_date FROM raw_billing_invoices"
        ),
        wh.query(
            "SELECT account_id, seats, arr, billing_frequency FROM raw_sf_accounts WHERE NOT is_deleted"
        ),
        classification._taxonomy(None, "revenue_events"),
    )
    wh.replace_table(REVENUE_EVENTS, df)
    return df


@pytest.fixture(scope="module")
def materialised(world, training_revenue_events, tmp_path_factory):
    from revops_pipelines.model_store import ModelStore

    store = ModelStore(uri=str(tmp_path_factory.mktemp("clf_models")))
    result = dg.materialize(
        [*classification.ASSETS, *segmentation.ASSETS],
        resources={
            "warehouse": world["warehouse"],
            "model_store": store,
            "knowledge_base": KnowledgeBaseResource(uri=str(tmp_path_factory.mktemp("clf_kb"))),
        },
    )
    assert result.success
    mats = {
        e.asset_key.to_user_string(): e.materialization.metadata
        for e in result.get_asset_materialization_events()
    }
    return mats, store, world["warehouse"]


@pytest.mark.parametrize(
    ("asset", "table", "column", "taxonomy"),
    [
        ("ticket_product_features", "ticket_product_features", "product_feature_id", "product_features"),
        ("call_topic_classifications", "call_topic_classifications", "topic_id", "call_topics"),
        (
            "revenue_event_classifications",
            "revenue_event_classifications",
            "revenue_event_id",
            "revenue_events",
        ),
    ],
)
def test_classifiers_write_taxonomy_labels_and_report_per_class_metrics(
    materialised, asset, table, column, taxonomy
):
    mats, store, wh = materialised
    md = mats[asset]
    assert "| class | precision | recall |" in md["per_class"].value
    assert md["holdout_accuracy"].value > 0.7
    out = wh.query(f"SELECT * FROM {table}")  # noqa: S608 - fixed table names
    assert len(out) > 0
    allowed = set(classification._taxonomy(None, taxonomy).nodes) | {UNKNOWN}
    assert set(out[column]) <= allowed
    assert out["model_version"].eq(md["model_version"].value).all()
    name = {
        "ticket_product_features": classification.TICKET_MODEL,
        "call_topic_classifications": classification.CALL_TOPIC_MODEL,
        "revenue_event_classifications": classification.REVENUE_EVENT_MODEL,
    }[asset]
    meta = store.meta(name, md["model_version"].value)
    assert meta["metrics"]["per_class"] and meta["params"]["threshold"] == 0.5 and meta["data_fingerprint"]


def test_classifiers_label_with_the_knowledge_base_in_use_not_the_shipped_one(materialised, tmp_path):
    """A tenant's content root (or overlay) is what the training sets label with; the classifiers
    must use the same taxonomies: drop the Dashboards subtree and no ticket is classified into it."""
    import shutil

    import yaml

    from revops_pipelines.kb.documents import default_kb_root
    from revops_pipelines.model_store import ModelStore

    mats, _, wh = materialised
    gone = "product_feature.dashboards"
    assert gone in set(
        wh.query("SELECT product_feature_id FROM ticket_product_features")["product_feature_id"]
    )
    root = tmp_path / "content"
    shutil.copytree(default_kb_root() / "taxonomies", root / "taxonomies")
    path = root / "taxonomies" / "product_features.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["taxonomy"]["nodes"] = [n for n in doc["taxonomy"]["nodes"] if not n["id"].startswith(gone)]
    path.write_text(yaml.safe_dump(doc))
    kb = KnowledgeBaseResource(uri=str(tmp_path / "kb"), content_root=str(root))
    result = dg.materialize(
        [classification.ticket_product_features],
        resources={"warehouse": wh, "model_store": ModelStore(uri=str(tmp_path / "m")), "knowledge_base": kb},
    )
    assert result.success
    labels = set(wh.query("SELECT product_feature_id FROM ticket_product_features")["product_feature_id"])
    assert gone not in labels and UNKNOWN in labels


def test_call_topic_shares_sum_to_one_per_call(materialised):
    _, _, wh = materialised
    shares = wh.query("SELECT call_id, SUM(share) AS s FROM call_topic_classifications GROUP BY call_id")
    np.testing.assert_allclose(shares["s"], 1.0)


def test_low_confidence_is_unknown_and_counts_as_right_for_unlabelled_rows():
    texts = pd.Series(
        [
            "reset my dashboard widget",
            "dashboard chart broken",
            "invoice is wrong",
            "billing invoice duplicated",
            "hello there",
            "thanks, bye",
        ]
        * 10
    )
    labels = pd.Series(["dash", "dash", "bill", "bill", UNKNOWN, UNKNOWN] * 10)
    times = pd.Series(pd.date_range("2025-01-01", periods=60, freq="D"))
    model, metrics = fit_text_classifier(texts, labels, times, threshold=0.99)
    pred, conf = model.predict(pd.Series(["the weather is nice"]))
    assert pred[0] == UNKNOWN and conf[0] < 0.99
    assert set(metrics["per_class"]) == {"bill", "dash", UNKNOWN}
    m = per_class_metrics(
        np.array(["a", "b", UNKNOWN]), np.array(["a", UNKNOWN, UNKNOWN]), ["a", "b", UNKNOWN]
    )
    assert m["per_class"]["a"] == {"precision": 1.0, "recall": 1.0, "support": 1}
    assert m["per_class"]["b"]["recall"] == 0.0 and m["coverage"] == pytest.approx(1 / 3)


def test_segments_follow_the_taxonomy_and_clusters_are_stable(materialised, world, tmp_path):
    mats, _, wh = materialised
    seg = wh.query("SELECT * FROM account_segments ORDER BY account_id")
    tax = classification._taxonomy(None, "customer_segmentation")
    assert set(seg["size_segment"].dropna()) <= {n.id for n in tax.roots() if n.rules}
    for s in seg["behaviour_segments"]:
        assert all(b.startswith("segment.behaviour.") for b in json.loads(s))
    # size rules agree with the employee counts
    emp = wh.query("SELECT account_id, employees FROM raw_sf_accounts").set_index("account_id")["employees"]
    big = seg[seg["size_segment"] == "segment.enterprise"]["account_id"]
    assert (emp.loc[big] >= 1000).all()
    # a second run assigns every account to the same cluster, numbered the same way
    again = dg.materialize(
        segmentation.ASSETS,
        resources={"warehouse": wh, "knowledge_base": KnowledgeBaseResource(uri=str(tmp_path / "kb"))},
    )
    assert again.success
    seg2 = wh.query("SELECT * FROM account_segments ORDER BY account_id")
    assert seg2["cluster"].tolist() == seg["cluster"].tolist()
    util = (
        seg.merge(
            wh.query(
                "SELECT account_id, util_30d FROM account_features WHERE snapshot_date = "
                "(SELECT MAX(snapshot_date) FROM account_features)"
            ),
            on="account_id",
        )
        .groupby("cluster")["util_30d"]
        .mean()
    )
    assert util.is_monotonic_increasing  # cluster 0 is the least engaged


def test_segmentation_rule_record_maps_feature_names_to_taxonomy_fields():
    rec = segmentation.rule_record(
        {"employees": 1500, "plan": "Scale", "util_30d": 0.8, "usage_trend": 0.7, "days_since_active": 40}
    )
    assert rec["usage_trend_90d"] == pytest.approx(-0.3)
    ids = classification._taxonomy(None, "customer_segmentation").classify(rec)
    assert {
        "segment.enterprise",
        "segment.plan.scale",
        "segment.behaviour.at_risk",
        "segment.behaviour.dormant",
    } <= set(ids)
