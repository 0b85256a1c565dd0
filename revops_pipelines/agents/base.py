"""The common agent contract.

An agent exposes named actions. Each action declares a pydantic parameter model and a pydantic
output model; :meth:`Agent.run` validates the parameters (unknown fields rejected, errors name the
field), runs the action under a trace id, validates the output before it leaves the agent and
records a metric row (calls, latency, outcome) in ``agent_metrics``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

import dagster as dg
from pydantic import BaseModel, Field

from revops_pipelines.errors import ValidationFailed
from revops_pipelines.lazy import pd
from revops_pipelines.logging import get_logger, trace
from revops_pipelines.validation import new_list, parse
from revops_pipelines.warehouse import Warehouse, table

if TYPE_CHECKING:
    from revops_pipelines.agents.state import AgentState

log = get_logger("agents")

METRICS = table(
    "agent_metrics",
    [
        ("call_id", "TEXT"),
        ("trace_id", "TEXT", False),
        ("agent", "TEXT", False),
        ("agent_version", "TEXT", False),
        ("action", "TEXT", False),
        ("started_at", "TIMESTAMP", False),
        ("latency_ms", "DOUBLE", False),
        ("status", "TEXT", False),
        ("items_out", "INTEGER"),
        ("error", "TEXT"),
    ],
    keys=("call_id",),
    description="One row per agent action call: latency, outcome, error.",
    group="agents",
)


@dataclass(frozen=True)
class ActionSpec:
    params: type[BaseModel]
    output: type[BaseModel]
    handler: Callable[..., BaseModel]
    description: str = ""


class AgentRuntime(dg.ConfigurableResource):
    """Settings shared by all agents (from settings/env): dry-run, guardrails, where state and KB live,
    and the endpoints/credentials of the Execution Agent's action targets (secrets via ``dg.EnvVar``)."""

    dry_run: bool = Field(default=True, description="Execution Agent records actions without sending them.")
    max_actions_per_run: int = Field(default=500, ge=1, description="Guardrail: refuse runs planning more.")
    max_actions_per_account_per_week: int = Field(
        default=3, ge=1, description="Guardrail: live actions per account in any 7 days (all types)."
    )
    state_path: str | None = Field(
        default=None,
        description="SQLite file of agent state (default $REVOPS_HOME/state/agent_state.sqlite).",
    )
    kb_uri: str | None = Field(
        default=None, description="LanceDB location of the KB (default from settings)."
    )
    tenant_id: str | None = Field(
        default=None,
        description="Tenant these agents serve: stamped on decisions, part of every idempotency key; "
        "the Execution Agent refuses another tenant's decisions.",
    )
    slack_base_url: str = Field(default="https://slack.com/api/", description="Slack Web API base URL.")
    slack_token: str | None = Field(
        default=None, description="Slack bot token (dg.EnvVar('SLACK_BOT_TOKEN'))."
    )
    allowed_channels: list[str] = Field(
        default_factory=lambda: ["#cs-churn-alerts", "#revops-alerts"],
        description="Slack channel allow-list.",
    )
    crm_base_url: str = Field(default="https://api.hubapi.com", description="HubSpot API base URL.")
    crm_token: str | None = Field(default=None, description="HubSpot private-app token (dg.EnvVar).")
    webhook_url: str | None = Field(default=None, description="Outbound webhook endpoint.")
    webhook_secret: str | None = Field(default=None, description="HMAC-SHA256 signing secret (dg.EnvVar).")
    allowed_webhook_hosts: list[str] = Field(default_factory=new_list, description="Webhook host allow-list.")
    retry_attempts: int = Field(
        default=4, ge=1, le=10, description="Attempts per action on transient errors."
    )
    retry_base_seconds: float = Field(
        default=0.5, ge=0, description="First backoff delay (doubles each try)."
    )


class Agent:
    name: ClassVar[str]
    version: ClassVar[str] = "1"
    actions: ClassVar[dict[str, ActionSpec]]

    def __init__(
        self,
        warehouse: Warehouse,
        runtime: AgentRuntime | None = None,
        *,
        state: AgentState | None = None,
        **services: Any,
    ):
        self.warehouse = warehouse
        self.runtime = runtime or AgentRuntime()
        self._state = state
        self.services = services  # injectable collaborators (knowledge base, vendor clients, clock)

    @property
    def state(self) -> AgentState:
        """Per-(agent, entity) state across invocations (see :mod:`revops_pipelines.agents.state`)."""
        if self._state is None:
            from revops_pipelines.agents.state import AgentState

            path, tenant = self.runtime.state_path, self.runtime.tenant_id
            if path is None:
                from revops_pipelines.settings import load_settings

                settings = load_settings(tenant=tenant)  # REVOPS_TENANT when the runtime names none
                path, tenant = str(settings.state_dir / "agent_state.sqlite"), settings.tenant_id
            from revops_pipelines.tenancy import check_location

            check_location("home", path, tenant)
            from revops_pipelines.sqlite_store import connect_state_store

            self._state = connect_state_store(AgentState, path, tenant=tenant)  # REVOPS_STATE_URL: Postgres
        return self._state

    @classmethod
    def action_names(cls) -> list[str]:
        return sorted(cls.actions)

    def run(self, action: str, params: dict[str, Any], context: dict[str, Any] | None = None) -> BaseModel:
        if action not in self.actions:
            raise ValidationFailed(
                f"{self.name} action", [f"action: unknown action {action!r} (one of {self.action_names()})"]
            )
        spec = self.actions[action]
        p = parse(spec.params, params, f"{self.name}.{action} parameters")
        started = time.perf_counter()
        now = datetime.now(UTC).replace(tzinfo=None)
        status, err, items = "ok", None, None
        with trace(run_id=(context or {}).get("run_id")) as trace_id:
            try:
                out = spec.handler(self, p, context or {})
                out = parse(spec.output, out, f"{self.name}.{action} output")
                items = _count_items(out)
                return out
            except Exception as e:
                status, err = "error", f"{type(e).__name__}: {e}"[:500]
                raise
            finally:
                latency = (time.perf_counter() - started) * 1000
                log.info(
                    f"{self.name}.{action} {status} in {latency:.1f} ms",
                    extra={
                        "fields": {
                            "agent": self.name,
                            "version": self.version,
                            "action": action,
                            "status": status,
                            "latency_ms": round(latency, 2),
                            "items_out": items,
                            "flow_id": (context or {}).get("flow_id"),
                            "step_id": (context or {}).get("step_id"),
                        }
                    },
                )
                self._record_metric(trace_id, action, now, latency, status, items, err)

    def _record_metric(self, trace_id, action, started, latency, status, items, err) -> None:
        row = pd.DataFrame(
            [
                {
                    "call_id": uuid.uuid4().hex,
                    "trace_id": trace_id,
                    "agent": self.name,
                    "agent_version": self.version,
                    "action": action,
                    "started_at": started,
                    "latency_ms": latency,
                    "status": status,
                    "items_out": items,
                    "error": err,
                }
            ]
        )
        try:
            self.warehouse.merge(METRICS, row)
        except Exception as e:  # metrics must never hide the action's own outcome
            log.warning(f"could not record agent metric: {e}")


def _count_items(out: BaseModel) -> int | None:
    for attr in ("decisions", "action_results"):
        if hasattr(out, attr):
            return len(getattr(out, attr))
    return None
