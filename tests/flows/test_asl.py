"""Step Functions export: valid States Language (statelint) and the same graph as the Dagster job."""

from pathlib import Path

import pytest

from revops_pipelines.flows.asl import task_order, to_asl, validate
from revops_pipelines.flows.compiler import build_job
from revops_pipelines.flows.loader import load_all, load_flow

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
        "Comment": "7.0 days after kickoff",
        "Seconds": 7 * 86400,
        "Next": "adoption_check",
    }
    choice = states["when_low_adoption_alert"]
    assert choice["Choices"][0]["Variable"] == "$.steps.adoption_check.output.metrics.util_30d"
    assert choice["Choices"][0]["NumericLessThan"] == 0.3
    assert choice["Default"] == "wait_day30_review"
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
