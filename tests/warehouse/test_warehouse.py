"""The warehouse seam, one suite for both backends (``warehouse`` fixture: duckdb, firebolt).

The Firebolt run goes through the real firebolt-sdk client to the loopback stand-in.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from revops_pipelines.errors import WarehouseError
from revops_pipelines.warehouse.schema import table

DEALS = table(
    "deals",
    [
        ("deal_id", "TEXT"),
        ("account_id", "TEXT", False),
        ("amount", "DOUBLE"),
        ("close_date", "DATE"),
        ("is_won", "BOOLEAN"),
        ("seats", "BIGINT"),
        ("updated_at", "TIMESTAMP"),
        ("note", "TEXT"),
    ],
    keys=("deal_id",),
    primary_index=("account_id", "deal_id"),
)

EXPECTED_TYPES = {
    "duckdb": {
        "TEXT": "VARCHAR",
        "DOUBLE": "DOUBLE",
        "DATE": "DATE",
        "BOOLEAN": "BOOLEAN",
        "BIGINT": "BIGINT",
        "TIMESTAMP": "TIMESTAMP",
    },
    "firebolt": {
        "TEXT": "text",
        "DOUBLE": "double precision",
        "DATE": "date",
        "BOOLEAN": "boolean",
        "BIGINT": "bigint",
        "TIMESTAMP": "timestamp",
    },
}


def deals_frame(n: int = 3, start: int = 0, amount: float = 100.0) -> pd.DataFrame:
    ids = range(start, start + n)
    return pd.DataFrame(
        {
            "deal_id": [f"d{i:05d}" for i in ids],
            "account_id": [f"a{i % 7}" for i in ids],
            "amount": [amount + i for i in ids],
            "close_date": [dt.date(2024, 1, 1) + dt.timedelta(days=i % 60) for i in ids],
            "is_won": [i % 2 == 0 for i in ids],
            "seats": [i * 10 for i in ids],
            "updated_at": [dt.datetime(2024, 3, 1, 12, 30, 15, 123456) + dt.timedelta(hours=i) for i in ids],
            "note": [None if i % 3 == 0 else f"note {i}" for i in ids],
        }
    )


def rows(warehouse, order: str = "deal_id") -> list[tuple]:
    df = warehouse.query(f"SELECT {', '.join(DEALS.column_names)} FROM deals ORDER BY {order}")
    return [tuple(None if pd.isna(v) else v for v in r) for r in df.itertuples(index=False, name=None)]


def test_ensure_table_and_catalog(warehouse):
    warehouse.ensure_table(DEALS)
    warehouse.ensure_table(DEALS)  # idempotent
    assert warehouse.table_names() == ["deals"]
    cols = warehouse.columns("deals")
    assert [c for c, _ in cols] == DEALS.column_names
    expected = EXPECTED_TYPES[warehouse.dialect]
    assert [t for _, t in cols] == [expected[c.type] for c in DEALS.columns]
    assert warehouse.row_count("deals") == 0


def test_merge_twice_is_idempotent(warehouse):
    df = deals_frame(3)
    first = warehouse.merge(DEALS, df)
    assert (first.received, first.inserted, first.updated, first.total) == (3, 3, 0, 3)
    before = rows(warehouse)
    second = warehouse.merge(DEALS, df)
    assert (second.received, second.inserted, second.updated, second.total) == (3, 0, 3, 3)
    assert rows(warehouse) == before
    # staging tables never leak into the catalog
    assert warehouse.table_names() == ["deals"]


def test_merge_replaces_updated_values(warehouse):
    warehouse.merge(DEALS, deals_frame(3))
    changed = deals_frame(2, start=2, amount=900.0)  # d00002 updated, d00003 new
    result = warehouse.merge(DEALS, changed)
    assert (result.inserted, result.updated, result.total) == (1, 1, 4)
    amounts = warehouse.query("SELECT deal_id, amount FROM deals ORDER BY deal_id")
    assert amounts["amount"].tolist() == [100.0, 101.0, 902.0, 903.0]


def test_duplicated_keys_last_wins(warehouse):
    df = deals_frame(2)
    dup = df.iloc[[0]].copy()
    dup["amount"] = 555.5
    result = warehouse.merge(DEALS, pd.concat([df, dup], ignore_index=True))
    assert (result.received, result.inserted, result.total) == (2, 2, 2)
    assert warehouse.scalar("SELECT amount FROM deals WHERE deal_id = ?", ["d00000"]) == 555.5


def test_not_null_violation_names_the_column(warehouse):
    df = deals_frame(2)
    df.loc[1, "deal_id"] = None
    with pytest.raises(WarehouseError, match="deal_id"):
        warehouse.merge(DEALS, df)
    # and a NOT NULL violation the database itself catches
    warehouse.ensure_table(DEALS)
    with pytest.raises(WarehouseError, match="account_id"):
        warehouse.execute("INSERT INTO deals (deal_id, account_id) VALUES (?, ?)", ["x", None])
    assert warehouse.row_count("deals") == 0


def test_replace_where_touches_only_its_window(warehouse):
    warehouse.merge(DEALS, deals_frame(10))  # close dates 2024-01-01 .. 2024-01-10
    window = ("close_date >= ? AND close_date < ?", [dt.date(2024, 1, 3), dt.date(2024, 1, 6)])
    fresh = deals_frame(2, start=100, amount=1.0)
    fresh["close_date"] = [dt.date(2024, 1, 4), dt.date(2024, 1, 5)]
    result = warehouse.replace_where(DEALS, fresh, window[0], window[1])
    assert (result.received, result.total) == (2, 9)  # 3 rows of the window deleted, 2 inserted
    left = warehouse.query("SELECT deal_id FROM deals ORDER BY deal_id")["deal_id"].tolist()
    assert left == ["d00000", "d00001", "d00005", "d00006", "d00007", "d00008", "d00009", "d00100", "d00101"]
    full = warehouse.replace_table(DEALS, deals_frame(1))
    assert full.total == 1


def test_query_params_and_types(warehouse):
    warehouse.merge(DEALS, deals_frame(4))
    df = warehouse.query(
        "SELECT close_date, amount, is_won, note, seats, updated_at FROM deals "
        "WHERE close_date = ? AND amount > ? AND is_won = ?",
        [dt.date(2024, 1, 1), 50.5, True],
    )
    assert len(df) == 1
    close_date, amount, is_won, note, seats, updated_at = df.iloc[0].tolist()
    assert isinstance(close_date, dt.date) and close_date == dt.date(2024, 1, 1)
    assert isinstance(amount, float) and amount == 100.0
    assert bool(is_won) is True
    assert note is None
    assert int(seats) == 0
    assert pd.Timestamp(updated_at) == pd.Timestamp("2024-03-01 12:30:15.123456")
    assert warehouse.scalar("SELECT MAX(close_date) FROM deals") == dt.date(2024, 1, 4)
    assert warehouse.scalar("SELECT COUNT(*) FROM deals WHERE note IS NULL") == 2
    assert warehouse.scalar("SELECT COUNT(*) FROM deals WHERE is_won = ?", [False]) == 2


EVIL = [
    "x'); DROP TABLE deals; --",
    "O'Brien",
    "naïve — 日本語 😀",
    "back\\slash \\n not a newline",
    "semi;colon",
    'double "quote"',
    "question ? mark",
    "multi\nline\ttab",
    "",
]


def test_values_round_trip_without_injection(warehouse):
    df = deals_frame(len(EVIL))
    df["note"] = EVIL
    warehouse.merge(DEALS, df)
    assert warehouse.table_names() == ["deals"]
    notes = warehouse.query("SELECT note FROM deals ORDER BY deal_id")["note"].tolist()
    assert notes == EVIL
    for value in EVIL:
        found = warehouse.query("SELECT deal_id FROM deals WHERE note = ?", [value])
        assert len(found) == 1, value
    assert warehouse.row_count("deals") == len(EVIL)


def test_large_load_through_batches(warehouse):
    df = deals_frame(5000)
    result = warehouse.merge(DEALS, df)
    assert (result.inserted, result.total) == (5000, 5000)
    assert warehouse.scalar("SELECT SUM(seats) FROM deals") == sum(range(5000)) * 10
    assert warehouse.scalar("SELECT COUNT(DISTINCT deal_id) FROM deals") == 5000
    sample = warehouse.query("SELECT note, close_date FROM deals WHERE deal_id = ?", ["d04999"])
    assert sample.iloc[0].tolist() == ["note 4999", dt.date(2024, 1, 1) + dt.timedelta(days=4999 % 60)]
