"""Export a flow as Amazon States Language (AWS Step Functions) — the same spec the Dagster compiler uses.

Mapping:

* each DAG step → a ``Task`` (``lambda:invoke`` of the step runner, payload: flow, step, entity, prior
  outputs), ``ResultPath: $.steps.<id>`` so later steps' templates resolve to ``$.steps.<id>.output``;
  ``Retry`` from the step's error handling (attempts, interval, backoff rate) and ``Catch`` → the
  on-failure step (then ``Fail``) or straight to ``Fail``;
* ``when`` → a ``Choice`` before the Task; its ``Default`` jumps past the step and everything that
  depends on it (as in the Dagster job, where a false ``when`` skips downstream steps);
* ``wait`` → an exact wait before the step: a ``Pass`` state ``due_<id>`` (``QueryLanguage: JSONata``
  on that state only) computes the due time *anchor + days* into ``$.due_<id>``, as the Dagster runtime
  does (``runtime.wait_due``), and a ``Wait`` state waits until it (``TimestampPath``). The
  anchor is the completion time of the step named in ``after`` (a ``Pass`` state ``completed_<id>``
  right after that step's Task stamps ``$.steps.<id>.completed_at`` from ``$$.State.EnteredTime``), the
  time the entity entered the flow for ``after: start`` (a ``Pass`` state ``entered`` first stamps
  ``$.started.at``), or the entity's field for ``after: entity.<field>``. A due time already past
  continues at once;
* ``approval`` → a ``.waitForTaskToken`` Task that resumes when a person approves;
* fan-out flows: a ``select_entities`` Task, then a ``Map`` over ``$.entities`` whose item processor is
  the step chain (each item carries ``entity`` and ``steps``).

The DAG is laid out in a deterministic topological order (Step Functions chains are sequential; use the
Dagster job for parallel branches). :func:`validate` checks a document with ``statelint``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from revops_pipelines.flows.spec import FlowSpec, Step
from revops_pipelines.flows.templates import conditions, references

LAMBDA = "arn:aws:states:::lambda:invoke"
RUNNER = "revops-flow-step-runner"
_NUM = {
    "==": "NumericEquals",
    ">": "NumericGreaterThan",
    ">=": "NumericGreaterThanEquals",
    "<": "NumericLessThan",
    "<=": "NumericLessThanEquals",
}


def topo_order(steps: list[Step]) -> list[Step]:
    """Kahn's algorithm, ties broken by file order — deterministic."""
    order: list[Step] = []
    done: set[str] = set()
    pending = list(steps)
    while pending:
        ready = next(s for s in pending if all(d in done for d in s.depends_on))
        order.append(ready)
        done.add(ready.id)
        pending.remove(ready)
    return order


def _path(text: str) -> str | None:
    refs = references(text) if re.fullmatch(r"\s*\$\{[^}]*\}\s*", text) else []
    if not refs:
        return None
    kind, name, sub = refs[0]
    if kind == "entity":
        return f"$.entity.{name}"
    return f"$.steps.{name}.output" + (f".{sub}" if sub else "")


def _literal(text: str) -> Any:
    t = text.strip()
    if t[:1] in "'\"" and t[-1:] == t[:1]:
        return t[1:-1]
    if t.lower() in ("true", "false"):
        return t.lower() == "true"
    try:
        return float(t)
    except ValueError:
        return t


def _comparison(left: str, op: str, right: str) -> dict[str, Any]:
    var = _path(left)
    other_path = _path(right)
    if var is None and other_path is not None:  # literal on the left: mirror the operator
        var, other_path, left, right = other_path, None, right, left
        op = {">": "<", "<": ">", ">=": "<=", "<=": ">="}.get(op, op)
    if var is None:
        var = "$.constant"
    rule: dict[str, Any] = {"Variable": var}
    base = "==" if op == "!=" else op
    if other_path is not None:
        rule[_NUM[base] + "Path"] = other_path
    else:
        value = _literal(right)
        if isinstance(value, bool):
            rule["BooleanEquals"] = value
        elif isinstance(value, float):
            rule[_NUM[base]] = value
        else:
            rule["StringEquals"] = str(value)
    return {"Not": rule} if op == "!=" else rule


