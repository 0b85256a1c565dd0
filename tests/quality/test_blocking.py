"""A failed blocking quality check stops the run before the model that would read the bad data."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pandas as pd

from revops_pipelines.checks import combine_checks, partition_anomaly_check, unique_check
from revops_pipelines.warehouse import Warehouse
from revops_pipelines.warehouse.duckdb import DuckDBWarehouse
from revops_pipelines.warehouse.schema import table

SNAPS = table(
    "q_snapshots",
    [("account_id", "TEXT"), ("snapshot_date", "DATE"), ("util_30d", "DOUBLE")],
    keys=("account_id", "snapshot_date"),
)


def run(tmp_path, counts: list[int]) -> dg.ExecuteInProcessResult:
    @dg.asset(name="q_snapshots")
    def snapshots(warehouse: Warehouse) -> None:
        rows = [(f"a{i}", dt.date(2025, 1 + m, 1), 0.4) for m, n in enumerate(counts) for i in range(n)]
        warehouse.replace_table(SNAPS, pd.DataFrame(rows, columns=SNAPS.column_names))

    @dg.asset(deps=[snapshots])
    def model_stand_in() -> int:
        return 1

    check = partition_anomaly_check(
        "q_snapshots", "snapshot_date", {"mean_util": "AVG(util_30d)"}, {"row_count": 0.5}, blocking=True
    )
    return dg.materialize(
        [snapshots, model_stand_in, *combine_checks([check], name="q")],
        resources={"warehouse": DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))},
        raise_on_error=False,
    )


def test_blocking_anomaly_check_stops_the_model(tmp_path):
    good = run(tmp_path, [10, 10, 11, 10])
    assert good.success
    assert [e.passed for e in good.get_asset_check_evaluations()] == [True]
    assert dg.AssetKey("model_stand_in") in {e.asset_key for e in good.get_asset_materialization_events()}

    bad = run(tmp_path, [10, 10, 11, 2])  # the latest snapshot lost most of its rows
    assert not bad.success
    evaluation = bad.get_asset_check_evaluations()[0]
    assert not evaluation.passed and "2025-04-01" in evaluation.metadata["anomalous_partitions"].value
    materialized = {e.asset_key for e in bad.get_asset_materialization_events()}
    assert dg.AssetKey("q_snapshots") in materialized
    assert dg.AssetKey("model_stand_in") not in materialized


def test_a_failed_blocking_check_blocks_even_when_combined_with_passing_checks(tmp_path):
    """The blocking checks of an asset share one op: a passing check next to the failing one neither
    hides the failure nor lets the downstream asset run; each check is reported on its own."""

    @dg.asset(name="q_snapshots")
    def snapshots(warehouse: Warehouse) -> None:
        rows = [
            (f"a{i}", dt.date(2025, 1 + m, 1), 0.4) for m, n in enumerate([10, 10, 11, 2]) for i in range(n)
        ]
        warehouse.replace_table(SNAPS, pd.DataFrame(rows, columns=SNAPS.column_names))

    @dg.asset(deps=[snapshots])
    def model_stand_in() -> int:
        return 1

    checks = combine_checks(
        [
            unique_check("q_snapshots", ("account_id", "snapshot_date"), blocking=True),
            partition_anomaly_check(
                "q_snapshots",
                "snapshot_date",
                {"mean_util": "AVG(util_30d)"},
                {"row_count": 0.5},
                blocking=True,
            ),
        ],
        name="q",
    )
    assert len(checks) == 1
    result = dg.materialize(
        [snapshots, model_stand_in, *checks],
        resources={"warehouse": DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))},
        raise_on_error=False,
    )
    assert not result.success
    evals = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert evals == {
        "q_snapshots_unique_account_id_snapshot_date": True,
        "q_snapshots_partition_anomaly": False,
    }
    assert dg.AssetKey("model_stand_in") not in {
        e.asset_key for e in result.get_asset_materialization_events()
    }
