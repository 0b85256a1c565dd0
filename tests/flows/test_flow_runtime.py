"""Compiled flows run: fan-out, waits resumed by later invocations, approvals, when, retries per policy,
on-failure steps, run tags, the asset sensor and the run-failure notifier."""

import dagster as dg
import pytest
from pydantic import BaseModel

from revops_pipelines.flows.compiler import AS_OF_TAG, build_job, compile_flows
from revops_pipelines.flows.loader import load_flow
from revops_pipelines.flows.plugins import STEP_TYPES, register_step_type
from revops_pipelines.flows.state import FlowState, default_path

JOURNEY = """\
flow_id: journey
version: 3
owner: cs
trigger: {type: sensor, asset: churn_scores}
entities:
  sql: "SELECT account_id, account_name, arr, score FROM flow_accounts WHERE score >= ? ORDER BY account_id"
  params: [0.2]
steps:
  - id: kickoff
    type: action
    parameters:
      type: crm_task
      reasoning: kickoff
      parameters: {subject: "Kickoff ${entity.account_name}", account_id: "${entity.account_id}", due_in_days: 2}
  - id: check
    type: probe
    depends_on: [kickoff]
    wait: {days: 7, after: kickoff}
    parameters: {value: "${entity.arr}"}
  - id: alert
    type: action
    depends_on: [check]
    when: "${entity.score} > 0.5"
    parameters:
      type: slack_message
      parameters: {channel: "#cs-churn-alerts", text: "Risk at ${entity.account_name}: ARR ${steps.check.output.value}"}
  - id: review
    type: probe
    depends_on: [check]
    approval: true
    parameters: {value: 1}
"""

CALLS: list[tuple[str, object]] = []


class ProbeParams(BaseModel):
    value: float = 0
    fail_times: int = 0


def _probe(p, ctx):
    CALLS.append((ctx.step_id, ctx.entity_id))
    if sum(1 for s, _ in CALLS if s == ctx.step_id) <= p.fail_times:
        raise RuntimeError(f"transient failure #{len(CALLS)}")
    return {"value": p.value}


@pytest.fixture(autouse=True)
def _probe_type():
    CALLS.clear()
    register_step_type("probe", _probe, ProbeParams)
    yield
    STEP_TYPES.pop("probe", None)


def _run(job, flow_wh, agents, as_of=None, instance=None):
    return job.execute_in_process(
        resources={"warehouse": flow_wh, "agents": agents},
        tags={AS_OF_TAG: as_of} if as_of else {},
        instance=instance,
        raise_on_error=False,
    )


def _statuses(state, flow_id):
    return {e: {k: v["status"] for k, v in d["steps"].items()} for e, d in state.entities(flow_id).items()}


def test_fan_out_waits_approvals_and_resumption(flow_wh, agents, write_flow):
    spec = load_flow(write_flow(JOURNEY))
    job = build_job(spec)
    instance = dg.DagsterInstance.ephemeral()
    r1 = _run(job, flow_wh, agents, "2026-01-01T09:00:00", instance)
    assert r1.success
    tags = instance.get_run_by_id(r1.run_id).tags
    assert (tags["flow_id"], tags["flow_version"], tags["flow/entity_count"]) == ("journey", "3", "2")
    state = FlowState(default_path(agents))
    assert _statuses(state, "journey") == {
        "001A0": {"kickoff": "done", "check": "waiting"},
        "001A2": {"kickoff": "done", "check": "waiting"},
    }
    assert state.get("journey", "001A0")["steps"]["check"]["due_at"].startswith("2026-01-08T09:00")

    assert _run(job, flow_wh, agents, "2026-01-04T09:00:00").success  # day 3: still waiting
    assert CALLS == []
    state_restarted = FlowState(default_path(agents))  # state lives in the file, not the process
    assert _run(job, flow_wh, agents, "2026-01-09T09:00:00").success  # day 8: resumes
    assert sorted(CALLS) == [("check", "001A0"), ("check", "001A2")]
    assert _statuses(state_restarted, "journey") == {
        "001A0": {"kickoff": "done", "check": "done", "alert": "done", "review": "awaiting_approval"},
        "001A2": {"kickoff": "done", "check": "done", "alert": "skipped", "review": "awaiting_approval"},
    }
    state.approve("journey", "001A0", "review", by="test")
    r4 = _run(job, flow_wh, agents, "2026-01-10T09:00:00")
    assert r4.output_for_node("journey__review")["counts"] == {"done": 1, "awaiting_approval": 1}
    assert _statuses(state, "journey")["001A0"]["review"] == "done"
    steps = [
        (h["step_id"], h["status"]) for h in state.history("journey", "001A0") if h["status"] != "running"
    ]
    assert steps[:2] == [("kickoff", "done"), ("check", "waiting")]
    assert ("review", "approved (awaiting_approval)") in steps

    log = flow_wh.query(
        "SELECT step_id, account_id, action_type, status, payload FROM action_log ORDER BY 1, 2"
    )
    assert list(zip(log["step_id"], log["account_id"], log["action_type"], log["status"], strict=True)) == [
        ("alert", "001A0", "slack_message", "dry_run"),
        ("kickoff", "001A0", "crm_task", "dry_run"),
        ("kickoff", "001A2", "crm_task", "dry_run"),
    ]
    assert "Risk at Acme 0: ARR 250000.0" in log["payload"][0]
    _run(job, flow_wh, agents, "2026-02-01T09:00:00")  # nothing left to do: no action repeated
    assert flow_wh.row_count("action_log") == 3


