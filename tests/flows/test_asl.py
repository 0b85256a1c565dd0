"""Step Functions export: valid States Language (statelint) and the same graph as the Dagster job."""

import re
from datetime import datetime
from pathlib import Path

import pytest

from revops_pipelines.flows.asl import task_order, to_asl, validate
from revops_pipelines.flows.compiler import build_job
from revops_pipelines.flows.loader import load_all, load_flow
from revops_pipelines.flows.runtime import wait_due

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = load_all(ROOT / "flows_yaml")


def test_the_validator_rejects_broken_machines():
    assert validate({"StartAt": "missing", "States": {}})
    assert validate(
        {"StartAt": "a", "States": {"a": {"Type": "Task", "Resource": "x", "End": True, "Next": "a"}}}
    )


@pytest.mark.parametrize("spec", SHIPPED, ids=lambda s: s.flow_id)
def test_every_shipped_flow_exports_valid_asl_with_the_jobs_graph(spec):
    doc = to_asl(spec)
    assert validate(doc) == []
    job = build_job(spec)
    prefix = f"{spec.flow_id}__"
    ops = [n.removeprefix(prefix) for n in job.graph.node_names() if n != f"{prefix}select_entities"]
    order = task_order(doc)
    assert sorted(order) == sorted(ops)
    deps = job.graph.dependency_structure
    for name in job.graph.node_names():
        for outs in deps.input_to_upstream_outputs_for_node(name).values():
            for o in outs:
                up, down = o.node.name.removeprefix(prefix), name.removeprefix(prefix)
                if up != "select_entities":
                    assert order.index(up) < order.index(down), (up, down)
    if spec.entities is not None:
        assert doc["States"]["for_each_entity"]["Type"] == "Map"
        assert doc["States"]["select_entities"]["Next"] == "for_each_entity"


def test_states_follow_error_handling_conditions_waits_and_approvals():
    spec = next(s for s in SHIPPED if s.flow_id == "onboarding")
    states = to_asl(spec)["States"]["for_each_entity"]["ItemProcessor"]["States"]
    kickoff = states["kickoff"]
    assert kickoff["Retry"][0]["MaxAttempts"] == 2 and kickoff["Retry"][0]["BackoffRate"] == 2.0
    assert kickoff["Catch"][0]["Next"] == "on_failure_tell_cs"
    assert states["on_failure_tell_cs"]["Next"] == "Failed"
    assert states["wait_adoption_check"] == {
        "Type": "Wait",
        "Comment": "Until 7 days after kickoff",
        "TimestampPath": "$.due_adoption_check",
        "Next": "adoption_check",
    }
    assert states["kickoff"]["Next"] == "completed_kickoff"  # stamps the anchor, then on
    assert states["completed_kickoff"]["Next"] == "due_adoption_check"
    choice = states["when_low_adoption_alert"]
    assert choice["Choices"][0]["Variable"] == "$.steps.adoption_check.output.metrics.util_30d"
    assert choice["Choices"][0]["NumericLessThan"] == 0.3
    assert choice["Default"] == "due_day30_review"
    assert states["approve_day30_review"]["Resource"].endswith(".waitForTaskToken")
    assert states["wait_day30_review"]["Next"] == "approve_day30_review"


def test_false_condition_jumps_past_dependent_steps(tmp_path):
    p = tmp_path / "f.yaml"
    p.write_text(
        """\
flow_id: jumpy
version: 1
owner: ops
steps:
  - {id: assess, agent: decision, action: assess_churn_risk}
  - {id: alert, agent: execution, action: execute_actions, depends_on: [assess],
     when: "${steps.assess.output.eligible} > 0", parameters: {action_types: [slack_message]}}
  - {id: tasks, agent: execution, action: execute_actions, depends_on: [alert],
     parameters: {action_types: [crm_task]}}
  - {id: other, agent: execution, action: execute_actions, depends_on: [assess],
     parameters: {action_types: [email_draft]}}
"""
    )
    doc = to_asl(load_flow(p))
    assert validate(doc) == []
    assert doc["States"]["when_alert"]["Default"] == "other"
    assert doc["States"]["when_alert"]["Choices"][0]["Next"] == "alert"


def _due(states, step_id, machine_input):
    """Evaluate the exported ``due_<step>`` Pass state's JSONata on ``machine_input`` (as Step Functions
    binds it to ``$states.input``)."""
    from jsonata import Jsonata

    st = states[f"due_{step_id}"]
    assert st["QueryLanguage"] == "JSONata" and st["Next"] == f"wait_{step_id}"
    expr = Jsonata(re.fullmatch(r"\{% (.+) %\}", st["Output"]).group(1))
    expr.assign("states", {"input": machine_input})
    out = expr.evaluate(None)
    assert {k: v for k, v in out.items() if k != f"due_{step_id}"} == machine_input  # input passed on
    return datetime.fromisoformat(out[f"due_{step_id}"].replace("Z", "+00:00")).replace(tzinfo=None)


def test_exported_waits_are_exact_like_the_runtime(tmp_path):
    """Each exported wait computes the same due time as the Dagster runtime, from the same anchor."""
    spec = next(s for s in SHIPPED if s.flow_id == "onboarding")
    machine = to_asl(spec)["States"]["for_each_entity"]["ItemProcessor"]
    states = machine["States"]
    assert machine["StartAt"] == "entered" and states["entered"]["Next"] == "kickoff"
    assert states["entered"]["Parameters"] == {"at.$": "$$.State.EnteredTime"}
    steps = {s.id: s for s in spec.steps}
    entered, kicked_off = "2026-01-01T08:00:00.000Z", "2026-01-03T17:45:12.000Z"
    sfn_input = {
        "entity": {"account_id": "001A0"},
        "started": {"at": entered},
        "steps": {"kickoff": {"output": {"status": "dry_run"}, "completed_at": kicked_off}},
    }
    doc = {"started_at": "2026-01-01T08:00:00", "steps": {"kickoff": {"at": "2026-01-03T17:45:12"}}}
    for sid in ("adoption_check", "day30_review"):
        assert _due(states, sid, sfn_input) == wait_due(steps[sid], doc, sfn_input["entity"])
    assert _due(states, "adoption_check", sfn_input) == datetime(2026, 1, 10, 17, 45, 12)
    assert _due(states, "day30_review", sfn_input) == datetime(2026, 1, 31, 8)
    # an entity field as the anchor (a date), fractional days
    p = tmp_path / "renew.yaml"
    p.write_text(
        """\
flow_id: renew
version: 1
owner: ops
entities: {sql: "SELECT account_id, renewal_date FROM accounts"}
steps:
  - {id: nudge, type: action, wait: {days: 1.5, after: entity.renewal_date},
     parameters: {type: slack_message, parameters: {channel: "#cs-churn-alerts", text: hi}}}
"""
    )
    spec = load_flow(p)
    doc = to_asl(spec)
    assert validate(doc) == []
    states = doc["States"]["for_each_entity"]["ItemProcessor"]["States"]
    ent = {"account_id": "A", "renewal_date": "2026-03-01"}
    got = _due(states, "nudge", {"entity": ent, "steps": {}})
    assert got == wait_due(spec.steps[0], {"steps": {}}, ent) == datetime(2026, 3, 2, 12)
    assert "entered" not in states and not any(k.startswith("completed_") for k in states)
