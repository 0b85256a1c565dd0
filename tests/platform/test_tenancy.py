"""Multi-tenant deployments: two tenants from the same code, isolated in every store.

Tenants ``alpha`` and ``beta`` get different sample seeds, their own flows and knowledge-base overlay
documents; the tests show that no warehouse query, vector search, model load or action crosses from one
to the other, that a resource pointed at another tenant's data refuses to open it, and that the
generated workspace loads one Dagster code location per tenant.
"""

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml
from click.testing import CliRunner

from revops_pipelines import tenancy
from revops_pipelines.errors import ConfigurationError, ValidationFailed
from revops_pipelines.settings import load_settings
from revops_pipelines.tenancy import TenantIsolationError, definitions_for
from revops_pipelines.warehouse import Warehouse
from tests.helpers import use_runtime

FLOW = """\
flow_id: {flow_id}
version: 1
description: {tenant}'s own alert flow.
owner: {tenant}-cs
trigger:
  type: schedule
  cron: "0 9 * * 1"
steps:
  - id: assess
    agent: decision
    action: assess_churn_risk
    parameters:
      policy: churn_prevention
      threshold: 0.4
      max_accounts: 5
  - id: alert
    agent: execution
    action: execute_actions
    depends_on: [assess]
    parameters:
      action_types: [slack_message]
      channel: "{channel}"
"""
DOC = """\
---
id: {tenant}-private-runbook
title: {title}
collection: product
tags: [support]
owner: {tenant}-cs
updated: 2026-11-01
taxonomy:
  - product_feature.api
---
# {title}

## Procedure

{body}
"""
PHRASES = {
    "alpha": "Zephyrine quartz escalation ladder for the alpha observatory telescopes.",
    "beta": "Marmalade kiln rotation protocol for the beta pottery cooperative furnaces.",
}


def _write_tenant(root: Path, tenant: str, seed: int, **extra) -> None:
    folder = root / tenant
    (folder / "flows").mkdir(parents=True)
    (folder / "flows" / "own.yaml").write_text(
        FLOW.format(flow_id=f"{tenant}_watch", tenant=tenant, channel=f"#{tenant}-alerts")
    )
    docs = folder / "kb" / "docs" / "product"
    docs.mkdir(parents=True)
    (docs / f"{tenant}-runbook.md").write_text(
        DOC.format(tenant=tenant, title=f"{tenant.title()} private runbook", body=PHRASES[tenant])
    )
    config = {
        "tenant_id": tenant,
        "display_name": tenant.title(),
        "sample": {"seed": seed, "accounts": 120},
        "credentials": {"SLACK_BOT_TOKEN": f"{tenant.upper()}_SLACK_BOT_TOKEN"},
        "flows": {"folder": f"{tenant}/flows", "include_shared": False},
        "knowledge_base": {"overlay": f"{tenant}/kb"},
        "actions": {"allowed_channels": [f"#{tenant}-alerts"]},
        **extra,
    }
    (root / f"{tenant}.yaml").write_text(yaml.safe_dump(config))


@pytest.fixture
def tenants(tmp_path, monkeypatch):
    """Base home and tenants folder with alpha (seed 11) and beta (seed 23)."""
    home = use_runtime(monkeypatch, tmp_path)
    folder = tmp_path / "tenants"
    folder.mkdir()
    _write_tenant(folder, "alpha", 11)
    _write_tenant(folder, "beta", 23)
    monkeypatch.setenv("REVOPS_TENANTS_DIR", str(folder))
    monkeypatch.delenv("REVOPS_TENANT", raising=False)
    monkeypatch.setattr(tenancy, "_SERVED", set())  # which tenants this test's process serves
    return home


# ---- tenant ids and files ---------------------------------------------------------------------------
@pytest.mark.parametrize("bad", ["../beta", "alpha/../beta", "Alpha", "a", "al pha", "default", "x" * 41, ""])
def test_bad_tenant_ids_are_rejected_before_any_path_is_built(tenants, monkeypatch, bad):
    monkeypatch.setenv("REVOPS_TENANT", bad)
    if bad == "":  # empty means unset: the default tenant
        assert load_settings().tenant is None
        return
    with pytest.raises(ConfigurationError, match="REVOPS_TENANT") as err:
        load_settings()
    assert "tenant id" in str(err.value)
    assert not (tenants / "tenants").exists()
    assert not hasattr(tenancy, f"defs_{bad}")


