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
import time
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
    # optional batch path: ``batch_fn([(params, ctx), ...])`` returns one output dict (or the exception
    # raised for that item) per item, in order; the runtime uses it to run a fan-out step for many
    # entities in one call. It must give each item the output ``fn`` would have given it.
    batch_fn: Callable[[list[tuple[Any, StepContext]]], list[dict[str, Any] | BaseException]] | None = None


STEP_TYPES: dict[str, StepType] = {}


def register_step_type(
    name: str,
    fn: Callable[[Any, StepContext], dict[str, Any]],
    params_model: type[BaseModel],
    description: str = "",
    *,
    batch_fn: Callable[[list[tuple[Any, StepContext]]], list[dict[str, Any] | BaseException]] | None = None,
) -> StepType:
    """Make ``type: name`` usable in flows. Re-registering a name replaces it. ``batch_fn`` (optional)
    runs many entities in one call; see :class:`StepType`."""
    if not name.isidentifier() or name in ("agent",):
        raise ValueError(f"step type name {name!r} must be an identifier")
    st = StepType(name, fn, params_model, description or (fn.__doc__ or "").strip(), batch_fn)
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
    decision = planned_decision(
        ctx, actions, account_id=account_id, account_name=account_name, arr=arr, summary=summary
    )
    return _execute(ctx, [decision])


def planned_decision(
    ctx: StepContext,
    actions: list[ActionParams],
    *,
    account_id: str,
    account_name: str,
    arr: float = 0.0,
    summary: str,
) -> dict[str, Any]:
    """The decision-shaped plan of ``actions`` for one account (see :func:`execute_planned`)."""
    occurrence = (ctx.entity or {}).get("event_key")  # event-triggered: once per event, not per account
    seed = f"{ctx.flow_id}|{ctx.step_id}|{account_id}" + (f"|{occurrence}" if occurrence else "")
    decision_id = hashlib.sha256(seed.encode()).hexdigest()[:24]
    priority = actions[0].priority if actions else "low"
    return {
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


def _execute(ctx: StepContext, decisions: list[dict[str, Any]]) -> dict[str, Any]:
    """One Execution Agent call for the planned decisions."""
    from revops_pipelines.agents.execution import ExecutionAgent

    plan = {
        "policy": f"flow:{ctx.flow_id}",
        "evaluated": len(decisions),
        "eligible": len(decisions),
        "tenant_id": getattr(ctx.agents, "tenant_id", None),
        "decisions": decisions,
    }
    types = sorted({a["type"] for d in decisions for a in d["actions"]})
    agent = ExecutionAgent(ctx.warehouse, ctx.agents)
    out = agent.run(
        "execute_actions",
        {"action_types": types},
        {"flow_id": ctx.flow_id, "step_id": ctx.step_id, "run_id": ctx.run_id, "upstream": {"plan": plan}},
    )
    return out.model_dump(mode="json")


def _action(params: ActionParams, ctx: StepContext) -> dict[str, Any]:
    """One action for the entity through the Execution Agent (dry-run aware, idempotent)."""
    report = _execute(ctx, [_action_decision(params, ctx)])
    results = report["action_results"]
    return {"status": results[0]["status"] if results else "none", "summary": report["execution_summary"]}


def _action_decision(params: ActionParams, ctx: StepContext) -> dict[str, Any]:
    e = ctx.entity or {}
    account_id = str(e.get("account_id") or ctx.entity_id or f"flow:{ctx.flow_id}")
    return planned_decision(
        ctx,
        [params],
        account_id=account_id,
        account_name=str(e.get("account_name") or e.get("name") or account_id),
        arr=float(e.get("arr") or 0),
        summary=f"{ctx.flow_id}.{ctx.step_id}: {params.reasoning}",
    )


def _action_batch(items: list[tuple[ActionParams, StepContext]]) -> list[dict[str, Any] | BaseException]:
    """Many entities' actions in one Execution Agent call per chunk (``max_actions_per_run`` actions at
    most, the guardrail of one call). Each entity gets the output :func:`_action` would give it: its
    own result and a summary of its own actions. Two items with the same decision id (same account and
    step) never share a call, so idempotency keys still see the first one's outcome."""
    from revops_pipelines.agents.execution import DONE

    out: list[dict[str, Any] | BaseException] = [RuntimeError("not run")] * len(items)
    decisions = []
    for params, ctx in items:
        try:
            decisions.append(_action_decision(params, ctx))
        except Exception as e:  # noqa: PERF203 — one bad entity must not sink the batch
            decisions.append(e)
    pending = [i for i, d in enumerate(decisions) if not isinstance(d, BaseException)]
    for i, d in enumerate(decisions):
        if isinstance(d, BaseException):
            out[i] = d
    chunk = max(1, int(getattr(items[0][1].agents, "max_actions_per_run", 500))) if items else 1
    while pending:
        seen: set[str] = set()
        batch, later = [], []
        for i in pending:
            did = decisions[i]["decision_id"]  # type: ignore[index]
            (later if did in seen or len(batch) >= chunk else batch).append(i)
            seen.add(did)
        ctx = items[batch[0]][1]
        started = time.perf_counter()
        try:
            report = _execute(ctx, [decisions[i] for i in batch])  # type: ignore[misc]
        except Exception as e:  # the whole call failed: each entity gets the error
            for i in batch:
                out[i] = e
            pending = later
            continue
        share = (time.perf_counter() - started) * 1000 / len(batch)
        results = iter(report["action_results"])  # one per planned action, in plan order
        for i in batch:
            res = [next(results) for _ in decisions[i]["actions"]]  # type: ignore[index]
            out[i] = {
                "status": res[0]["status"] if res else "none",
                "summary": {
                    "total": len(res),
                    "successful": sum(1 for r in res if r["status"] in DONE),
                    "failed": sum(1 for r in res if r["status"] in ("failed", "dead_lettered")),
                    "skipped": sum(1 for r in res if r["status"].startswith("skipped")),
                    "rejected": sum(1 for r in res if r["status"] == "rejected"),
                    "time_ms": share,
                },
            }
        pending = later
    return out


register_step_type("action", _action, ActionParams, batch_fn=_action_batch)
