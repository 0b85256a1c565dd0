"""Production configuration against the stand-ins: Firebolt (loopback stand-in), S3 (moto server),
multiprocess executor, the deploy/ instance configurations, and secrets only from the environment."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import dagster as dg
import pytest
import yaml

from revops_pipelines.platform import production
from revops_pipelines.platform.dashboard import build_dashboard
from revops_pipelines.settings import load_settings
from revops_pipelines.testing.firebolt_server import firebolt_standin
from tests.platform.conftest import BUCKET


@pytest.fixture
def production_env(runtime_env, s3, tmp_path, monkeypatch):
    """REVOPS_* set as in production: Firebolt, S3 stores, multiprocess executor."""
    with firebolt_standin(db_path=str(tmp_path / "firebolt.duckdb")) as firebolt:
        for key, value in {
            "REVOPS_WAREHOUSE": "firebolt",
            "FIREBOLT_URL": firebolt.url,
            "REVOPS_MODEL_STORE_URI": f"s3://{BUCKET}/models",
            "REVOPS_VECTOR_URI": f"s3://{BUCKET}/lancedb",
            "REVOPS_EXECUTOR": "multiprocess",
            "REVOPS_SAMPLE_ACCOUNTS": "100",
        }.items():
            monkeypatch.setenv(key, value)
        yield firebolt


def _instance_from(mode_yaml: Path | dict, home: Path) -> dg.DagsterInstance:
    home.mkdir(parents=True, exist_ok=True)
    if isinstance(mode_yaml, dict):
        (home / "dagster.yaml").write_text(yaml.safe_dump(mode_yaml))
    else:
        shutil.copy(mode_yaml, home / "dagster.yaml")
    return dg.DagsterInstance.from_config(str(home))


SUBSET = ("sample_world", "raw_billing_invoices")
# the checks that read tables outside the subset (Salesforce accounts, product usage)
CROSS_SOURCE_CHECKS = [
    dg.AssetCheckKey(dg.AssetKey("raw_billing_invoices"), name)
    for name in (
        "raw_billing_invoices_account_id_references_raw_sf_accounts",
        "raw_billing_invoices_freshness",
    )
]


def production_subset_job() -> dg.JobDefinition:
    """Rebuilt in each step process from the same environment (code pointer for the multiprocess
    executor): the production definitions plus a job over a small subset with its checks."""
    from revops_pipelines.definitions import build_definitions

    selection = (
        dg.AssetSelection.assets(*SUBSET).without_checks() | dg.AssetSelection.checks_for_assets(*SUBSET)
    ) - dg.AssetSelection.checks(*CROSS_SOURCE_CHECKS)
    job = dg.define_asset_job("production_subset", selection=selection)
    return dg.Definitions.merge(build_definitions(), dg.Definitions(jobs=[job])).resolve_job_def(
        "production_subset"
    )


# ---- definitions in production mode ------------------------------------------------------------------
def test_definitions_load_in_production_mode(production_env):
    from revops_pipelines.definitions import build_definitions
    from revops_pipelines.warehouse.firebolt import FireboltWarehouse

    defs = build_definitions()
    dg.Definitions.validate_loadable(defs)
    assert isinstance(defs.resources["warehouse"], FireboltWarehouse)
    assert defs.resources["warehouse"].url == production_env.url
    assert defs.resources["model_store"].uri == f"s3://{BUCKET}/models"
    assert defs.resources["knowledge_base"].uri == f"s3://{BUCKET}/lancedb"
    assert defs.executor.name == "multiprocess"
    assert production.describe(load_settings())["firebolt"].startswith("core at http://127.0.0.1:")


def test_multiprocess_materialisation_against_firebolt_and_s3(production_env, runtime_env, s3, tmp_path):
    from revops_pipelines.warehouse.firebolt import FireboltWarehouse

    instance = _instance_from(production.instance_yaml("local"), Path(os.environ["DAGSTER_HOME"]))
    try:
        result = dg.execute_job(dg.reconstructable(production_subset_job), instance=instance)
        assert result.success
        checks = [e for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
        assert len(checks) >= 2 and all(e.event_specific_data.passed for e in checks)
        starts = [e for e in result.all_events if e.event_type_value == "STEP_START"]
        assert starts and all(e.pid != os.getpid() for e in starts)  # each step ran in its own process

        warehouse = FireboltWarehouse(database="revops", url=production_env.url)
        assert warehouse.row_count("raw_billing_invoices") > 0
        assert not (runtime_env / "warehouse.duckdb").exists()  # nothing fell back to DuckDB

        # the dashboard reads the same production backends
        path, kpis = build_dashboard(tmp_path / "d.html", warehouse, instance, None)
        assert int(kpis["materialisations"]) >= 2 and path.exists()
    finally:
        instance.dispose()


def test_model_store_and_knowledge_base_round_trip_through_s3(production_env, s3):
    from revops_pipelines.definitions import build_definitions
    from revops_pipelines.model_store import ModelCorrupt

    defs = build_definitions()
    store = defs.resources["model_store"]
    meta = {"metrics": {"model": {"auc": 0.88, "pr_auc": 0.2, "brier": 0.02}, "oracle": {"auc": 0.9}}}
    first = store.save("churn_lgbm", {"model.txt": b"tree 1"}, meta, version="20250101T000000000000Z")
    second = store.save("churn_lgbm", {"model.txt": b"tree 2"}, meta, version="20250201T000000000000Z")
    store.promote("churn_lgbm", first)
    store.promote("churn_lgbm", second)
    assert store.load("churn_lgbm", second, "model.txt") == b"tree 2"
    assert store.versions("churn_lgbm") == [first, second]
    assert store.rollback("churn_lgbm") == first
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="models/")["Contents"]}
    assert f"models/churn_lgbm/{second}/meta.json" in keys and "models/churn_lgbm/champion.json" in keys

    s3.put_object(Bucket=BUCKET, Key=f"models/churn_lgbm/{first}/model.txt", Body=b"tampered")
    with pytest.raises(ModelCorrupt):
        store.load("churn_lgbm", first, "model.txt")

    kb_assets = [
        a
        for a in defs.assets
        if isinstance(a, dg.AssetsDefinition) and {k.path[-1] for k in a.keys} & {"kb_content", "kb_index"}
    ]
    assert len(kb_assets) == 2
    result = dg.materialize(kb_assets, resources=defs.resources)
    assert result.success
    lance = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="lancedb/").get("Contents", [])]
    assert any(k.endswith(".lance") for k in lance)
    hits = defs.resources["knowledge_base"].open().search("renewal risk", k=3)
    assert len(hits) > 0


SECRETS = {
    "FIREBOLT_CLIENT_ID": "fb-id-Secret-7c1a",
    "FIREBOLT_CLIENT_SECRET": "fb-Secret-91d2",
    "SLACK_BOT_TOKEN": "xoxb-Secret-4411",
    "HUBSPOT_ACCESS_TOKEN": "pat-Secret-8830",
    "REVOPS_WEBHOOK_SECRET": "whk-Secret-2207",
}


@dg.asset(required_resource_keys={"warehouse", "agents"})
def secret_probe(context) -> None:
    warehouse, agents = context.resources.warehouse, context.resources.agents
    # the resources see the resolved values ...
    assert warehouse.client_secret == SECRETS["FIREBOLT_CLIENT_SECRET"]
    assert agents.slack_token == SECRETS["SLACK_BOT_TOKEN"]
    context.log.info("resources initialised with their credentials")


def test_secrets_only_from_the_environment_never_in_snapshots_or_logs(runtime_env, tmp_path, monkeypatch):
    """Firebolt Cloud credentials and live-action tokens reach the resources as dg.EnvVar: the run's
    config, the job snapshot, the event log and the printable configuration hold their names only."""
    from revops_pipelines.agents.base import AgentRuntime
    from revops_pipelines.definitions import build_definitions

    monkeypatch.setenv("REVOPS_WAREHOUSE", "firebolt")
    monkeypatch.delenv("FIREBOLT_URL", raising=False)
    monkeypatch.setenv("FIREBOLT_ACCOUNT", "acme")
    monkeypatch.setenv("FIREBOLT_ENGINE", "revops_engine")
    monkeypatch.setenv("REVOPS_DRY_RUN", "false")
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)

    defs = build_definitions()
    resources = {"warehouse": defs.resources["warehouse"], "agents": defs.resources["agents"]}
    visible = [repr(r) for r in resources.values()] + [repr(production.describe(load_settings()))]

    instance = _instance_from(production.instance_yaml("local"), Path(os.environ["DAGSTER_HOME"]))

    def recorded(result: dg.ExecuteInProcessResult) -> str:
        run = instance.get_run_by_id(result.run_id)
        return "\n".join(
            [
                dg.serialize_value(run),
                dg.serialize_value(instance.get_job_snapshot(run.job_snapshot_id)),
                *(dg.serialize_value(entry) for entry in instance.all_logs(result.run_id)),
            ]
        )

    try:
        result = dg.materialize([secret_probe], resources=resources, instance=instance)
        assert result.success
        visible.append(recorded(result))
        # control: the same scan does see a secret passed as a plain value instead of an EnvVar
        literal = {**resources, "agents": AgentRuntime(dry_run=False, slack_token=SECRETS["SLACK_BOT_TOKEN"])}
        control = dg.materialize([secret_probe], resources=literal, instance=instance)
        assert SECRETS["SLACK_BOT_TOKEN"] in recorded(control)
    finally:
        instance.dispose()
    text = "\n".join(visible)
    assert "FIREBOLT_CLIENT_SECRET" in text and "SLACK_BOT_TOKEN" in text  # the names are there ...
    for name, value in SECRETS.items():
        assert value not in text, f"{name}'s value leaked"  # ... the values are not
