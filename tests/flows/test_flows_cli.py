"""`revops flows show | export-asl | schema | state | approve | validate`."""

import json

from click.testing import CliRunner

from revops_pipelines.cli import main
from revops_pipelines.flows.asl import validate
from revops_pipelines.flows.state import FlowState, default_path


def test_show_lists_steps_with_waits_conditions_and_retries():
    out = CliRunner().invoke(main, ["flows", "show", "onboarding"])
    assert out.exit_code == 0, out.output
    assert "adoption_check" in out.output and "wait 7 d after kickoff" in out.output
    assert "needs approval" in out.output and "on-failure handler" in out.output
    bad = CliRunner().invoke(main, ["flows", "show", "nope"])
    assert bad.exit_code == 2 and "unknown flow 'nope'" in bad.output


def test_export_asl_writes_a_valid_machine(tmp_path):
    target = tmp_path / "renewal.asl.json"
    out = CliRunner().invoke(main, ["flows", "export-asl", "renewal_management", "--out", str(target)])
    assert out.exit_code == 0, out.output
    doc = json.loads(target.read_text())
    assert validate(doc) == [] and doc["States"]["for_each_entity"]["Type"] == "Map"


def test_schema_command_matches_the_published_file(tmp_path):
    target = tmp_path / "schema.json"
    assert CliRunner().invoke(main, ["flows", "schema", "--out", str(target)]).exit_code == 0
    assert json.loads(target.read_text())["title"] == "RevOps flow"


def test_state_and_approve(runtime_env):
    st = FlowState(default_path())
    st.update(
        "onboarding", "001A", lambda d: {**d, "steps": {"day30_review": {"status": "awaiting_approval"}}}
    )
    out = CliRunner().invoke(main, ["flows", "state", "onboarding"])
    assert "001A" in out.output and "day30_review=awaiting_approval" in out.output
    out = CliRunner().invoke(
        main, ["flows", "approve", "onboarding", "001A", "day30_review", "--by", "maria"]
    )
    assert out.exit_code == 0, out.output
    out = CliRunner().invoke(main, ["flows", "state", "onboarding", "001A"])
    assert "approved (awaiting_approval)" in out.output
    again = CliRunner().invoke(main, ["flows", "approve", "onboarding/001A", "kickoff"])
    assert again.exit_code == 2 and "not awaiting approval" in again.output
    usage = CliRunner().invoke(main, ["flows", "approve", "onboarding"])
    assert usage.exit_code == 2 and "usage" in usage.output


def test_validate_prints_template_problems_with_positions(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text(
        "flow_id: bad\nversion: 1\nowner: x\nsteps:\n  - id: a\n    agent: execution\n"
        "    action: execute_actions\n    parameters:\n      action_types: [slack_message]\n"
        '      channel: "${steps.ghost.output.channel}"\n'
    )
    out = CliRunner().invoke(main, ["flows", "validate", str(f)])
    assert out.exit_code == 1
    assert f"{f}:10:16: steps.0.parameters.channel: undefined reference steps.ghost" in out.output


def test_run_executes_a_flow_locally(runtime_env, tmp_path, monkeypatch):
    folder = tmp_path / "custom_flows"
    folder.mkdir()
    (folder / "ping.yaml").write_text(
        "flow_id: ping\nversion: 1\nowner: ops\nsteps:\n  - id: hello\n    type: action\n    parameters:\n"
        "      type: slack_message\n      parameters: {channel: '#revops-alerts', text: hello}\n"
    )
    monkeypatch.setenv("REVOPS_FLOWS_DIR", str(folder))
    out = CliRunner().invoke(main, ["flows", "run", "ping"])
    assert out.exit_code == 0, out.output
    assert "ping__hello" in out.output and "success" in out.output
    from revops_pipelines.definitions import build_definitions

    wh = build_definitions().resources["warehouse"]
    log = wh.query("SELECT flow_id, action_type, status FROM action_log")
    assert list(log.itertuples(index=False, name=None)) == [("ping", "slack_message", "dry_run")]
