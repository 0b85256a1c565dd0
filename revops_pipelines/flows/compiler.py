"""Compile validated :class:`FlowSpec` s into Dagster jobs, schedules and sensors — the one place YAML
becomes definitions (the same spec becomes Amazon States Language in :mod:`.asl`).

* one op per step (``<flow>__<step>``) calling its agent action or custom step type; on-failure
  handler steps are not ops, they run inside the failing op after its last retry;
* fan-out flows get a ``<flow>__select_entities`` op first; each step op advances every entity as far
  as its persisted state allows (waits, approvals, ``when``) — see :mod:`.runtime`;
* batch flows: a false ``when`` yields no output, so downstream steps are skipped;
* retry policy per step from ``error_handling`` (step overrides flow default);
* jobs are tagged with flow id, version and owner; each run gets ``flow/entity_count`` when it selects;
* triggers: ``schedule`` → ScheduleDefinition, ``sensor`` → asset sensor, both STOPPED by default;
  ``event`` → one ``webhook_event_sensor`` for all event flows (:mod:`revops_pipelines.webhooks.sensor`:
  one run per stored event and matching flow, narrowed to the event's entity); one run-failure sensor
  for all flow jobs notifies the flow's ``error_handling.notify`` channel through the Execution Agent;
* the select op takes optional config ``entity_ids`` (narrow the selection) and ``event`` (the event
  payload, exposed to templates as ``${entity.event_<field>}``).

The run tag ``flow/as_of`` (ISO date-time) overrides the clock, e.g. to replay "day 30" in a test.
"""

from datetime import datetime
from typing import Any, NamedTuple

import dagster as dg

from revops_pipelines.agents.base import AgentRuntime
from revops_pipelines.flows.spec import FlowSpec, Step
from revops_pipelines.signature import pinned
from revops_pipelines.warehouse import Warehouse

AS_OF_TAG = "flow/as_of"


class CompiledFlows(NamedTuple):
    jobs: list[dg.JobDefinition]
    schedules: list[dg.ScheduleDefinition]
    sensors: list[dg.SensorDefinition]


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
    if "counts" in out:
        md.update({f"entities_{k}": v for k, v in out["counts"].items()})
    return md


def _retry(spec: FlowSpec, step: Step) -> dg.RetryPolicy:
    eh = spec.step_errors(step)
    return dg.RetryPolicy(
        max_retries=eh.retry_count,
        delay=eh.backoff_seconds,
        backoff=dg.Backoff.EXPONENTIAL if eh.backoff == "exponential" else dg.Backoff.LINEAR,
    )


def _now(context: dg.OpExecutionContext) -> datetime:
    from revops_pipelines.flows.runtime import _parse_time, utcnow

    tag = context.run.tags.get(AS_OF_TAG) if context.run else None
    return _parse_time(tag) if tag else utcnow()


def _base(spec: FlowSpec, step: Step, context, warehouse, agents):
    from revops_pipelines.flows.plugins import StepContext

    return StepContext(spec.flow_id, step.id, context.run_id, warehouse, agents)


def _select_op(spec: FlowSpec) -> dg.OpDefinition:
    @dg.op(
        name=f"{spec.flow_id}__select_entities",
        out=dg.Out(dg.Any),
        tags={"flow_id": spec.flow_id},
        description=f"Select the entities of flow {spec.flow_id} (parameterised SQL).",
        config_schema={
            "entity_ids": dg.Field([str], is_required=False, description="Only these entity ids."),
            "event": dg.Field(
                dg.Permissive(), is_required=False, description="The triggering event (event flows)."
            ),
        },
    )
    @pinned
    def _op(context: dg.OpExecutionContext, warehouse: Warehouse, agents: AgentRuntime):
        from revops_pipelines.flows.runtime import select_entities

        cfg = context.op_config or {}
        rows = select_entities(
            spec, warehouse, agents, entity_ids=cfg.get("entity_ids"), event=cfg.get("event")
        )
        if context.instance and context.run_id:
            context.instance.add_run_tags(context.run_id, {"flow/entity_count": str(len(rows))})
        context.add_output_metadata({"entities": len(rows)})
        return rows

    return _op


