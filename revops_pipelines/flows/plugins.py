"""Custom step types — the plug-in point of the flow language.

Register a Python function as a step type and use it in any flow with ``type: <name>``::

    from pydantic import BaseModel
    from revops_pipelines.flows.plugins import StepContext, register_step_type

    class ScoreParams(BaseModel):
        weight: float = 1.0

    def score(params: ScoreParams, ctx: StepContext) -> dict:
        return {"score": params.weight * float(ctx.entity["arr"])}

    register_step_type("score", score, ScoreParams, "Weighted ARR score")

The loader validates a step's ``parameters`` against ``params_model`` (templated values are checked at
run time), the compiler calls ``fn(params, ctx)`` once per entity (fan-out flows) or once per run, and
the returned JSON-ready dict becomes the step's output (``${steps.<id>.output...}``). Register types
before the flows load, e.g. in a module imported by your code location.

Built in: ``action`` — one planned action (Slack message, CRM task, e-mail draft, ...) for the entity,
carried out by the Execution Agent: dry-run, guardrails, allow-lists and idempotency keys included.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from revops_pipelines.validation import StrictModel


@dataclass
class StepContext:
    flow_id: str
    step_id: str
    run_id: str | None
    warehouse: Any
    agents: Any  # AgentRuntime
    entity: dict[str, Any] | None = None
    entity_id: str | None = None
    upstream: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StepType:
    name: str
    fn: Callable[[Any, StepContext], dict[str, Any]]
    params: type[BaseModel]
    description: str = ""


STEP_TYPES: dict[str, StepType] = {}


def register_step_type(
    name: str,
    fn: Callable[[Any, StepContext], dict[str, Any]],
    params_model: type[BaseModel],
    description: str = "",
) -> StepType:
    """Make ``type: name`` usable in flows. Re-registering a name replaces it."""
    if not name.isidentifier() or name in ("agent",):
        raise ValueError(f"step type name {name!r} must be an identifier")
    st = StepType(name, fn, params_model, description or (fn.__doc__ or "").strip())
    STEP_TYPES[name] = st
    return st


class ActionParams(StrictModel):
    type: Literal["slack_message", "crm_task", "email_draft", "webhook", "warehouse_writeback"]
    parameters: dict[str, Any] = Field(description="The action's payload (templated).")
    priority: Literal["critical", "high", "medium", "low"] = "medium"
    reasoning: str = Field(default="flow step", min_length=1)


def execute_planned(
    ctx: StepContext,
    actions: list[ActionParams],
    *,
    account_id: str,
    account_name: str,
    arr: float = 0.0,
    summary: str,
) -> dict[str, Any]:
    """Carry out ``actions`` for one account through the Execution Agent (one decision-shaped plan).

    The decision id is derived from flow, step and account (and the event, in an event-triggered run),
    so a repeated invocation finds the same idempotency keys and sends nothing twice.
    """
    from revops_pipelines.agents.execution import ExecutionAgent

    occurrence = (ctx.entity or {}).get("event_key")  # event-triggered: once per event, not per account
    seed = f"{ctx.flow_id}|{ctx.step_id}|{account_id}" + (f"|{occurrence}" if occurrence else "")
    decision_id = hashlib.sha256(seed.encode()).hexdigest()[:24]
    priority = actions[0].priority if actions else "low"
    plan = {
        "policy": f"flow:{ctx.flow_id}",
        "evaluated": 1,
        "eligible": 1,
        "tenant_id": getattr(ctx.agents, "tenant_id", None),
        "decisions": [
            {
                "decision_id": decision_id,
                "account_id": account_id,
                "account_name": account_name,
                "arr": max(float(arr or 0), 0.0),
                "snapshot_date": datetime.now(UTC).date().isoformat(),
                "churn_score": 0.0,
                "priority": priority,
                "priority_score": 0.0,
                "rank": 1,
                "confidence": 1.0,
                "situation_summary": summary,
                "key_insights": [],
                "actions": [a.model_dump() for a in actions],
                "human_review_required": False,
                "evidence": [],
                "criteria": {},
                "explanation": summary,
            }
        ],
    }
    agent = ExecutionAgent(ctx.warehouse, ctx.agents)
    out = agent.run(
        "execute_actions",
        {"action_types": sorted({a.type for a in actions})},
        {"flow_id": ctx.flow_id, "step_id": ctx.step_id, "run_id": ctx.run_id, "upstream": {"plan": plan}},
    )
    return out.model_dump(mode="json")


def _action(params: ActionParams, ctx: StepContext) -> dict[str, Any]:
    """One action for the entity through the Execution Agent (dry-run aware, idempotent)."""
    e = ctx.entity or {}
    account_id = str(e.get("account_id") or ctx.entity_id or f"flow:{ctx.flow_id}")
    report = execute_planned(
        ctx,
        [params],
        account_id=account_id,
        account_name=str(e.get("account_name") or e.get("name") or account_id),
        arr=float(e.get("arr") or 0),
        summary=f"{ctx.flow_id}.{ctx.step_id}: {params.reasoning}",
    )
    results = report["action_results"]
    return {"status": results[0]["status"] if results else "none", "summary": report["execution_summary"]}


register_step_type("action", _action, ActionParams)
