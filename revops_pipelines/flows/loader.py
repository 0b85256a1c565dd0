"""Load and validate flow YAML, reporting every problem as ``file:line:column: message``.

Validation is all-or-nothing: a flow with any problem raises :class:`FlowValidationError` listing
all of them, and no job is built from it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from revops_pipelines.errors import RevOpsError, ValidationFailed
from revops_pipelines.flows.spec import FlowSpec, Step
from revops_pipelines.flows.templates import TemplateError, conditions, references, walk
from revops_pipelines.validation import format_errors, parse

# libyaml parses flows ~10x faster than the pure-Python loader; both are safe loaders
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


class FlowValidationError(RevOpsError):
    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("invalid flow:\n" + "\n".join(f"  {p}" for p in problems))


def _node_at(node: yaml.Node, loc: Iterable[Any]) -> yaml.Node:
    """The deepest YAML node along a pydantic error location (keys and list indices)."""
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            nxt = next((v for k, v in node.value if k.value == str(part)), None)
            if nxt is None:
                nxt = next((k for k, _ in node.value if k.value == str(part)), None)
            if nxt is None:
                return node
            node = nxt
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            return node
    return node


def _problem(file: str, root: yaml.Node | None, loc: Iterable[Any], message: str) -> Problem:
    if root is None:
        return Problem(file, 1, 1, message)
    mark = _node_at(root, loc).start_mark
    return Problem(file, mark.line + 1, mark.column + 1, message)


def _key_node(root: yaml.Node, loc: list[Any]) -> yaml.Node:
    """For an unknown field, point at the key itself."""
    parent = _node_at(root, loc[:-1])
    if isinstance(parent, yaml.MappingNode):
        for k, _ in parent.value:
            if k.value == str(loc[-1]):
                return k
    return parent


def _compose_and_construct(text: str) -> tuple[yaml.Node | None, Any]:
    """One parse: the node tree (its marks locate problems) and the data built from it."""
    loader = _LOADER(text)  # a safe loader (libyaml's when present)
    try:
        root = loader.get_single_node()
        return root, (loader.construct_document(root) if root is not None else None)
    finally:
        loader.dispose()


def load_flow(path: str | Path) -> FlowSpec:
    """Parse and fully validate one flow file (schema, references, cycles, agents, actions, parameters)."""
    path = Path(path)
    return parse_flow(path.read_text(encoding="utf-8"), str(path))


def parse_flow(text: str, name: str = "<flow>") -> FlowSpec:
    """Validate flow YAML text as :func:`load_flow` does; problems name ``name`` as their file."""
    try:
        root, data = _compose_and_construct(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise FlowValidationError(
            [Problem(name, line, col, f"YAML syntax: {getattr(err, 'problem', err)}")]
        ) from None
    if not isinstance(data, dict):
        raise FlowValidationError(
            [Problem(name, 1, 1, "a flow file must be a mapping with flow_id, steps, ...")]
        )

    try:
        spec = FlowSpec.model_validate(data)
    except ValidationError as err:
        problems = []
        for e, msg in zip(err.errors(), format_errors(err), strict=True):
            loc = list(e["loc"])
            if e["type"] == "extra_forbidden":
                mark = _key_node(root, loc).start_mark
                problems.append(Problem(name, mark.line + 1, mark.column + 1, msg))
            else:
                problems.append(_problem(name, root, loc, msg))
        raise FlowValidationError(problems) from None

    problems: list[Problem] = []
    ids = [s.id for s in spec.steps]
    handlers = spec.failure_handlers()
    seen: set[str] = set()
    for i, step in enumerate(spec.steps):
        where = ["steps", i]

        def add(loc: list[Any], msg: str, where: list[Any] = where) -> None:
            problems.append(_problem(name, root, [*where, *loc], msg))

        if step.id in seen:
            add(["id"], f"steps.{i}.id: duplicate step id {step.id!r}")
        seen.add(step.id)
        for j, dep in enumerate(step.depends_on):
            if dep not in ids:
                add(["depends_on", j], f"steps.{i}.depends_on: unknown step {dep!r}")
            elif dep in handlers:
                add(["depends_on", j], f"steps.{i}.depends_on: {dep!r} is an on-failure step, not in the DAG")
        problems.extend(_check_step(name, root, spec, i, step, ids, handlers))
    for loc, target in [(["error_handling", "on_failure"], spec.error_handling.on_failure)] + [
        (["steps", i, "error_handling", "on_failure"], s.error_handling.on_failure)
        for i, s in enumerate(spec.steps)
        if s.error_handling
    ]:
        if target and target not in ids:
            problems.append(_problem(name, root, loc, f"{'.'.join(map(str, loc))}: unknown step {target!r}"))
    if spec.entities is not None and not _SELECT.match(spec.entities.sql):
        problems.append(_problem(name, root, ["entities", "sql"], "entities.sql: must be a SELECT statement"))
    if spec.trigger.type == "sensor" and not spec.trigger.asset:
        problems.append(
            _problem(name, root, ["trigger"], "trigger.asset: required when trigger.type is sensor")
        )
    if spec.trigger.type == "event" and not spec.trigger.event:
        problems.append(
            _problem(name, root, ["trigger"], "trigger.event: required when trigger.type is event")
        )
    cycle = _find_cycle({s.id: s.depends_on for s in spec.steps})
    if cycle:
        idx = ids.index(cycle[0])
        problems.append(
            _problem(
                name, root, ["steps", idx, "depends_on"], "steps: dependency cycle " + " -> ".join(cycle)
            )
        )
    if spec.trigger.type == "schedule" and not spec.trigger.cron:
        problems.append(
            _problem(name, root, ["trigger"], "trigger.cron: required when trigger.type is schedule")
        )
    if spec.trigger.cron:
        import dagster as dg

        try:  # Dagster's own cron parser, so what validates here also schedules
            dg.ScheduleDefinition(name="cron_probe", cron_schedule=spec.trigger.cron, job_name="cron_probe")
        except dg.DagsterInvalidDefinitionError:
            problems.append(
                _problem(name, root, ["trigger", "cron"], f"trigger.cron: invalid cron {spec.trigger.cron!r}")
            )
    if problems:
        raise FlowValidationError(problems)
    return spec


_SELECT = re.compile(r"^\s*(select|with)\b", re.IGNORECASE)


def _check_step(
    name: str, root: yaml.Node, spec: FlowSpec, i: int, step: Step, ids: list[str], handlers: set[str]
) -> list[Problem]:
    """Kind (agent/action or type), parameters, templates, ``when``, ``wait``, ``approval``."""
    from revops_pipelines.agents.params import ACTION_PARAMS  # light: not the agents themselves
    from revops_pipelines.flows.plugins import STEP_TYPES

    out: list[Problem] = []
    where: list[Any] = ["steps", i]

    def add(loc: list[Any], msg: str) -> None:
        out.append(_problem(name, root, [*where, *loc], msg))

    # templates first: their locations are known, and templated values are checked at run time
    templated: set[str] = set()
    allowed_steps = set(step.depends_on)
    for path, text in walk(step.parameters):
        try:
            refs = references(text)
        except TemplateError as err:
            add(["parameters", *path], f"steps.{i}.parameters.{'.'.join(map(str, path))}: {err}")
            templated.add(str(path[0]))
            continue
        if refs:
            templated.add(str(path[0]))
        for kind, ref, _ in refs:
            label = f"steps.{i}.parameters.{'.'.join(map(str, path))}"
            if kind == "entity" and spec.entities is None:
                add(["parameters", *path], f"{label}: ${{entity.{ref}}} needs the flow to select entities")
            if kind == "steps" and ref not in allowed_steps:
                add(
                    ["parameters", *path],
                    f"{label}: undefined reference steps.{ref} (a step may use the outputs of the steps "
                    f"in its depends_on: {sorted(allowed_steps)})",
                )
    if step.when is not None:
        try:
            sides = [side for left, _, right in conditions(step.when) for side in (left, right)]
            for side in sides:
                for kind, ref, _ in references(side):
                    if kind == "entity" and spec.entities is None:
                        add(["when"], f"steps.{i}.when: ${{entity.{ref}}} needs the flow to select entities")
                    if kind == "steps" and ref not in allowed_steps:
                        add(["when"], f"steps.{i}.when: undefined reference steps.{ref}")
        except TemplateError as err:
            add(["when"], f"steps.{i}.when: {err}")
    if (step.wait or step.approval) and spec.entities is None:
        key = "wait" if step.wait else "approval"
        add(
            [key], f"steps.{i}.{key}: waits and approvals need the flow to select entities (state per entity)"
        )
    if (
        step.wait
        and step.wait.after not in ("start", *step.depends_on)
        and not step.wait.after.startswith("entity.")
    ):
        add(
            ["wait", "after"],
            f"steps.{i}.wait.after: {step.wait.after!r} is not 'start', 'entity.<field>' or a step in depends_on",
        )
    if step.id in handlers and (step.depends_on or step.wait or step.approval):
        add(["id"], f"steps.{i}: on-failure step {step.id!r} cannot have depends_on, wait or approval")

    if (step.type is None) == (step.agent is None):
        add([], f"steps.{i}: give either agent + action or type")
        return out
    if step.type is not None:
        st = STEP_TYPES.get(step.type)
        if st is None:
            add(["type"], f"steps.{i}.type: unknown step type {step.type!r} (one of {sorted(STEP_TYPES)})")
            return out
        model, label = st.params, f"steps.{i}.parameters"
    else:
        actions = ACTION_PARAMS.get(step.agent or "")
        if actions is None:
            add(["agent"], f"steps.{i}.agent: unknown agent {step.agent!r} (one of {sorted(ACTION_PARAMS)})")
            return out
        if step.action not in actions:
            add(
                ["action"] if step.action else [],
                f"steps.{i}.action: agent {step.agent!r} has no action "
                f"{step.action!r} (one of {sorted(actions)})",
            )
            return out
        model, label = actions[step.action], f"steps.{i}.parameters"
    try:
        parse(model, step.parameters, "parameters")
    except ValidationFailed as err:
        for msg in err.problems:
            field = msg.split(":", 1)[0]
            if field.split(".")[0] in templated:
                continue
            loc = ["parameters", *[int(x) if x.isdigit() else x for x in field.split(".")]]
            add(loc, f"{label}.{msg}")
    return out


def _find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in graph.get(n, []):
            if m not in graph:
                continue
            if state.get(m) == 1:
                return [*stack[stack.index(m) :], m]
            if m not in state and (c := visit(m)):
                return c
        stack.pop()
        state[n] = 2
        return None

    for n in graph:
        if n not in state and (c := visit(n)):
            return c
    return None


def folders(spec: str | Path) -> list[Path]:
    """``REVOPS_FLOWS_DIR``-style value: one folder, or several separated by ``os.pathsep``."""
    return [Path(p) for p in str(spec).split(os.pathsep) if p]


def discover(folder: str | Path) -> list[Path]:
    out: list[Path] = []
    for f in folders(folder):
        if f.is_file():
            out.append(f)
        elif f.exists():
            out.extend(sorted([*f.glob("*.yaml"), *f.glob("*.yml")]))
    return out


def load_all(folder: str | Path) -> list[FlowSpec]:
    """Load every flow in ``folder`` (or ``os.pathsep``-separated folders); if any is invalid, raise
    with the problems of all of them. Flow ids must be unique across folders."""
    specs, problems, origin = [], [], {}
    for f in discover(folder):
        try:
            spec = load_flow(f)
        except FlowValidationError as err:
            problems.extend(err.problems)
            continue
        if spec.flow_id in origin:
            problems.append(
                Problem(str(f), 1, 1, f"duplicate flow_id {spec.flow_id!r} (also in {origin[spec.flow_id]})")
            )
        origin.setdefault(spec.flow_id, str(f))
        specs.append(spec)
    if problems:
        raise FlowValidationError(problems)
    return specs