def test_unknown_tenant_names_the_file_and_the_known_tenants(tenants, monkeypatch):
    monkeypatch.setenv("REVOPS_TENANT", "gamma")
    with pytest.raises(ConfigurationError) as err:
        load_settings()
    assert "unknown tenant 'gamma'" in str(err.value) and "alpha, beta" in str(err.value)
    with pytest.raises(AttributeError):
        tenancy.defs_gamma  # noqa: B018


def test_tenant_file_errors_name_the_field_and_never_echo_a_pasted_secret(tenants, tmp_path):
    folder = tmp_path / "tenants"
    (folder / "gamma.yaml").write_text(yaml.safe_dump({"tenant_id": "beta"}))
    with pytest.raises(ValidationFailed, match="does not match the file name"):
        load_settings(tenant="gamma")
    (folder / "gamma.yaml").write_text(
        yaml.safe_dump({"tenant_id": "gamma", "credentials": {"SLACK_BOT_TOKEN": "xoxb-123-real-secret"}})
    )
    with pytest.raises(ValidationFailed) as err:
        load_settings(tenant="gamma")
    assert "credentials" in str(err.value) and "xoxb-123-real-secret" not in str(err.value)
    (folder / "gamma.yaml").write_text(yaml.safe_dump({"tenant_id": "gamma", "colour": "red"}))
    with pytest.raises(ValidationFailed, match="colour: unknown field"):
        load_settings(tenant="gamma")


def test_one_process_serves_one_tenant(tenants, monkeypatch):
    monkeypatch.setenv("REVOPS_TENANT", "alpha")
    with pytest.raises(ConfigurationError, match="'alpha' but tenant 'beta'"):
        load_settings(tenant="beta")


# ---- locations --------------------------------------------------------------------------------------
def test_every_location_is_derived_per_tenant_and_the_default_is_unchanged(tenants, monkeypatch):
    default = load_settings()
    assert default.tenant is None and default.home == tenants.resolve()
    assert default.duckdb_path == default.home / "warehouse.duckdb"
    assert default.vector_uri == str(default.home / "lancedb")
    a, b = load_settings(tenant="alpha"), load_settings(tenant="beta")
    for s, name, seed in ((a, "alpha", 11), (b, "beta", 23)):
        root = default.home / "tenants" / name
        assert s.home == root and s.sample_seed == seed and s.sample_accounts == 120
        for location in (s.duckdb_path, s.vector_uri, s.model_store_uri, s.state_dir, s.sample_dir):
            assert Path(location).is_relative_to(root)
        assert s.env_var("SLACK_BOT_TOKEN") == f"{name.upper()}_SLACK_BOT_TOKEN"
        assert s.env_var("HUBSPOT_ACCESS_TOKEN") == "HUBSPOT_ACCESS_TOKEN"  # not mapped: shared name
    # object storage and Firebolt: a prefix and a database per tenant
    monkeypatch.setenv("REVOPS_VECTOR_URI", "s3://bucket/kb/")
    monkeypatch.setenv("REVOPS_MODEL_STORE_URI", "s3://bucket/models")
    monkeypatch.setenv("REVOPS_WAREHOUSE", "firebolt")
    monkeypatch.setenv("FIREBOLT_URL", "http://127.0.0.1:9")
    a = load_settings(tenant="alpha")
    assert a.vector_uri == "s3://bucket/kb/tenants/alpha"
    assert a.model_store_uri == "s3://bucket/models/tenants/alpha"
    assert a.firebolt.database == "revops_alpha" and load_settings().firebolt.database == "revops"
    # an explicit DuckDB file outside the tenant's folder is refused at load
    monkeypatch.setenv("REVOPS_WAREHOUSE", "duckdb")
    monkeypatch.setenv("REVOPS_DUCKDB_PATH", str(default.home / "warehouse.duckdb"))
    with pytest.raises(ConfigurationError, match="REVOPS_DUCKDB_PATH.*outside tenant 'alpha'"):
        load_settings(tenant="alpha")


