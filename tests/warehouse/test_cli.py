"""``revops warehouse migrate|schema|history|rebuild`` on the embedded warehouse."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from revops_pipelines.warehouse import registry
from revops_pipelines.warehouse.cli import warehouse
from revops_pipelines.warehouse.duckdb import DuckDBWarehouse
from revops_pipelines.warehouse.schema import table

V1 = table(
    "cli_accounts", [("account_id", "TEXT"), ("arr", "DOUBLE")], keys=("account_id",), kind="dimension"
)
V2 = table(
    "cli_accounts",
    [("account_id", "TEXT"), ("arr", "DOUBLE"), ("region", "TEXT")],
    keys=("account_id",),
    kind="dimension",
)


@pytest.fixture
def env(runtime_env, monkeypatch):
    """The CLI's warehouse (settings: DuckDB under REVOPS_HOME) declaring only module-level V1/V2."""
    import types

    mod = types.ModuleType("cli_test_schemas")
    mod.TABLES = [V1]
    monkeypatch.setitem(__import__("sys").modules, "cli_test_schemas", mod)
    monkeypatch.setattr(registry, "SCHEMA_MODULES", ("cli_test_schemas",))
    return mod, DuckDBWarehouse(path=str(runtime_env / "warehouse.duckdb"))


def run(*args):
    return CliRunner().invoke(warehouse, list(args), catch_exceptions=False)


def test_migrate_schema_history_rebuild(env):
    mod, wh = env
    r = run("migrate")
    assert r.exit_code == 0 and "cli_accounts" in r.output and "create" in r.output
    wh.merge(V1, pd.DataFrame({"account_id": ["a", "b"], "arr": [1.0, 2.0]}))
    mod.TABLES = [V2]
    assert "add columns region" in run("migrate", "--dry-run").output
    assert [c for c, _ in wh.columns("cli_accounts")] == ["account_id", "arr"]  # dry run changed nothing
    r = run("migrate")
    assert r.exit_code == 0 and "v1 -> v2" in r.output and "add columns region" in r.output
    assert wh.row_count("cli_accounts") == 2

    out = run("schema").output
    assert "cli_accounts  [dimension, v2, 2 rows]" in out and "region" in out and "DRIFT" not in out
    cat = json.loads(run("schema", "cli_accounts", "--json").output)
    assert cat[0]["schema_version"] == 2 and cat[0]["keys"] == ["account_id"]
    assert "add columns region" in run("history").output

    mod.TABLES = [
        table(
            "cli_accounts",
            [("account_id", "TEXT"), ("arr", "TEXT"), ("region", "TEXT")],
            keys=("account_id",),
            kind="dimension",
        )
    ]
    r = CliRunner().invoke(warehouse, ["migrate"])
    assert r.exit_code == 1 and "revops warehouse rebuild cli_accounts" in r.output
    assert run("rebuild", "cli_accounts").exit_code == 2  # needs --yes
    assert run("rebuild", "cli_accounts", "--yes").exit_code == 0
    assert wh.row_count("cli_accounts") == 0 and run("migrate").exit_code == 0


def test_accept_source_schema_lists_drift_and_records_a_reviewed_schema(env, runtime_env):
    relpath = "salesforce/Account.jsonl"
    f = runtime_env / "sample_world" / relpath
    f.parent.mkdir(parents=True)
    f.write_text(json.dumps({"Id": "001A1", "Seats__c": 3}) + "\n")
    listed = run("accept-source-schema")
    assert listed.exit_code == 0 and f"{relpath}" in listed.output and "no recorded schema" in listed.output
    assert run("accept-source-schema", relpath).output.strip() == f"{relpath}: recorded 2 fields"
    f.write_text(json.dumps({"Id": "001A1", "Seats__c": "3", "Tier__c": "Gold"}) + "\n")
    drift = [line for line in run("accept-source-schema").output.splitlines() if line.startswith(relpath)]
    assert "new field(s) ['Tier__c']" in drift[0] and "Seats__c: integer -> string" in drift[0]
    run("accept-source-schema", relpath)
    drift = [line for line in run("accept-source-schema").output.splitlines() if line.startswith(relpath)]
    assert drift[0].endswith("no drift")
    bad = CliRunner().invoke(warehouse, ["accept-source-schema", "nope.jsonl"])
    assert bad.exit_code == 2 and "unknown source 'nope.jsonl'" in bad.output
