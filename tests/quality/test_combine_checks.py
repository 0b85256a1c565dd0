"""combine_checks: the checks of an asset become one subsettable op, each check keeping its name,
asset, blocking flag, description, dependencies, severity and metadata."""

import dagster as dg
import pandas as pd
import pytest

from revops_pipelines.checks import (
    combine_checks,
    freshness_check,
    merge_checks,
    not_null_check,
    references_check,
    sql_check,
    unique_check,
)
from revops_pipelines.warehouse import Warehouse
from revops_pipelines.warehouse.duckdb import DuckDBWarehouse
from revops_pipelines.warehouse.schema import table

ACCOUNTS = table("c_accounts", [("account_id", "TEXT"), ("segment", "TEXT")], keys=("account_id",))
CASES = table("c_cases", [("case_id", "TEXT"), ("account_id", "TEXT")], keys=("case_id",))


def declared():
    return [
        unique_check("c_accounts", ("account_id",)),
        not_null_check("c_accounts", ("segment",), blocking=False),
        sql_check(
            "c_accounts",
            "c_accounts_no_smb",
            "SELECT COUNT(*) FROM c_accounts WHERE segment = 'SMB'",
            description="no SMB account (a warning)",
            severity=dg.AssetCheckSeverity.WARN,
            sample_sql="SELECT account_id FROM c_accounts WHERE segment = 'SMB'",
        ),
        references_check("c_cases", "account_id", "c_accounts", "account_id"),
    ]


def test_one_op_per_asset_and_every_check_keeps_its_spec():
    checks = declared()
    defs = combine_checks(checks, name="t")
    # c_accounts: one op for its blocking check, one for the two others; c_cases: one op
    assert sorted(len(d.check_specs) for d in defs) == [1, 1, 2]
    assert all(len({s.blocking for s in d.check_specs}) == 1 for d in defs)
    specs = {s.key: s for d in defs for s in d.check_specs}
    assert len(specs) == len(checks)
    for c in checks:
        s = specs[dg.AssetCheckKey(dg.AssetKey(c.asset), c.name)]
        assert (s.blocking, s.description) == (c.blocking, c.description)
        assert {d.asset_key for d in s.additional_deps} == {dg.AssetKey(d) for d in c.additional_deps}
    assert specs[dg.AssetCheckKey(dg.AssetKey("c_accounts"), "c_accounts_not_null")].blocking is False
    assert specs[
        dg.AssetCheckKey(dg.AssetKey("c_cases"), "c_cases_account_id_references_c_accounts")
    ].blocking


def _assets(rows):
    @dg.asset(name="c_accounts")
    def accounts(warehouse: Warehouse) -> None:
        warehouse.replace_table(ACCOUNTS, pd.DataFrame(rows, columns=ACCOUNTS.column_names))

    @dg.asset(name="c_cases", deps=[accounts])
    def cases(warehouse: Warehouse) -> None:
        warehouse.replace_table(CASES, pd.DataFrame([("k1", "a1")], columns=CASES.column_names))

    return [accounts, cases]


def test_every_check_reported_with_its_own_result_severity_and_metadata(tmp_path):
    wh = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    result = dg.materialize(
        [*_assets([("a1", "SMB"), ("a2", "Enterprise")]), *combine_checks(declared(), name="t")],
        resources={"warehouse": wh},
    )
    evals = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert {n: e.passed for n, e in evals.items()} == {
        "c_accounts_unique_account_id": True,
        "c_accounts_not_null": True,
        "c_accounts_no_smb": False,
        "c_cases_account_id_references_c_accounts": True,
    }
    smb = evals["c_accounts_no_smb"]
    assert smb.severity == dg.AssetCheckSeverity.WARN
    assert smb.metadata["offending_rows"].value == 1 and "a1" in smb.metadata["sample"].value
    assert smb.asset_key == dg.AssetKey("c_accounts")


def test_a_single_check_can_run_alone(tmp_path):
    wh = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    key = dg.AssetCheckKey(dg.AssetKey("c_accounts"), "c_accounts_not_null")
    dg.materialize(_assets([("a1", None)]), resources={"warehouse": wh})
    result = dg.materialize(
        [*_assets([]), *combine_checks(declared(), name="t")],
        resources={"warehouse": wh},
        selection=dg.AssetSelection.checks(key),
    )
    assert [(e.check_name, e.passed) for e in result.get_asset_check_evaluations()] == [
        ("c_accounts_not_null", False)
    ]
    assert not result.get_asset_materialization_events()


def test_a_check_called_directly_names_its_missing_resource(tmp_path):
    check = unique_check("c_accounts", ("account_id",))
    with pytest.raises(TypeError, match="warehouse"):
        check()


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="c_accounts_not_null twice on c_accounts"):
        combine_checks([not_null_check("c_accounts", ("a",)), not_null_check("c_accounts", ("b",))], name="t")
    with pytest.raises(TypeError, match="expected a Check"):
        combine_checks(["c_accounts_not_null"], name="t")


