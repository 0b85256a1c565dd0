"""The Data Agent's schema catalog persisted in the warehouse (``schema_catalog``), readable by
another process; the agent's query cache shared through the runtime folder."""

from __future__ import annotations

import pandas as pd

from revops_pipelines.agents.base import AgentRuntime
from revops_pipelines.agents.data import DataAgent
from revops_pipelines.warehouse.catalog import CATALOG_TABLE, discover, load_catalog, save_catalog
from revops_pipelines.warehouse.duckdb import DuckDBWarehouse
from revops_pipelines.warehouse.registry import declared_schemas
from revops_pipelines.warehouse.schema import table

T = table(
    "cat_accounts",
    [("account_id", "TEXT"), ("arr", "DOUBLE"), ("updated_at", "TIMESTAMP")],
    keys=("account_id",),
)


def load(wh, n: int) -> None:
    wh.merge(
        T,
        pd.DataFrame(
            {
                "account_id": [f"a{i}" for i in range(n)],
                "arr": [float(i) for i in range(n)],
                "updated_at": pd.Timestamp("2025-11-01"),
            }
        ),
    )


def test_catalog_round_trips_through_the_warehouse(warehouse):
    load(warehouse, 3)
    cat = discover(warehouse, [T])
    assert load_catalog(warehouse) is None  # nothing saved yet
    assert save_catalog(warehouse, cat) == len(cat.tables)
    back = load_catalog(warehouse.model_copy())  # another instance: what another process sees
    assert back is not None and back.dialect == warehouse.dialect
    assert [t.name for t in back.tables] == [t.name for t in cat.tables]
    got, want = back.table("cat_accounts"), cat.table("cat_accounts")
    assert got.model_dump() == want.model_dump()
    assert got.row_count == 3 and got.keys == ["account_id"] and got.freshness_column == "updated_at"
    load(warehouse, 5)
    save_catalog(warehouse, discover(warehouse, [T]))  # replaced, not appended
    assert load_catalog(warehouse).table("cat_accounts").row_count == 5
    assert (
        warehouse.scalar(f"SELECT COUNT(*) FROM {CATALOG_TABLE.name} WHERE table_name = ?", ["cat_accounts"])
        == 1
    )


def test_discover_schema_saves_the_whole_catalog_for_other_processes(warehouse):
    load(warehouse, 2)
    agent = DataAgent(warehouse)
    only = agent.run("discover_schema", {"tables": ["cat_accounts"]})
    assert [t.name for t in only.tables] == ["cat_accounts"]
    other = DataAgent(warehouse.model_copy())
    saved = other.saved_catalog()
    assert saved is not None and "cat_accounts" in {t.name for t in saved.tables}
    assert {"account_features", CATALOG_TABLE.name} <= {t.name for t in saved.tables}  # declared ones too
    assert CATALOG_TABLE.name in {s.name for s in declared_schemas()}  # migrated like every table


def test_agents_share_query_results_through_the_runtime_folder(tmp_path):
    home = tmp_path / "home"
    runtime = AgentRuntime(state_path=str(home / "state" / "agent_state.sqlite"))
    wh = DuckDBWarehouse(path=str(tmp_path / "elsewhere" / "w.duckdb"))
    load(wh, 3)
    first, second = DataAgent(wh, runtime), DataAgent(wh.model_copy(), runtime)
    assert first.shared_cache_dir() == str(home.resolve() / "cache" / "queries")
    sql = {"sql": "SELECT SUM(arr) AS s FROM cat_accounts"}
    assert first.run("run_query", sql).rows == [{"s": 3.0}]
    res = second.run("run_query", sql)
    assert res.cached and res.rows == [{"s": 3.0}] and second.cache.stats.file_hits == 1
    load(wh, 4)  # a write: neither agent may answer from before it
    assert first.run("run_query", sql).rows == [{"s": 6.0}]
    assert second.run("run_query", sql).rows == [{"s": 6.0}]
    # without a runtime folder: beside the DuckDB file; in memory for an in-memory database
    assert DataAgent(wh).shared_cache_dir() == str((tmp_path / "elsewhere").resolve() / "cache" / "queries")
    assert DataAgent(DuckDBWarehouse(path=":memory:")).cache.store is None
