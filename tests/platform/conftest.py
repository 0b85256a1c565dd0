"""A small recorded world for the dashboard: warehouse rows, two model versions and a Dagster
instance holding materialisations (with connector statistics), check evaluations and a flow run.
Every number the dashboard shows is known in advance."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from models.churn import SCORES
from revops_pipelines.agents.base import METRICS
from revops_pipelines.agents.execution import ACTION_LOG, DEAD_LETTER
from revops_pipelines.agents.outcomes import OUTCOMES
from revops_pipelines.model_store import ModelStore
from revops_pipelines.warehouse import table
from revops_pipelines.warehouse.duckdb import DuckDBWarehouse

QUARANTINE = table("raw_sf_accounts_quarantine", [("id", "TEXT"), ("reason", "TEXT", False)], keys=("id",))
NOW = datetime(2026, 1, 5, 12, 0, 0)
BUCKET = "revops-prod"


def _fill_warehouse(wh: DuckDBWarehouse, flow_run_id: str, acted_at: datetime) -> None:
    # 10 accounts on two snapshots; a0..a2 move from low to high risk, a9 stays high
    scores = []
    for i in range(10):
        before = 0.05 if i < 9 else 0.5
        after = 0.6 if i < 3 else before
        for snap, score in (("2025-11-01", before), ("2025-12-01", after)):
            scores.append(
                {
                    "account_id": f"a{i}",
                    "snapshot_date": snap,
                    "churn_score": score,
                    "model_version": "v2",
                    "top_factors": "[]",
                }
            )
    log = [
        {
            "idempotency_key": f"k{i}",
            "flow_id": "churn_prevention",
            "step_id": "notify",
            "run_id": flow_run_id,
            "decision_id": f"d{i}",
            "account_id": f"a{i}",
            "action_type": "slack_message",
            "status": "succeeded" if i < 3 else "failed",
            "payload": "{}",
            "error": None,
            "created_at": acted_at,
        }
        for i in range(4)
    ]
    outcomes = [
        {
            "idempotency_key": f"k{i}",
            "account_id": f"a{i}",
            "action_type": "slack_message",
            "action_status": "succeeded",
            "decision_snapshot": "2025-12-01",
            "observed_snapshot": "2026-01-01",
            "health_before": 0.4,
            "health_after": 0.5,
            "health_delta": 0.1,
            "churned": i == 2,
            "renewed": i < 2,
            "outcome": "renewed" if i < 2 else "churned",
            "tracked_at": NOW,
        }
        for i in range(3)
    ]
    metrics = [
        {
            "call_id": f"c{i}",
            "trace_id": "t",
            "agent": "decision",
            "agent_version": "1",
            "action": "assess",
            "started_at": NOW,
            "latency_ms": float(10 * (i + 1)),
            "status": "ok" if i < 3 else "error",
            "items_out": 1,
            "error": None if i < 3 else "boom",
        }
        for i in range(4)
    ]
    dead = [
        {
            "idempotency_key": "k3",
            "flow_id": "churn_prevention",
            "step_id": "notify",
            "run_id": "r1",
            "decision_id": "d3",
            "account_id": "a3",
            "action_type": "slack_message",
            "payload": "{}",
            "reason": "HTTP 500",
            "attempts": 3,
            "failed_at": NOW,
        }
    ]
    for schema, rows in (
        (SCORES, scores),
        (ACTION_LOG, log),
        (OUTCOMES, outcomes),
        (METRICS, metrics),
        (DEAD_LETTER, dead),
        (QUARANTINE, [{"id": "bad1", "reason": "missing Id"}, {"id": "bad2", "reason": "missing Id"}]),
    ):
        wh.ensure_table(schema)
        wh.merge(schema, pd.DataFrame(rows))


def _fill_model_store(store: ModelStore) -> None:
    for version, auc in (("20250101T000000000000Z", 0.81), ("20250201T000000000000Z", 0.86)):
        store.save(
            "churn_lgbm",
            {"model.txt": b"tree"},
            {"metrics": {"model": {"auc": auc, "pr_auc": 0.2, "brier": 0.02}, "oracle": {"auc": 0.9}}},
            version=version,
        )
    store.promote("churn_lgbm", "20250201T000000000000Z")


@dg.asset(
    name="raw_salesforce_accounts",
    check_specs=[
        dg.AssetCheckSpec("unique_id", asset="raw_salesforce_accounts"),
        dg.AssetCheckSpec("not_empty", asset="raw_salesforce_accounts"),
    ],
)
def _salesforce():
    yield dg.MaterializeResult(metadata={"requests": 12, "http_429": 3, "retries": 4})
    yield dg.AssetCheckResult(check_name="unique_id", passed=True)
    yield dg.AssetCheckResult(check_name="not_empty", passed=False)


@dg.asset(name="churn_model")
def _churn_model() -> dg.MaterializeResult:
    return dg.MaterializeResult()


def _fill_instance(instance: dg.DagsterInstance) -> tuple[str, float]:
    """Returns the flow run's id and start time."""
    defs = dg.Definitions(
        assets=[_salesforce, _churn_model],
        jobs=[dg.define_asset_job("flow_churn_prevention", selection="churn_model")],
    )
    flow = defs.resolve_job_def("flow_churn_prevention").execute_in_process(instance=instance)
    assert flow.success
    dg.materialize([_salesforce, _churn_model], instance=instance, raise_on_error=False)
    return flow.run_id, instance.get_run_record_by_id(flow.run_id).start_time


@pytest.fixture
def recorded_world(runtime_env):
    """(warehouse, instance, model_store) with the rows above, under a private REVOPS_HOME."""
    runtime_env.mkdir(parents=True, exist_ok=True)
    store = ModelStore(uri=str(runtime_env / "models"))
    _fill_model_store(store)
    dagster_home = Path(os.environ["DAGSTER_HOME"])  # the instance `revops dashboard build` reads too
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    instance = dg.DagsterInstance.get()
    try:
        run_id, started = _fill_instance(instance)
        wh = DuckDBWarehouse(path=str(runtime_env / "warehouse.duckdb"))
        # every action recorded 42 s after its flow run started
        _fill_warehouse(wh, run_id, datetime.fromtimestamp(started + 42, UTC).replace(tzinfo=None))
        yield wh, instance, store
    finally:
        instance.dispose()


@pytest.fixture
def postgres_server(monkeypatch):
    """A throwaway PostgreSQL server on loopback (tests/pg_cluster.py), exposed through the
    DAGSTER_PG_* variables the deploy/ configurations read. Skips when the server is not installed."""
    from tests.pg_cluster import local_postgres

    with local_postgres("dagster", "dagster") as port:
        for key, value in {
            "DAGSTER_PG_USERNAME": "dagster",
            "DAGSTER_PG_PASSWORD": "pg-Secret-5e1f0c",  # trust auth ignores it; it must still never leak
            "DAGSTER_PG_HOST": "127.0.0.1",
            "DAGSTER_PG_DB": "dagster",
            "DAGSTER_PG_PORT": str(port),
        }.items():
            monkeypatch.setenv(key, value)
        yield port


@pytest.fixture
def s3(monkeypatch):
    """A moto S3/ECS server on loopback; boto3 and LanceDB reach it through the standard AWS variables."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ALLOW_HTTP": "true",  # LanceDB (object_store) refuses plain http otherwise
    }.items():
        monkeypatch.setenv(key, value)
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    try:
        yield boto3.client("s3")
    finally:
        server.stop()
