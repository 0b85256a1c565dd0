"""``${...}`` templates in step parameters and ``when:`` conditions.

Two reference forms exist: ``${entity.<field>}`` (a column of the entity's selected row; fan-out flows
only) and ``${steps.<id>.output.<path>}`` (the output of a step the current step depends on, with
``.``-separated keys or list indices). A value that is exactly one template keeps the referenced value's
type; a template inside a longer string is substituted as text.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Iterator
from typing import Any

_TEMPLATE = re.compile(r"\$\{([^}]*)\}")
_ENTITY = re.compile(r"^entity\.([A-Za-z_][A-Za-z0-9_]*)$")
_STEP = re.compile(r"^steps\.([a-z][a-z0-9_]*)\.output((?:\.[A-Za-z0-9_]+)*)$")
_COND = re.compile(r"^\s*(.+?)\s*(==|!=|>=|<=|>|<)\s*(.+?)\s*$")
_OPS = {
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


class TemplateError(ValueError):
    pass


def walk(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], str]]:
    """Every string inside ``value`` with its location."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from walk(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from walk(v, (*path, i))


def references(text: str) -> list[tuple[str, str, str]]:
    """``(kind, name, path)`` per template in ``text``: ('entity', field, '') or ('steps', id, 'a.b').

    Raises :class:`TemplateError` for a malformed template (unclosed, empty, unknown form).
    """
    refs = []
    rest = _TEMPLATE.sub("", text)
    if "${" in rest:
        raise TemplateError(f"unclosed template in {text!r}")
    for m in _TEMPLATE.finditer(text):
        inner = m.group(1).strip()
        if e := _ENTITY.match(inner):
            refs.append(("entity", e.group(1), ""))
        elif s := _STEP.match(inner):
            refs.append(("steps", s.group(1), s.group(2).lstrip(".")))
        else:
            raise TemplateError(
                f"bad template ${{{m.group(1)}}}: use ${{entity.<field>}} or ${{steps.<id>.output.<path>}}"
            )
    return refs


def _lookup(scope: dict[str, Any], kind: str, name: str, path: str) -> Any:
    if kind == "entity":
        row = scope.get("entity") or {}
        if name not in row:
            raise TemplateError(f"entity has no field {name!r}")
        return row[name]
    cur: Any = (scope.get("steps") or {}).get(name)
    if cur is None:
        raise TemplateError(f"no output of step {name!r}")
    for part in [p for p in path.split(".") if p]:
        if isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        elif isinstance(cur, dict) and part in cur:
            cur = cur[part]
        else:
            raise TemplateError(f"steps.{name}.output.{path}: no {part!r}")
    return cur


def render(value: Any, scope: dict[str, Any]) -> Any:
    """Substitute every template in ``value`` (recursively) from ``scope`` = {entity, steps}."""
    if isinstance(value, dict):
        return {k: render(v, scope) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, scope) for v in value]
    if not isinstance(value, str) or "${" not in value:
        return value
    whole = _TEMPLATE.fullmatch(value.strip())
    if whole:
        (ref,) = references(value)
        return _lookup(scope, *ref)
    return _TEMPLATE.sub(lambda m: str(_lookup(scope, *references(m.group(0))[0])), value)


_AND = re.compile(r"\s+and\s+")


def conditions(expr: str) -> list[tuple[str, str, str]]:
    """``a > 1 and b <= 2`` → its comparisons (all must hold)."""
    return [split_condition(part) for part in _AND.split(expr.strip())]


def split_condition(expr: str) -> tuple[str, str, str]:
    m = _COND.match(expr)
    if not m:
        raise TemplateError(f"bad condition {expr!r}: expected '<left> <op> <right>' with op in {list(_OPS)}")
    return m.group(1), m.group(2), m.group(3)


def _operand(text: str, scope: dict[str, Any]) -> Any:
    if _TEMPLATE.fullmatch(text):
        return render(text, scope)
    t = text.strip("'\"")
    if t != text:
        return t
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("null", "none"):
        return None
    try:
        return float(text)
    except ValueError:
        return text


def evaluate(expr: str, scope: dict[str, Any]) -> bool:
    """True when every comparison of ``expr`` holds; a missing value or type mismatch is False."""
    return all(_compare(*c, scope) for c in conditions(expr))


def _compare(left: str, op: str, right: str, scope: dict[str, Any]) -> bool:
    a, b = _operand(left, scope), _operand(right, scope)
    try:
        if isinstance(a, (int, float)) and isinstance(b, str):
            b = float(b)
        if isinstance(b, (int, float)) and isinstance(a, str):
            a = float(a)
        return bool(_OPS[op](a, b))
    except (TypeError, ValueError):
        return False