def test_ready_made_definitions_pass_through():
    @dg.asset_check(asset="c_accounts")
    def custom() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=True)

    assert list(combine_checks([custom], name="t")) == [custom]


def test_non_blocking_checks_never_hold_up_the_downstream_assets(tmp_path):
    """A non-blocking check may depend on a table downstream of its asset (freshness against a
    later table); combined with the asset's blocking checks that would be a cycle."""
    checks = [
        unique_check("c_accounts", ("account_id",)),
        freshness_check("c_accounts", "updated_at", 7, reference=("c_cases", "created_at")),
    ]
    defs = dg.Definitions(
        assets=_assets([]),
        asset_checks=combine_checks(checks, name="t"),
        resources={"warehouse": DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))},
    )
    defs.resolve_implicit_global_asset_job_def()  # builds the graph: raises on a cycle


def test_the_code_location_merges_every_modules_checks_per_asset_without_building_them_twice():
    one = combine_checks([unique_check("c_accounts", ("account_id",))], name="one")
    two = combine_checks(
        [not_null_check("c_accounts", ("segment",)), not_null_check("c_cases", ("case_id",), blocking=False)],
        name="two",
    )
    merged = merge_checks([one, two])
    ops = {d.node_def.name: {k.name for k in d.check_keys} for d in merged}
    assert ops == {
        "c_accounts_blocking_checks": {"c_accounts_unique_account_id", "c_accounts_not_null"},
        "c_cases_checks": {"c_cases_not_null"},
    }
    assert one._built is None and two._built is None  # the modules' own ops were never built
    assert len(two) == 2  # used on its own, a module's set builds its ops


def test_loading_the_definitions_builds_each_check_op_once(monkeypatch):
    import importlib
    import sys

    from revops_pipelines import checks

    built: list[str] = []
    original = checks._multi_check
    monkeypatch.setattr(checks, "_multi_check", lambda a, g, n: built.append(n) or original(a, g, n))
    for m in [
        m for m in sys.modules if m.startswith(("assets.", "kb_assets", "revops_pipelines.definitions"))
    ]:
        monkeypatch.delitem(sys.modules, m)
    defs = importlib.import_module("revops_pipelines.definitions").defs
    assert len(built) == len(set(built)) == sum(1 for d in defs.asset_checks if d.node_def.name in built)


def test_non_blocking_checks_of_one_op_are_merged_when_they_wait_for_the_same_assets():
    """With ``nodes`` (asset -> the op materialising it), the non-blocking checks of assets made by
    one op share an op when they wait for the same other assets; blocking checks stay per asset."""
    checks = [
        unique_check("c_accounts", ("account_id",)),
        not_null_check("c_accounts", ("segment",), blocking=False),
        not_null_check("c_cases", ("case_id",), blocking=False),
        references_check("c_cases", "account_id", "c_accounts", "account_id", blocking=False),
        freshness_check("c_notes", "created_at", 7, reference=("c_usage", "day")),
        not_null_check("c_other", ("x",), blocking=False),
    ]
    nodes = {"c_accounts": "sync", "c_cases": "sync", "c_notes": "sync", "c_usage": "usage", "c_other": "o"}
    ops = {d.node_def.name: {k.name for k in d.check_keys} for d in merge_checks([checks], nodes=nodes)}
    assert ops == {
        "c_accounts_blocking_checks": {"c_accounts_unique_account_id"},
        # c_cases' reference to c_accounts is to a table of the same op: no extra wait
        "sync_checks": {
            "c_accounts_not_null",
            "c_cases_not_null",
            "c_cases_account_id_references_c_accounts",
        },
        "c_notes_checks": {"c_notes_freshness"},  # waits for c_usage too: alone as before
        "c_other_checks": {"c_other_not_null"},
    }
    without_nodes = {d.node_def.name: {k.name for k in d.check_keys} for d in merge_checks([checks])}
    assert without_nodes == {  # one op per asset and kind
        "c_accounts_blocking_checks": {"c_accounts_unique_account_id"},
        "c_accounts_checks": {"c_accounts_not_null"},
        "c_cases_checks": {"c_cases_not_null", "c_cases_account_id_references_c_accounts"},
        "c_notes_checks": {"c_notes_freshness"},
        "c_other_checks": {"c_other_not_null"},
    }


def test_a_check_that_raises_does_not_stop_the_other_checks_of_its_op(tmp_path):
    wh = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    broken = sql_check(
        "c_accounts", "c_accounts_broken", "SELECT COUNT(*) FROM no_such_table", description="x"
    )
    checks = [broken, not_null_check("c_accounts", ("segment",), blocking=False)]
    [op] = combine_checks(checks, name="t")
    result = dg.materialize([*_assets([("a1", None)]), op], resources={"warehouse": wh}, raise_on_error=False)
    assert not result.success  # the step still fails, as it did
    assert [(e.check_name, e.passed) for e in result.get_asset_check_evaluations()] == [
        ("c_accounts_not_null", False)
    ]