def test_live_tenant_is_checked_for_its_own_credential_variables(tenants, tmp_path, monkeypatch):
    cfg = yaml.safe_load((tmp_path / "tenants" / "alpha.yaml").read_text())
    cfg["source_mode"] = "live"
    cfg["credentials"] = {"GONG_ACCESS_KEY": "ALPHA_GONG_KEY"}
    (tmp_path / "tenants" / "alpha.yaml").write_text(yaml.safe_dump(cfg))
    for var in ("GONG_ACCESS_KEY_SECRET", "SALESFORCE_CLIENT_ID", "SALESFORCE_CLIENT_SECRET"):
        monkeypatch.setenv(var, "x")
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", "x")
    monkeypatch.setenv("GONG_ACCESS_KEY", "the-default-tenant's key")  # must not count for alpha
    with pytest.raises(ConfigurationError, match="ALPHA_GONG_KEY.*tenant 'alpha'"):
        load_settings(tenant="alpha")
    monkeypatch.setenv("ALPHA_GONG_KEY", "alpha's key")
    settings = load_settings(tenant="alpha")
    gong = definitions_for("alpha").resources["gong"]
    assert settings.source_mode == "live" and gong.mode == "live"


# ---- one code location per tenant -------------------------------------------------------------------
def test_each_tenant_location_has_its_own_flows_and_resources(tenants):
    a, b = tenancy.defs_alpha, tenancy.defs_beta
    assert isinstance(a, dg.Definitions)
    jobs_a = {j.name for j in a.resolve_all_job_defs()}
    jobs_b = {j.name for j in b.resolve_all_job_defs()}
    assert "flow_alpha_watch" in jobs_a and "flow_beta_watch" not in jobs_a
    assert "flow_beta_watch" in jobs_b and "flow_alpha_watch" not in jobs_b
    assert "flow_churn_prevention" not in jobs_a  # include_shared: false
    assert {"ingest_sample_world", "train_and_score"} <= jobs_a & jobs_b  # same code
    ra, rb = a.resources, b.resources
    assert ra["warehouse"].tenant == "alpha" and rb["warehouse"].tenant == "beta"
    assert ra["warehouse"].path != rb["warehouse"].path
    assert ra["agents"].tenant_id == "alpha" and ra["agents"].allowed_channels == ["#alpha-alerts"]
    assert ra["sample_world"].seed == 11 and rb["sample_world"].seed == 23


def _materialise_slice(tenant: str) -> dg.Definitions:
    from assets.sample_world import sample_oracle, sample_world

    defs = definitions_for(tenant)
    result = dg.materialize([sample_world, sample_oracle], resources=defs.resources)
    assert result.success
    return defs


def test_two_tenants_materialise_disjoint_worlds_and_queries_stay_in_their_warehouse(tenants):
    import pandas as pd

    worlds = {t: _materialise_slice(t) for t in ("alpha", "beta")}
    ids, world = {}, {}
    for tenant, defs in worlds.items():
        wh = defs.resources["warehouse"]
        assert Path(wh.path).is_relative_to(tenants.resolve() / "tenants" / tenant)
        ids[tenant] = set(wh.query("SELECT DISTINCT account_id FROM sample_oracle")["account_id"])
        truth = pd.read_parquet(Path(defs.resources["sample_world"].path) / "truth" / "accounts.parquet")
        world[tenant] = set(truth["account_id"])
        assert len(world[tenant]) == 120 and ids[tenant] and ids[tenant] <= world[tenant]  # its own world
    assert not world["alpha"] & world["beta"]  # different seeds, different accounts
    assert not ids["alpha"] & world["beta"] and not ids["beta"] & world["alpha"]  # none of the other's
    assert not (tenants / "warehouse.duckdb").exists()  # the default tenant was never touched


