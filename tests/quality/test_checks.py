"""Each data-quality check fails on data seeded with its defect and passes on clean data —
on DuckDB and through firebolt-sdk to the stand-in. Checks are invoked directly with the resource."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pandas as pd
import pytest

from revops_pipelines.checks import (
    accepted_values_check,
    evaluate_partitions,
    freshness_check,
    not_null_check,
    partition_anomaly_check,
    references_check,
    schema_drift_check,
    unique_check,
)
from revops_pipelines.warehouse.drift import SourceSchemaDrift, conform_frame
from revops_pipelines.warehouse.schema import table

PARENT = table(
    "q_accounts", [("account_id", "TEXT"), ("segment", "TEXT")], keys=("account_id",), kind="dimension"
)
CHILD = table(
    "q_cases",
    [("case_id", "TEXT"), ("account_id", "TEXT"), ("priority", "TEXT"), ("created_at", "TIMESTAMP")],
    keys=("case_id",),
)
SNAPS = table(
    "q_features",
    [("account_id", "TEXT"), ("snapshot_date", "DATE"), ("util_30d", "DOUBLE")],
    keys=("account_id", "snapshot_date"),
)


def seed(wh, schema, rows: list[tuple]) -> None:
    """Insert rows as they are (no merge: duplicates must survive to be caught)."""
    wh.execute(schema.ddl(wh.dialect))
    cols = ", ".join(schema.column_names)
    marks = ", ".join("?" for _ in schema.column_names)
    for r in rows:
        wh.execute(f"INSERT INTO {schema.name} ({cols}) VALUES ({marks})", list(r))


def run(check, wh) -> dg.AssetCheckResult:
    return check(warehouse=wh)


T0 = dt.datetime(2025, 12, 1, 12, 0)


def test_unique(warehouse):
    check = unique_check("q_accounts", ("account_id",))
    seed(warehouse, PARENT, [("a1", "SMB"), ("a2", "SMB")])
    assert run(check, warehouse).passed
    seed(warehouse, PARENT, [("a1", "Enterprise")])
    r = run(check, warehouse)
    assert not r.passed and r.metadata["offending_rows"].value == 1


def test_not_null(warehouse):
    check = not_null_check("q_accounts", ("segment",))
    seed(warehouse, PARENT, [("a1", "SMB")])
    assert run(check, warehouse).passed
    seed(warehouse, PARENT, [("a2", None)])
    assert not run(check, warehouse).passed


def test_accepted_values(warehouse):
    check = accepted_values_check("q_cases", "priority", ("Low", "High"))
    seed(warehouse, CHILD, [("c1", "a1", "Low", T0), ("c2", "a1", None, T0)])
    assert run(check, warehouse).passed  # null allowed by default
    seed(warehouse, CHILD, [("c3", "a1", "Urgent'); DROP TABLE q_cases; --", T0)])
    r = run(check, warehouse)
    assert not r.passed and "Urgent" in r.metadata["sample"].value
    assert not run(
        accepted_values_check(
            "q_cases", "priority", ("Low", "High", "Urgent'); DROP TABLE q_cases; --"), allow_null=False
        ),
        warehouse,
    ).passed
    assert warehouse.row_count("q_cases") == 3


def test_referential_integrity(warehouse):
    check = references_check("q_cases", "account_id", "q_accounts", "account_id")
    seed(warehouse, PARENT, [("a1", "SMB")])
    seed(warehouse, CHILD, [("c1", "a1", "Low", T0)])
    assert run(check, warehouse).passed
    seed(warehouse, CHILD, [("c2", "ghost", "Low", T0)])
    r = run(check, warehouse)
    assert not r.passed and r.metadata["offending_rows"].value == 1


def _snapshots(counts: list[int], util: list[float]) -> list[tuple]:
    rows = []
    for m, (n, u) in enumerate(zip(counts, util, strict=True)):
        snap = dt.date(2025, 1 + m, 1)
        rows += [(f"a{i}", snap, u) for i in range(n)]
    return rows


ANOMALY = dict(
    partition_expr="snapshot_date",
    metrics={"mean_util": "AVG(util_30d)"},
    limits={"row_count": 0.5, "mean_util": 0.5},
)


def test_row_count_anomaly(warehouse):
    check = partition_anomaly_check("q_features", **ANOMALY)
    seed(warehouse, SNAPS, _snapshots([10, 11, 10, 12], [0.4, 0.42, 0.41, 0.4]))
    assert run(check, warehouse).passed
    warehouse.execute(
        "DELETE FROM q_features WHERE snapshot_date = ? AND account_id <> ?", [dt.date(2025, 4, 1), "a1"]
    )
    r = run(check, warehouse)
    assert not r.passed
    assert list(r.metadata["anomalous_partitions"].value) == ["2025-04-01"]
    assert "row_count" in r.metadata["anomalous_partitions"].value["2025-04-01"][0]


def test_distribution_anomaly(warehouse):
    check = partition_anomaly_check("q_features", **ANOMALY)
    seed(warehouse, SNAPS, _snapshots([5, 5, 5, 5], [0.4, 0.42, 0.41, 1.9]))  # utilisation jumps (unit bug)
    r = run(check, warehouse)
    assert not r.passed and "mean_util" in r.metadata["anomalous_partitions"].value["2025-04-01"][0]


def test_anomaly_rules_unit():
    rows = [{"partition_key": str(i), "row_count": float(n)} for i, n in enumerate([100, 100, 0, 100])]
    judged = evaluate_partitions(rows, {"row_count": 0.5})
    assert [bool(r["anomalies"]) for r in judged] == [False, False, True, False]
    assert evaluate_partitions([], {"row_count": 0.5}) == []


def test_freshness(warehouse):
    seed(warehouse, PARENT, [])
    ref = table(
        "q_usage", [("account_id", "TEXT"), ("usage_date", "DATE")], keys=("account_id", "usage_date")
    )
    seed(warehouse, ref, [("a1", dt.date(2025, 12, 31))])
    seed(warehouse, CHILD, [("c1", "a1", "Low", dt.datetime(2025, 12, 28))])
    check = freshness_check("q_cases", "created_at", 7, reference=("q_usage", "usage_date"))
    r = run(check, warehouse)
    assert r.passed and r.metadata["lag_days"].value == pytest.approx(3.0)
    seed(warehouse, ref, [("a1", dt.date(2026, 2, 1))])  # usage moved on, cases stalled
    assert not run(check, warehouse).passed
    assert not run(freshness_check("q_cases", "created_at", 7), warehouse).passed  # vs the wall clock
    warehouse.execute("DELETE FROM q_cases")
    r = run(check, warehouse)
    assert not r.passed and r.metadata["problem"].value == "no rows"


def test_schema_drift_check(warehouse):
    check = schema_drift_check(PARENT)
    assert not run(check, warehouse).passed  # table missing
    warehouse.ensure_table(PARENT)
    assert run(check, warehouse).passed
    warehouse.execute("ALTER TABLE q_accounts ADD COLUMN tier TEXT NULL")  # someone changed it by hand
    r = run(check, warehouse)
    assert not r.passed and "tier" in str(r.metadata["problems"].value)


def test_source_drift_is_a_clear_error():
    from assets.product import USAGE, _usage

    good = pd.DataFrame({c: [] for c in USAGE.column_names})

    class Src:
        def __init__(self, df):
            self.df = df

        def parquet(self, path):
            return self.df

    assert list(_usage(Src(good)).columns) == USAGE.column_names
    with pytest.raises(SourceSchemaDrift, match=r"unexpected column\(s\) \['active_seats'\]") as info:
        _usage(Src(good.assign(active_seats=1)))
    assert "product/usage_daily.parquet" in str(info.value)
    with pytest.raises(SourceSchemaDrift, match=r"missing column\(s\) \['sessions'\]"):
        _usage(Src(good.drop(columns=["sessions"])))
    assert (
        list(conform_frame(USAGE, good.assign(x=1), source="s", allow_extra=True).columns)
        == USAGE.column_names
    )
