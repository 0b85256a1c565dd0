"""Templates, conditions and the load-time checks added for fan-out, waits, approvals and plug-ins."""

import json
import os
from pathlib import Path

import pytest
from pydantic import BaseModel

from revops_pipelines.flows.loader import FlowValidationError, load_all, load_flow
from revops_pipelines.flows.plugins import STEP_TYPES, register_step_type
from revops_pipelines.flows.schema import schema_text
from revops_pipelines.flows.templates import TemplateError, evaluate, references, render

ROOT = Path(__file__).resolve().parents[2]

FANOUT = """\
flow_id: fan
version: 1
owner: cs
entities:
  sql: "SELECT * FROM flow_accounts WHERE score > ?"
  params: [0.2]
steps:
  - id: first
    type: echo
    parameters:
      text: "hello ${entity.account_name}"
  - id: second
    type: echo
    depends_on: [first]
    when: "${steps.first.output.n} >= 1"
    parameters:
      text: "${steps.first.output.text}"
"""


class EchoParams(BaseModel):
    text: str
    n: int = 1


@pytest.fixture(autouse=True)
def _echo():
    register_step_type("echo", lambda p, ctx: {"text": p.text, "n": p.n}, EchoParams)
    yield
    STEP_TYPES.pop("echo", None)


def problems_of(path):
    with pytest.raises(FlowValidationError) as exc:
        load_flow(path)
    return exc.value.problems


def test_render_keeps_types_and_substitutes_text():
    scope = {"entity": {"arr": 10.5, "name": "Acme"}, "steps": {"a": {"m": {"u": [1, 2]}}}}
    assert render("${entity.arr}", scope) == 10.5
    assert render({"t": "ARR ${entity.arr} at ${entity.name}"}, scope) == {"t": "ARR 10.5 at Acme"}
    assert render(["${steps.a.output.m.u.1}"], scope) == [2]
    with pytest.raises(TemplateError):
        render("${entity.missing}", scope)


def test_references_reject_malformed_templates():
    assert references("${steps.a_b.output.x.0}") == [("steps", "a_b", "x.0")]
    for bad in ("${customer.x}", "${steps.a.x}", "${entity.}", "${entity.x"):
        with pytest.raises(TemplateError):
            references(bad)


def test_conditions():
    scope = {"entity": {"d": 45, "s": 0.3, "plan": "pro"}, "steps": {}}
    assert evaluate("${entity.d} <= 60 and ${entity.d} > 30", scope)
    assert not evaluate("${entity.d} <= 60 and ${entity.s} >= 0.5", scope)
    assert evaluate("${entity.plan} == 'pro'", scope)
    assert evaluate("${entity.plan} != pro_plus", scope)


def test_valid_fanout_flow_loads(write_flow):
    spec = load_flow(write_flow(FANOUT))
    assert spec.entities.params == [0.2]
    assert [s.id for s in spec.dag_steps()] == ["first", "second"]


@pytest.mark.parametrize(
    "old, new, line, fragment",
    [
        ("hello ${entity.account_name}", "hello ${customer.name}", 11, "bad template ${customer.name}"),
        ("hello ${entity.account_name}", "hello ${entity.account_name", 11, "unclosed template"),
        (
            '"${steps.first.output.text}"',
            '"${steps.third.output.text}"',
            17,
            "undefined reference steps.third",
        ),
        (
            '"${steps.first.output.n} >= 1"',
            '"${steps.zero.output.n} >= 1"',
            15,
            "undefined reference steps.zero",
        ),
        ('"${steps.first.output.n} >= 1"', '"${steps.first.output.n} about 1"', 15, "bad condition"),
        (
            'type: echo\n    parameters:\n      text: "hello',
            'type: nope\n    parameters:\n      text: "hello',
            9,
            "unknown step type 'nope'",
        ),
        (
            "    depends_on: [first]\n",
            "    depends_on: [first]\n    wait: {days: 3, after: elsewhere}\n",
            15,
            "wait.after",
        ),
    ],
)
def test_template_and_reference_problems_have_line_and_column(write_flow, old, new, line, fragment):
    assert old in FANOUT
    path = write_flow(FANOUT.replace(old, new))
    problems = problems_of(path)
    hit = next((p for p in problems if fragment in p.message), None)
    assert hit is not None, problems
    assert (hit.file, hit.line) == (str(path), line), str(hit)
    assert hit.column > 1


def test_entity_templates_waits_and_approvals_need_entities(write_flow):
    text = FANOUT.replace(
        'entities:\n  sql: "SELECT * FROM flow_accounts WHERE score > ?"\n  params: [0.2]\n', ""
    )
    text = text.replace("    depends_on: [first]\n", "    depends_on: [first]\n    approval: true\n")
    msgs = [p.message for p in problems_of(write_flow(text))]
    assert any("${entity.account_name} needs the flow to select entities" in m for m in msgs)
    assert any("approval" in m and "need the flow to select entities" in m for m in msgs)


def test_trigger_and_on_failure_checks(write_flow):
    text = FANOUT.replace(
        "owner: cs\n", "owner: cs\ntrigger: {type: sensor}\nerror_handling: {on_failure: ghost}\n"
    )
    msgs = [str(p) for p in problems_of(write_flow(text))]
    assert any("trigger.asset: required" in m for m in msgs)
    assert any("error_handling.on_failure: unknown step 'ghost'" in m and ":5:" in m for m in msgs)


def test_custom_type_parameters_are_validated(write_flow):
    text = FANOUT.replace('      text: "hello ${entity.account_name}"\n', "      text: hi\n      n: many\n")
    problems = problems_of(write_flow(text))
    hit = next(p for p in problems if "n:" in p.message)
    assert hit.line == 12


def test_several_flow_folders_via_pathsep(tmp_path, write_flow):
    write_flow(FANOUT)
    extra = tmp_path / "tenant"
    extra.mkdir()
    (extra / "other.yaml").write_text(FANOUT.replace("flow_id: fan", "flow_id: other"))
    specs = load_all(f"{tmp_path / 'flows'}{os.pathsep}{extra}")
    assert sorted(s.flow_id for s in specs) == ["fan", "other"]
    (extra / "dupe.yaml").write_text(FANOUT)
    with pytest.raises(FlowValidationError, match="duplicate flow_id 'fan'"):
        load_all(f"{tmp_path / 'flows'}{os.pathsep}{extra}")


def test_published_schema_is_current():
    assert (ROOT / "flows_yaml" / "schema.json").read_text() == schema_text(), (
        "regenerate: revops flows schema --out flows_yaml/schema.json"
    )
    schema = json.loads(schema_text())
    assert {"flow_id", "version", "owner", "steps"} <= set(schema["required"])


def test_shipped_flows_match_the_schema():
    import jsonschema
    import yaml

    schema = json.loads(schema_text())
    for f in sorted((ROOT / "flows_yaml").glob("*.yaml")):
        jsonschema.validate(yaml.safe_load(f.read_text()), schema)
