"""Product usage (daily, per account) and billing invoices (Stripe-like shapes)."""

from __future__ import annotations

from datetime import UTC, datetime

from revops_pipelines.checks import combine_checks, references_check, sql_check, unique_check
from revops_pipelines.lazy import pd
from revops_pipelines.raw import raw_table_asset
from revops_pipelines.sources import SampleWorldSource
from revops_pipelines.warehouse import table
from revops_pipelines.warehouse.drift import conform_frame

USAGE = table(
    "raw_product_usage",
    [
        ("account_id", "TEXT"),
        ("usage_date", "DATE"),
        ("seats", "INTEGER"),
        ("active_users", "INTEGER"),
        ("sessions", "INTEGER"),
        ("events", "BIGINT"),
        ("features_used", "INTEGER"),
    ],
    keys=("account_id", "usage_date"),
    primary_index=("account_id", "usage_date"),
    description="Daily product usage per customer account.",
)

INVOICES = table(
    "raw_billing_invoices",
    [
        ("invoice_id", "TEXT"),
        ("customer_id", "TEXT"),
        ("account_id", "TEXT"),
        ("amount_due", "DOUBLE"),
        ("amount_paid", "DOUBLE"),
        ("currency", "TEXT"),
        ("status", "TEXT"),
        ("period_start", "DATE"),
        ("period_end", "DATE"),
        ("due_date", "DATE"),
        ("created_at", "TIMESTAMP"),
        ("paid_at", "TIMESTAMP"),
    ],
    keys=("invoice_id",),
    primary_index=("account_id", "period_start"),
    description="Billing invoices (amounts in currency units, not cents).",
)


def _usage(src: SampleWorldSource) -> pd.DataFrame:
    path = "product/usage_daily.parquet"
    return conform_frame(USAGE, src.parquet(path), source=path)


def _epoch(v):
    return None if v is None else datetime.fromtimestamp(int(v), tz=UTC)


def _invoices(src: SampleWorldSource) -> pd.DataFrame:
    rows = []
    for i in src.records("billing/invoices.jsonl"):
        rows.append(
            {
                "invoice_id": i["id"],
                "customer_id": i.get("customer"),
                "account_id": (i.get("metadata") or {}).get("sf_account_id"),
                "amount_due": (i.get("amount_due") or 0) / 100.0,
                "amount_paid": (i.get("amount_paid") or 0) / 100.0,
                "currency": i.get("currency"),
                "status": i.get("status"),
                "period_start": _epoch(i.get("period_start")),
                "period_end": _epoch(i.get("period_end")),
                "due_date": _epoch(i.get("due_date")),
                "created_at": _epoch(i.get("created")),
                "paid_at": _epoch((i.get("status_transitions") or {}).get("paid_at")),
            }
        )
    df = pd.DataFrame(rows, columns=INVOICES.column_names)
    for c in ("period_start", "period_end", "due_date"):
        df[c] = pd.to_datetime(df[c], utc=True).dt.tz_localize(None).dt.date
    return df


raw_product_usage = raw_table_asset(USAGE, _usage, source="product", description=USAGE.description)
raw_billing_invoices = raw_table_asset(
    INVOICES, _invoices, source="billing", description=INVOICES.description
)

ASSETS = [raw_product_usage, raw_billing_invoices]
TABLES = [USAGE, INVOICES]
CHECKS = combine_checks(
    [
        unique_check("raw_product_usage", ("account_id", "usage_date")),
        references_check("raw_product_usage", "account_id", "raw_sf_accounts", "account_id"),
        sql_check(
            "raw_product_usage",
            "raw_product_usage_plausible_counts",
            "SELECT COUNT(*) FROM raw_product_usage WHERE active_users < 0 OR sessions < 0 OR events < 0 "
            "OR active_users > seats * 2",
            description="usage counts are non-negative and active users do not exceed twice the seats",
            blocking=True,
        ),
        references_check(
            "raw_billing_invoices", "account_id", "raw_sf_accounts", "account_id", blocking=False
        ),
    ],
    name="product",
)
