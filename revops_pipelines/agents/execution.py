"""Execution Agent: carries out planned actions — verified, exactly once, retried, dead-lettered, confirmed.

For each planned action of the step's types:

1. **idempotency key** = hash(flow, step, decision, action type). A key already ``succeeded``/``dry_run``
   in ``action_log`` is reported ``skipped_duplicate``; one in ``dead_letter`` is not retried
   automatically (``skipped_dead_letter``), so re-running a flow never repeats a side effect.
2. **verify**: the handler's parameter model and allow-lists (problems name the field → dead letter),
   then the guardrails: ``max_actions_per_run`` (refuses the whole plan) and
   ``max_actions_per_account_per_week`` (that action is ``rejected`` and may run in a later week).
3. **dry-run** (the default): the payload is recorded as ``dry_run``; nothing is sent.
4. **live**: a ``pending`` row is written first; then up to ``retry_attempts`` tries with exponential
   backoff (or the vendor's ``Retry-After``). Before every retry — and for a key left ``pending`` by a
   crashed run — the handler looks the key up at the vendor, so a request whose reply was lost is not
   sent twice. Permanent errors and exhausted retries land in ``dead_letter`` with the reason.
5. **confirm**: the handler checks the effect exists (Slack history, HubSpot task read back, row written);
   an unconfirmed action is ``failed`` and dead-lettered.

Outcomes are tracked later against the sample world's snapshots by
:func:`revops_pipelines.agents.outcomes.track_outcomes` (table ``action_outcomes``).
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from revops_pipelines.agents.actions import ActionHandler, PermanentError, TransientError
from revops_pipelines.agents.actions.handlers import (  # noqa: F401 - tables owned by this agent
    ACCOUNT_FLAGS,
    EMAIL_DRAFTS,
    EmailDraft,
    HubSpotTask,
    SignedWebhook,
    SlackMessage,
    WarehouseWriteback,
)
from revops_pipelines.agents.base import ActionSpec, Agent
from revops_pipelines.agents.decision import Decision, DecisionBatch, PlannedAction
from revops_pipelines.agents.outcomes import OUTCOMES  # noqa: F401 - table owned by this agent
from revops_pipelines.agents.params import ExecuteParams
from revops_pipelines.errors import ValidationFailed
from revops_pipelines.lazy import pd
from revops_pipelines.logging import get_logger
from revops_pipelines.validation import StrictModel, parse
from revops_pipelines.warehouse import table

log = get_logger("agents.execution")

ACTION_LOG = table(
    "action_log",
    [
        ("idempotency_key", "TEXT"),
        ("flow_id", "TEXT", False),
        ("step_id", "TEXT", False),
        ("run_id", "TEXT"),
        ("decision_id", "TEXT", False),
        ("account_id", "TEXT", False),
        ("action_type", "TEXT", False),
        ("status", "TEXT", False),
        ("payload", "TEXT", False),
        ("error", "TEXT"),
        ("created_at", "TIMESTAMP", False),
    ],
    keys=("idempotency_key",),
    description="Every action the Execution Agent planned, with its outcome (dry_run, pending, succeeded, "
    "failed, rejected); payload holds the request, the vendor's ids and the attempts.",
    group="agents",
)
DEAD_LETTER = table(
    "dead_letter",
    [
        ("idempotency_key", "TEXT"),
        ("flow_id", "TEXT", False),
        ("step_id", "TEXT", False),
        ("run_id", "TEXT"),
        ("decision_id", "TEXT", False),
        ("account_id", "TEXT", False),
        ("action_type", "TEXT", False),
        ("payload", "TEXT", False),
        ("reason", "TEXT", False),
        ("attempts", "INTEGER", False),
        ("failed_at", "TIMESTAMP", False),
    ],
    keys=("idempotency_key",),
    description="Actions that failed permanently (or exhausted their retries), with the reason.",
    group="agents",
)
DONE = ("succeeded", "dry_run")
Status = Literal[
    "dry_run", "succeeded", "failed", "rejected", "dead_lettered", "skipped_duplicate", "skipped_dead_letter"
]


class ActionResult(StrictModel):
    action_id: str
    type: str
    account_id: str
    status: Status
    details: dict[str, Any]
    error: str | None = None
    attempts: int = 0
    timestamp: datetime


class ExecutionSummary(StrictModel):
    total: int
    successful: int
    failed: int
    skipped: int
    rejected: int = 0
    time_ms: float


class ExecutionReport(StrictModel):
    contract_version: Literal["execution/2"] = "execution/2"
    execution_summary: ExecutionSummary
    action_results: list[ActionResult]


def action_key(
    flow_id: str, step_id: str, decision_id: str, action_type: str, tenant_id: str | None = None
) -> str:
    """Deterministic idempotency key; a tenant's keys are its own (the default tenant's are unchanged)."""
    base = f"{flow_id}|{step_id}|{decision_id}|{action_type}"
    return hashlib.sha256((base if tenant_id is None else f"{tenant_id}|{base}").encode()).hexdigest()[:32]


def _same_tenant(batches: list[DecisionBatch], tenant_id: str | None) -> None:
    """Refuse decisions made for another tenant (their accounts, their data) before anything runs."""
    foreign = sorted({str(b.tenant_id) for b in batches if b.tenant_id != tenant_id})
    if foreign:
        here = "the default tenant" if tenant_id is None else f"tenant {tenant_id!r}"
        raise ValidationFailed(
            "execution plan",
            [f"tenant_id: decisions made for tenant(s) {', '.join(foreign)} cannot be executed by {here}"],
        )


def _payload(a: PlannedAction, p: ExecuteParams) -> dict[str, Any]:
    params = dict(a.parameters)
    if a.type == "slack_message" and p.channel:
        params["channel"] = p.channel
    return params


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class _Executor:
    def __init__(self, agent: ExecutionAgent, p: ExecuteParams, context: dict[str, Any]):
        self.agent, self.p = agent, p
        self.wh = agent.warehouse
        self.rt = agent.runtime
        self.flow_id = context.get("flow_id") or "adhoc"
        self.step_id = context.get("step_id") or "execute"
        self.run_id = context.get("run_id")
        self.sleep = agent.services.get("sleep", time.sleep)
        self._handlers: dict[str, ActionHandler] = {}

    # -- handlers are built lazily, only for live runs of that type --
    def handler(self, action_type: str) -> ActionHandler:
        if action_type not in self._handlers:
            s, rt = self.agent.services, self.rt
            if action_type == "slack_message":
                h: Any = (
                    SlackMessage(s["slack_client"], rt.allowed_channels)
                    if "slack_client" in s
                    else SlackMessage.build(rt.slack_token, rt.slack_base_url, rt.allowed_channels)
                )
            elif action_type == "crm_task":
                h = (
                    HubSpotTask(s["hubspot_client"])
                    if "hubspot_client" in s
                    else HubSpotTask.build(rt.crm_token, rt.crm_base_url)
                )
            elif action_type == "webhook":
                h = SignedWebhook(
                    rt.webhook_url, rt.webhook_secret, rt.allowed_webhook_hosts, s.get("http_client")
                )
            elif action_type == "email_draft":
                h = EmailDraft(self.wh)
            else:
                h = WarehouseWriteback(self.wh)
            self._handlers[action_type] = h
        return self._handlers[action_type]

    def verify_only(self, action_type: str, params: dict[str, Any]) -> list[str]:
        """Parameter/allow-list checks that need no vendor client (also run in dry-run)."""
        if action_type == "slack_message":
            return SlackMessage(None, self.rt.allowed_channels).verify(params)
        if action_type == "crm_task":
            return HubSpotTask(None).verify(params)
        if action_type == "webhook":
            return SignedWebhook(
                self.rt.webhook_url, self.rt.webhook_secret, self.rt.allowed_webhook_hosts
            ).verify(params)
        return self.handler(action_type).verify(params)

    def recent_counts(self, accounts: list[str], exclude: set[str]) -> dict[str, int]:
        if not accounts:
            return {}
        marks = ", ".join("?" for _ in accounts)
        df = self.wh.query(
            f"SELECT account_id, idempotency_key FROM action_log WHERE status IN ('succeeded', 'dry_run', 'pending') "
            f"AND created_at >= ? AND account_id IN ({marks})",
            [_now() - timedelta(days=7), *accounts],
        )
        df = df[~df["idempotency_key"].isin(exclude)]
        return df.groupby("account_id").size().to_dict()

    def run_live(
        self, key: str, a: PlannedAction, params: dict[str, Any], resume: bool
    ) -> tuple[str, dict, str | None, int]:
        """Returns (status, details, error, attempts)."""
        try:
            h = self.handler(a.type)
        except PermanentError as e:
            return "dead_lettered", {}, str(e), 0
        attempts, last = 0, None
        while attempts < self.rt.retry_attempts:
            attempts += 1
            try:
                found = h.find(params, key) if (attempts > 1 or resume) else None
                result = found if found is not None else h.execute(params, key)
                if not h.confirm(params, result):
                    return (
                        "dead_lettered",
                        result,
                        "not confirmed: the effect was not found after sending",
                        attempts,
                    )
                return "succeeded", {**result, "recovered": found is not None}, None, attempts
            except TransientError as e:
                last = str(e)
                if attempts >= self.rt.retry_attempts:
                    break
                delay = (
                    e.retry_after
                    if e.retry_after is not None
                    else self.rt.retry_base_seconds * 2 ** (attempts - 1)
                )
                log.warning(f"{a.type} {key[:8]} attempt {attempts} failed ({e}); retrying in {delay:.2f}s")
                self.sleep(delay)
            except PermanentError as e:
                return "dead_lettered", {}, str(e), attempts
        return "dead_lettered", {}, f"gave up after {attempts} attempts: {last}", attempts


def _result(
    key: str,
    a: PlannedAction,
    d: Decision,
    status: str,
    details: dict,
    error: str | None = None,
    attempts: int = 0,
) -> ActionResult:
    return ActionResult(
        action_id=key,
        type=a.type,
        account_id=d.account_id,
        status=status,
        details=details,
        error=error,
        attempts=attempts,
        timestamp=_now(),
    )


def _log_row(
    ex: _Executor, key: str, d: Decision, a: PlannedAction, status: str, payload: dict, error: str | None
) -> dict:
    return {
        "idempotency_key": key,
        "flow_id": ex.flow_id,
        "step_id": ex.step_id,
        "run_id": ex.run_id,
        "decision_id": d.decision_id,
        "account_id": d.account_id,
        "action_type": a.type,
        "status": status,
        "payload": json.dumps(payload, sort_keys=True, default=str),
        "error": error,
        "created_at": _now(),
    }


def execute_actions(agent: ExecutionAgent, p: ExecuteParams, context: dict[str, Any]) -> ExecutionReport:
    started = time.perf_counter()
    ex = _Executor(agent, p, context)
    batches = [
        parse(DecisionBatch, b, "upstream decisions")
        for b in context.get("upstream", {}).values()
        if isinstance(b, dict) and "decisions" in b
    ]
    _same_tenant(batches, agent.runtime.tenant_id)
    planned = [(d, a) for b in batches for d in b.decisions for a in d.actions if a.type in p.action_types]
    if len(planned) > agent.runtime.max_actions_per_run:
        raise ValidationFailed(
            "execution plan",
            [
                f"actions: {len(planned)} planned, more than the guardrail max_actions_per_run="
                f"{agent.runtime.max_actions_per_run}"
            ],
        )
    tenant_id = agent.runtime.tenant_id
    keys = [action_key(ex.flow_id, ex.step_id, d.decision_id, a.type, tenant_id) for d, a in planned]
    prior: dict[str, str] = {}
    dead: dict[str, str] = {}
    if keys:
        agent.warehouse.ensure_table(ACTION_LOG)
        agent.warehouse.ensure_table(DEAD_LETTER)
        marks = ", ".join("?" for _ in keys)
        seen = agent.warehouse.query(
            f"SELECT idempotency_key, status FROM action_log WHERE idempotency_key IN ({marks})", keys
        )
        prior = dict(zip(seen["idempotency_key"], seen["status"], strict=True))
        dl = agent.warehouse.query(
            f"SELECT idempotency_key, reason FROM dead_letter WHERE idempotency_key IN ({marks})", keys
        )
        dead = dict(zip(dl["idempotency_key"], dl["reason"], strict=True))
    todo = [k for k in keys if prior.get(k) not in DONE and k not in dead]
    counts = ex.recent_counts(
        sorted({d.account_id for (d, _), k in zip(planned, keys, strict=True) if k in todo}), set(todo)
    )
    results: list[ActionResult | None] = []
    dead_rows: list[dict] = []
    log_rows: list[dict] = []  # written in one merge at the end
    live: list[tuple[int, str, Decision, PlannedAction, dict[str, Any], bool]] = []
    for key, (d, a) in zip(keys, planned, strict=True):
        params = _payload(a, p)
        if prior.get(key) in DONE:
            results.append(_result(key, a, d, "skipped_duplicate", {"reason": f"already {prior[key]}"}))
            continue
        if key in dead:
            reason = {"reason": "in dead_letter; fix and replay it"}
            results.append(_result(key, a, d, "skipped_dead_letter", reason, dead[key]))
            continue
        problems = ex.verify_only(a.type, params)
        if problems:
            reason = "verification failed: " + "; ".join(problems)
            dead_rows.append({**_log_row(ex, key, d, a, "dead_lettered", params, reason), "attempts": 0})
            log_rows.append(_log_row(ex, key, d, a, "failed", params, reason))
            results.append(_result(key, a, d, "dead_lettered", {"request": params}, reason))
            continue
        if counts.get(d.account_id, 0) >= agent.runtime.max_actions_per_account_per_week:
            reason = (
                f"guardrail: {counts[d.account_id]} actions for account {d.account_id} in the last 7 days "
                f"(max_actions_per_account_per_week={agent.runtime.max_actions_per_account_per_week})"
            )
            log_rows.append(_log_row(ex, key, d, a, "rejected", params, reason))
            results.append(_result(key, a, d, "rejected", {"request": params}, reason))
            continue
        counts[d.account_id] = counts.get(d.account_id, 0) + 1
        if agent.runtime.dry_run:
            log_rows.append(_log_row(ex, key, d, a, "dry_run", params, None))
            results.append(_result(key, a, d, "dry_run", {"would_send": params}))
            continue
        results.append(None)
        live.append((len(results) - 1, key, d, a, params, prior.get(key) == "pending"))
    if live:
        # 'pending' is durable before anything is sent: a crashed run leaves it, and the next run looks
        # the key up at the vendor (find) instead of sending again
        pending = [_log_row(ex, k, d, a, "pending", {"request": prm}, None) for _, k, d, a, prm, _ in live]
        agent.warehouse.merge(ACTION_LOG, pd.DataFrame(pending, columns=ACTION_LOG.column_names))
        for idx, key, d, a, params, resume in live:
            status, details, error, attempts = ex.run_live(key, a, params, resume)
            record = {"request": params, "result": details, "attempts": attempts}
            if status == "succeeded":
                log_rows.append(_log_row(ex, key, d, a, "succeeded", record, None))
            else:
                log_rows.append(_log_row(ex, key, d, a, "failed", record, error))
                dead_rows.append(
                    {**_log_row(ex, key, d, a, "dead_lettered", params, error), "attempts": attempts}
                )
                log.error(f"{a.type} for {d.account_id} dead-lettered: {error}")
            results[idx] = _result(key, a, d, status, record, error, attempts)
    if log_rows:
        agent.warehouse.merge(ACTION_LOG, pd.DataFrame(log_rows, columns=ACTION_LOG.column_names))
        _actioned_insights(agent, log_rows)
    if dead_rows:
        agent.warehouse.merge(
            DEAD_LETTER,
            pd.DataFrame(
                [
                    {
                        **{
                            c: r[c]
                            for c in ("idempotency_key", "flow_id", "step_id", "run_id", "decision_id")
                        },
                        "account_id": r["account_id"],
                        "action_type": r["action_type"],
                        "payload": r["payload"],
                        "reason": r["error"],
                        "attempts": r["attempts"],
                        "failed_at": r["created_at"],
                    }
                    for r in dead_rows
                ],
                columns=DEAD_LETTER.column_names,
            ),
        )
    done = [r for r in results if r is not None]
    return ExecutionReport(
        execution_summary=ExecutionSummary(
            total=len(done),
            successful=sum(1 for r in done if r.status in DONE),
            failed=sum(1 for r in done if r.status in ("failed", "dead_lettered")),
            skipped=sum(1 for r in done if r.status.startswith("skipped")),
            rejected=sum(1 for r in done if r.status == "rejected"),
            time_ms=(time.perf_counter() - started) * 1000,
        ),
        action_results=done,
    )


def _actioned_insights(agent: Agent, log_rows: list[dict]) -> None:
    """The insights of decisions whose action was carried out move to ``actioned`` (never fatal)."""
    from revops_pipelines.agents.insights import mark_actioned

    executed = {r["decision_id"]: r["status"] for r in log_rows if r["status"] in DONE}
    if not executed:
        return
    try:
        mark_actioned(agent.warehouse, executed)
    except Exception as e:  # bookkeeping must not hide the actions' own outcome
        log.warning(f"could not update insight statuses: {type(e).__name__}: {e}")


class ExecutionAgent(Agent):
    """Services (keyword arguments): ``slack_client`` (slack_sdk WebClient), ``hubspot_client``
    (hubspot.HubSpot), ``http_client`` (httpx.Client for webhooks), ``sleep`` (backoff, for tests).
    Without them, clients are built from :class:`AgentRuntime` when a live action needs one."""

    name = "execution"
    version = "2"
    actions = {
        "execute_actions": ActionSpec(
            ExecuteParams,
            ExecutionReport,
            execute_actions,
            "Run planned actions of the given types: verified, once each, retried, dead-lettered, confirmed.",
        )
    }
