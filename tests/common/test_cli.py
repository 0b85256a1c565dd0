import json

from click.testing import CliRunner

from revops_pipelines.cli import main


def test_help_lists_commands():
    out = CliRunner().invoke(main, ["--help"])
    assert out.exit_code == 0
    for cmd in ("sample", "flows", "demo"):
        assert cmd in out.output


def test_sample_generate_writes_a_world(tmp_path):
    out = CliRunner().invoke(
        main, ["sample", "generate", "--seed", "3", "--accounts", "120", "--out", str(tmp_path)]
    )
    assert out.exit_code == 0, out.output
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["seed"] == 3 and manifest["accounts"] == 120
    assert "salesforce/Account.jsonl" in out.output


def test_sample_generate_rejects_bad_input_by_name(tmp_path):
    r = CliRunner().invoke(main, ["sample", "generate", "--accounts", "0", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "accounts: must be at least 1, got 0" in r.output
    r = CliRunner().invoke(main, ["sample", "generate", "--seed", "-1", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "seed" in r.output
    assert not (tmp_path / "manifest.json").exists()


def test_flows_validate_reports_file_line_and_exit_code(tmp_path):
    good = CliRunner().invoke(main, ["flows", "validate"])
    assert good.exit_code == 0 and "churn_prevention" in good.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "flow_id: x\nversion: 1\nowner: me\nsteps:\n  - id: a\n    agent: nobody\n    action: go\n"
    )
    r = CliRunner().invoke(main, ["flows", "validate", str(bad)])
    assert r.exit_code == 1
    assert f"{bad}:6:12: steps.0.agent: unknown agent 'nobody'" in r.output
