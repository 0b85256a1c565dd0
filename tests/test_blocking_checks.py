"""A blocking check on a raw table stops everything downstream when the data is bad."""

import json

import dagster as dg

from assets.salesforce import CHECKS, raw_sf_accounts
from revops_pipelines.sources import SampleWorldSource
from revops_pipelines.warehouse.duckdb import DuckDBWarehouse


@dg.asset(deps=[raw_sf_accounts])
def downstream_of_accounts() -> None:
    """Stands in for the feature tables that must never see bad accounts."""


def _world(tmp_path, corrupt: bool) -> SampleWorldSource:
    src = SampleWorldSource(path=str(tmp_path / "world"), seed=5, accounts=60)
    src.generate()
    if corrupt:
        f = src.root / "salesforce" / "Account.jsonl"
        rows = [json.loads(line) for line in f.read_text().splitlines()]
        rows[0]["Segment__c"] = "Galactic"
        f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return src


def _run(tmp_path, corrupt: bool) -> dg.ExecuteInProcessResult:
    checks = [c for c in CHECKS if any(k.asset_key == raw_sf_accounts.key for k in c.check_keys)]
    return dg.materialize(
        [raw_sf_accounts, downstream_of_accounts, *checks],
        resources={
            "warehouse": DuckDBWarehouse(path=str(tmp_path / "w.duckdb")),
            "sample_world": _world(tmp_path, corrupt),
        },
        raise_on_error=False,
    )


def test_clean_accounts_flow_downstream(tmp_path):
    result = _run(tmp_path, corrupt=False)
    assert result.success
    assert all(e.passed for e in result.get_asset_check_evaluations())
    mats = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "downstream_of_accounts" in mats


def test_bad_segment_blocks_downstream(tmp_path):
    result = _run(tmp_path, corrupt=True)
    failed = [e for e in result.get_asset_check_evaluations() if not e.passed]
    assert [e.check_name for e in failed] == ["raw_sf_accounts_accepted_segments"]
    assert failed[0].metadata["offending_rows"].value == 1
    mats = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "raw_sf_accounts" in mats
    assert "downstream_of_accounts" not in mats
