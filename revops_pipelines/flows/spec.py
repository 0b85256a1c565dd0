"""The flow definition language (typed). See ``flows_yaml/`` for examples."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from revops_pipelines.validation import StrictModel

ID = r"^[a-z][a-z0-9_]{0,62}$"


class Trigger(StrictModel):
    type: Literal["schedule", "manual"] = "manual"
    cron: str | None = Field(default=None, description="Cron expression, required for type: schedule.")
    timezone: str = "UTC"


class ErrorHandling(StrictModel):
    retry_count: int = Field(default=3, ge=0, le=10)
    backoff_seconds: float = Field(default=2.0, ge=0, le=3600)


class Step(StrictModel):
    id: str = Field(pattern=ID)
    agent: str
    action: str
    depends_on: list[str] = Field(default_factory=list)
    parameters: dict[str, Any] = Field(default_factory=dict)
    description: str = ""


class FlowSpec(StrictModel):
    flow_id: str = Field(pattern=ID)
    version: int = Field(ge=1)
    description: str = ""
    owner: str
    enabled: bool = True
    trigger: Trigger = Field(default_factory=Trigger)
    steps: list[Step] = Field(min_length=1)
    error_handling: ErrorHandling = Field(default_factory=ErrorHandling)
