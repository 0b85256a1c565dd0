"""The parameter models of every agent action, and which action of which agent takes which.

Kept apart from the agents themselves (:mod:`revops_pipelines.agents.data`, ``.decision``,
``.execution``, which import their models from here) so that validating a flow's agent steps —
done while loading the definitions — needs only this light module, not the agents' code and output
models. :data:`ACTION_PARAMS` mirrors ``AGENTS[name].actions[action].params`` (a test holds them
equal)."""

from datetime import date
from typing import Literal

from pydantic import BaseModel, Field

from revops_pipelines.agents.standardise import Day
from revops_pipelines.validation import StrictModel, new_list

# ---- Data Agent -----------------------------------------------------------------------------------
NUMERIC_FEATURES = (
    "seats", "arr", "tenure_days", "days_to_renewal", "util_30d", "util_prev_60d", "usage_trend",
    "usage_slope_90d", "sessions_30d", "features_used_30d", "days_since_active", "calls_90d",
    "sentiment_90d", "negative_share_90d", "risk_mentions_90d", "tickets_90d", "high_tickets_90d",
    "open_tickets", "overdue_invoices", "meddpicc_completeness",
)  # fmt: skip
Metric = Literal[NUMERIC_FEATURES + ("churn_rate",)]  # type: ignore[valid-type]
GroupColumn = Literal["segment", "plan", "billing_frequency", "tenure_year", "signup_quarter"]


class DiscoverParams(StrictModel):
    tables: list[str] | None = Field(default=None, description="Only these tables (default: all).")


class AccountMetricsParams(StrictModel):
    account_id: str = Field(min_length=1, max_length=64)
    snapshot_date: date | None = Field(default=None, description="Default: the account's latest snapshot.")
    metrics: list[Metric] | None = Field(default=None, description="Default: every numeric feature.")


class CohortFilters(StrictModel):
    segment: list[str] | None = None
    plan: list[str] | None = None
    billing_frequency: list[str] | None = None
    min_arr: float | None = Field(default=None, ge=0)
    max_arr: float | None = Field(default=None, ge=0)


class CohortParams(StrictModel):
    group_by: list[GroupColumn] = Field(default_factory=lambda: ["segment"], min_length=1, max_length=3)
    metrics: list[Metric] = Field(default_factory=lambda: ["util_30d", "churn_rate"], min_length=1)
    aggregate: Literal["avg", "min", "max", "sum"] = "avg"
    snapshot_date: date | None = Field(default=None, description="Default: the latest snapshot.")
    filters: CohortFilters = Field(default_factory=CohortFilters)
    limit: int = Field(default=100, ge=1, le=1000)


class RunQueryParams(StrictModel):
    sql: str = Field(min_length=1, max_length=20_000)
    params: list[str | int | float | bool | date | None] = Field(default_factory=new_list)
    limit: int = Field(default=1000, ge=1, le=100_000)


class ExplainParams(StrictModel):
    sql: str = Field(min_length=1, max_length=20_000)
    params: list[str | int | float | bool | date | None] = Field(default_factory=new_list)


class SuggestParams(StrictModel):
    min_queries: int = Field(default=2, ge=1, description="Filters seen fewer times are ignored.")


class AccountMetricsManyParams(StrictModel):
    requests: list[AccountMetricsParams] = Field(min_length=1, max_length=100_000)


# ---- Decision Agent -------------------------------------------------------------------------------
class ChurnRiskParams(StrictModel):
    policy: str = Field(default="churn_prevention", description="Policy name under flows_yaml/policies/.")
    threshold: float | None = Field(default=None, ge=0, le=1, description="Overrides min_churn_score.")
    max_accounts: int | None = Field(default=None, ge=1, le=1_000_000, description="Overrides max_accounts.")
    snapshot_date: Day | None = None
    use_knowledge_base: bool = True


# ---- Execution Agent ------------------------------------------------------------------------------
ActionType = Literal["slack_message", "crm_task", "email_draft", "webhook", "warehouse_writeback"]


class ExecuteParams(StrictModel):
    action_types: list[ActionType] = Field(
        min_length=1, description="Which planned action types this step runs."
    )
    channel: str | None = Field(
        default=None, pattern=r"^#[a-z0-9._-]{1,80}$", description="Overrides the Slack channel of the plan."
    )


# agent name -> action name -> parameter model (the agents' ``actions`` declare the same)
ACTION_PARAMS: dict[str, dict[str, type[BaseModel]]] = {
    "data": {
        "discover_schema": DiscoverParams,
        "account_metrics": AccountMetricsParams,
        "cohort_query": CohortParams,
        "run_query": RunQueryParams,
        "explain": ExplainParams,
        "suggest_indexes": SuggestParams,
        "account_metrics_many": AccountMetricsManyParams,
    },
    "decision": {"assess_churn_risk": ChurnRiskParams},
    "execution": {"execute_actions": ExecuteParams},
}
