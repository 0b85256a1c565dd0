"""The models modules load light and their definitions resolve together (what definitions.py collects)."""

from __future__ import annotations

import subprocess
import sys

import dagster as dg

MODULES = ("models.churn", "models.classification", "models.segmentation", "models.cli")


def test_models_modules_import_no_heavy_library():
    code = (
        f"import sys\nfor m in {MODULES!r}: __import__(m)\n"
        "print(','.join(m for m in ('lightgbm','sklearn','pandas','numpy','duckdb') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_models_definitions_resolve(tmp_path):
    from models import churn, classification, segmentation
    from revops_pipelines.kb.resource import KnowledgeBaseResource
    from revops_pipelines.model_store import ModelStore
    from revops_pipelines.warehouse.duckdb import DuckDBWarehouse

    domains = (churn, classification, segmentation)
    defs = dg.Definitions(
        assets=[a for d in domains for a in getattr(d, "ASSETS", [])],
        asset_checks=[c for d in domains for c in getattr(d, "CHECKS", [])],
        jobs=[j for d in domains for j in getattr(d, "JOBS", [])],
        schedules=[s for d in domains for s in getattr(d, "SCHEDULES", [])],
        sensors=[s for d in domains for s in getattr(d, "SENSORS", [])],
        resources={
            "warehouse": DuckDBWarehouse(path=str(tmp_path / "w.duckdb")),
            "model_store": ModelStore(uri=str(tmp_path / "m")),
            "knowledge_base": KnowledgeBaseResource(uri=str(tmp_path / "kb")),
        },
    )
    assert defs.resolve_job_def("retrain_churn_snapshots")
    graph = defs.resolve_asset_graph()
    check = graph.get_check_spec(
        dg.AssetCheckKey(dg.AssetKey("churn_model"), "churn_model_not_worse_than_champion")
    )
    assert check.blocking
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if node.is_materializable:
            assert node.group_name == "models" and node.description and node.kinds, key
    assert all(s.default_status == dg.DefaultSensorStatus.STOPPED for s in defs.sensors)
