"""The flow definition language (typed). See ``flows_yaml/`` for examples and ``flows_yaml/schema.json``
(generated from these models by ``revops flows schema``) for editor completion.

A flow is a DAG of steps. Without ``entities`` each step runs once per invocation (batch steps such as
``decision.assess_churn_risk``). With ``entities`` the flow fans out: every step runs per selected
entity, and each entity's progress is kept in the flow state store across invocations, so ``wait``
and ``approval`` steps resume on a later invocation.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from revops_pipelines.validation import StrictModel, new_list

ID = r"^[a-z][a-z0-9_]{0,62}$"
CHANNEL = r"^#[a-z0-9._-]{1,80}$"


class Trigger(StrictModel):
    type: Literal["schedule", "sensor", "event", "manual"] = Field(
        default="manual",
        description="schedule: cron; sensor: after an asset materialises; event: fed by an event source; "
        "manual: `revops flows run` or the UI only.",
    )
    cron: str | None = Field(default=None, description="Cron expression, required for type: schedule.")
    timezone: str = "UTC"
    asset: str | None = Field(
        default=None, description="Asset key (e.g. churn_scores), required for type: sensor."
    )
    event: str | None = Field(default=None, pattern=ID, description="Event name, required for type: event.")


class ErrorHandling(StrictModel):
    retry_count: int = Field(default=3, ge=0, le=10)
    backoff_seconds: float = Field(default=2.0, ge=0, le=3600)
    backoff: Literal["exponential", "linear"] = "exponential"
    on_failure: str | None = Field(
        default=None,
        pattern=ID,
        description="Step run (once) when a step has failed its last retry; it is not part of the DAG.",
    )
    notify: str | None = Field(
        default="#revops-alerts",
        pattern=CHANNEL,
        description="Slack channel the run-failure sensor notifies (via the Execution Agent).",
    )


class StepErrorHandling(StrictModel):
    """Per-step override; unset fields inherit the flow's ``error_handling``."""

    retry_count: int | None = Field(default=None, ge=0, le=10)
    backoff_seconds: float | None = Field(default=None, ge=0, le=3600)
    backoff: Literal["exponential", "linear"] | None = None
    on_failure: str | None = Field(default=None, pattern=ID)


class Entities(StrictModel):
    """Entity selection: one read-only SELECT with ``?`` placeholders and their values (never formatted)."""

    sql: str = Field(min_length=7, description="SELECT returning one row per entity.")
    params: list[str | int | float | bool] = Field(default_factory=new_list)
    id_column: str = Field(default="account_id", description="Column holding the entity id.")
    via: Literal["warehouse", "data_agent"] = Field(
        default="warehouse",
        description="warehouse: the flow runs the SELECT itself; data_agent: through the Data Agent's "
        "run_query (its read-only SQL guard, query log and cache).",
    )
    max_entities: int = Field(default=10_000, ge=1, le=1_000_000)


class Wait(StrictModel):
    days: float = Field(ge=0, description="Delay before the step is due.")
    after: str = Field(
        default="start",
        description="'start' (the entity entered the flow), a step id (that step finished) or "
        "'entity.<field>' (a date/timestamp column of the selected row).",
    )


class Step(StrictModel):
    id: str = Field(pattern=ID)
    agent: str | None = Field(default=None, description="Agent name (with action), or use type.")
    action: str | None = None
    type: str | None = Field(default=None, description="A registered custom step type (see flows.plugins).")
    depends_on: list[str] = Field(default_factory=new_list)
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        description="Values may use ${entity.<field>} and ${steps.<id>.output.<path>} templates.",
    )
    when: str | None = Field(
        default=None,
        description="Condition: '<template|literal> <op> <template|literal>', op in == != > >= < <=.",
    )
    wait: Wait | None = None
    approval: bool = Field(default=False, description="Human approval required before the step runs.")
    error_handling: StepErrorHandling | None = None
    description: str = ""


class FlowSpec(StrictModel):
    flow_id: str = Field(pattern=ID)
    version: int = Field(ge=1)
    description: str = ""
    owner: str
    enabled: bool = True
    trigger: Trigger = Field(default_factory=Trigger)
    entities: Entities | None = None
    steps: list[Step] = Field(min_length=1)
    error_handling: ErrorHandling = Field(default_factory=ErrorHandling)

    def dag_steps(self) -> list[Step]:
        """Steps in the DAG (on-failure handlers excluded)."""
        handlers = self.failure_handlers()
        return [s for s in self.steps if s.id not in handlers]

    def failure_handlers(self) -> set[str]:
        out = {self.error_handling.on_failure} if self.error_handling.on_failure else set()
        out |= {
            s.error_handling.on_failure
            for s in self.steps
            if s.error_handling and s.error_handling.on_failure
        }
        return out

    def step_errors(self, step: Step) -> ErrorHandling:
        base = self.error_handling.model_dump()
        if step.error_handling:
            base.update({k: v for k, v in step.error_handling.model_dump().items() if v is not None})
        return ErrorHandling.model_validate(base)
