"""The insight lifecycle: ``open → acknowledged → actioned → resolved | dismissed``.

The Decision Agent records each insight once (``agent_insights``, status ``open``); from then on its
status moves only through :func:`update_status`, which checks the transition, writes the new status
and appends a row to ``agent_insight_history`` (from, to, when, who, why, source) in the same call.

Who moves it:

* people, with ``revops insights update ID --status acknowledged --by maria --reason "..."``;
* the Execution Agent, when an action of the insight's decision is carried out (``succeeded``, or
  ``dry_run`` — recorded as such in the reason): ``open``/``acknowledged`` → ``actioned``;
* outcome tracking (:func:`revops_pipelines.agents.outcomes.track_outcomes`), when later data shows
  the outcome: ``renewed`` or ``improved`` → ``resolved``; ``churned`` → ``resolved`` (the risk was
  realised; the reason says so).

Automatic updates never override a person: they apply only from the statuses listed above, so a
dismissed insight stays dismissed. ``resolved`` and ``dismissed`` can be reopened (→ ``open``) by hand.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from revops_pipelines.errors import ValidationFailed
from revops_pipelines.lazy import pd
from revops_pipelines.warehouse import Warehouse, table

InsightStatus = Literal["open", "acknowledged", "actioned", "resolved", "dismissed"]
STATUSES: tuple[str, ...] = ("open", "acknowledged", "actioned", "resolved", "dismissed")
TRANSITIONS: dict[str, frozenset[str]] = {
    "open": frozenset({"acknowledged", "actioned", "resolved", "dismissed"}),
    "acknowledged": frozenset({"actioned", "resolved", "dismissed"}),
    "actioned": frozenset({"resolved", "dismissed"}),
    "resolved": frozenset({"open"}),
    "dismissed": frozenset({"open"}),
}
LEGACY = {"new": "open", "in_progress": "actioned"}  # statuses written before the lifecycle existed

HISTORY = table(
    "agent_insight_history",
    [
        ("change_id", "TEXT"),
        ("insight_id", "TEXT", False),
        ("from_status", "TEXT", False),
        ("to_status", "TEXT", False),
        ("changed_at", "TIMESTAMP", False),
        ("changed_by", "TEXT", False),
        ("source", "TEXT", False),
        ("reason", "TEXT"),
    ],
    keys=("change_id",),
    description="Every status change of an insight (open → acknowledged → actioned → resolved/dismissed).",
    group="agents",
)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _current(warehouse: Warehouse, ids: list[str]) -> dict[str, str]:
    if not ids or "agent_insights" not in warehouse.table_names():
        return {}
    marks = ", ".join("?" for _ in ids)
    df = warehouse.query(f"SELECT insight_id, status FROM agent_insights WHERE insight_id IN ({marks})", ids)
    return {i: LEGACY.get(s, s) for i, s in zip(df["insight_id"], df["status"], strict=True)}


def update_status(
    warehouse: Warehouse,
    insight_ids: list[str],
    status: str,
    *,
    by: str = "cli",
    reason: str | None = None,
    source: str = "manual",
    only_from: tuple[str, ...] | None = None,
) -> list[dict[str, Any]]:
    """Move insights to ``status``. Manual updates (``only_from`` None) must all be valid, else nothing
    changes and the error names each bad id/transition. Automatic ones pass ``only_from`` and skip, without
    error, insights in any other status. Returns one ``{insight_id, from, to}`` per change made."""
    if status not in STATUSES:
        raise ValidationFailed("insight update", [f"status: {status!r} is not one of {list(STATUSES)}"])
    ids = list(dict.fromkeys(insight_ids))
    current = _current(warehouse, ids)
    problems, changes = [], []
    for i in ids:
        old = current.get(i)
        if old is None:
            problems.append(f"insight_id: no insight {i!r}")
        elif old == status:
            continue
        elif only_from is not None:
            if old in only_from:
                changes.append((i, old))
        elif status not in TRANSITIONS.get(old, frozenset()):
            allowed = sorted(TRANSITIONS.get(old, frozenset()))
            problems.append(f"status: {i} cannot go from {old} to {status} (allowed: {allowed})")
        else:
            changes.append((i, old))
    if problems and only_from is None:
        raise ValidationFailed("insight update", problems)
    if not changes:
        return []
    now = _now()
    warehouse.ensure_table(HISTORY)
    marks = ", ".join("?" for _ in changes)
    warehouse.execute(
        f"UPDATE agent_insights SET status = ? WHERE insight_id IN ({marks})",
        [status, *[i for i, _ in changes]],
    )
    rows = [
        {
            "change_id": uuid.uuid4().hex,
            "insight_id": i,
            "from_status": old,
            "to_status": status,
            "changed_at": now,
            "changed_by": by,
            "source": source,
            "reason": reason,
        }
        for i, old in changes
    ]
    warehouse.merge(HISTORY, pd.DataFrame(rows, columns=HISTORY.column_names))
    return [{"insight_id": i, "from": old, "to": status} for i, old in changes]


def list_insights(
    warehouse: Warehouse,
    *,
    status: str | None = None,
    category: str | None = None,
    account_id: str | None = None,
    limit: int = 100,
) -> pd.DataFrame:
    """Insights, newest snapshot first, filtered by status / category / account."""
    if status is not None and status not in STATUSES:
        raise ValidationFailed("insight list", [f"status: {status!r} is not one of {list(STATUSES)}"])
    if limit < 1:
        raise ValidationFailed("insight list", [f"limit: must be at least 1, got {limit}"])
    cols = "insight_id, account_id, snapshot_date, category, status, confidence, impact, urgency, text"
    if "agent_insights" not in warehouse.table_names():
        return pd.DataFrame(columns=[c.strip() for c in cols.split(",")])
    where, params = [], []
    if status is not None:
        legacy = [k for k, v in LEGACY.items() if v == status]
        where.append(f"status IN ({', '.join('?' for _ in [status, *legacy])})")
        params += [status, *legacy]
    if category is not None:
        where.append("category = ?")
        params.append(category)
    if account_id is not None:
        where.append("account_id = ?")
        params.append(account_id)
    sql = f"SELECT {cols} FROM agent_insights"
    if where:
        sql += " WHERE " + " AND ".join(where)
    df = warehouse.query(sql + f" ORDER BY snapshot_date DESC, insight_id LIMIT {int(limit)}", params)
    df["status"] = df["status"].map(lambda s: LEGACY.get(s, s))
    return df


def history(warehouse: Warehouse, insight_id: str) -> pd.DataFrame:
    """Status changes of one insight, oldest first."""
    if "agent_insight_history" not in warehouse.table_names():
        return pd.DataFrame(columns=HISTORY.column_names)
    return warehouse.query(
        "SELECT * FROM agent_insight_history WHERE insight_id = ? ORDER BY changed_at, change_id",
        [insight_id],
    )


def _insights_of(warehouse: Warehouse, decision_ids: list[str]) -> dict[str, list[str]]:
    if not decision_ids or "agent_insights" not in warehouse.table_names():
        return {}
    marks = ", ".join("?" for _ in decision_ids)
    df = warehouse.query(
        f"SELECT decision_id, insight_id FROM agent_insights WHERE decision_id IN ({marks})", decision_ids
    )
    out: dict[str, list[str]] = {}
    for d, i in zip(df["decision_id"], df["insight_id"], strict=True):
        out.setdefault(d, []).append(i)
    return out


def mark_actioned(warehouse: Warehouse, executed: dict[str, str]) -> list[dict[str, Any]]:
    """``executed``: decision id → status of its executed action (``succeeded`` / ``dry_run``). Their
    open or acknowledged insights become ``actioned``."""
    by_decision = _insights_of(warehouse, sorted(executed))
    changes = []
    for action_status in sorted(set(executed.values())):
        ids = [i for d, s in executed.items() if s == action_status for i in by_decision.get(d, [])]
        if ids:
            changes += update_status(
                warehouse,
                ids,
                "actioned",
                by="execution",
                source="execution",
                reason="action recorded in dry-run (nothing sent)"
                if action_status == "dry_run"
                else "action executed",
                only_from=("open", "acknowledged"),
            )
    return changes


RESOLVING_OUTCOMES = {
    "renewed": "account renewed after the action",
    "improved": "account health improved after the action",
    "churned": "account churned: the risk was realised",
}


def resolve_from_outcomes(warehouse: Warehouse, outcomes: dict[str, str]) -> list[dict[str, Any]]:
    """``outcomes``: decision id → tracked outcome. Insights of decisions whose outcome is final
    (:data:`RESOLVING_OUTCOMES`) become ``resolved`` (from open, acknowledged or actioned)."""
    by_decision = _insights_of(warehouse, sorted(d for d, o in outcomes.items() if o in RESOLVING_OUTCOMES))
    changes = []
    for outcome, reason in RESOLVING_OUTCOMES.items():
        ids = [i for d, o in outcomes.items() if o == outcome for i in by_decision.get(d, [])]
        if ids:
            changes += update_status(
                warehouse,
                ids,
                "resolved",
                by="outcome_tracking",
                source="outcomes",
                reason=reason,
                only_from=("open", "acknowledged", "actioned"),
            )
    return changes
