"""Compile a validated :class:`FlowSpec` into a Dagster job (one op per step) and its schedule.

Each op builds the step's agent with the run's resources, passes it the outputs of the steps it
depends on, and returns the agent's validated output (JSON-ready dict). Retries follow the flow's
``error_handling`` (exponential backoff). Jobs are tagged with flow id, version and owner.
"""

from typing import Any

import dagster as dg

from revops_pipelines.agents.base import AgentRuntime
from revops_pipelines.flows.spec import FlowSpec, Step
from revops_pipelines.warehouse import Warehouse


def _summary(out: dict[str, Any]) -> dict[str, Any]:
    md: dict[str, Any] = {}
    if "decisions" in out:
        md["decisions"] = len(out["decisions"])
        md["evaluated"] = out.get("evaluated", 0)
        md["priorities"] = dg.MetadataValue.json(
            {
                p: sum(1 for d in out["decisions"] if d["priority"] == p)
                for p in ("critical", "high", "medium", "low")
            }
        )
    if "execution_summary" in out:
        md.update({k: v for k, v in out["execution_summary"].items() if k != "time_ms"})
    return md


def _step_op(spec: FlowSpec, step: Step) -> dg.OpDefinition:
    from revops_pipelines.agents.registry import AGENTS

    agent_cls = AGENTS[step.agent]
    eh = spec.error_handling

    @dg.op(
        name=f"{spec.flow_id}__{step.id}",
        ins={f"after_{d}": dg.In(dg.Any) for d in step.depends_on},
        out=dg.Out(dg.Any),
        retry_policy=dg.RetryPolicy(
            max_retries=eh.retry_count, delay=eh.backoff_seconds, backoff=dg.Backoff.EXPONENTIAL
        ),
        tags={"flow_id": spec.flow_id, "agent": step.agent, "action": step.action},
        description=step.description or f"{step.agent}.{step.action}",
    )
    def _op(context: dg.OpExecutionContext, warehouse: Warehouse, agents: AgentRuntime, **upstream: Any):
        agent = agent_cls(warehouse, agents)
        out = agent.run(
            step.action,
            step.parameters,
            {
                "flow_id": spec.flow_id,
                "step_id": step.id,
                "run_id": context.run_id,
                "upstream": {k.removeprefix("after_"): v for k, v in upstream.items()},
            },
        ).model_dump(mode="json")
        context.add_output_metadata(_summary(out))
        return out

    return _op


def build_job(spec: FlowSpec) -> dg.JobDefinition:
    ops = {s.id: _step_op(spec, s) for s in spec.steps}
    deps = {
        ops[s.id].name: {f"after_{d}": dg.DependencyDefinition(ops[d].name) for d in s.depends_on}
        for s in spec.steps
    }
    graph = dg.GraphDefinition(
        name=f"flow_{spec.flow_id}",
        node_defs=list(ops.values()),
        dependencies=deps,
        description=spec.description,
    )
    return graph.to_job(
        tags={"flow_id": spec.flow_id, "flow_version": str(spec.version), "owner": spec.owner},
    )


def build_schedule(spec: FlowSpec, job: dg.JobDefinition) -> dg.ScheduleDefinition | None:
    if spec.trigger.type != "schedule" or not spec.enabled:
        return None
    return dg.ScheduleDefinition(
        name=f"flow_{spec.flow_id}_schedule",
        job=job,
        cron_schedule=spec.trigger.cron,
        execution_timezone=spec.trigger.timezone,
        default_status=dg.DefaultScheduleStatus.STOPPED,
    )


def compile_flows(specs: list[FlowSpec]) -> tuple[list[dg.JobDefinition], list[dg.ScheduleDefinition]]:
    jobs, schedules = [], []
    for spec in specs:
        if not spec.enabled:
            continue
        job = build_job(spec)
        jobs.append(job)
        if sched := build_schedule(spec, job):
            schedules.append(sched)
    return jobs, schedules
