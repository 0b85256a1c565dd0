"""One input-validation approach for the whole project: pydantic models.

CLI arguments, agent inputs/outputs, flow specs and (later) webhook payloads all go through
:func:`parse`, which turns pydantic's errors into :class:`ValidationFailed` with one message per
field (``field.path: what is wrong``). Unknown fields are rejected (``extra="forbid"``).
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from revops_pipelines.errors import ValidationFailed


class StrictModel(BaseModel):
    """Base of every typed contract: unknown fields are an error, values are validated on assignment."""

    # defer_build: a model's validator is built on first use, not at import (loading the Dagster
    # definitions imports dozens of contracts that a given process mostly never validates)
    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, str_strip_whitespace=True, defer_build=True
    )


M = TypeVar("M", bound=BaseModel)


def new_list() -> list:
    """An empty list, as a field's ``default_factory`` instead of ``list``: pydantic reads a factory's
    signature, and the first builtin's costs ~1.5 ms (the tokenizer's patterns are compiled), paid
    while the definitions load."""
    return []


def format_errors(err: ValidationError) -> list[str]:
    out = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e.get("loc", ())) or "<root>"
        msg = e.get("msg", "invalid")
        if e.get("type") == "extra_forbidden":
            msg = "unknown field"
        out.append(f"{loc}: {msg}")
    return out


def parse(model: type[M], data: Any, what: str | None = None) -> M:
    """Validate ``data`` against ``model``; raise :class:`ValidationFailed` naming every bad field."""
    try:
        if isinstance(data, model):
            return model.model_validate(data.model_dump())
        return model.model_validate(data)
    except ValidationError as err:
        raise ValidationFailed(what or model.__name__, format_errors(err)) from None
