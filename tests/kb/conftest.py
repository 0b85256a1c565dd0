"""Fixtures for the knowledge-base tests: a copy of the shipped content, an index over it, and a
small synthetic warehouse with two kinds of accounts (healthy Enterprise, struggling SMB)."""

from __future__ import annotations

import json
import shutil
from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
KB = ROOT / "kb_assets"


@pytest.fixture()
def content_copy(tmp_path: Path) -> Path:
    """docs/, taxonomies/ and eval/ copied into a temporary content root."""
    dst = tmp_path / "content"
    for sub in ("docs", "taxonomies", "eval"):
        shutil.copytree(KB / sub, dst / sub)
    return dst


@pytest.fixture(scope="session")
def shipped_index(tmp_path_factory):
    """The shipped documents indexed once (read-only use)."""
    from revops_pipelines.kb.documents import chunk_documents, load_documents
    from revops_pipelines.kb.store import KnowledgeBase

    kb = KnowledgeBase(tmp_path_factory.mktemp("shipped") / "lance")
    kb.index(chunk_documents(load_documents(KB / "docs")))
    return kb


HEALTHY_CALL = [
    "Great quarter, the board pack from Beacon dashboards saved the finance team hours.",
    "We want to add more seats for the marketing team and look at the Scale plan.",
    "Forecast accuracy improved and leadership reviews pipeline in the weekly meeting.",
    "The reporting and scheduled reports are working really well for us.",
]
STRUGGLING_CALL = [
    "The Salesforce integration sync keeps failing and the dashboards are stale.",
    "Honestly we are thinking about cancelling, a competitor is cheaper.",
    "Our admin left and nobody owns the connector errors anymore.",
    "Budget cuts mean we may not renew unless the sync problems are fixed.",
]


