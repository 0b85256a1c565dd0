"""Running one step of a flow: templating, ``when``, entity fan-out, waits, approvals, state, failure
handlers. Free of Dagster so it can be tested and reused (the compiler wraps it in ops).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from revops_pipelines.errors import ValidationFailed
from revops_pipelines.flows.plugins import STEP_TYPES, StepContext
from revops_pipelines.flows.spec import FlowSpec, Step
from revops_pipelines.flows.state import FlowState
from revops_pipelines.flows.templates import evaluate, render
from revops_pipelines.logging import get_logger
from revops_pipelines.validation import parse

log = get_logger("flows")
SKIPPED = object()
_SELECT = re.compile(r"^\s*(select|with)\b", re.IGNORECASE)
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
STALE_CLAIM = timedelta(hours=1)


class StepFailed(RuntimeError):
    pass


def _jsonable(v: Any) -> Any:
    if isinstance(v, (datetime, date)):
        return v.isoformat()
    if hasattr(v, "item"):  # numpy scalars
        return v.item()
    if v != v:  # NaN
        return None
    return v


def select_entities(
    spec: FlowSpec,
    warehouse: Any,
    agents: Any = None,
    *,
    entity_ids: list[str] | None = None,
    event: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The flow's entities: its SELECT with bound parameters (never string-formatted), run by the
    flow or through the Data Agent.

    ``entity_ids`` narrows the selection to those ids (an event-triggered run processes just the
    event's entity). With ``event`` (``{"source", "event_id", "event_type", "data"}``) each row also
    carries ``event_id``, ``event_key``, ``event_type`` and ``event_<field>`` per scalar data field
    (templates: ``${entity.event_severity}``), and its state key is per event occurrence
    (``<id>@<source>:<event_id>``), so each event runs the flow's steps once.
    """
    e = spec.entities
    assert e is not None
    if not _SELECT.match(e.sql) or ";" in e.sql.strip().rstrip(";"):
        raise ValidationFailed("entities", ["entities.sql: must be one SELECT statement"])
    from revops_pipelines.agents.execution import ACTION_LOG

    warehouse.ensure_table(ACTION_LOG)  # the shared action ledger; selections may exclude accounts in it
    sql, params = e.sql.strip().rstrip(";"), list(e.params)
    if entity_ids is not None:
        if not _IDENT.match(e.id_column):
            raise ValidationFailed("entities", [f"entities.id_column: {e.id_column!r} is not a column name"])
        if not entity_ids:
            return []
        marks = ", ".join("?" for _ in entity_ids)
        sql = f"SELECT * FROM ({sql}) AS flow_entities WHERE CAST({e.id_column} AS TEXT) IN ({marks})"
        params += [str(i) for i in entity_ids]
    if e.via == "data_agent":
        from revops_pipelines.agents.data import DataAgent

        out = DataAgent(warehouse, agents).run(
            "run_query",
            {"sql": sql, "params": params, "limit": e.max_entities},
            {"flow_id": spec.flow_id},
        )
        columns, records = out.columns, out.rows
    else:
        df = warehouse.query(sql, params)
        columns, records = list(df.columns), df.head(e.max_entities).to_dict("records")
    if e.id_column not in columns:
        raise ValidationFailed("entities", [f"entities.id_column: {e.id_column!r} not in {columns}"])
    rows = [{k: _jsonable(v) for k, v in r.items()} for r in records]
    for r in rows:
        r["_id"] = str(r[e.id_column])
    if event:
        key = f"{event.get('source', 'event')}:{event['event_id']}"
        fields = {
            f"event_{k}": v
            for k, v in (event.get("data") or {}).items()
            if isinstance(k, str)
            and _IDENT.match(k)
            and (v is None or isinstance(v, (str, int, float, bool)))
        }
        for r in rows:
            r.update(
                fields, event_id=str(event["event_id"]), event_key=key, event_type=event.get("event_type")
            )
            r["_id"] = f"{r['_id']}@{key}"
    return rows


