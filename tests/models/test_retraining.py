"""Retraining: snapshot-partitioned backfills (one version per partition, one run) and the drift sensor."""

from __future__ import annotations

import dagster as dg

from models import churn
from models.churn import MODEL_NAME
from models.drift import psi, reference_profile

PARTITIONS = ["2025-04-01", "2025-05-01", "2025-06-01"]
SMALL = {"num_boost_round": 60, "eval_months": 1, "calib_months": 1}


def test_backfill_over_partitions_registers_one_version_per_partition_in_one_run(warehouse, store):
    instance = dg.DagsterInstance.ephemeral()
    assert churn.churn_model_snapshots.backfill_policy == dg.BackfillPolicy.single_run()
    result = dg.materialize(
        [churn.churn_model_snapshots],
        instance=instance,
        resources={"warehouse": warehouse, "model_store": store},
        run_config={"ops": {"churn_model_snapshots": {"config": SMALL}}},
        tags={
            "dagster/asset_partition_range_start": PARTITIONS[0],
            "dagster/asset_partition_range_end": PARTITIONS[-1],
        },
    )
    assert result.success
    metas = [store.meta(MODEL_NAME, v) for v in store.versions(MODEL_NAME)]
    assert sorted(m["as_of"] for m in metas) == PARTITIONS
    for m in metas:  # trained only on rows whose label window had closed by the partition's date
        assert all(s <= m["as_of"] for s in m["split"]["eval"])
        assert m["kind"] == "snapshot_retrain"
    assert store.champion(MODEL_NAME) is None  # backfills never change what serves
    mats = result.get_asset_materialization_events()
    assert sorted(e.partition for e in mats) == PARTITIONS
    assert len(instance.get_runs()) == 1


def test_schedule_and_job_exist_and_are_stopped():
    assert churn.monthly_snapshot_retrain.default_status == dg.DefaultScheduleStatus.STOPPED
    assert churn.monthly_snapshot_retrain.job_name == "retrain_churn_snapshots"


def _champion_with_reference(store, warehouse, shift: float) -> str:
    df = warehouse.query(
        "SELECT * FROM account_features WHERE snapshot_date = (SELECT MAX(snapshot_date) FROM account_features)"
    )
    ref = reference_profile(
        df.assign(util_30d=df["util_30d"] + shift), ["util_30d", "sessions_30d", "tenure_days"]
    )
    v = store.save(MODEL_NAME, {"model.txt": b"x"}, {"drift_reference": ref, "horizon_days": 90})
    store.promote(MODEL_NAME, v)
    return v


def test_drift_sensor_skips_without_drift_and_remembers_the_snapshot(warehouse, store):
    v = _champion_with_reference(store, warehouse, shift=0.0)
    resources = {"warehouse": warehouse, "model_store": store}
    result = churn.churn_feature_drift(dg.build_sensor_context(resources=resources))
    assert not result.run_requests
    latest = str(warehouse.query("SELECT MAX(snapshot_date) AS s FROM account_features")["s"].iloc[0])[:10]
    assert result.cursor == f"{latest}|{v}"
    again = churn.churn_feature_drift(dg.build_sensor_context(resources=resources, cursor=result.cursor))
    assert isinstance(again, dg.SkipReason) and "already checked" in again.skip_message


def test_drift_sensor_proposes_retraining_once_per_snapshot(warehouse, store):
    v = _champion_with_reference(store, warehouse, shift=0.5)
    resources = {"warehouse": warehouse, "model_store": store}
    result = churn.churn_feature_drift(dg.build_sensor_context(resources=resources, cursor="2020-01-01|old"))
    assert len(result.run_requests) == 1
    req = result.run_requests[0]
    assert req.run_key.endswith(v) and "util_30d" in req.tags["revops/drifted_features"]
    assert result.cursor.endswith(f"|{v}")
    again = churn.churn_feature_drift(dg.build_sensor_context(resources=resources, cursor=result.cursor))
    assert isinstance(again, dg.SkipReason)


def test_psi_is_zero_for_the_reference_itself_and_large_for_a_shift():
    import pandas as pd

    x = pd.DataFrame({"a": range(1000)})
    ref = reference_profile(x, ["a"])
    assert psi(ref, x)["a"] < 1e-6
    assert psi(ref, x + 500)["a"] > 0.25
