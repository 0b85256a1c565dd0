"""Execution Agent: carries out planned actions, verified, idempotent, and logged.

Every action gets an idempotency key derived from (flow, step, decision, action type). Before
anything is done the key is looked up in ``action_log``: an action already completed (or recorded
in dry-run) is reported as ``skipped_duplicate`` and not repeated, so re-running a flow never
repeats a side effect. Parameters are verified first (allowed action types, guardrail on the
number of actions per run); failures are recorded with their error, never dropped.

In this foundation slice actions run in dry-run (the default, ``REVOPS_DRY_RUN=true``): the
payload that would be sent is recorded. Live Slack / CRM / webhook senders arrive with issue 8;
asking for live sending before then fails with a configuration error instead of pretending.
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import Field

from revops_pipelines.agents.base import ActionSpec, Agent
from revops_pipelines.agents.decision import ActionType, DecisionBatch
from revops_pipelines.errors import ConfigurationError, ValidationFailed
from revops_pipelines.lazy import pd
from revops_pipelines.validation import StrictModel, parse
from revops_pipelines.warehouse import table

ACTION_LOG = table(
    "action_log",
    [
        ("idempotency_key", "TEXT"),
        ("flow_id", "TEXT", False),
        ("step_id", "TEXT", False),
        ("run_id", "TEXT"),
        ("decision_id", "TEXT", False),
        ("account_id", "TEXT", False),
        ("action_type", "TEXT", False),
        ("status", "TEXT", False),
        ("payload", "TEXT", False),
        ("error", "TEXT"),
        ("created_at", "TIMESTAMP", False),
    ],
    keys=("idempotency_key",),
    description="Every action the Execution Agent planned, with its outcome (dry_run, succeeded, failed).",
    group="agents",
)
DONE = ("succeeded", "dry_run")


class ExecuteParams(StrictModel):
    action_types: list[ActionType] = Field(
        min_length=1, description="Which planned action types this step runs."
    )
    channel: str = Field(default="#cs-churn-alerts", pattern=r"^#[a-z0-9._-]{1,80}$")


class ActionResult(StrictModel):
    action_id: str
    type: str
    account_id: str
    status: Literal["dry_run", "succeeded", "failed", "skipped_duplicate"]
    details: dict[str, Any]
    error: str | None = None
    timestamp: datetime


class ExecutionSummary(StrictModel):
    total: int
    successful: int
    failed: int
    skipped: int
    time_ms: float


class ExecutionReport(StrictModel):
    execution_summary: ExecutionSummary
    action_results: list[ActionResult]


def _key(flow_id: str, step_id: str, decision_id: str, action_type: str) -> str:
    return hashlib.sha256(f"{flow_id}|{step_id}|{decision_id}|{action_type}".encode()).hexdigest()[:32]


def _payload(action_type: str, parameters: dict[str, Any], p: ExecuteParams) -> dict[str, Any]:
    if action_type == "slack_message":
        return {"channel": p.channel, "text": parameters["text"]}
    return dict(parameters)


def execute_actions(agent: ExecutionAgent, p: ExecuteParams, context: dict[str, Any]) -> ExecutionReport:
    started = time.perf_counter()
    flow_id = context.get("flow_id") or "adhoc"
    step_id = context.get("step_id") or "execute"
    run_id = context.get("run_id")
    batches = [
        parse(DecisionBatch, b, "upstream decisions")
        for b in context.get("upstream", {}).values()
        if isinstance(b, dict) and "decisions" in b
    ]
    planned = [(d, a) for b in batches for d in b.decisions for a in d.actions if a.type in p.action_types]
    if len(planned) > agent.runtime.max_actions_per_run:
        raise ValidationFailed(
            "execution plan",
            [
                f"actions: {len(planned)} planned, more than the guardrail max_actions_per_run="
                f"{agent.runtime.max_actions_per_run}"
            ],
        )
    if planned and not agent.runtime.dry_run:
        raise ConfigurationError(
            "REVOPS_DRY_RUN", "live sending is not available in this release", "set REVOPS_DRY_RUN=true"
        )
    keys = [_key(flow_id, step_id, d.decision_id, a.type) for d, a in planned]
    done: set[str] = set()
    if keys:
        agent.warehouse.ensure_table(ACTION_LOG)
        marks = ", ".join("?" for _ in keys)
        seen = agent.warehouse.query(
            f"SELECT idempotency_key FROM action_log WHERE status IN ('succeeded', 'dry_run') "
            f"AND idempotency_key IN ({marks})",
            keys,
        )
        done = set(seen["idempotency_key"])
    now = datetime.now(UTC).replace(tzinfo=None)
    results, rows = [], []
    for key, (d, a) in zip(keys, planned, strict=True):
        payload = _payload(a.type, a.parameters, p)
        if key in done:
            results.append(
                ActionResult(
                    action_id=key,
                    type=a.type,
                    account_id=d.account_id,
                    status="skipped_duplicate",
                    details={"reason": "already executed"},
                    timestamp=now,
                )
            )
            continue
        status = "dry_run"
        results.append(
            ActionResult(
                action_id=key,
                type=a.type,
                account_id=d.account_id,
                status=status,
                details={"would_send": payload},
                timestamp=now,
            )
        )
        rows.append(
            {
                "idempotency_key": key,
                "flow_id": flow_id,
                "step_id": step_id,
                "run_id": run_id,
                "decision_id": d.decision_id,
                "account_id": d.account_id,
                "action_type": a.type,
                "status": status,
                "payload": json.dumps(payload, sort_keys=True),
                "error": None,
                "created_at": now,
            }
        )
    if rows:
        agent.warehouse.merge(ACTION_LOG, pd.DataFrame(rows, columns=ACTION_LOG.column_names))
    ok = sum(1 for r in results if r.status in DONE)
    failed = sum(1 for r in results if r.status == "failed")
    return ExecutionReport(
        execution_summary=ExecutionSummary(
            total=len(results),
            successful=ok,
            failed=failed,
            skipped=sum(1 for r in results if r.status == "skipped_duplicate"),
            time_ms=(time.perf_counter() - started) * 1000,
        ),
        action_results=results,
    )


class ExecutionAgent(Agent):
    name = "execution"
    version = "1"
    actions = {
        "execute_actions": ActionSpec(
            ExecuteParams,
            ExecutionReport,
            execute_actions,
            "Run planned actions of the given types, once each.",
        )
    }