def call_step(step: Step, params: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    """Run an agent action or a custom step type; returns a JSON-ready dict."""
    if step.type:
        st = STEP_TYPES[step.type]
        return st.fn(parse(st.params, params, f"step {step.id} parameters"), ctx)
    from revops_pipelines.agents.registry import AGENTS

    agent = AGENTS[step.agent](ctx.warehouse, ctx.agents)
    out = agent.run(
        step.action,
        params,
        {"flow_id": ctx.flow_id, "step_id": ctx.step_id, "run_id": ctx.run_id, "upstream": ctx.upstream},
    )
    return out.model_dump(mode="json")


def run_batch_step(
    spec: FlowSpec, step: Step, base: StepContext, upstream: dict[str, Any]
) -> dict[str, Any] | object:
    """A step of a flow without entities: once per run. Returns SKIPPED when ``when`` is false."""
    scope = {"steps": upstream, "entity": None}
    if step.when and not evaluate(step.when, scope):
        return SKIPPED
    ctx = StepContext(**{**base.__dict__, "upstream": upstream})
    return call_step(step, render(step.parameters, scope), ctx)


def run_failure_handler(
    spec: FlowSpec, step: Step, base: StepContext, error: str, entity: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    handler_id = spec.step_errors(step).on_failure
    if not handler_id:
        return None
    handler = next(s for s in spec.steps if s.id == handler_id)
    scope = {"entity": entity, "steps": {}, "error": error}
    ctx = StepContext(
        **{**base.__dict__, "step_id": handler.id, "upstream": {"failed": {"step": step.id, "error": error}}}
    )
    log.warning(f"{spec.flow_id}.{step.id} failed; running on-failure step {handler.id}")
    return call_step(handler, render(handler.parameters, scope), ctx)


def _parse_time(v: Any) -> datetime:
    if isinstance(v, datetime):
        return v.replace(tzinfo=None)
    s = str(v)
    return datetime.fromisoformat(s[:19] if "T" in s or " " in s else s[:10])


def run_entity_step(
    spec: FlowSpec,
    step: Step,
    base: StepContext,
    entities: list[dict[str, Any]],
    state: FlowState,
    *,
    now: datetime,
    final_attempt: bool = True,
) -> dict[str, Any]:
    """A step fanned out over entities; each entity advances only as far as its state allows.

    Returns ``{"outputs": {entity_id: output}, "counts": {status: n}}`` for entities whose step is done.
    Raises :class:`StepFailed` if any entity failed (after recording it), so the op's retry policy
    applies; entities already done are not run again on the retry.
    """
    outputs: dict[str, Any] = {}
    counts: dict[str, int] = {}
    failures: list[str] = []
    run_id = base.run_id
    now_s = now.isoformat(timespec="seconds")
    for ent in entities:
        eid = ent["_id"]
        decision: dict[str, Any] = {}

        def plan(
            doc: dict[str, Any], ent: dict[str, Any] = ent, decision: dict[str, Any] = decision
        ) -> dict[str, Any]:
            doc.setdefault("started_at", now_s)  # the entity entered the flow (on the flow's clock)
            steps = doc.setdefault("steps", {})
            st = steps.get(step.id) or {}
            status = st.get("status")
            if status == "done":  # 'skipped' is re-evaluated: a window may open on a later invocation
                decision["action"] = status
                return doc
            claimed = status == "running" and st.get("run_id") != run_id
            if claimed and now - _parse_time(st["at"]) < STALE_CLAIM:
                decision["action"] = "claimed_elsewhere"
                return doc
            if any((steps.get(d) or {}).get("status") not in ("done",) for d in step.depends_on):
                decision["action"] = "not_reached"
                return doc
            if step.wait:
                after = step.wait.after
                if after == "start":
                    base_t = _parse_time(doc["started_at"])
                elif after.startswith("entity."):
                    base_t = _parse_time(ent[after.removeprefix("entity.")])
                else:
                    base_t = _parse_time(steps[after]["at"])
                due = base_t + timedelta(days=step.wait.days)
                if now < due:
                    steps[step.id] = {**st, "status": "waiting", "at": now_s, "due_at": due.isoformat()}
                    decision["action"] = "waiting"
                    return doc
            scope = {"entity": ent, "steps": {d: steps[d].get("output") for d in step.depends_on}}
            if step.when and not evaluate(step.when, scope):
                steps[step.id] = {"status": "skipped", "at": now_s}
                decision["action"] = "skipped"
                return doc
            if step.approval and not st.get("approved"):
                if status != "awaiting_approval":
                    steps[step.id] = {**st, "status": "awaiting_approval", "at": now_s}
                decision["action"] = "awaiting_approval"
                return doc
            steps[step.id] = {**st, "status": "running", "at": now_s, "run_id": run_id}
            decision["action"] = "run"
            decision["scope"] = scope
            return doc

        doc = state.update(spec.flow_id, eid, plan, run_id=run_id)
        action = decision["action"]
        if action == "done":
            outputs[eid] = doc["steps"][step.id].get("output")
        if action != "run":
            counts[action] = counts.get(action, 0) + 1
            continue
        ctx = StepContext(
            **{**base.__dict__, "entity": ent, "entity_id": eid, "upstream": decision["scope"]["steps"]}
        )
        try:
            out = call_step(step, render(step.parameters, decision["scope"]), ctx)
            status, err = "done", None
        except Exception as e:  # recorded per entity; re-raised below for the op's retry policy
            out, status, err = None, "failed", f"{type(e).__name__}: {e}"[:500]
            failures.append(f"{eid}: {err}")
            if final_attempt:
                try:
                    run_failure_handler(spec, step, base, err, ent)
                except Exception as he:
                    log.error(f"on-failure step for {spec.flow_id}.{step.id}/{eid} failed: {he}")

        def finish(
            doc: dict[str, Any], out: Any = out, status: str = status, err: str | None = err
        ) -> dict[str, Any]:
            entry = {"status": status, "at": now.isoformat(timespec="seconds"), "run_id": run_id}
            if status == "done":
                entry["output"] = out
            else:
                entry["error"] = err
            doc["steps"][step.id] = {
                **{k: v for k, v in doc["steps"].get(step.id, {}).items() if k == "approved"},
                **entry,
            }
            return doc

        state.update(spec.flow_id, eid, finish, run_id=run_id)
        counts[status] = counts.get(status, 0) + 1
        if status == "done":
            outputs[eid] = out
    if failures:
        raise StepFailed(
            f"{spec.flow_id}.{step.id}: {len(failures)} entities failed: " + "; ".join(failures[:5])
        )
    return {"outputs": outputs, "counts": counts}


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