def build_small_world(warehouse, n_per_group: int = 10) -> dict:
    """Write a tiny, fully controlled sample world into ``warehouse`` with its declared schemas."""
    from assets.features import FEATURES, SENTIMENT
    from assets.gong import CALLS, TRANSCRIPTS
    from assets.product import INVOICES
    from assets.salesforce import ACCOUNTS, CASES, OPPORTUNITIES

    now = datetime(2025, 6, 1)
    accounts, features, calls, sentences, sentiment, cases, opps, invoices = [], [], [], [], [], [], [], []
    groups = {"healthy": [], "struggling": []}
    for g, (group, seg, plan, employees, util, trend, sent, tickets, lines) in enumerate(
        [
            ("healthy", "Enterprise", "Scale", 3000, 0.82, 1.10, 0.55, 1, HEALTHY_CALL),
            ("struggling", "SMB", "Starter", 60, 0.18, 0.55, -0.45, 7, STRUGGLING_CALL),
        ]
    ):
        for i in range(n_per_group):
            aid = f"001{g}{i:05d}"
            groups[group].append(aid)
            churned = group == "struggling" and i % 3 == 0
            accounts.append(
                {
                    "account_id": aid, "name": f"{group.title()} Co {i}", "industry": "Technology", "type": "Customer",
                    "employees": employees + 7 * i, "annual_revenue": 1e6, "billing_country": "United States",
                    "owner_id": "005A", "segment": seg, "plan": plan, "seats": 400 if g == 0 else 12,
                    "arr": (400 if g == 0 else 12) * (600.0 if g == 0 else 250.0),
                    "billing_frequency": "Annual" if g == 0 else "Monthly", "customer_since": date(2023, 1, 10),
                    "churn_date": date(2025, 6, 20) if churned else None, "created_at": datetime(2022, 12, 1),
                    "system_modstamp": now, "is_deleted": False,
                }
            )  # fmt: skip
            for k, snap in enumerate((date(2025, 4, 1), date(2025, 5, 1))):
                features.append(
                    {
                        "account_id": aid, "snapshot_date": snap, "segment": seg, "plan": plan,
                        "billing_frequency": "Annual" if g == 0 else "Monthly", "seats": 400 if g == 0 else 12,
                        "arr": (400 if g == 0 else 12) * (600.0 if g == 0 else 250.0),
                        "tenure_days": 800 + 30 * k, "days_to_renewal": 120 - 30 * k,
                        "util_30d": util + 0.01 * (i % 3), "util_prev_60d": util / trend, "usage_trend": trend,
                        "usage_slope_90d": 0.001 if g == 0 else -0.004, "sessions_30d": 40.0 if g == 0 else 3.0,
                        "features_used_30d": 6.0 if g == 0 else 1.5, "days_since_active": 0 if g == 0 else 9,
                        "calls_90d": 4, "sentiment_90d": sent, "negative_share_90d": 0.05 if g == 0 else 0.4,
                        "risk_mentions_90d": 0 if g == 0 else 3, "tickets_90d": tickets,
                        "high_tickets_90d": 0 if g == 0 else 3, "open_tickets": 0 if g == 0 else 2,
                        "overdue_invoices": 0 if g == 0 else 1, "meddpicc_completeness": 0.9 if g == 0 else 0.3,
                        "churned_in_horizon": churned if k == 0 else None,
                    }
                )  # fmt: skip
            for c in range(3):
                cid = f"{aid}-c{c}"
                started = datetime(2025, 4, 5 + 7 * c, 15)
                purpose = (
                    ("QBR", "Check-in", "Expansion")[c]
                    if g == 0
                    else ("Escalation", "Renewal", "Check-in")[c]
                )
                topics = [{"name": "Reporting", "duration": 600}, {"name": "Pricing", "duration": 200}] if g == 0 else [
                    {"name": "Integrations", "duration": 700}, {"name": "Competition", "duration": 300}]  # fmt: skip
                calls.append(
                    {
                        "call_id": cid, "account_id": aid, "opportunity_id": None, "title": f"{purpose} call",
                        "started": started, "duration_s": 1800, "primary_user_id": "u1", "direction": "Conference",
                        "scope": "External", "system": "Zoom", "purpose": purpose, "n_parties": 3, "n_external": 2,
                        "brief": f"{purpose} call. " + lines[c], "key_points": json.dumps([lines[(c + 1) % 4]]),
                        "topics": json.dumps(topics), "trackers": "[]", "talk_ratio_external": 0.5,
                        "questions_company": 3, "questions_non_company": 2,
                    }
                )  # fmt: skip
                sentiment.append(
                    {"call_id": cid, "sentiment": sent, "positive_share": 0.5, "negative_share": 0.1,
                     "risk_mentions": 0 if g == 0 else 2, "sentences": 4}
                )  # fmt: skip
                for s, text in enumerate(lines):
                    sentences.append(
                        {"call_id": cid, "seq": s, "speaker_id": "sp", "topic": None,
                         "start_ms": s * 1000, "end_ms": s * 1000 + 900, "text": text}
                    )  # fmt: skip
            feature_names = (
                ["Dashboards", "Reporting"] if g == 0 else ["Integrations", "Billing", "User Management"]
            )
            subjects = {
                "Dashboards": (
                    "Dashboard widget slow",
                    "The pipeline dashboard widget takes a minute to load.",
                ),
                "Reporting": ("Scheduled report question", "How do I add a recipient to the weekly report?"),
                "Integrations": (
                    "Salesforce sync failing",
                    "The Salesforce connector shows AUTH_EXPIRED errors.",
                ),
                "Billing": ("Invoice question", "Our invoice shows prorated seats we did not expect."),
                "User Management": ("Cannot invite user", "Inviting a user says seat limit reached."),
            }
            for t, feat in enumerate(feature_names):
                subj, desc = subjects[feat]
                cases.append(
                    {
                        "case_id": f"{aid}-k{t}", "account_id": aid, "contact_id": None, "case_number": f"{g}{i}{t}",
                        "subject": subj, "description": desc, "status": "Closed", "priority": "High" if g else "Low",
                        "origin": "Email", "type": "Problem", "product_feature": feat,
                        "created_at": datetime(2025, 3, 1) + timedelta(days=3 * i + t), "closed_at": None,
                        "is_closed": True, "system_modstamp": now, "is_deleted": False,
                    }
                )  # fmt: skip
            arr = (400 if g == 0 else 12) * (600.0 if g == 0 else 250.0)
            opps.append(_opp(f"{aid}-o0", aid, "New Business", "Closed Won", arr * 0.9, date(2023, 1, 10)))
            opps.append(_opp(f"{aid}-o1", aid, "Renewal", "Closed Won", arr, date(2024, 1, 10)))
            if group == "healthy":
                opps.append(_opp(f"{aid}-o2", aid, "Expansion", "Closed Won", 0.1 * arr, date(2024, 9, 1)))
                opps.append(_opp(f"{aid}-o3", aid, "Renewal", "Closed Won", 1.2 * arr, date(2025, 5, 20)))
            else:
                stage = "Closed Lost" if churned else "Closed Won"
                opps.append(_opp(f"{aid}-o3", aid, "Renewal", stage, arr, date(2025, 5, 20)))
                if churned and i % 2 == 0:
                    invoices.append(_invoice(f"in-{aid}-x", aid, arr / 12, "uncollectible", date(2025, 4, 1)))
                for m in range(1, 4):
                    amount = arr / 12 if m < 3 else arr / 12 * 0.75  # seats reduced in month 3
                    invoices.append(_invoice(f"in-{aid}-{m}", aid, amount, "paid", date(2025, m, 1)))
    frames = {
        ACCOUNTS: accounts, FEATURES: features, CALLS: calls, TRANSCRIPTS: sentences, SENTIMENT: sentiment,
        CASES: cases, OPPORTUNITIES: opps, INVOICES: invoices,
    }  # fmt: skip
    for schema, rows in frames.items():
        warehouse.merge(schema, pd.DataFrame(rows, columns=schema.column_names))
    return groups


def _opp(oid, aid, kind, stage, amount, close):
    row = {
        "opportunity_id": oid, "account_id": aid, "name": f"{aid} {kind}", "type": kind, "stage_name": stage,
        "amount": amount, "close_date": close, "is_closed": stage.startswith("Closed"),
        "is_won": stage == "Closed Won", "probability": 100.0 if stage == "Closed Won" else 0.0, "owner_id": "005A",
        "created_at": datetime.combine(close - timedelta(days=100), datetime.min.time()),
        "system_modstamp": datetime(2025, 6, 1), "is_deleted": False,
    }  # fmt: skip
    from assets.salesforce import MEDDPICC

    row.update({f"meddpicc_{m}": None for m in MEDDPICC})
    return row


def _invoice(iid, aid, amount, status, start):
    return {
        "invoice_id": iid, "customer_id": "cus", "account_id": aid, "amount_due": round(amount, 2),
        "amount_paid": round(amount, 2) if status == "paid" else 0.0, "currency": "usd", "status": status,
        "period_start": start, "period_end": start + timedelta(days=30), "due_date": start,
        "created_at": datetime.combine(start, datetime.min.time()),
        "paid_at": datetime.combine(start, datetime.min.time()) if status == "paid" else None,
    }  # fmt: skip


@pytest.fixture(scope="session")
def small_world(tmp_path_factory):
    """(warehouse, groups) — a DuckDB file with the synthetic world loaded."""
    from revops_pipelines.warehouse.duckdb import DuckDBWarehouse

    wh = DuckDBWarehouse(path=str(tmp_path_factory.mktemp("world") / "w.duckdb"))
    groups = build_small_world(wh)
    return wh, groups
