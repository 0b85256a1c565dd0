"""Flow failure notifications: a Slack message through the Execution Agent (dry-run aware, logged in
``action_log`` with an idempotency key per run, so a re-evaluated sensor tick sends nothing twice)."""

from __future__ import annotations

from typing import Any

from revops_pipelines.flows.plugins import ActionParams, StepContext, execute_planned
from revops_pipelines.flows.spec import FlowSpec


def notify_run_failure(
    spec: FlowSpec, run_id: str, message: str, steps: list[str], warehouse: Any, agents: Any
) -> dict[str, Any]:
    where = f" at {', '.join(steps)}" if steps else ""
    text = f":rotating_light: flow {spec.flow_id} v{spec.version} run {run_id[:8]} failed{where}: {message}"[
        :3000
    ]
    ctx = StepContext(spec.flow_id, f"run_failure_{run_id}", run_id, warehouse, agents)
    action = ActionParams(
        type="slack_message",
        parameters={"channel": spec.error_handling.notify, "text": text},
        priority="high",
        reasoning="flow run failed",
    )
    report = execute_planned(
        ctx, [action], account_id=f"flow:{spec.flow_id}", account_name=f"flow {spec.flow_id}", summary=text
    )
    results = report["action_results"]
    return {"status": results[0]["status"] if results else "none", "text": text, "report": report}
