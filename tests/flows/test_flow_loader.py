import textwrap
from pathlib import Path

import dagster as dg
import pytest

from revops_pipelines.flows.compiler import build_job, build_schedule, compile_flows
from revops_pipelines.flows.loader import FlowValidationError, load_all, load_flow

ROOT = Path(__file__).resolve().parents[2]

GOOD = """\
flow_id: demo_flow
version: 2
owner: revops
trigger:
  type: schedule
  cron: "0 7 * * 1"
steps:
  - id: assess
    agent: decision
    action: assess_churn_risk
    parameters:
      threshold: 0.4
  - id: alert
    agent: execution
    action: execute_actions
    depends_on: [assess]
    parameters:
      action_types: [slack_message]
error_handling:
  retry_count: 2
  backoff_seconds: 1
"""


def write(tmp_path, text, name="flow.yaml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def problems_of(path):
    with pytest.raises(FlowValidationError) as exc:
        load_flow(path)
    return exc.value.problems


def test_shipped_flows_validate_and_compile():
    specs = load_all(ROOT / "flows_yaml")
    assert "churn_prevention" in {s.flow_id for s in specs}
    jobs, schedules, sensors = compile_flows(specs)
    assert {j.name for j in jobs} >= {"flow_churn_prevention"}
    assert all(s.default_status == dg.DefaultScheduleStatus.STOPPED for s in schedules)


def test_compiled_job_wires_steps_and_retries(tmp_path):
    spec = load_flow(write(tmp_path, GOOD))
    job = build_job(spec)
    assert {n.name for n in job.graph.node_defs} == {"demo_flow__assess", "demo_flow__alert"}
    deps = job.graph.dependency_structure
    alert = job.graph.node_named("demo_flow__alert")
    upstream = deps.input_to_upstream_outputs_for_node(alert.name)
    assert [o.node.name for outs in upstream.values() for o in outs] == ["demo_flow__assess"]
    assert alert.definition.retry_policy.max_retries == 2
    assert job.tags["flow_version"] == "2"
    sched = build_schedule(spec, job)
    assert sched.cron_schedule == "0 7 * * 1"


@pytest.mark.parametrize(
    "bad, line, fragment",
    [
        (GOOD.replace("agent: decision", "agent: oracle"), 9, "unknown agent 'oracle'"),
        (
            GOOD.replace("action: execute_actions", "action: launch_rockets"),
            15,
            "has no action 'launch_rockets'",
        ),
        (GOOD.replace("depends_on: [assess]", "depends_on: [asess]"), 16, "unknown step 'asess'"),
        (GOOD.replace("threshold: 0.4", "threshold: 4"), 12, "threshold"),
        (GOOD.replace("threshold: 0.4", "treshold: 0.4"), 12, "treshold: unknown field"),
        (GOOD.replace("owner: revops", "owner: revops\ncolour: blue"), 4, "colour: unknown field"),
        (GOOD.replace('cron: "0 7 * * 1"', 'cron: "every monday"'), 6, "invalid cron"),
        (GOOD.replace("action_types: [slack_message]", "action_types: [fax]"), 18, "action_types"),
    ],
)
def test_each_problem_names_file_line_and_field(tmp_path, bad, line, fragment):
    path = write(tmp_path, bad)
    problems = problems_of(path)
    assert any(fragment in p.message for p in problems), problems
    hit = next(p for p in problems if fragment in p.message)
    assert hit.file == str(path)
    assert hit.line == line, str(hit)


def test_cycles_are_reported(tmp_path):
    text = GOOD.replace(
        "    action: assess_churn_risk\n", "    action: assess_churn_risk\n    depends_on: [alert]\n"
    )
    problems = problems_of(write(tmp_path, text))
    assert any("cycle" in p.message and "assess" in p.message for p in problems)


def test_all_problems_reported_at_once(tmp_path):
    text = GOOD.replace("agent: decision", "agent: oracle").replace(
        "depends_on: [assess]", "depends_on: [nope]"
    )
    problems = problems_of(write(tmp_path, text))
    assert len(problems) >= 2


def test_yaml_syntax_error_points_at_line(tmp_path):
    problems = problems_of(write(tmp_path, "flow_id: x\nsteps:\n  - id: [unclosed\n"))
    assert problems[0].line >= 3
    assert "YAML syntax" in problems[0].message


def test_a_bad_file_in_a_folder_builds_nothing(tmp_path):
    write(tmp_path, GOOD, "a.yaml")
    write(tmp_path, GOOD.replace("demo_flow", "other").replace("agent: decision", "agent: nope"), "b.yaml")
    with pytest.raises(FlowValidationError) as exc:
        load_all(tmp_path)
    assert all(p.file.endswith("b.yaml") for p in exc.value.problems)