def _choice_rule(expr: str, target: str) -> dict[str, Any]:
    rules = [_comparison(*c) for c in conditions(expr)]
    rule = rules[0] if len(rules) == 1 else {"And": rules}
    return {**rule, "Next": target}


def _task(spec: FlowSpec, step: Step, next_state: str | None, catch_to: str, fan_out: bool) -> dict[str, Any]:
    eh = spec.step_errors(step)
    payload: dict[str, Any] = {
        "flow_id": spec.flow_id,
        "flow_version": spec.version,
        "step_id": step.id,
        "kind": f"{step.agent}.{step.action}" if step.agent else f"type:{step.type}",
        "parameters": step.parameters,
        "steps.$": "$.steps",
    }
    if fan_out:
        payload["entity.$"] = "$.entity"
    state: dict[str, Any] = {
        "Type": "Task",
        "Comment": step.description or payload["kind"],
        "Resource": LAMBDA,
        "Parameters": {"FunctionName": RUNNER, "Payload": payload},
        "ResultSelector": {"output.$": "$.Payload"},
        "ResultPath": f"$.steps.{step.id}",
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": catch_to}],
    }
    if eh.retry_count > 0:
        state["Retry"] = [
            {
                "ErrorEquals": ["States.ALL"],
                "MaxAttempts": eh.retry_count,
                "IntervalSeconds": max(1, round(eh.backoff_seconds)),
                "BackoffRate": 2.0 if eh.backoff == "exponential" else 1.0,
            }
        ]
    if next_state:
        state["Next"] = next_state
    else:
        state["End"] = True
    return state


def _chain(spec: FlowSpec, fan_out: bool) -> tuple[str, dict[str, Any]]:
    steps = topo_order(spec.dag_steps())
    states: dict[str, Any] = {}
    entry = {s.id: s.id for s in steps}
    for s in steps:
        if s.approval:
            entry[s.id] = f"approve_{s.id}"
        if s.when:
            entry[s.id] = f"when_{s.id}"
        if s.wait:
            entry[s.id] = f"due_{s.id}"
    anchors = {s.wait.after for s in steps if s.wait} - {"start"}
    end_state = "Succeeded"
    states[end_state] = {"Type": "Succeed"}
    states["Failed"] = {
        "Type": "Fail",
        "Error": "FlowStepFailed",
        "Cause": f"a step of {spec.flow_id} failed",
    }
    descendants = _descendants(steps)
    for i, s in enumerate(steps):
        nxt = entry[steps[i + 1].id] if i + 1 < len(steps) else end_state
        catch_to = "Failed"
        handler = spec.step_errors(s).on_failure
        if handler:
            catch_to = f"on_failure_{handler}"
            h = next(x for x in spec.steps if x.id == handler)
            handler_state = _task(spec, h, "Failed", "Failed", fan_out)
            handler_state.pop("Retry", None)
            states[catch_to] = handler_state
        if s.id in anchors:  # a later wait counts from this step's completion: stamp it
            states[s.id] = _task(spec, s, f"completed_{s.id}", catch_to, fan_out)
            states[f"completed_{s.id}"] = {
                "Type": "Pass",
                "Comment": f"When {s.id} completed (anchor of a later wait)",
                "Parameters": {
                    "output.$": f"$.steps.{s.id}.output",
                    "completed_at.$": "$$.State.EnteredTime",
                },
                "ResultPath": f"$.steps.{s.id}",
                "Next": nxt,
            }
        else:
            states[s.id] = _task(spec, s, nxt, catch_to, fan_out)
        after = s.id
        if s.approval:
            states[f"approve_{s.id}"] = {
                "Type": "Task",
                "Comment": f"Human approval of {s.id} (resumed with SendTaskSuccess)",
                "Resource": f"{LAMBDA}.waitForTaskToken",
                "Parameters": {
                    "FunctionName": "revops-flow-approval-request",
                    "Payload": {"flow_id": spec.flow_id, "step_id": s.id, "token.$": "$$.Task.Token"},
                },
                "ResultPath": None,
                "Next": after,
            }
            after = f"approve_{s.id}"
        if s.when:
            skip_to = next((entry[t.id] for t in steps[i + 1 :] if t.id not in descendants[s.id]), end_state)
            states[f"when_{s.id}"] = {
                "Type": "Choice",
                "Choices": [_choice_rule(s.when, after)],
                "Default": skip_to,
            }
            after = f"when_{s.id}"
        if s.wait:
            states[f"wait_{s.id}"] = {
                "Type": "Wait",
                "Comment": f"Until {s.wait.days:g} days after {s.wait.after}",
                "TimestampPath": f"$.due_{s.id}",
                "Next": after,
            }
            states[f"due_{s.id}"] = {
                "Type": "Pass",
                "QueryLanguage": "JSONata",
                "Comment": f"Due time of {s.id}: {s.wait.after} + {s.wait.days:g} days",
                "Output": "{% $merge([$states.input, {'due_" + s.id + "': " + wait_timestamp(s) + "}]) %}",
                "Next": f"wait_{s.id}",
            }
            after = f"due_{s.id}"
    start = entry[steps[0].id]
    if any(s.wait and s.wait.after == "start" for s in steps):
        states["entered"] = {
            "Type": "Pass",
            "Comment": "When the entity entered the flow (anchor of waits after start)",
            "Parameters": {"at.$": "$$.State.EnteredTime"},
            "ResultPath": "$.started",
            "Next": start,
        }
        start = "entered"
    return start, states


