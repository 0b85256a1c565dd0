import subprocess
import sys

import dagster as dg
import pytest

from revops_pipelines.definitions import build_definitions
from revops_pipelines.errors import ConfigurationError


@pytest.fixture
def defs(runtime_env):
    return build_definitions()


def test_every_asset_has_group_description_and_kind(defs):
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {
        "sample_world",
        "raw_sf_accounts",
        "raw_gong_calls",
        "raw_product_usage",
        "account_features",
        "churn_model",
        "churn_scores",
        "kb_index",
        "sample_oracle",
    } <= keys
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.group_name and node.group_name != "default", key
        assert node.description, key
        assert node.kinds, key


def test_blocking_checks_guard_raw_tables(defs):
    graph = defs.resolve_asset_graph()
    checks = {k.name: graph.get_check_spec(k) for k in graph.asset_check_keys}
    blocking = {n for n, spec in checks.items() if spec.blocking}
    assert "raw_sf_accounts_unique_account_id" in blocking
    assert "raw_product_usage_plausible_counts" in blocking
    assert "account_features_no_future_churned" in blocking


def test_jobs_and_schedules(defs):
    names = {j.name for j in defs.resolve_all_job_defs()}
    assert {
        "ingest_sample_world",
        "build_features",
        "train_and_score",
        "refresh_knowledge_base",
        "flow_churn_prevention",
    } <= names
    scheds = (
        list(defs.resolve_schedule_defs()) if hasattr(defs, "resolve_schedule_defs") else list(defs.schedules)
    )
    assert {s.name for s in scheds} >= {"flow_churn_prevention_schedule", "weekly_retrain"}
    assert all(s.default_status == dg.DefaultScheduleStatus.STOPPED for s in scheds)


def test_feature_partitions_backfill_in_one_run(defs):
    node = defs.resolve_asset_graph().get(dg.AssetKey("account_features"))
    assert node.partitions_def is not None
    assert node.backfill_policy == dg.BackfillPolicy.single_run()


def test_loading_definitions_imports_no_heavy_library(runtime_env):
    code = (
        "import sys, revops_pipelines.definitions\n"
        "heavy = [m for m in ('lightgbm','lancedb','sklearn','pandas','numpy','duckdb','firebolt') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_run_config_classes_validate_on_first_use_not_at_load(runtime_env):
    """Every asset's run config class (a ``RunConfig``) is read for Dagster's config schema at load,
    its pydantic validator built only when a run is configured; it still rejects bad values."""
    code = (
        "import dagster as dg, revops_pipelines.definitions as d\n"
        "from revops_pipelines.run_config import RunConfig\n"
        "classes = {p.annotation for a in d.defs.assets if hasattr(a, 'op')\n"
        "           for p in __import__('inspect').signature(a.op.compute_fn.decorated_fn).parameters.values()\n"
        "           if isinstance(p.annotation, type) and issubclass(p.annotation, dg.Config)\n"
        "           and not issubclass(p.annotation, dg.ConfigurableResource)}\n"
        "print(len(classes), all(issubclass(c, RunConfig) for c in classes),\n"
        "      any(c.__pydantic_complete__ for c in classes))\n"
        "from assets.features import FeatureConfig\n"
        "try:\n    FeatureConfig(horizon_days=3)\nexcept Exception as err:\n    print(type(err).__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    count, all_run_config, any_built, rejected = out.stdout.split()
    assert int(count) >= 10 and all_run_config == "True" and any_built == "False", out.stdout
    assert rejected == "ValidationError"


def test_loading_leaves_the_garbage_collector_as_it_found_it(runtime_env):
    """definitions.py pauses automatic collection while it loads: it resumes it (also when the load
    fails), and leaves it off in a process that had it off."""
    import os

    code = (
        "import gc, sys\n"
        "if sys.argv[1] == 'off':\n    gc.disable()\n"
        "try:\n    import revops_pipelines.definitions\n"
        "except Exception as err:\n    print(type(err).__name__, end=' ')\n"
        "print(gc.isenabled())"
    )
    broken = {k: v for k, v in os.environ.items() if not k.startswith("FIREBOLT_")}
    broken["REVOPS_WAREHOUSE"] = "firebolt"  # fails at load: no credentials
    cases = [
        ("on", os.environ, "True"),
        ("off", os.environ, "False"),
        ("on", broken, "ConfigurationError True"),
    ]
    for arg, env, expected in cases:
        out = subprocess.run(
            [sys.executable, "-c", code, arg], env=env, capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == expected, (arg, out.stdout, out.stderr[-2000:])


def test_firebolt_without_credentials_fails_at_load_naming_the_setting(runtime_env, monkeypatch):
    monkeypatch.setenv("REVOPS_WAREHOUSE", "firebolt")
    monkeypatch.delenv("FIREBOLT_URL", raising=False)
    monkeypatch.delenv("FIREBOLT_CLIENT_ID", raising=False)
    with pytest.raises(ConfigurationError, match="FIREBOLT_CLIENT_ID"):
        build_definitions()


def test_firebolt_core_mode_loads_without_connecting(runtime_env, monkeypatch):
    monkeypatch.setenv("REVOPS_WAREHOUSE", "firebolt")
    monkeypatch.setenv("FIREBOLT_URL", "http://127.0.0.1:9")
    defs = build_definitions()
    assert defs.resources["warehouse"].dialect == "firebolt"
