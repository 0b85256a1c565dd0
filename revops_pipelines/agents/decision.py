"""Decision Agent: turns churn scores and account context into prioritised, explained decisions.

Output follows the seed system's shape — situation summary, key insights, priority, actions
``[{type, parameters, priority, reasoning}]``, ``human_review_required`` — plus a confidence and the
evidence (the model's feature contributions) behind it. Decisions are written to
``agent_decisions`` keyed by a deterministic id, so the same situation yields the same decision
and a re-run never duplicates it.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import date
from typing import Any, Literal

from pydantic import Field

from revops_pipelines.agents.base import ActionSpec, Agent
from revops_pipelines.lazy import pd
from revops_pipelines.validation import StrictModel
from revops_pipelines.warehouse import table

Priority = Literal["critical", "high", "medium", "low"]
ActionType = Literal["slack_message", "crm_task", "email_draft", "webhook"]

FEATURE_TEXT = {
    "usage_trend": "usage in the last 30 days vs the 60 before",
    "util_30d": "seat utilisation over 30 days",
    "usage_slope_90d": "90-day utilisation slope",
    "days_since_active": "days since anyone was active",
    "features_used_30d": "features used per day",
    "sessions_30d": "daily sessions",
    "sentiment_90d": "call sentiment over 90 days",
    "negative_share_90d": "share of negative call sentences",
    "risk_mentions_90d": "cancellation/competitor mentions on calls",
    "calls_90d": "calls in 90 days",
    "tickets_90d": "support tickets in 90 days",
    "high_tickets_90d": "high/critical tickets in 90 days",
    "open_tickets": "open tickets",
    "overdue_invoices": "overdue invoices",
    "meddpicc_completeness": "MEDDPICC completeness of the renewal",
    "days_to_renewal": "days to renewal",
    "tenure_days": "tenure in days",
    "arr": "ARR",
    "seats": "seats",
    "segment": "segment",
    "plan": "plan",
    "billing_frequency": "billing frequency",
}


class ChurnRiskParams(StrictModel):
    threshold: float = Field(default=0.3, ge=0, le=1, description="Minimum churn score to act on.")
    max_accounts: int = Field(default=50, ge=1, le=100_000)
    high_value_arr: float = Field(default=50_000, ge=0, description="ARR above which a human reviews.")
    urgent_renewal_days: int = Field(default=60, ge=0)
    snapshot_date: date | None = None


class Evidence(StrictModel):
    feature: str
    value: float | str | None
    contribution: float
    text: str


class Insight(StrictModel):
    category: Literal[
        "deal_quality", "consumption_pattern", "churn_risk", "pipeline_health", "growth_opportunity"
    ]
    status: Literal["new", "acknowledged", "in_progress", "resolved", "dismissed"] = "new"
    text: str
    confidence: float = Field(ge=0, le=1)
    impact: Literal["low", "medium", "high"]
    urgency: Literal["low", "medium", "high"]


class PlannedAction(StrictModel):
    type: ActionType
    parameters: dict[str, Any]
    priority: Priority
    reasoning: str


class Decision(StrictModel):
    decision_id: str
    account_id: str = Field(min_length=1)
    account_name: str
    snapshot_date: date
    churn_score: float = Field(ge=0, le=1)
    priority: Priority
    priority_score: float = Field(ge=0)
    confidence: float = Field(ge=0, le=1)
    situation_summary: str
    key_insights: list[Insight]
    actions: list[PlannedAction]
    human_review_required: bool
    evidence: list[Evidence]


class DecisionBatch(StrictModel):
    policy: str
    evaluated: int = Field(ge=0)
    decisions: list[Decision]


DECISIONS = table(
    "agent_decisions",
    [
        ("decision_id", "TEXT"),
        ("account_id", "TEXT", False),
        ("snapshot_date", "DATE", False),
        ("policy", "TEXT", False),
        ("churn_score", "DOUBLE", False),
        ("priority", "TEXT", False),
        ("priority_score", "DOUBLE", False),
        ("confidence", "DOUBLE", False),
        ("human_review_required", "BOOLEAN", False),
        ("decision_json", "TEXT", False),
    ],
    keys=("decision_id",),
    description="Decisions of the Decision Agent (one per account, snapshot and policy).",
    group="agents",
)

_CONTEXT_SQL = """
SELECT s.account_id, s.snapshot_date, s.churn_score, s.top_factors, a.name AS account_name, a.segment, a.arr,
       f.days_to_renewal, f.usage_trend, f.sentiment_90d, f.open_tickets
FROM churn_scores s
JOIN raw_sf_accounts a ON a.account_id = s.account_id
LEFT JOIN account_features f ON f.account_id = s.account_id AND f.snapshot_date = s.snapshot_date
WHERE s.snapshot_date = COALESCE(CAST(? AS DATE), (SELECT MAX(snapshot_date) FROM churn_scores))
  AND s.churn_score >= ?
