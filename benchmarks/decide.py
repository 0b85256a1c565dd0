"""Decision Agent batch throughput: decisions per second over a synthetic book of accounts.

Batch mode (:func:`revops_pipelines.agents.decision.decide_frame`) scores every account with the
``churn_prevention`` YAML policy — criteria, value multipliers, bands, constraints, tie-breaks, human
review and planned action types — in one vectorised pass. ``project`` is accounts decided per second
(goal >= 10,000). ``explained_per_s`` is the rate of full, validated :class:`Decision` objects with
evidence and (cached) KB passages, built for the selected accounts only.
"""

from __future__ import annotations

import json
import statistics
import time
from datetime import date


class _StaticKB:
    def search(self, query, k=5, **kw):
        from revops_pipelines.kb.store import Hit

        return [
            Hit(f"c{i}", "churn-risk-playbook", "Churn-risk playbook", f"S{i}", query, 0.5) for i in range(k)
        ]


def _book(n: int, seed: int = 0):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    factors = json.dumps(
        [
            {"feature": "usage_trend", "value": 0.4, "contribution": 0.9},
            {"feature": "open_tickets", "value": 3.0, "contribution": 0.4},
            {"feature": "tenure_days", "value": 900.0, "contribution": -0.2},
        ]
    )
    return pd.DataFrame(
        {
            "account_id": [f"001A{i:014d}" for i in range(n)],
            "snapshot_date": date(2025, 12, 1),
            "churn_score": rng.beta(1, 12, n),
            "top_factors": factors,
            "account_name": [f"Account {i}" for i in range(n)],
            "segment": rng.choice(["SMB", "Mid-Market", "Enterprise"], n),
            "arr": rng.lognormal(10, 1, n),
            "owner_id": rng.choice([f"005U{i:03d}" for i in range(200)], n),
            "days_to_renewal": rng.integers(0, 365, n),
            "usage_trend": rng.uniform(0.3, 1.2, n),
            "sentiment_90d": rng.normal(0, 0.2, n),
            "risk_mentions_90d": rng.poisson(0.5, n),
            "open_tickets": rng.poisson(1, n),
            "meddpicc_completeness": rng.uniform(0, 1, n),
        }
    )


def bench_decide(accounts: int = 100_000, repeats: int = 3, explained: int = 2_000) -> dict:
    from revops_pipelines.agents.decision import build_decisions, decide_frame
    from revops_pipelines.agents.policy import load_policy

    policy = load_policy("churn_prevention")
    policy.constraints.max_per_owner = None  # decide every account: no gate, no per-owner cap
    policy.thresholds.min_churn_score = 0.0
    book = _book(accounts)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        ranked = decide_frame(policy, book, max_accounts=accounts)
        times.append(time.perf_counter() - t)
    rate = accounts / statistics.median(times)
    top = ranked.head(explained)
    t = time.perf_counter()
    decisions = build_decisions(policy, top, _StaticKB())
    explained_rate = len(decisions) / (time.perf_counter() - t)
    return {
        "project": rate,
        "baseline": None,
        "ratio": None,
        "unit": "decisions/s",
        "goal": ">= 10000 decisions/s",
        "accounts": accounts,
        "decided": len(ranked),
        "explained_per_s": explained_rate,
    }


if __name__ == "__main__":
    print(json.dumps(bench_decide(), indent=2))