def test_resources_refuse_locations_outside_their_tenant(tenants, monkeypatch):
    from revops_pipelines.kb.resource import KnowledgeBaseResource
    from revops_pipelines.model_store import ModelStore
    from revops_pipelines.warehouse.duckdb import DuckDBWarehouse

    a, b = load_settings(tenant="alpha"), load_settings(tenant="beta")
    # a process serving no tenant (the default code location): no tenant's resources, and the default
    # tenant's own resources keep out of the tenants' area
    with pytest.raises(TenantIsolationError, match="serves no code location of tenant 'alpha'"):
        DuckDBWarehouse(path=str(a.duckdb_path), tenant="alpha").query("SELECT 1 AS x")
    with pytest.raises(TenantIsolationError, match="the default tenant may not open models location"):
        ModelStore(uri=a.model_store_uri).versions("churn_lgbm")
    assert not a.duckdb_path.exists()
    # alpha's code location, its resources reconfigured (e.g. through run config) to beta's data
    tenancy.serve("alpha")
    with pytest.raises(TenantIsolationError, match="outside the tenant's root"):
        DuckDBWarehouse(path=str(b.duckdb_path), tenant="alpha").query("SELECT 1 AS x")
    assert not b.duckdb_path.exists()
    with pytest.raises(TenantIsolationError):
        ModelStore(uri=b.model_store_uri, tenant="alpha").versions("churn_lgbm")
    with pytest.raises(TenantIsolationError):
        KnowledgeBaseResource(uri=b.vector_uri, tenant="alpha").open()
    with pytest.raises(TenantIsolationError, match="serves no code location of the default tenant"):
        DuckDBWarehouse(path=str(tenants / "warehouse.duckdb")).query("SELECT 1 AS x")
    # a process started for alpha runs neither beta's nor the default tenant's resources
    monkeypatch.setenv("REVOPS_TENANT", "alpha")
    with pytest.raises(TenantIsolationError, match="serves tenant 'alpha'"):
        DuckDBWarehouse(path=str(b.duckdb_path), tenant="beta").query("SELECT 1 AS x")
    with pytest.raises(TenantIsolationError, match="serves tenant 'alpha'"):
        DuckDBWarehouse(path=str(tenants / "warehouse.duckdb")).query("SELECT 1 AS x")
    assert DuckDBWarehouse(path=str(a.duckdb_path), tenant="alpha").query("SELECT 1 AS x")["x"].tolist() == [
        1
    ]


@dg.asset
def _probe(warehouse: Warehouse) -> int:
    return int(warehouse.scalar("SELECT 1"))


def test_run_config_cannot_point_a_tenant_run_at_another_tenants_warehouse(tenants, monkeypatch):
    resources = definitions_for("alpha").resources  # this process now serves alpha only
    assert {"alpha"} == tenancy._SERVED
    beta_db = load_settings(tenant="beta").duckdb_path
    for override, message in (
        ({"path": str(beta_db), "tenant": "alpha"}, "outside the tenant's root"),
        ({"path": str(beta_db), "tenant": "beta"}, "serves no code location of tenant 'beta'"),
        ({"path": str(beta_db)}, "serves no code location of the default tenant"),  # tenant: default
        ({"path": str(tenants / "warehouse.duckdb")}, "serves no code location of the default tenant"),
    ):
        result = dg.materialize(
            [_probe],
            resources=resources,
            run_config={"resources": {"warehouse": {"config": override}}},
            raise_on_error=False,
        )
        assert not result.success
        failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
        error = failure.step_failure_data.error.to_string()
        assert "TenantIsolationError" in error and message in error
    assert not beta_db.exists() and not (tenants / "warehouse.duckdb").exists()
    assert dg.materialize([_probe], resources=resources).output_for_node("_probe") == 1


def test_object_store_prefixes_and_firebolt_databases_are_checked_too(tenants, monkeypatch):
    from revops_pipelines.kb.resource import KnowledgeBaseResource
    from revops_pipelines.model_store import ModelStore
    from revops_pipelines.warehouse.firebolt import FireboltWarehouse

    monkeypatch.setenv("REVOPS_MODEL_STORE_URI", "s3://bucket/models")
    monkeypatch.setenv("REVOPS_VECTOR_URI", "s3://bucket/kb")
    monkeypatch.setenv("REVOPS_WAREHOUSE", "firebolt")
    monkeypatch.setenv("FIREBOLT_URL", "http://127.0.0.1:9")  # never reached: refused before connecting
    with pytest.raises(TenantIsolationError, match="default tenant"):
        KnowledgeBaseResource(uri="s3://bucket/kb/tenants/alpha").open()
    tenancy.serve("alpha")
    for uri in ("s3://bucket/models/tenants/beta", "s3://bucket/models/tenants/alpha/../beta", "s3://bucket"):
        with pytest.raises(TenantIsolationError):
            ModelStore(uri=uri, tenant="alpha").versions("churn_lgbm")
    with pytest.raises(TenantIsolationError):
        KnowledgeBaseResource(uri="s3://bucket/kb/tenants/beta", tenant="alpha").open()
    with pytest.raises(TenantIsolationError, match="'revops_beta' is outside"):
        FireboltWarehouse(database="revops_beta", url="http://127.0.0.1:9", tenant="alpha").query("SELECT 1")
    assert definitions_for("alpha").resources["warehouse"].database == "revops_alpha"