def wait_anchor(step: Step) -> str:
    """The JSONata path of the time a step's ``wait`` counts from."""
    assert step.wait is not None
    after = step.wait.after
    if after == "start":
        return "$states.input.started.at"
    if after.startswith("entity."):
        return "$states.input.entity." + after.removeprefix("entity.")
    return f"$states.input.steps.{after}.completed_at"


def wait_timestamp(step: Step) -> str:
    """JSONata for the exact due time: anchor + ``days`` (in milliseconds), as an ISO timestamp."""
    assert step.wait is not None
    ms = int(round(step.wait.days * 86_400_000))
    return f"$fromMillis($toMillis({wait_anchor(step)}) + {ms})"


def _descendants(steps: list[Step]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {s.id: set() for s in steps}
    changed = True
    while changed:
        changed = False
        for s in steps:
            for d in s.depends_on:
                new = {s.id} | out[s.id]
                if d in out and not new <= out[d]:
                    out[d] |= new
                    changed = True
    return out


def to_asl(spec: FlowSpec) -> dict[str, Any]:
    fan_out = spec.entities is not None
    start, states = _chain(spec, fan_out)
    if not fan_out:
        return {
            "Comment": f"{spec.flow_id} v{spec.version}: {spec.description}".strip(),
            "StartAt": start,
            "States": states,
        }
    return {
        "Comment": f"{spec.flow_id} v{spec.version}: {spec.description}".strip(),
        "StartAt": "select_entities",
        "States": {
            "select_entities": {
                "Type": "Task",
                "Resource": LAMBDA,
                "Parameters": {
                    "FunctionName": RUNNER,
                    "Payload": {"flow_id": spec.flow_id, "step_id": "select_entities"},
                },
                "ResultSelector": {"entities.$": "$.Payload.entities"},
                "Next": "for_each_entity",
            },
            "for_each_entity": {
                "Type": "Map",
                "ItemsPath": "$.entities",
                "ItemSelector": {"entity.$": "$$.Map.Item.Value", "steps": {}},
                "MaxConcurrency": 10,
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": start,
                    "States": states,
                },
                "ResultPath": None,
                "End": True,
            },
        },
    }


def validate(doc: dict[str, Any]) -> list[str]:
    """Problems ``statelint`` (the States Language linter) finds in ``doc``; empty when valid."""
    from statelint.linter import Linter

    return Linter.validate(json.loads(json.dumps(doc)))


def task_order(doc: dict[str, Any]) -> list[str]:
    """The step Tasks in execution order along ``Next``/``Choices`` (first visit), for graph checks."""
    machine = doc
    if "for_each_entity" in doc["States"]:
        machine = doc["States"]["for_each_entity"]["ItemProcessor"]
    states, seen, order = machine["States"], set(), []
    stack = [machine["StartAt"]]
    while stack:
        name = stack.pop(0)
        if name in seen or name not in states:
            continue
        seen.add(name)
        st = states[name]
        if st["Type"] == "Task" and not name.startswith(("approve_", "on_failure_")):
            order.append(name)
        nexts = [st.get("Next")] + [c["Next"] for c in st.get("Choices", [])] + [st.get("Default")]
        stack.extend(n for n in nexts if n)
    return order