def _step_op(spec: FlowSpec, step: Step) -> dg.OpDefinition:
    fan_out = spec.entities is not None
    ins = {f"after_{d}": dg.In(dg.Any) for d in step.depends_on}
    if fan_out:
        ins["entities"] = dg.In(dg.Any)
    policy = _retry(spec, step)
    label = f"{step.agent}.{step.action}" if step.agent else f"type {step.type}"

    @dg.op(
        name=f"{spec.flow_id}__{step.id}",
        ins=ins,
        out=dg.Out(dg.Any, is_required=False),
        retry_policy=policy,
        tags={"flow_id": spec.flow_id, "step": step.id, "kind": step.agent or step.type or ""},
        description=step.description or label,
    )
    @pinned
    def _op(context: dg.OpExecutionContext, warehouse: Warehouse, agents: AgentRuntime, **inputs: Any):
        from revops_pipelines.flows import runtime
        from revops_pipelines.flows.state import open_state

        base = _base(spec, step, context, warehouse, agents)
        final = context.retry_number >= policy.max_retries
        if fan_out:
            state = open_state(agents)
            out = runtime.run_entity_step(
                spec, step, base, inputs["entities"], state, now=_now(context), final_attempt=final
            )
            yield dg.Output(out, metadata=_summary(out))
            return
        upstream = {k.removeprefix("after_"): v for k, v in inputs.items()}
        try:
            out = runtime.run_batch_step(spec, step, base, upstream)
        except Exception as e:
            if final:
                runtime.run_failure_handler(spec, step, base, f"{type(e).__name__}: {e}")
            raise
        if out is runtime.SKIPPED:
            context.log.info(f"{step.id}: when {step.when!r} is false; downstream steps are skipped")
            return
        yield dg.Output(out, metadata=_summary(out))

    return _op


def build_job(spec: FlowSpec) -> dg.JobDefinition:
    steps = spec.dag_steps()
    ops = {s.id: _step_op(spec, s) for s in steps}
    deps: dict[str, dict[str, dg.DependencyDefinition]] = {
        ops[s.id].name: {f"after_{d}": dg.DependencyDefinition(ops[d].name) for d in s.depends_on}
        for s in steps
    }
    nodes = list(ops.values())
    if spec.entities is not None:
        select = _select_op(spec)
        nodes.insert(0, select)
        for s in steps:
            deps[ops[s.id].name]["entities"] = dg.DependencyDefinition(select.name)
    graph = dg.GraphDefinition(
        name=f"flow_{spec.flow_id}", node_defs=nodes, dependencies=deps, description=spec.description
    )
    return graph.to_job(
        tags={
            "flow_id": spec.flow_id,
            "flow_version": str(spec.version),
            "owner": spec.owner,
            "flow/trigger": spec.trigger.type,
        },
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


def build_asset_sensor(spec: FlowSpec, job: dg.JobDefinition) -> dg.SensorDefinition | None:
    """``trigger: {type: sensor, asset: X}``: one run per new materialisation of X (cursor = event id)."""
    if spec.trigger.type != "sensor" or not spec.enabled:
        return None

    @dg.asset_sensor(
        name=f"flow_{spec.flow_id}_sensor",
        asset_key=dg.AssetKey.from_user_string(spec.trigger.asset or ""),
        job=job,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description=f"Run flow {spec.flow_id} after {spec.trigger.asset} materialises.",
    )
    def _sensor(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry):
        yield dg.RunRequest(run_key=f"{spec.flow_id}:{asset_event.run_id}:{asset_event.timestamp}")

    return _sensor


def build_failure_sensor(specs: list[FlowSpec], jobs: list[dg.JobDefinition]) -> dg.SensorDefinition:
    by_id = {s.flow_id: s for s in specs}

    @dg.run_failure_sensor(
        name="flow_run_failure_notifier",
        monitored_jobs=jobs,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description="Notify the flow's error_handling.notify Slack channel (through the Execution Agent).",
    )
    def _notify(context: dg.RunFailureSensorContext, warehouse: Warehouse, agents: AgentRuntime):
        from revops_pipelines.flows.notify import notify_run_failure

        run = context.dagster_run
        spec = by_id.get(run.tags.get("flow_id", ""))
        if spec is None or not spec.error_handling.notify:
            return dg.SkipReason(f"run {run.run_id} is not a flow run with a notify channel")
        message = context.failure_event.message or "failed"
        steps = (
            [e.step_key for e in context.get_step_failure_events()]
            if hasattr(context, "get_step_failure_events")
            else []
        )
        result = notify_run_failure(spec, run.run_id, message, steps, warehouse, agents)
        context.log.info(f"notified {spec.error_handling.notify}: {result['status']}")
        return None

    return _notify


def compile_flows(specs: list[FlowSpec]) -> CompiledFlows:
    jobs, schedules, sensors = [], [], []
    enabled = [s for s in specs if s.enabled]
    for spec in enabled:
        job = build_job(spec)
        jobs.append(job)
        if sched := build_schedule(spec, job):
            schedules.append(sched)
        if sensor := build_asset_sensor(spec, job):
            sensors.append(sensor)
    event_flows = [(s, j) for s, j in zip(enabled, jobs, strict=True) if s.trigger.type == "event"]
    if event_flows:
        from revops_pipelines.webhooks.sensor import build_event_sensor

        sensors.append(build_event_sensor(event_flows))
    if jobs:
        sensors.append(build_failure_sensor(enabled, jobs))
    return CompiledFlows(jobs, schedules, sensors)
