"""Decision Agent: ranks accounts with a YAML multi-criteria policy and explains every decision.

Output follows the seed system's shape — situation summary, key insights, priority, actions
``[{type, parameters, priority, reasoning}]``, ``human_review_required`` — plus a calibrated confidence
(the serving model's Platt-calibrated churn probability, graded against the oracle by
:func:`revops_pipelines.agents.quality.decision_quality`) and an explanation that cites its evidence: the
model's per-feature contributions, the policy's criteria scores and the knowledge-base passages found
for each action. Decisions go to ``agent_decisions`` and insights to ``agent_insights``, keyed by
deterministic ids, so the same situation yields the same decision and a re-run never duplicates one.

Batch mode: :func:`decide_frame` scores and labels every account in one vectorised pass; the explained
:class:`Decision` objects are built only for the accounts the policy selects.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime
from typing import Any, Literal

from pydantic import Field

from revops_pipelines.agents.base import ActionSpec, Agent
from revops_pipelines.agents.insights import InsightStatus
from revops_pipelines.agents.params import ChurnRiskParams
from revops_pipelines.agents.policy import ActionType, Policy, Priority, load_policy
from revops_pipelines.agents.standardise import Currency, Day, EntityId, Money, Name
from revops_pipelines.lazy import np, pd
from revops_pipelines.logging import get_logger
from revops_pipelines.validation import StrictModel
from revops_pipelines.warehouse import table

log = get_logger("agents.decision")
CONTRACT_VERSION = "decision/2"

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
# words used in KB queries for a driver (what a playbook would call it)
FEATURE_QUERY = {
    "usage_trend": "declining usage",
    "util_30d": "low adoption",
    "usage_slope_90d": "declining usage",
    "days_since_active": "inactive users",
    "sentiment_90d": "negative sentiment",
    "negative_share_90d": "negative sentiment",
    "risk_mentions_90d": "competitor cancellation",
    "tickets_90d": "support tickets escalation",
    "high_tickets_90d": "support escalation",
    "open_tickets": "open support tickets",
    "overdue_invoices": "payment failure overdue invoice",
    "meddpicc_completeness": "champion economic buyer",
    "days_to_renewal": "upcoming renewal",
}


class Evidence(StrictModel):
    feature: str
    value: float | str | None
    contribution: float
    text: str


class Passage(StrictModel):
    chunk_id: str
    doc_id: str
    title: str
    heading: str
    excerpt: str
    score: float


class Insight(StrictModel):
    insight_id: str
    category: Literal[
        "deal_quality", "consumption_pattern", "churn_risk", "pipeline_health", "growth_opportunity"
    ]
    status: InsightStatus = "open"  # lifecycle: revops_pipelines.agents.insights
    text: str
    confidence: float = Field(ge=0, le=1)
    impact: Literal["low", "medium", "high"]
    urgency: Literal["low", "medium", "high"]


class PlannedAction(StrictModel):
    type: ActionType
    parameters: dict[str, Any]
    priority: Priority
    reasoning: str
    passages: list[Passage] = Field(default_factory=list)


class Decision(StrictModel):
    decision_id: str = Field(min_length=8)
    account_id: EntityId
    account_name: Name
    segment: str | None = None
    arr: Money
    currency: Currency = "USD"
    snapshot_date: Day
    churn_score: float = Field(ge=0, le=1)
    priority: Priority
    priority_score: float = Field(ge=0)
    rank: int = Field(ge=1)
    confidence: float = Field(ge=0, le=1)
    situation_summary: str = Field(min_length=1)
    key_insights: list[Insight]
    actions: list[PlannedAction]
    human_review_required: bool
    evidence: list[Evidence]
    criteria: dict[str, float]
    explanation: str = Field(min_length=1)
    previous_priority: Priority | None = None


class DecisionBatch(StrictModel):
    contract_version: Literal["decision/2"] = CONTRACT_VERSION
    policy: str
    snapshot_date: Day | None = None
    evaluated: int = Field(ge=0)
    eligible: int = Field(ge=0)
    decisions: list[Decision]
    tenant_id: str | None = None  # the tenant whose data produced them (None: the default tenant)


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

INSIGHTS = table(
    "agent_insights",
    [
        ("insight_id", "TEXT"),
        ("decision_id", "TEXT", False),
        ("account_id", "TEXT", False),
        ("snapshot_date", "DATE", False),
        ("category", "TEXT", False),
        ("status", "TEXT", False),
        ("text", "TEXT", False),
        ("confidence", "DOUBLE", False),
        ("impact", "TEXT", False),
        ("urgency", "TEXT", False),
        ("created_at", "TIMESTAMP", False),
    ],
    keys=("insight_id",),
    description="Insights behind decisions (category, status, confidence/impact/urgency); status follows "
    "the lifecycle open → acknowledged → actioned → resolved/dismissed (agent_insight_history) and is "
    "kept when a re-run sees the same insight.",
    group="agents",
)

_CONTEXT_SQL = """
SELECT s.account_id, s.snapshot_date, s.churn_score, s.top_factors,
       a.name AS account_name, a.segment, a.arr, a.owner_id,
       f.days_to_renewal, f.usage_trend, f.sentiment_90d, f.risk_mentions_90d, f.open_tickets,
       f.meddpicc_completeness
