"""A blocking check on a raw table stops everything downstream when the source data is bad — with the
Salesforce connector reading the world through the HTTPS stand-in. (Replaces tests/test_blocking_checks.py,
which materialised the pre-connector ``raw_sf_accounts`` asset.)"""

import json
import shutil

import dagster as dg
import pytest

from assets.salesforce import CHECKS, salesforce_sync
from revops_pipelines.connectors.salesforce import SalesforceResource
from revops_pipelines.warehouse.duckdb import DuckDBWarehouse

ACCOUNTS = dg.AssetKey("raw_sf_accounts")


@dg.asset(deps=[ACCOUNTS])
def downstream_of_accounts() -> None:
    """Stands in for the feature tables that must never see bad accounts."""


def _run(small_world, tmp_path, corrupt: bool) -> dg.ExecuteInProcessResult:
    world = tmp_path / "world"
    shutil.copytree(small_world, world)
    if corrupt:
        f = world / "salesforce" / "Account.jsonl"
        rows = [json.loads(line) for line in f.read_text().splitlines()]
        rows[0]["Segment__c"] = "Galactic"
        f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    checks = [c for c in CHECKS if any(k.asset_key == ACCOUNTS for k in c.check_keys)]
    return dg.materialize(
        [salesforce_sync, downstream_of_accounts, *checks],
        resources={
            "warehouse": DuckDBWarehouse(path=str(tmp_path / "w.duckdb")),
            "salesforce": SalesforceResource(
                sample_path=str(world), state_dir=str(tmp_path / "state"), requests_per_second=1000
            ),
        },
        raise_on_error=False,
    )


@pytest.mark.parametrize("corrupt", [False, True])
def test_blocking_account_checks(small_world, tmp_path, corrupt):
    result = _run(small_world, tmp_path, corrupt)
    failed = [e for e in result.get_asset_check_evaluations() if not e.passed]
    mats = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "raw_sf_accounts" in mats
    if not corrupt:
        assert result.success and failed == []
        assert "downstream_of_accounts" in mats
    else:
        assert [e.check_name for e in failed] == ["raw_sf_accounts_accepted_segments"]
        assert failed[0].metadata["offending_rows"].value == 1
        assert "downstream_of_accounts" not in mats
