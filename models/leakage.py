"""Leakage probe for snapshot feature SQL: recompute a snapshot's features from the raw tables as
they were *on* the snapshot date and compare them with the features computed from today's tables.

The "as of" views drop every record created after the snapshot and blank every field set after it
(case closure, invoice payment, churn date). Any feature value that differs between the two runs
was computed from information the business did not have on the snapshot date. DuckDB only (temp
views shadow the real tables inside one connection); used by the test-suite and usable ad hoc.
"""

from __future__ import annotations

from typing import Any

# table -> SELECT that yields the table as it looked at the end of the snapshot date (parameter: $snap)
AS_OF_VIEWS: dict[str, str] = {
    "raw_product_usage": "SELECT * FROM $db.raw_product_usage WHERE usage_date <= $snap",
    "raw_gong_calls": "SELECT * FROM $db.raw_gong_calls WHERE CAST(started AS DATE) <= $snap",
    "gong_call_sentiment": "SELECT s.* FROM $db.gong_call_sentiment s JOIN $db.raw_gong_calls g "
    "ON g.call_id = s.call_id WHERE CAST(g.started AS DATE) <= $snap",
    "raw_sf_cases": "SELECT * REPLACE (CASE WHEN CAST(closed_at AS DATE) > $snap THEN NULL ELSE closed_at END "
    "AS closed_at) FROM $db.raw_sf_cases WHERE CAST(created_at AS DATE) <= $snap",
    "raw_billing_invoices": "SELECT * REPLACE (CASE WHEN CAST(paid_at AS DATE) > $snap THEN NULL ELSE paid_at END "
    "AS paid_at) FROM $db.raw_billing_invoices WHERE CAST(created_at AS DATE) <= $snap",
    "raw_sf_opportunities": "SELECT * FROM $db.raw_sf_opportunities WHERE CAST(created_at AS DATE) <= $snap",
    "raw_sf_accounts": "SELECT * REPLACE (CASE WHEN churn_date > $snap THEN NULL ELSE churn_date END "
    "AS churn_date) FROM $db.raw_sf_accounts WHERE CAST(created_at AS DATE) <= $snap",
}


def leakage_report(
    conn: Any, features_sql: str, snapshot: str, columns: list[str], horizon_days: int = 90
) -> dict[str, int]:
    """Rows per feature column whose value differs when only data known on ``snapshot`` is visible.

    ``conn`` is a DuckDB connection to the warehouse; ``features_sql`` takes (snapshot, horizon).
    An empty dict means no leakage was detected for that snapshot.
    """
    full = conn.execute(features_sql, [snapshot, horizon_days]).df()
    db = '"' + conn.execute("SELECT current_database()").fetchone()[0].replace('"', '""') + '".main'
    try:
        for name, sql in AS_OF_VIEWS.items():
            # a view cannot take parameters: the snapshot is a validated ISO date literal
            conn.execute(
                f"CREATE OR REPLACE TEMP VIEW {name} AS "
                + sql.replace("$snap", _date_literal(snapshot)).replace("$db", db)
            )
        as_of = conn.execute(features_sql, [snapshot, horizon_days]).df()
    finally:
        for name in AS_OF_VIEWS:
            conn.execute(f"DROP VIEW IF EXISTS temp.{name}")
    merged = full.merge(as_of, on="account_id", how="outer", suffixes=("", "__asof"), indicator=True)
    out: dict[str, int] = {}
    rows_differ = int((merged["_merge"] != "both").sum())
    if rows_differ:
        out["<rows>"] = rows_differ
    both = merged[merged["_merge"] == "both"]
    for c in columns:
        a, b = both[c], both[c + "__asof"]
        same = (a == b) | (a.isna() & b.isna())
        if a.dtype.kind == "f" or b.dtype.kind == "f":
            same = same | ((a.astype("float64") - b.astype("float64")).abs() <= 1e-9)
        n = int((~same.fillna(False)).sum())
        if n:
            out[c] = n
    return out


def _date_literal(snapshot: str) -> str:
    from datetime import date

    return f"DATE '{date.fromisoformat(str(snapshot)[:10]).isoformat()}'"