def test_model_store_namespaces_do_not_cross(tenants):
    from revops_pipelines.model_store import ModelNotFound

    store_a = definitions_for("alpha").resources["model_store"]
    store_b = definitions_for("beta").resources["model_store"]
    version = store_a.save("churn_lgbm", {"model.txt": b"alpha's trees"}, {"metrics": {}})
    store_a.promote("churn_lgbm", version)
    assert store_a.load("churn_lgbm", version, "model.txt") == b"alpha's trees"
    assert store_b.versions("churn_lgbm") == [] and store_b.champion("churn_lgbm") is None
    with pytest.raises(ModelNotFound):
        store_b.load("churn_lgbm", version, "model.txt")
    # nor by walking out of the namespace with the model name
    for name in ("../../alpha/models/churn_lgbm", "../alpha", "/abs"):
        with pytest.raises(ValidationFailed, match="model store key"):
            store_b.load(name, version, "model.txt")


def test_vector_search_never_returns_another_tenants_overlay_document(tenants):
    from revops_pipelines.kb.documents import chunk_documents, load_documents

    kbs = {}
    for tenant in ("alpha", "beta"):
        resource = definitions_for(tenant).resources["knowledge_base"]
        root = resource.root()  # kb_assets/ with the tenant's overlay merged over it
        assert root.is_relative_to(tenants.resolve() / "tenants" / tenant)
        assert (root / "docs" / "product" / f"{tenant}-runbook.md").is_file()
        kb = resource.open()
        kb.index(chunk_documents(load_documents(root / "docs")))
        kbs[tenant] = kb
    for tenant, other in (("alpha", "beta"), ("beta", "alpha")):
        own = kbs[tenant].search(PHRASES[tenant], k=3, mode="hybrid")
        assert own[0].doc_id == f"{tenant}-private-runbook"
        for mode in ("vector", "hybrid", "fts"):
            hits = kbs[tenant].search(PHRASES[other], k=50, mode=mode)
            assert f"{other}-private-runbook" not in {h.doc_id for h in hits}
        assert f"{other}-private-runbook" not in kbs[tenant].doc_ids()
    # the shipped content folder is untouched by either overlay
    from revops_pipelines.kb.documents import default_kb_root

    assert not list(default_kb_root().rglob("*-runbook.md"))


def _plan(tenant_id, account_id: str) -> dict:
    return {
        "policy": "churn_prevention",
        "evaluated": 1,
        "eligible": 1,
        "tenant_id": tenant_id,
        "decisions": [
            {
                "decision_id": "decision-0001",
                "account_id": account_id,
                "account_name": "Alpha Customer",
                "arr": 1000.0,
                "snapshot_date": "2025-12-01",
                "churn_score": 0.7,
                "priority": "high",
                "priority_score": 1.0,
                "rank": 1,
                "confidence": 0.8,
                "situation_summary": "at risk",
                "key_insights": [],
                "actions": [
                    {
                        "type": "crm_task",
                        "parameters": {"subject": "Review", "account_id": account_id, "due_in_days": 2},
                        "priority": "high",
                        "reasoning": "risk",
                    }
                ],
                "human_review_required": False,
                "evidence": [],
                "criteria": {},
                "explanation": "at risk",
            }
        ],
    }