ORDER BY s.account_id
"""


def _priority(
    score: float, arr: float, days_to_renewal: float | None, p: ChurnRiskParams
) -> tuple[float, Priority]:
    value = 1.0 + math.log10(max(arr, 1_000.0) / 1_000.0) / 2  # 1.0 at $1k ARR, 2.0 at $100k
    urgent = (
        days_to_renewal is not None
        and not pd.isna(days_to_renewal)
        and days_to_renewal <= p.urgent_renewal_days
    )
    ps = score * value * (1.5 if urgent else 1.0)
    label: Priority = "critical" if ps >= 1.2 else "high" if ps >= 0.7 else "medium" if ps >= 0.4 else "low"
    return round(ps, 6), label


def _evidence(factors: list[dict]) -> list[Evidence]:
    out = []
    for f in factors:
        direction = "raises" if f["contribution"] > 0 else "lowers"
        desc = FEATURE_TEXT.get(f["feature"], f["feature"])
        v = f["value"]
        shown = f"{v:.2f}" if isinstance(v, float) else str(v)
        out.append(
            Evidence(
                feature=f["feature"],
                value=v,
                contribution=f["contribution"],
                text=f"{desc} = {shown} ({direction} risk, {f['contribution']:+.2f} log-odds)",
            )
        )
    return out


def assess_churn_risk(agent: DecisionAgent, p: ChurnRiskParams, context: dict[str, Any]) -> DecisionBatch:
    df = agent.warehouse.query(_CONTEXT_SQL, [p.snapshot_date, p.threshold])
    policy = f"churn_risk:v1:t={p.threshold}"
    decisions = []
    for r in df.itertuples(index=False):
        evidence = _evidence(json.loads(r.top_factors))
        ps, prio = _priority(r.churn_score, float(r.arr or 0), r.days_to_renewal, p)
        risk_up = [e for e in evidence if e.contribution > 0][:3]
        reasons = "; ".join(e.text for e in risk_up) or "model score above threshold"
        snap = pd.Timestamp(r.snapshot_date).date()
        # confidence: how clearly the score clears the threshold, on the score's own scale
        margin = (r.churn_score - p.threshold) / max(1e-9, 1 - p.threshold)
        confidence = round(min(1.0, 0.5 + 0.5 * margin), 4)
        review = float(r.arr or 0) >= p.high_value_arr or prio == "critical"
        actions = [
            PlannedAction(
                type="slack_message",
                parameters={"text": f"{r.account_name}: churn risk {r.churn_score:.0%} ({prio}). {reasons}."},
                priority=prio,
                reasoning=f"alert the account team: {reasons}",
            )
        ]
        if prio in ("critical", "high"):
            actions.append(
                PlannedAction(
                    type="crm_task",
                    parameters={
                        "subject": f"Churn-risk review: {r.account_name}",
                        "account_id": r.account_id,
                        "due_in_days": 3 if prio == "critical" else 7,
                    },
                    priority=prio,
                    reasoning="a named owner must review the account before renewal",
                )
            )
        insights = [
            Insight(
                category="churn_risk",
                text=f"Churn probability {r.churn_score:.0%} within the horizon; drivers: {reasons}",
                confidence=confidence,
                impact="high" if float(r.arr or 0) >= p.high_value_arr else "medium",
                urgency="high" if prio in ("critical", "high") else "medium",
            )
        ]
        if r.usage_trend is not None and not pd.isna(r.usage_trend) and r.usage_trend < 0.8:
            insights.append(
                Insight(
                    category="consumption_pattern",
                    text=f"Usage fell to {r.usage_trend:.0%} of the previous two months",
                    confidence=0.9,
                    impact="medium",
                    urgency="medium",
                )
            )
        did = hashlib.sha256(f"{policy}|{r.account_id}|{snap}".encode()).hexdigest()[:24]
        decisions.append(
            Decision(
                decision_id=did,
                account_id=r.account_id,
                account_name=r.account_name,
                snapshot_date=snap,
                churn_score=float(r.churn_score),
                priority=prio,
                priority_score=ps,
                confidence=confidence,
                situation_summary=(
                    f"{r.account_name} ({r.segment}, ARR ${float(r.arr or 0):,.0f}) has a {r.churn_score:.0%} churn "
                    f"risk with {int(r.days_to_renewal) if not pd.isna(r.days_to_renewal) else '?'} days to renewal."
                ),
                key_insights=insights,
                actions=actions,
                human_review_required=review,
                evidence=evidence,
            )
        )
    # tie-break on account id so equal scores order the same way every time
    decisions.sort(key=lambda d: (-d.priority_score, d.account_id))
    decisions = decisions[: p.max_accounts]
    batch = DecisionBatch(policy=policy, evaluated=len(df), decisions=decisions)
    if decisions:
        agent.warehouse.merge(DECISIONS, decisions_frame(batch))
    return batch


def decisions_frame(batch: DecisionBatch) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "decision_id": d.decision_id,
                "account_id": d.account_id,
                "snapshot_date": d.snapshot_date,
                "policy": batch.policy,
                "churn_score": d.churn_score,
                "priority": d.priority,
                "priority_score": d.priority_score,
                "confidence": d.confidence,
                "human_review_required": d.human_review_required,
                "decision_json": d.model_dump_json(),
            }
            for d in batch.decisions
        ],
        columns=DECISIONS.column_names,
    )


class DecisionAgent(Agent):
    name = "decision"
    version = "1"
    actions = {
        "assess_churn_risk": ActionSpec(
            ChurnRiskParams,
            DecisionBatch,
            assess_churn_risk,
            "Prioritise accounts by churn risk and plan actions.",
        )
    }
