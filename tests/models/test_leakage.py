"""No leakage: a feature computed from data dated after the snapshot fails these tests."""

from __future__ import annotations

import pytest

from assets.features import FEATURE_COLUMNS, FEATURES_SQL
from models.churn import model_features
from models.churn_lib import DERIVED_FEATURES
from models.leakage import leakage_report

SNAPSHOTS = ["2024-10-01", "2025-03-01", "2025-09-01"]


@pytest.mark.parametrize("snapshot", SNAPSHOTS)
def test_features_equal_their_recomputation_from_data_known_on_the_snapshot(warehouse, snapshot):
    with warehouse.connect() as conn:
        assert leakage_report(conn, FEATURES_SQL, snapshot, FEATURE_COLUMNS) == {}


@pytest.mark.parametrize(
    ("old", "new", "leaky"),
    [
        # usage window shifted 30 days past the snapshot
        (
            "WHERE u.usage_date <= p.snap AND u.usage_date > p.snap - 90",
            "WHERE u.usage_date <= p.snap + 30 AND u.usage_date > p.snap - 60",
            "util_30d",
        ),
        # tickets counted by their final state instead of their state on the snapshot
        (
            "COUNT(CASE WHEN k.closed_at IS NULL OR CAST(k.closed_at AS DATE) > p.snap THEN 1 END) AS open_tickets",
            "COUNT(CASE WHEN k.closed_at IS NULL THEN 1 END) AS open_tickets",
            "open_tickets",
        ),
    ],
)
def test_a_feature_computed_after_the_snapshot_is_caught(warehouse, old, new, leaky):
    assert old in FEATURES_SQL, "the feature SQL changed: update this negative control"
    with warehouse.connect() as conn:
        report = leakage_report(conn, FEATURES_SQL.replace(old, new), "2025-03-01", FEATURE_COLUMNS)
    assert report.get(leaky, 0) > 0, report


def test_model_features_are_the_feature_table_plus_same_row_derivations():
    assert set(model_features()) == set(FEATURE_COLUMNS) | set(DERIVED_FEATURES)
    assert "churned_in_horizon" not in model_features()