def test_an_action_for_one_tenant_cannot_run_under_another(tenants):
    from revops_pipelines.agents.execution import ExecutionAgent, action_key

    res = {t: definitions_for(t).resources for t in ("alpha", "beta")}
    agents = {t: ExecutionAgent(r["warehouse"], r["agents"]) for t, r in res.items()}
    account = "0018dALPHA00000001"

    def ledger(tenant):
        wh = res[tenant]["warehouse"]
        return wh.query("SELECT * FROM action_log") if "action_log" in wh.table_names() else None

    params = {"action_types": ["crm_task"]}
    ctx = {"flow_id": "churn_prevention", "step_id": "open_tasks"}
    # alpha's decision handed to beta's Execution Agent: refused before anything is recorded
    for foreign in ("alpha", None):
        with pytest.raises(ValidationFailed, match="tenant_id: decisions made for tenant"):
            agents["beta"].run("execute_actions", params, {**ctx, "upstream": {"a": _plan(foreign, account)}})
    assert ledger("beta") is None and ledger("alpha") is None
    # under alpha it runs (dry-run) and lands in alpha's ledger only, under an alpha-scoped key
    out = agents["alpha"].run("execute_actions", params, {**ctx, "upstream": {"a": _plan("alpha", account)}})
    assert [r.status for r in out.action_results] == ["dry_run"]
    key = out.action_results[0].action_id
    assert key == action_key("churn_prevention", "open_tasks", "decision-0001", "crm_task", "alpha")
    assert key != action_key("churn_prevention", "open_tasks", "decision-0001", "crm_task")
    assert ledger("alpha")["idempotency_key"].tolist() == [key]
    assert ledger("beta") is None


# ---- CLI and workspace ------------------------------------------------------------------------------
def test_cli_lists_and_validates_tenants(tenants, tmp_path):
    from revops_pipelines.cli import main

    runner = CliRunner()
    listed = runner.invoke(main, ["tenants", "list"])
    assert listed.exit_code == 0, listed.output
    assert "alpha" in listed.output and str(tenants.resolve() / "tenants" / "beta") in listed.output
    ok = runner.invoke(main, ["tenants", "validate"])
    assert ok.exit_code == 0 and "ok   alpha" in ok.output and "ok   beta" in ok.output
    # a broken flow and a broken overlay document are reported against their tenant
    (tmp_path / "tenants" / "beta" / "flows" / "own.yaml").write_text("flow_id: beta_watch\nversion: x\n")
    doc = tmp_path / "tenants" / "beta" / "kb" / "docs" / "product" / "beta-runbook.md"
    doc.write_text(doc.read_text().replace("taxonomy:\n  - product_feature.api\n", "taxonomy: []\n"))
    bad = runner.invoke(main, ["tenants", "validate"])
    assert bad.exit_code == 1
    assert "ok   alpha" in bad.output and "FAIL beta" in bad.output
    assert "own.yaml" in bad.output and "beta-runbook.md" in bad.output
    unknown = runner.invoke(main, ["tenants", "validate", "../alpha"])
    assert unknown.exit_code == 2 and "invalid tenant id" in unknown.output


def test_cli_commands_follow_revops_tenant(tenants, monkeypatch):
    from revops_pipelines.cli import main
    from revops_pipelines.flows.state import default_path

    monkeypatch.setenv("REVOPS_TENANT", "alpha")
    flows = CliRunner().invoke(main, ["flows", "list"])
    assert flows.exit_code == 0, flows.output
    assert "alpha_watch" in flows.output and "beta_watch" not in flows.output
    assert default_path() == tenants.resolve() / "tenants" / "alpha" / "state" / "flow_state.sqlite"


@pytest.mark.slow
def test_generated_workspace_loads_one_code_location_per_tenant(tenants, tmp_path):
    from revops_pipelines.cli import main

    out = tmp_path / "workspace.yaml"
    result = CliRunner().invoke(main, ["tenants", "workspace", "--out", str(out)])
    assert result.exit_code == 0, result.output
    locations = [e["python_module"] for e in yaml.safe_load(out.read_text())["load_from"]]
    assert [(loc["location_name"], loc["attribute"]) for loc in locations] == [
        ("alpha", "defs_alpha"),
        ("beta", "defs_beta"),
    ]
    dagster = Path(sys.executable).with_name("dagster")
    proc = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ},
        cwd=tmp_path,
    )
    logs = proc.stdout + proc.stderr
    assert proc.returncode == 0, logs[-3000:]
    assert "Validation successful for code location alpha" in logs
    assert "Validation successful for code location beta" in logs
