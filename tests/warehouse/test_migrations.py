"""Schema versioning on both backends: forward migrations keep rows; incompatible changes are refused."""

from __future__ import annotations

import pandas as pd
import pytest

from revops_pipelines.warehouse.migrations import SchemaChangeRefused, history, migrate, rebuild
from revops_pipelines.warehouse.schema import table

V1 = table(
    "accounts_v",
    [("account_id", "TEXT"), ("name", "TEXT"), ("arr", "DOUBLE")],
    keys=("account_id",),
    kind="dimension",
)
V2 = table(  # additive: a nullable column
    "accounts_v",
    [("account_id", "TEXT"), ("name", "TEXT"), ("arr", "DOUBLE"), ("region", "TEXT"), ("seats", "BIGINT")],
    keys=("account_id",),
    kind="dimension",
)
NEW_TABLE = table("events_v", [("event_id", "TEXT"), ("account_id", "TEXT")], keys=("event_id",))


def frame(n: int, with_v2: bool = False) -> pd.DataFrame:
    df = pd.DataFrame(
        {"account_id": [f"a{i}" for i in range(n)], "name": [f"n{i}" for i in range(n)], "arr": 10.0}
    )
    if with_v2:
        df["region"] = "EU"
        df["seats"] = 5
    return df


def test_first_migrate_creates_and_records_version_1(warehouse):
    plans = migrate(warehouse, [V1, NEW_TABLE])
    assert [(p.table, p.action, p.version_after) for p in plans] == [
        ("accounts_v", "create", 1),
        ("events_v", "create", 1),
    ]
    assert [p.action for p in migrate(warehouse, [V1, NEW_TABLE])] == ["current", "current"]
    h = history(warehouse)
    assert h[["table_name", "version", "change"]].values.tolist() == [
        ["accounts_v", 1, "create table"],
        ["events_v", 1, "create table"],
    ]


def test_additive_change_applies_forward_without_losing_rows(warehouse):
    warehouse.merge(V1, frame(50))  # v1 via the normal load path
    plans = migrate(warehouse, [V2])
    assert plans[0].action == "add_columns" and plans[0].added == ["region", "seats"]
    assert plans[0].version_before == 1 and plans[0].version_after == 2
    assert [c for c, _ in warehouse.columns("accounts_v")] == V2.column_names
    assert warehouse.row_count("accounts_v") == 50
    assert warehouse.scalar("SELECT COUNT(*) FROM accounts_v WHERE region IS NULL AND arr = 10") == 50
    warehouse.merge(V2, frame(60, with_v2=True))  # new loads fill the new columns
    assert warehouse.scalar("SELECT COUNT(*) FROM accounts_v WHERE region = 'EU'") == 60
    assert history(warehouse, "accounts_v")["change"].tolist() == [
        "create table",
        "add columns region, seats",
    ]


def test_existing_database_without_versions_is_adopted(warehouse):
    warehouse.execute(V1.ddl(warehouse.dialect))  # created before versioning existed
    warehouse.execute("INSERT INTO accounts_v (account_id, name, arr) VALUES (?, ?, ?)", ["a1", "x", 1.0])
    plans = migrate(warehouse, [V1])
    assert (plans[0].action, plans[0].version_after) == ("adopt", 1)
    assert warehouse.row_count("accounts_v") == 1


def test_load_path_migrates_on_first_write(warehouse):
    warehouse.merge(V1, frame(5))
    warehouse.merge(V2, frame(7, with_v2=True))  # ensure_table adds the columns, then loads
    assert warehouse.row_count("accounts_v") == 7
    assert history(warehouse, "accounts_v")["version"].tolist() == [1, 2]


@pytest.mark.parametrize(
    "changed, needle",
    [
        (
            table(
                "accounts_v",
                [("account_id", "TEXT"), ("name", "TEXT"), ("arr", "TEXT")],
                keys=("account_id",),
                kind="dimension",
            ),
            "accounts_v.arr: type is",
        ),
        (
            table(
                "accounts_v",
                [("account_id", "TEXT"), ("name", "TEXT")],
                keys=("account_id",),
                kind="dimension",
            ),
            "lacks (dropped or renamed?)",
        ),
        (
            table(
                "accounts_v",
                [("account_id", "TEXT"), ("full_name", "TEXT"), ("arr", "DOUBLE")],
                keys=("account_id",),
                kind="dimension",
            ),
            "['name']",
        ),
        (
            table(
                "accounts_v",
                [("account_id", "TEXT"), ("name", "TEXT"), ("arr", "DOUBLE"), ("tier", "TEXT", False)],
                keys=("account_id",),
                kind="dimension",
            ),
            "NOT NULL",
        ),
        (
            table(
                "accounts_v",
                [("account_id", "TEXT"), ("name", "TEXT", False), ("arr", "DOUBLE")],
                keys=("account_id", "name"),
                kind="dimension",
            ),
            "keys changed",
        ),
    ],
    ids=["type_change", "dropped_column", "renamed_column", "new_not_null", "key_change"],
)
def test_incompatible_change_is_refused_with_what_to_do(warehouse, changed, needle):
    warehouse.merge(V1, frame(20))
    with pytest.raises(SchemaChangeRefused) as info:
        migrate(warehouse, [changed])
    msg = str(info.value)
    assert needle in msg and "revops warehouse rebuild accounts_v" in msg
    assert warehouse.row_count("accounts_v") == 20  # nothing dropped
    with pytest.raises(SchemaChangeRefused):
        warehouse.ensure_table(changed)  # the load path (ensure_table before every load) refuses too


def test_refusal_does_not_block_other_tables(warehouse):
    warehouse.merge(V1, frame(3))
    bad = table("accounts_v", [("account_id", "TEXT")], keys=("account_id",), kind="dimension")
    with pytest.raises(SchemaChangeRefused):
        migrate(warehouse, [bad, NEW_TABLE])
    assert "events_v" in warehouse.table_names()


def test_empty_table_is_recreated_and_rebuild_is_explicit(warehouse):
    warehouse.ensure_table(V1)
    changed = table(
        "accounts_v", [("account_id", "TEXT"), ("arr", "BIGINT")], keys=("account_id",), kind="dimension"
    )
    assert migrate(warehouse, [changed])[0].action == "recreate"  # nothing to lose
    warehouse.merge(changed, pd.DataFrame({"account_id": ["a"], "arr": [1]}))
    p = rebuild(warehouse, V1)
    assert p.version_after == 3
    assert warehouse.row_count("accounts_v") == 0
    assert [c for c, _ in warehouse.columns("accounts_v")] == V1.column_names


def test_declared_schemas_cover_every_domain():
    from revops_pipelines.warehouse.registry import declared_schemas

    names = {s.name for s in declared_schemas()}
    assert {
        "raw_sf_accounts",
        "raw_product_usage",
        "account_features",
        "churn_scores",
        "agent_metrics",
        "action_log",
        "sample_oracle",
    } <= names
    assert not any(n.startswith("_revops_") for n in names)
