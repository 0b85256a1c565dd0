"""Success metrics of the Execution Agent: each action's outcome, tracked against later data.

For every action in ``action_log`` that was carried out (``succeeded``; ``dry_run`` too, reported as
such so the demo shows the mechanics), compare the account at the decision's snapshot with the latest
later snapshot of ``account_features``:

* ``health`` — mean of four 0..1 signals: seat utilisation (``util_30d``), usage trend
  (``usage_trend`` / 1.5), call sentiment (``(sentiment_90d + 1) / 2``), and ``1 - open_tickets / 5``;
* ``churned`` — the account's ``churn_date`` fell after the decision snapshot;
* ``renewed`` — the renewal date (snapshot + ``days_to_renewal``) passed by the later snapshot and the
  account did not churn.

``outcome`` is ``churned`` / ``renewed`` / ``improved`` / ``worsened`` / ``unchanged`` (health moved by
less than ``0.05``) / ``pending`` (no later snapshot yet). Written to ``action_outcomes`` (merge on the
action's key, so re-tracking updates rather than duplicates). Insights of decisions whose outcome is
``renewed``, ``improved`` or ``churned`` move to ``resolved`` (see :mod:`revops_pipelines.agents.insights`).
"""

from __future__ import annotations

import warnings
from datetime import UTC, datetime
from typing import Any

from revops_pipelines.lazy import np, pd
from revops_pipelines.warehouse import Warehouse, table

OUTCOMES = table(
    "action_outcomes",
    [
        ("idempotency_key", "TEXT"),
        ("account_id", "TEXT", False),
        ("action_type", "TEXT", False),
        ("action_status", "TEXT", False),
        ("decision_snapshot", "DATE", False),
        ("observed_snapshot", "DATE"),
        ("health_before", "DOUBLE"),
        ("health_after", "DOUBLE"),
        ("health_delta", "DOUBLE"),
        ("churned", "BOOLEAN", False),
        ("renewed", "BOOLEAN", False),
        ("outcome", "TEXT", False),
        ("tracked_at", "TIMESTAMP", False),
    ],
    keys=("idempotency_key",),
    description="Outcome of each executed action against later snapshots (health change, churn, renewal).",
    group="agents",
)

_SQL = """
SELECT l.idempotency_key, l.decision_id, l.account_id, l.action_type, l.status AS action_status,
       d.snapshot_date AS decision_snapshot,
       b.util_30d AS b_util, b.usage_trend AS b_trend, b.sentiment_90d AS b_sent, b.open_tickets AS b_open,
       b.days_to_renewal AS b_dtr,
       a.snapshot_date AS observed_snapshot,
       a.util_30d AS a_util, a.usage_trend AS a_trend, a.sentiment_90d AS a_sent, a.open_tickets AS a_open,
       s.churn_date
FROM action_log l
JOIN agent_decisions d ON d.decision_id = l.decision_id
LEFT JOIN account_features b ON b.account_id = l.account_id AND b.snapshot_date = d.snapshot_date
LEFT JOIN account_features a ON a.account_id = l.account_id AND a.snapshot_date = (
    SELECT MAX(f.snapshot_date) FROM account_features f
    WHERE f.account_id = l.account_id AND f.snapshot_date > d.snapshot_date)
LEFT JOIN raw_sf_accounts s ON s.account_id = l.account_id
WHERE l.status IN ('succeeded', 'dry_run')
ORDER BY l.idempotency_key
"""


def _health(util: Any, trend: Any, sent: Any, open_t: Any) -> Any:
    parts = np.vstack(
        [
            np.clip(pd.to_numeric(util, errors="coerce").to_numpy(dtype=float), 0, 1),
            np.clip(pd.to_numeric(trend, errors="coerce").to_numpy(dtype=float) / 1.5, 0, 1),
            np.clip((pd.to_numeric(sent, errors="coerce").to_numpy(dtype=float) + 1) / 2, 0, 1),
            1 - np.clip(pd.to_numeric(open_t, errors="coerce").to_numpy(dtype=float) / 5, 0, 1),
        ]
    )
    with warnings.catch_warnings():  # an account with no signal at all has health NaN (unknown)
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(parts, axis=0)


def track_outcomes(warehouse: Warehouse, threshold: float = 0.05) -> dict[str, Any]:
    """Recompute ``action_outcomes``; returns counts per outcome (JSON-ready)."""
    warehouse.ensure_table(OUTCOMES)
    df = warehouse.query(_SQL)
    if df.empty:
        return {"actions": 0, "outcomes": {}}
    before = _health(df["b_util"], df["b_trend"], df["b_sent"], df["b_open"])
    after = _health(df["a_util"], df["a_trend"], df["a_sent"], df["a_open"])
    dsnap = pd.to_datetime(df["decision_snapshot"])
    osnap = pd.to_datetime(df["observed_snapshot"])
    churn = pd.to_datetime(df["churn_date"])
    churned = (churn.notna() & (churn > dsnap)).to_numpy()
    renewal = dsnap + pd.to_timedelta(pd.to_numeric(df["b_dtr"], errors="coerce"), unit="D")
    renewed = (osnap.notna() & renewal.notna() & (renewal <= osnap) & ~churned).to_numpy()
    delta = after - before
    outcome = np.select(
        [churned, renewed, osnap.isna().to_numpy(), delta > threshold, delta < -threshold],
        ["churned", "renewed", "pending", "improved", "worsened"],
        "unchanged",
    )
    out = pd.DataFrame(
        {
            "idempotency_key": df["idempotency_key"],
            "account_id": df["account_id"],
            "action_type": df["action_type"],
            "action_status": df["action_status"],
            "decision_snapshot": df["decision_snapshot"],
            "observed_snapshot": df["observed_snapshot"],
            "health_before": before,
            "health_after": after,
            "health_delta": delta,
            "churned": churned,
            "renewed": renewed,
            "outcome": outcome,
            "tracked_at": datetime.now(UTC).replace(tzinfo=None),
        },
        columns=OUTCOMES.column_names,
    )
    warehouse.merge(OUTCOMES, out)
    from revops_pipelines.agents.insights import resolve_from_outcomes

    resolved = resolve_from_outcomes(warehouse, dict(zip(df["decision_id"], outcome, strict=True)))
    counts = out["outcome"].value_counts().to_dict()
    return {
        "actions": len(out),
        "outcomes": {k: int(v) for k, v in sorted(counts.items())},
        "insights_resolved": len(resolved),
    }