def test_failed_step_is_retried_per_policy(flow_wh, agents, write_flow):
    text = JOURNEY.replace(
        "    wait: {days: 7, after: kickoff}\n", "    error_handling: {retry_count: 2, backoff_seconds: 0}\n"
    )
    text = text.replace(
        'parameters: {value: "${entity.arr}"}', 'parameters: {value: "${entity.arr}", fail_times: 3}'
    )
    job = build_job(load_flow(write_flow(text)))
    node = job.graph.node_named("journey__check")
    assert node.definition.retry_policy.max_retries == 2
    result = _run(job, flow_wh, agents)
    assert result.success
    retries = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert [e.step_key for e in retries] == ["journey__check", "journey__check"]
    # entities done on an earlier attempt are not run again on the retry
    # attempt 1: both fail; attempt 2: 001A0 fails, 001A2 succeeds; attempt 3 runs 001A0 only
    assert (CALLS.count(("check", "001A0")), CALLS.count(("check", "001A2"))) == (3, 2)


def test_on_failure_step_and_failure_notification(flow_wh, agents, write_flow):
    text = JOURNEY.replace("    wait: {days: 7, after: kickoff}\n", "").replace(
        'parameters: {value: "${entity.arr}"}', 'parameters: {value: "${entity.arr}", fail_times: 99}'
    )
    text = text.replace(
        "owner: cs\n", "owner: cs\nerror_handling: {retry_count: 1, backoff_seconds: 0, on_failure: tell}\n"
    )
    text += """\
  - id: tell
    type: probe
    parameters: {value: -1}
"""
    specs = [load_flow(write_flow(text))]
    compiled = compile_flows(specs)
    job = compiled.jobs[0]
    assert "journey__tell" not in job.graph.node_names()
    instance = dg.DagsterInstance.ephemeral()
    result = _run(job, flow_wh, agents, instance=instance)
    assert not result.success
    assert CALLS.count(("tell", None)) == 2  # once per entity, only after the last retry
    state = FlowState(default_path(agents))
    assert _statuses(state, "journey")["001A0"]["check"] == "failed"

    sensor = next(s for s in compiled.sensors if s.name == "flow_run_failure_notifier")
    ctx = dg.build_run_status_sensor_context(
        sensor_name=sensor.name,
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        dagster_event=result.get_run_failure_event(),
        resources={"warehouse": flow_wh, "agents": agents},
    ).for_run_failure()
    sensor(ctx)
    sent = flow_wh.query(
        "SELECT account_id, action_type, status, payload FROM action_log WHERE account_id = 'flow:journey'"
    )
    assert list(sent["status"]) == ["dry_run"]
    assert "#revops-alerts" in sent["payload"][0] and "flow journey v3 run" in sent["payload"][0]
    sensor(ctx)  # a re-evaluated tick sends nothing twice
    assert flow_wh.row_count("action_log") == len(
        flow_wh.query("SELECT DISTINCT idempotency_key FROM action_log")
    )


def test_false_when_skips_downstream_in_batch_flows(flow_wh, agents, write_flow):
    text = """\
    flow_id: batchy
    version: 1
    owner: ops
    steps:
      - {id: a, type: probe, parameters: {value: 0}}
      - {id: b, type: probe, depends_on: [a], when: "${steps.a.output.value} > 0"}
      - {id: c, type: probe, depends_on: [b]}
      - {id: d, type: probe, depends_on: [a], when: "${steps.a.output.value} == 0"}
    """
    result = _run(build_job(load_flow(write_flow(text))), flow_wh, agents)
    assert result.success
    assert [s for s, _ in CALLS] == ["a", "d"]
    skipped = {e.step_key for e in result.all_events if e.event_type_value == "STEP_SKIPPED"}
    assert skipped == {"batchy__c"}


def test_asset_sensor_requests_a_run_per_materialisation(write_flow):
    spec = load_flow(write_flow(JOURNEY))
    compiled = compile_flows([spec])
    sensor = next(s for s in compiled.sensors if s.name == "flow_journey_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED
    instance = dg.DagsterInstance.ephemeral()

    @dg.asset(name="churn_scores")
    def churn_scores():
        return 1

    dg.materialize([churn_scores], instance=instance)
    ctx = dg.build_sensor_context(instance=instance)
    requests = list(sensor.evaluate_tick(ctx).run_requests)
    assert len(requests) == 1 and requests[0].run_key.startswith("journey:")
    assert (
        list(sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=ctx.cursor)).run_requests)
        == []
    )


def test_entities_through_the_data_agent(flow_wh, agents, write_flow):
    text = JOURNEY.replace("  params: [0.2]\n", "  params: [0.2]\n  via: data_agent\n")
    result = _run(build_job(load_flow(write_flow(text))), flow_wh, agents, "2026-01-01T00:00:00")
    assert result.success
    rows = result.output_for_node("journey__select_entities")
    assert [r["_id"] for r in rows] == ["001A0", "001A2"]
    logged = flow_wh.query("SELECT action FROM data_agent_query_log")
    assert list(logged["action"]) == ["run_query"]
