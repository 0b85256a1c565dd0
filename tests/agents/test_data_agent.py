"""Data Agent on both backends: discovery, structured requests, read-only guard, EXPLAIN hints,
index suggestions, caching."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from assets.features import FEATURES
from assets.salesforce import ACCOUNTS
from revops_pipelines.agents.data import DataAgent, RefusedQuery, guard_read_only
from revops_pipelines.errors import ValidationFailed
from tests.warehouse.conftest import blocked_hosts, fresh_migration_cache, standin, warehouse  # noqa: F401

SNAPS = [dt.date(2025, 10, 1), dt.date(2025, 11, 1)]


def features_frame(util_shift: float = 0.0) -> pd.DataFrame:
    rows = []
    for snap in SNAPS:
        for i, (seg, plan, arr) in enumerate(
            [("SMB", "Starter", 5000.0), ("SMB", "Growth", 9000.0), ("Enterprise", "Scale", 250000.0)]
        ):
            rows.append(
                {c: None for c in FEATURES.column_names}
                | {
                    "account_id": f"001A{i}",
                    "snapshot_date": snap,
                    "segment": seg,
                    "plan": plan,
                    "billing_frequency": "Annual",
                    "seats": 10,
                    "arr": arr,
                    "util_30d": 0.2 * (i + 1) + util_shift,
                    "tickets_90d": i,
                    "churned_in_horizon": i == 0 if snap == SNAPS[0] else None,
                }
            )
    return pd.DataFrame(rows)


@pytest.fixture
def agent(warehouse):  # noqa: F811 - the fixture imported above
    warehouse.merge(FEATURES, features_frame())
    return DataAgent(warehouse)


def test_discover_schema_catalog(agent):
    cat = agent.run("discover_schema", {})
    f = cat.table("account_features")
    assert f.row_count == 6 and f.keys == ["account_id", "snapshot_date"]
    assert f.primary_index == ["snapshot_date", "account_id"]
    assert [c.name for c in f.columns] == FEATURES.column_names
    assert f.freshness_column == "snapshot_date" and f.latest_value.startswith("2025-11-01")
    assert f.schema_version == 1 and f.last_write is not None and f.drift == []
    assert cat.table("raw_sf_accounts").drift  # declared, not created yet: reported
    only = agent.run("discover_schema", {"tables": ["account_features"]})
    assert [t.name for t in only.tables] == ["account_features"]
    with pytest.raises(ValidationFailed, match="unknown table"):
        agent.run("discover_schema", {"tables": ["nope"]})


def test_account_metrics_parameterised(agent):
    out = agent.run("account_metrics", {"account_id": "001A2"})
    assert out.found and out.snapshot_date == SNAPS[1]
    assert out.metrics["util_30d"] == pytest.approx(0.6) and out.metrics["segment"] == "Enterprise"
    assert "?" in out.query.sql and "001A2" not in out.query.sql
    old = agent.run(
        "account_metrics", {"account_id": "001A2", "snapshot_date": "2025-10-01", "metrics": ["arr"]}
    )
    assert old.snapshot_date == SNAPS[0] and set(old.metrics) == {"segment", "plan", "arr"}
    for evil in ("001A2' OR '1'='1", "x'; DROP TABLE account_features; --"):
        assert not agent.run("account_metrics", {"account_id": evil}).found
    assert agent.warehouse.row_count("account_features") == 6


def test_cohort_query_and_cache(agent):
    params = {
        "group_by": ["segment"],
        "metrics": ["util_30d", "arr", "churn_rate"],
        "snapshot_date": "2025-10-01",
    }
    out = agent.run("cohort_query", params)
    rows = {r["segment"]: r for r in out.rows}
    assert rows["SMB"]["accounts"] == 2 and rows["SMB"]["avg_util_30d"] == pytest.approx(0.3)
    assert rows["SMB"]["avg_churn_rate"] == pytest.approx(0.5) and not out.cached
    assert agent.run("cohort_query", params).cached
    agent.warehouse.merge(FEATURES, features_frame(util_shift=0.1))  # a write invalidates
    again = agent.run("cohort_query", params)
    assert not again.cached
    assert {r["segment"]: r for r in again.rows}["SMB"]["avg_util_30d"] == pytest.approx(0.4)
    latest = agent.run(
        "cohort_query", {"group_by": ["segment", "plan"], "filters": {"segment": ["SMB"], "min_arr": 6000}}
    )
    assert [(r["segment"], r["plan"]) for r in latest.rows] == [("SMB", "Growth")]
    accounts = pd.DataFrame(
        [
            {c: None for c in ACCOUNTS.column_names}
            | {
                "account_id": f"001A{i}",
                "customer_since": since,
                "system_modstamp": pd.Timestamp("2025-11-01"),
                "is_deleted": False,
            }
            for i, since in enumerate([dt.date(2023, 2, 10), dt.date(2023, 3, 5), dt.date(2024, 7, 1)])
        ]
    )
    agent.warehouse.merge(ACCOUNTS, accounts)
    cohorts = agent.run("cohort_query", {"group_by": ["signup_quarter"], "metrics": ["arr"]})
    assert [(str(r["signup_quarter"])[:10], r["accounts"]) for r in cohorts.rows] == [
        ("2023-01-01", 2),
        ("2024-07-01", 1),
    ]
    assert cohorts.tables == ["account_features", "raw_sf_accounts"]
    with pytest.raises(ValidationFailed, match="group_by"):
        agent.run("cohort_query", {"group_by": ["segment; DROP TABLE account_features"]})


INJECTIONS = [
    "DELETE FROM account_features",
    "delete from account_features where 1=1",
    "INSERT INTO account_features (account_id) VALUES ('x')",
    "UPDATE account_features SET arr = 0",
    "DROP TABLE account_features",
    "SELECT 1; DROP TABLE account_features",
    "SELECT * FROM account_features; DELETE FROM account_features",
    "SELECT 1;\nSELECT 2",
    "select 1 /* */ ; drop table account_features --",
    "WITH d AS (DELETE FROM account_features RETURNING *) SELECT * FROM d",
    "SELECT * INTO stolen FROM account_features",
    "CREATE TABLE stolen AS SELECT * FROM account_features",
    "ALTER TABLE account_features DROP COLUMN arr",
    "TRUNCATE account_features",
    "COPY account_features TO '/tmp/x.csv'",
    "ATTACH '/tmp/other.db' AS o",
    "PRAGMA table_info('account_features')",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM '/etc/passwd'",
    "SELECT * FROM information_schema.tables",
    "SELECT * FROM secret_table",
    "SET threads = 1",
    "EXPLAIN ANALYZE DELETE FROM account_features",
    "MERGE INTO account_features t USING account_features s ON t.account_id = s.account_id WHEN MATCHED THEN DELETE",
    "SELECT 'x'; DROP TABLE account_features; --'",
]


def test_run_query_refuses_writes_and_second_statements(agent):
    for sql in INJECTIONS:
        with pytest.raises(RefusedQuery):
            agent.run("run_query", {"sql": sql})
        with pytest.raises(RefusedQuery):
            agent.run("explain", {"sql": sql})
    assert agent.warehouse.row_count("account_features") == 6
    assert "stolen" not in agent.warehouse.table_names()


def test_run_query_admits_reads_and_literals_that_look_like_sql(agent):
    out = agent.run(
        "run_query",
        {
            "sql": "SELECT '; DROP TABLE account_features; --' AS s, COUNT(*) AS n "
            "FROM account_features WHERE segment = ? -- trailing ; comment",
            "params": ["SMB"],
        },
    )
    assert out.rows == [{"s": "; DROP TABLE account_features; --", "n": 4}]
    limited = agent.run(
        "run_query", {"sql": "SELECT account_id FROM account_features ORDER BY account_id", "limit": 2}
    )
    assert limited.row_count == 2 and limited.truncated
    assert agent.warehouse.row_count("account_features") == 6


def test_guard_unit():
    known = {"t"}
    guard_read_only("WITH x AS (SELECT a FROM t) SELECT * FROM x UNION ALL SELECT a FROM t", "duckdb", known)
    with pytest.raises(RefusedQuery, match="exactly one statement"):
        guard_read_only("SELECT 1; SELECT 2", "firebolt", known)


def test_explain_hints_and_index_suggestions(agent):
    out = agent.run("explain", {"sql": "SELECT * FROM account_features"})
    assert out.plan and {h.kind for h in out.hints} >= {"full_scan", "select_star"}
    out = agent.run(
        "explain", {"sql": "SELECT arr FROM account_features f WHERE f.segment = ?", "params": ["SMB"]}
    )
    assert out.filter_columns == {"account_features": ["segment"]}
    assert [h.kind for h in out.hints] == ["index_miss"]
    for seg in ("SMB", "Enterprise", "SMB"):
        agent.run(
            "run_query",
            {
                "sql": "SELECT AVG(arr) FROM account_features WHERE segment = ? AND snapshot_date >= ?",
                "params": [seg, "2025-01-01"],
            },
        )
    sugg = agent.run("suggest_indexes", {"min_queries": 2})
    s = {x.table: x for x in sugg.suggestions}["account_features"]
    assert s.observed_filters == {"segment": 3, "snapshot_date": 3}
    assert s.suggested_primary_index == ["segment", "snapshot_date"]
    assert s.partition_by == "DATE_TRUNC('month', snapshot_date)"
    assert s.current_primary_index == ["snapshot_date", "account_id"]
