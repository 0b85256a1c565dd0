import json
from datetime import date

import pandas as pd
import pytest

from assets.features import FEATURES
from assets.salesforce import ACCOUNTS
from models.churn import SCORES
from revops_pipelines.agents.base import AgentRuntime
from revops_pipelines.kb.store import Hit
from revops_pipelines.warehouse.duckdb import DuckDBWarehouse

SNAP = date(2025, 12, 1)
FACTORS = [
    {"feature": "usage_trend", "value": 0.41, "contribution": 0.9},
    {"feature": "open_tickets", "value": 3.0, "contribution": 0.4},
    {"feature": "tenure_days", "value": 900.0, "contribution": -0.2},
]
# account, segment, ARR, churn score, days to renewal, usage trend, open tickets
ACCOUNTS_SPEC = [
    ("001A0", "Enterprise", 250_000, 0.62, 30, 0.4, 4),
    ("001A1", "SMB", 8_000, 0.55, 200, 0.9, 0),
    ("001A2", "Mid-Market", 60_000, 0.31, 45, 0.7, 1),
    ("001A3", "SMB", 5_000, 0.05, 100, 1.0, 0),
]


def seed(w, snap=SNAP, scores=None):
    rows = []
    for acc, seg, arr, *_ in ACCOUNTS_SPEC:
        rows.append(
            {c: None for c in ACCOUNTS.column_names}
            | {
                "account_id": acc,
                "name": f"Acme  {acc[-1]} ",
                "segment": seg,
                "arr": float(arr),
                "owner_id": "005U1",
                "customer_since": date(2023, 1, 1),
                "system_modstamp": pd.Timestamp("2025-12-01"),
                "is_deleted": False,
            }
        )
    w.merge(ACCOUNTS, pd.DataFrame(rows))
    w.merge(
        SCORES,
        pd.DataFrame(
            {
                "account_id": [a[0] for a in ACCOUNTS_SPEC],
                "snapshot_date": [snap] * len(ACCOUNTS_SPEC),
                "churn_score": scores or [a[3] for a in ACCOUNTS_SPEC],
                "model_version": "v1",
                "top_factors": json.dumps(FACTORS),
            }
        ),
    )
    w.merge(
        FEATURES,
        pd.DataFrame(
            [
                {c: None for c in FEATURES.column_names}
                | {
                    "account_id": a,
                    "snapshot_date": snap,
                    "days_to_renewal": dtr,
                    "usage_trend": ut,
                    "open_tickets": ot,
                    "util_30d": 0.5,
                    "sentiment_90d": 0.0,
                    "meddpicc_completeness": 0.4,
                }
                for a, _s, _arr, _c, dtr, ut, ot in ACCOUNTS_SPEC
            ]
        ),
    )


@pytest.fixture(scope="session")
def _seeded_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("agents_template") / "w.duckdb"
    seed(DuckDBWarehouse(path=str(path)))
    return path


@pytest.fixture
def wh(tmp_path, _seeded_file):
    """A warehouse with four accounts, their churn scores and features (a copy of a seeded file)."""
    import shutil

    shutil.copy(_seeded_file, tmp_path / "w.duckdb")
    return DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))


@pytest.fixture
def runtime(tmp_path):
    return AgentRuntime(
        state_path=str(tmp_path / "state" / "agent_state.sqlite"), kb_uri=str(tmp_path / "no_kb")
    )


class FakeKB:
    """Stands in for KnowledgeBase.search: returns fixed passages and records the queries."""

    def __init__(self):
        self.queries = []

    def search(self, query, k=5, collection=None, **kw):
        self.queries.append(query)
        return [
            Hit(
                chunk_id=f"chunk{i}",
                doc_id="churn-risk-playbook",
                title="Churn-risk playbook",
                heading=f"Section {i}",
                text=f"Passage {i} about {query}",
                score=0.5 - i / 10,
                collection="best_practices",
            )
            for i in range(k)
        ]


@pytest.fixture
def kb():
    return FakeKB()


@pytest.fixture
def seed_snapshot():
    """Seed another snapshot: ``seed_snapshot(warehouse, snap)``."""
    return seed


@pytest.fixture
def factors():
    return FACTORS