FROM churn_scores s
JOIN raw_sf_accounts a ON a.account_id = s.account_id
LEFT JOIN account_features f ON f.account_id = s.account_id AND f.snapshot_date = s.snapshot_date
WHERE s.snapshot_date = COALESCE(CAST(? AS DATE), (SELECT MAX(snapshot_date) FROM churn_scores))
ORDER BY s.account_id
"""


def decide_frame(policy: Policy, df: pd.DataFrame, max_accounts: int | None = None) -> pd.DataFrame:
    """Batch mode: score every row, select and rank, and label priority, confidence, human review and
    the planned action types — vectorised. Returns the selected rows in rank order with ``rank``."""
    scored = policy.score(df)
    ranked = policy.rank(scored, max_accounts).copy()
    ranked["rank"] = np.arange(1, len(ranked) + 1)
    ranked["confidence"] = pd.to_numeric(ranked["churn_score"], errors="coerce").fillna(0).clip(0, 1).round(4)
    hr = policy.human_review
    review = np.zeros(len(ranked), dtype=bool)
    if hr.arr_at_least is not None:
        review |= pd.to_numeric(ranked["arr"], errors="coerce").fillna(0).to_numpy() >= hr.arr_at_least
    if hr.priorities:
        review |= ranked["priority"].isin(hr.priorities).to_numpy()
    if hr.confidence_below is not None:
        review |= ranked["confidence"].to_numpy() < hr.confidence_below
    ranked["human_review_required"] = review
    ranked["action_types"] = ranked["priority"].map(
        {p: [a.type for a in policy.actions_for(p)] for p in ("critical", "high", "medium", "low")}
    )
    ranked.attrs["evaluated"] = len(df)
    ranked.attrs["eligible"] = int(scored["eligible"].sum())
    return ranked


def _evidence(factors: list[dict]) -> list[Evidence]:
    out = []
    for f in factors:
        direction = "raises" if f["contribution"] > 0 else "lowers"
        desc = FEATURE_TEXT.get(f["feature"], f["feature"])
        v = f["value"]
        shown = f"{v:,.2f}" if isinstance(v, float) else str(v)
        out.append(
            Evidence(
                feature=f["feature"],
                value=v,
                contribution=f["contribution"],
                text=f"{desc} = {shown} ({direction} risk, {f['contribution']:+.2f} log-odds)",
            )
        )
    return out


class _PassageFinder:
    """KB search with a per-batch cache (queries repeat across accounts with the same drivers)."""

    def __init__(self, kb: Any, policy: Policy):
        self.kb = kb
        self.policy = policy
        self.cache: dict[str, list[Passage]] = {}

    def find(self, query: str) -> list[Passage]:
        if self.kb is None:
            return []
        if query not in self.cache:
            kw: dict[str, Any] = {"k": self.policy.kb.passages_per_action}
            if self.policy.kb.mode != "vector":
                kw["mode"] = self.policy.kb.mode
            if self.policy.kb.collection:
                kw["collection"] = self.policy.kb.collection
            try:
                hits = self.kb.search(query, **kw)
            except Exception as e:  # the KB is evidence, not a precondition: record and go on
                log.warning(f"knowledge-base search failed ({type(e).__name__}: {e}); no passages cited")
                self.kb = None
                return []
            self.cache[query] = [
                Passage(
                    chunk_id=h.chunk_id,
                    doc_id=h.doc_id,
                    title=h.title,
                    heading=h.heading,
                    excerpt=" ".join(h.text.split())[:240],
                    score=round(float(h.score), 4),
                )
                for h in hits
            ]
        return self.cache[query]


def _open_kb(agent: Agent) -> Any:
    if "knowledge_base" in agent.services:
        return agent.services["knowledge_base"]
    try:
        from revops_pipelines.kb.resource import KnowledgeBaseResource

        uri = agent.runtime.kb_uri
        if uri is None:
            from revops_pipelines.settings import load_settings

            uri = load_settings(tenant=agent.runtime.tenant_id).vector_uri
        kb = KnowledgeBaseResource(uri=uri, tenant=agent.runtime.tenant_id).open()
        return kb if kb.exists() else None
    except Exception as e:
        log.warning(f"knowledge base unavailable ({type(e).__name__}: {e}); decisions cite no passages")
        return None


def _id(*parts: Any) -> str:
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:24]


def _num(v: Any) -> float:
    return 0.0 if v is None or pd.isna(v) else float(v)


def _fmt_days(v: Any) -> str:
    return "?" if v is None or pd.isna(v) else str(int(v))


def _insights(r: Any, did: str, reasons: str, policy: Policy) -> list[Insight]:
    arr = _num(r.arr)
    hr = policy.human_review.arr_at_least or 50_000
    urgent = r.priority in ("critical", "high")
    out = [
        Insight(
            insight_id=_id(did, "churn_risk"),
            category="churn_risk",
            text=f"Churn probability {r.churn_score:.0%} within the horizon; drivers: {reasons}",
            confidence=float(r.confidence),
            impact="high" if arr >= hr else "medium",
            urgency="high" if urgent else "medium",
        )
    ]
    if r.usage_trend is not None and not pd.isna(r.usage_trend) and r.usage_trend < 0.8:
        out.append(
            Insight(
                insight_id=_id(did, "consumption_pattern"),
                category="consumption_pattern",
                text=f"Usage fell to {r.usage_trend:.0%} of the previous two months",
                confidence=0.9,
                impact="medium",
                urgency="high" if r.usage_trend < 0.5 else "medium",
            )
        )
    m = r.meddpicc_completeness
    if m is not None and not pd.isna(m) and m < 0.5:
        out.append(
            Insight(
                insight_id=_id(did, "deal_quality"),
                category="deal_quality",
                text=f"Renewal opportunity is only {m:.0%} MEDDPICC-complete (champion/economic buyer gaps)",
                confidence=0.8,
                impact="high" if arr >= hr else "medium",
                urgency="high" if urgent else "low",
            )
        )
    return out


def build_decisions(
    policy: Policy, ranked: pd.DataFrame, kb: Any = None, previous: dict[str, dict] | None = None
) -> list[Decision]:
    """Explained :class:`Decision` objects for the rows :func:`decide_frame` selected."""
    finder = _PassageFinder(kb if policy.kb.enabled else None, policy)
    total_w = sum(c.weight for c in policy.criteria)
    previous = previous or {}
    decisions = []
    for r in ranked.itertuples(index=False):
        factors = json.loads(r.top_factors) if isinstance(r.top_factors, str) else []
        evidence = _evidence(factors)
        risk_up = [e for e in evidence if e.contribution > 0][:3]
        reasons = "; ".join(e.text for e in risk_up) or "model score above threshold"
        drivers = " ".join(dict.fromkeys(FEATURE_QUERY.get(e.feature, e.feature) for e in risk_up))
        snap = pd.Timestamp(r.snapshot_date).date()
        did = _id(policy.key, r.account_id, snap)
        criteria = {
            c.name: round(c.weight * float(getattr(r, f"crit_{c.name}")) / total_w, 4)
            for c in policy.criteria
        }
        actions = []
        for rule in policy.actions_for(r.priority):
            passages = finder.find(rule.kb_query.format(drivers=drivers or "churn risk"))
            params = _action_parameters(rule, r)
            cite = "; ".join(f"see '{_where(p)}'" for p in passages)
            actions.append(
                PlannedAction(
                    type=rule.type,
                    parameters=params,
                    priority=r.priority,
                    reasoning=f"{_WHY[rule.type]}: {reasons}" + (f" ({cite})" if cite else ""),
                    passages=passages,
                )
            )
        prev = _previous(previous.get(r.account_id), snap)
        top_criteria = sorted(criteria.items(), key=lambda kv: -kv[1])[:3]
        explanation = (
            f"Ranked #{r.rank} by policy {policy.key}: risk {r.risk:.2f} "
            f"(criteria: {', '.join(f'{k} {v:.2f}' for k, v in top_criteria)}) x value {r.value:.2f} "
            f"= {r.priority_score:.2f} → {r.priority}. Model drivers: {reasons}."
        )
        cited = {p.chunk_id: p for a in actions for p in a.passages}
        if cited:
            explanation += " Playbook passages: " + "; ".join(f"[{_where(p)}]" for p in cited.values())
        if prev:
            explanation += f" Previously {prev['priority']} on {prev['snapshot']}."
        decisions.append(
            Decision(
                decision_id=did,
                account_id=r.account_id,
                account_name=r.account_name or r.account_id,
                segment=r.segment,
                arr=_num(r.arr),
                snapshot_date=snap,
                churn_score=float(r.churn_score),
                priority=r.priority,
                priority_score=float(r.priority_score),
                rank=int(r.rank),
                confidence=float(r.confidence),
                situation_summary=(
                    f"{r.account_name} ({r.segment}, ARR ${_num(r.arr):,.0f}) has a {r.churn_score:.0%} "
                    f"churn risk with {_fmt_days(r.days_to_renewal)} days to renewal."
                ),
                key_insights=_insights(r, did, reasons, policy),
                actions=actions,
                human_review_required=bool(r.human_review_required),
                evidence=evidence,
                criteria=criteria,
                explanation=explanation,
                previous_priority=prev["priority"] if prev else None,
            )
        )
    return decisions


def _where(p: Passage) -> str:
    return f"{p.title} › {p.heading}" if p.heading else p.title


_WHY = {
    "slack_message": "alert the account team",
    "crm_task": "a named owner must review the account before renewal",
    "email_draft": "prepare an executive check-in",
    "webhook": "notify downstream systems",
    "warehouse_writeback": "record the risk flag for reporting",
}


def _action_parameters(rule: Any, r: Any) -> dict[str, Any]:
    p = dict(rule.parameters)
    if rule.type == "slack_message":
        p["text"] = (
            f"{r.account_name}: churn risk {r.churn_score:.0%} ({r.priority}, rank {r.rank}). "
            f"{_fmt_days(r.days_to_renewal)} days to renewal, ARR ${_num(r.arr):,.0f}."
        )
    elif rule.type == "crm_task":
        due = p.pop("due_in_days", 7)
        p.update(
            subject=f"Churn-risk review: {r.account_name}",
            account_id=r.account_id,
            due_in_days=int(due.get(r.priority, 7)) if isinstance(due, dict) else int(due),
        )
    elif rule.type == "email_draft":
        p.update(account_id=r.account_id, subject=f"Checking in ahead of your renewal, {r.account_name}")
    else:
        p.setdefault("account_id", r.account_id)
    return p


def _previous(state: dict | None, snap: date) -> dict | None:
    """The latest recorded decision for an earlier snapshot (never the current one, so a re-run of the
    same situation yields the same decision)."""
    if not state:
        return None
    earlier = [s for s in state.get("history", {}) if s < str(snap)]
    if not earlier:
        return None
    s = max(earlier)
    return {"snapshot": s, **state["history"][s]}


def _data_agent(agent: Agent) -> Any:
    """The Data Agent the Decision Agent reads through (guarded, cached, logged): the ``data_agent``
    service when given, else one on the same warehouse and runtime."""
    if "data_agent" in agent.services:
        return agent.services["data_agent"]
    from revops_pipelines.agents.data import DataAgent

    return DataAgent(agent.warehouse, agent.runtime)


def assess_churn_risk(agent: DecisionAgent, p: ChurnRiskParams, context: dict[str, Any]) -> DecisionBatch:
    policy = agent.services.get("policy") or load_policy(p.policy)
    if p.threshold is not None:
        policy = policy.model_copy(deep=True)
        policy.thresholds.min_churn_score = p.threshold
    df = _data_agent(agent).read_frame("decision_context", _CONTEXT_SQL, [p.snapshot_date])
    ranked = decide_frame(policy, df, p.max_accounts)
    kb = _open_kb(agent) if (p.use_knowledge_base and policy.kb.enabled and len(ranked)) else None
    ids = ranked["account_id"].tolist()
    previous = agent.state.get_many(f"decision:{policy.policy_id}", ids) if ids else {}
    decisions = build_decisions(policy, ranked, kb, previous)
    snap = pd.Timestamp(df["snapshot_date"].iloc[0]).date() if len(df) else None
    batch = DecisionBatch(
        policy=policy.key,
        snapshot_date=snap,
        evaluated=ranked.attrs["evaluated"],
        eligible=ranked.attrs["eligible"],
        decisions=decisions,
        tenant_id=agent.runtime.tenant_id,
    )
    if decisions:
        agent.warehouse.merge(DECISIONS, decisions_frame(batch))
        _record_insights(agent, decisions)
        agent.state.put_many(
            f"decision:{policy.policy_id}",
            {
                d.account_id: {
                    "history": {
                        **previous.get(d.account_id, {}).get("history", {}),
                        str(d.snapshot_date): {"priority": d.priority, "priority_score": d.priority_score},
                    }
                }
                for d in decisions
            },
        )
    return batch


def _record_insights(agent: Agent, decisions: list[Decision]) -> None:
    """Insert insights not seen before; existing ones keep their (possibly human-set) status."""
    rows = [
        {
            "insight_id": i.insight_id,
            "decision_id": d.decision_id,
            "account_id": d.account_id,
            "snapshot_date": d.snapshot_date,
            "category": i.category,
            "status": i.status,
            "text": i.text,
            "confidence": i.confidence,
            "impact": i.impact,
            "urgency": i.urgency,
            "created_at": datetime.now(UTC).replace(tzinfo=None),
        }
        for d in decisions
        for i in d.key_insights
    ]
    agent.warehouse.ensure_table(INSIGHTS)
    marks = ", ".join("?" for _ in rows)
    seen = set(
        agent.warehouse.query(
            f"SELECT insight_id FROM agent_insights WHERE insight_id IN ({marks})",
            [r["insight_id"] for r in rows],
        )["insight_id"]
    )
    new = [r for r in rows if r["insight_id"] not in seen]
    if new:
        agent.warehouse.merge(INSIGHTS, pd.DataFrame(new, columns=INSIGHTS.column_names))


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
    """Services (keyword arguments): ``knowledge_base`` (anything with ``search(query, k, collection=)``;
    ``None`` disables passages; default: the KB at ``AgentRuntime.kb_uri`` / settings), ``policy``,
    ``data_agent`` (the Data Agent its context is read through; default one on the same warehouse)."""

    name = "decision"
    version = "2"
    actions = {
        "assess_churn_risk": ActionSpec(
            ChurnRiskParams,
            DecisionBatch,
            assess_churn_risk,
            "Rank accounts with a YAML multi-criteria policy; explain with contributions and KB passages.",
        )
    }
