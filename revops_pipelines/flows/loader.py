"""Load and validate flow YAML, reporting every problem as ``file:line:column: message``.

Validation is all-or-nothing: a flow with any problem raises :class:`FlowValidationError` listing
all of them, and no job is built from it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from revops_pipelines.errors import RevOpsError, ValidationFailed
from revops_pipelines.flows.spec import FlowSpec
from revops_pipelines.validation import format_errors, parse


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


def load_flow(path: str | Path) -> FlowSpec:
    """Parse and fully validate one flow file (schema, references, cycles, agents, actions, parameters)."""
    from revops_pipelines.agents.registry import AGENTS

    path = Path(path)
    name = str(path)
    text = path.read_text(encoding="utf-8")
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
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
    seen: set[str] = set()
    for i, step in enumerate(spec.steps):
        where = ["steps", i]
        if step.id in seen:
            problems.append(
                _problem(name, root, [*where, "id"], f"steps.{i}.id: duplicate step id {step.id!r}")
            )
        seen.add(step.id)
        for j, dep in enumerate(step.depends_on):
            if dep not in ids:
                problems.append(
                    _problem(
                        name, root, [*where, "depends_on", j], f"steps.{i}.depends_on: unknown step {dep!r}"
                    )
                )
        agent = AGENTS.get(step.agent)
        if agent is None:
            problems.append(
                _problem(
                    name,
                    root,
                    [*where, "agent"],
                    f"steps.{i}.agent: unknown agent {step.agent!r} (one of {sorted(AGENTS)})",
                )
            )
            continue
        if step.action not in agent.actions:
            problems.append(
                _problem(
                    name,
                    root,
                    [*where, "action"],
                    f"steps.{i}.action: agent {step.agent!r} has no action "
                    f"{step.action!r} (one of {agent.action_names()})",
                )
            )
            continue
        try:
            parse(agent.actions[step.action].params, step.parameters, "parameters")
        except ValidationFailed as err:
            for msg in err.problems:
                field = msg.split(":", 1)[0]
                loc = [*where, "parameters", *[int(x) if x.isdigit() else x for x in field.split(".")]]
                problems.append(_problem(name, root, loc, f"steps.{i}.parameters.{msg}"))
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


def discover(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    return sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]) if folder.exists() else []


def load_all(folder: str | Path) -> list[FlowSpec]:
    """Load every flow in ``folder``; if any is invalid, raise with the problems of all of them."""
    specs, problems = [], []
    for f in discover(folder):
        try:
            specs.append(load_flow(f))
        except FlowValidationError as err:
            problems.extend(err.problems)
    ids = [s.flow_id for s in specs]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        problems.append(Problem(str(folder), 1, 1, f"duplicate flow_id(s): {dupes}"))
    if problems:
        raise FlowValidationError(problems)
    return specs
