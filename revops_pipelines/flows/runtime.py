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


BATCH_SIZE = 200  # entities planned, run and recorded together on the batch path


def _data_metrics_batch(
    items: list[tuple[dict[str, Any], StepContext]],
) -> list[dict[str, Any] | BaseException]:
    """``data.account_metrics`` for many entities: one Data Agent call (one query per 500 accounts).
    Each request is validated on its own, so a bad one fails only its entity."""
    from revops_pipelines.agents.data import AccountMetricsParams, DataAgent

    out: list[dict[str, Any] | BaseException] = []
    good: list[int] = []
    requests = []
    for i, (params, _ctx) in enumerate(items):
        try:
            requests.append(parse(AccountMetricsParams, params, "data.account_metrics parameters"))
            good.append(i)
            out.append(RuntimeError("not run"))
        except Exception as e:  # noqa: PERF203
            out.append(e)
    if requests:
        ctx = items[good[0]][1]
        res = DataAgent(ctx.warehouse, ctx.agents).run(
            "account_metrics_many",
            {"requests": [r.model_dump() for r in requests]},
            {"flow_id": ctx.flow_id, "step_id": ctx.step_id, "run_id": ctx.run_id},
        )
        for i, r in zip(good, res.results, strict=True):
            out[i] = r.model_dump(mode="json")
    return out


# agent actions with a batch path for fan-out steps: (agent, action) -> fn([(params, ctx), ...])
AGENT_BATCH: dict[tuple[str, str], Any] = {("data", "account_metrics"): _data_metrics_batch}


def batch_function(step: Step) -> Any:
    """The step's batch path (a step type's ``batch_fn`` or an agent action in :data:`AGENT_BATCH`)."""
    if step.type:
        st = STEP_TYPES[step.type]
        if st.batch_fn is None:
            return None

        def typed(items: list[tuple[dict[str, Any], StepContext]]) -> list[Any]:
            out: list[Any] = [None] * len(items)
            good = []
            for i, (params, ctx) in enumerate(items):
                try:
                    good.append((i, parse(st.params, params, f"step {step.id} parameters"), ctx))
                except Exception as e:  # noqa: PERF203
                    out[i] = e
            if good:
                for (i, _p, _c), r in zip(good, st.batch_fn([(p, c) for _i, p, c in good]), strict=True):
                    out[i] = r
            return out

        return typed
    return AGENT_BATCH.get((step.agent or "", step.action or ""))


def _run_items(step: Step, items: list[tuple[dict[str, Any], StepContext]], batch: bool) -> list[Any]:
    """Outputs (or exceptions) of the step for each (rendered parameters, context): one batch call when
    the step has a batch path, else (or if the batch call itself fails) one call per entity."""
    fn = batch_function(step) if batch and len(items) > 1 else None
    if fn is not None:
        try:
            out = list(fn(items))
            if len(out) != len(items):
                raise RuntimeError(f"batch path returned {len(out)} results for {len(items)} entities")
            return out
        except Exception as e:  # attribute failures per entity: fall back to one call each
            log.warning(f"batch call of step {step.id} failed ({type(e).__name__}: {e}); running per entity")
    out: list[Any] = []
    for params, ctx in items:
        try:
            out.append(call_step(step, params, ctx))
        except Exception as e:  # noqa: PERF203 — recorded per entity
            out.append(e)
    return out


def run_entity_step(
    spec: FlowSpec,
    step: Step,
    base: StepContext,
    entities: list[dict[str, Any]],
    state: FlowState,
    *,
    now: datetime,
    final_attempt: bool = True,
    batch: bool = True,
) -> dict[str, Any]:
    """A step fanned out over entities; each entity advances only as far as its state allows.

    Entities go in chunks of :data:`BATCH_SIZE`: the chunk's state is planned in one transaction
    (each entity claims the step, or waits, skips, awaits approval), the claimed entities run — in one
    call when the step has a batch path (``batch``; see :func:`batch_function`), else one call each —
    and their results are recorded in one transaction. Per-entity semantics are those of one call per
    entity: each entity's output, status and error are its own, and a retry runs only entities not done.

    Returns ``{"outputs": {entity_id: output}, "counts": {status: n}}`` for entities whose step is done.
    Raises :class:`StepFailed` if any entity failed (after recording it), so the op's retry policy
    applies; entities already done are not run again on the retry.
    """
    outputs: dict[str, Any] = {}
    counts: dict[str, int] = {}
    failures: list[str] = []
    run_id = base.run_id
    now_s = now.isoformat(timespec="seconds")

    def plan(doc: dict[str, Any], ent: dict[str, Any], decision: dict[str, Any]) -> dict[str, Any]:
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
            due = wait_due(step, doc, ent)
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

    def finish(doc: dict[str, Any], out: Any, status: str, err: str | None) -> dict[str, Any]:
        entry = {"status": status, "at": now_s, "run_id": run_id}
        if status == "done":
            entry["output"] = out
        else:
            entry["error"] = err
        doc["steps"][step.id] = {
            **{k: v for k, v in doc["steps"].get(step.id, {}).items() if k == "approved"},
            **entry,
        }
        return doc

    size = BATCH_SIZE if batch else 1
    for start in range(0, len(entities), size):
        chunk = entities[start : start + size]
        decisions: dict[str, dict[str, Any]] = {e["_id"]: {} for e in chunk}
        docs = state.update_many(
            spec.flow_id,
            {e["_id"]: (lambda doc, e=e, d=decisions[e["_id"]]: plan(doc, e, d)) for e in chunk},
            run_id=run_id,
        )
        runnable = []
        for ent in chunk:
            eid, decision = ent["_id"], decisions[ent["_id"]]
            action = decision["action"]
            if action == "done":
                outputs[eid] = docs[eid]["steps"][step.id].get("output")
            if action != "run":
                counts[action] = counts.get(action, 0) + 1
                continue
            ctx = StepContext(
                **{**base.__dict__, "entity": ent, "entity_id": eid, "upstream": decision["scope"]["steps"]}
            )
            runnable.append((ent, ctx))
        if not runnable:
            continue
        items: list[tuple[Any, StepContext]] = []
        results: list[Any] = [None] * len(runnable)
        slots = []
        for j, (ent, ctx) in enumerate(runnable):
            try:  # a template that cannot render fails its entity only
                items.append((render(step.parameters, decisions[ent["_id"]]["scope"]), ctx))
                slots.append(j)
            except Exception as e:  # noqa: PERF203
                results[j] = e
        for j, r in zip(slots, _run_items(step, items, batch), strict=True):
            results[j] = r
        finished = {}
        for (ent, _ctx), r in zip(runnable, results, strict=True):
            eid = ent["_id"]
            if isinstance(r, BaseException):
                out, status, err = None, "failed", f"{type(r).__name__}: {r}"[:500]
                failures.append(f"{eid}: {err}")
                if final_attempt:
                    try:
                        run_failure_handler(spec, step, base, err, ent)
                    except Exception as he:
                        log.error(f"on-failure step for {spec.flow_id}.{step.id}/{eid} failed: {he}")
            else:
                out, status, err = r, "done", None
                outputs[eid] = out
            counts[status] = counts.get(status, 0) + 1
            finished[eid] = lambda doc, out=out, status=status, err=err: finish(doc, out, status, err)
        state.update_many(spec.flow_id, finished, run_id=run_id)
    if failures:
        raise StepFailed(
            f"{spec.flow_id}.{step.id}: {len(failures)} entities failed: " + "; ".join(failures[:5])
        )
    return {"outputs": outputs, "counts": counts}


def wait_due(step: Step, doc: dict[str, Any], ent: dict[str, Any]) -> datetime:
    """When the step's ``wait`` ends for this entity: its anchor (``start`` — the entity entered the
    flow; ``entity.<field>``; or an earlier step's completion) plus ``days``."""
    assert step.wait is not None
    after = step.wait.after
    if after == "start":
        base_t = _parse_time(doc["started_at"])
    elif after.startswith("entity."):
        base_t = _parse_time(ent[after.removeprefix("entity.")])
    else:
        base_t = _parse_time(doc["steps"][after]["at"])
    return base_t + timedelta(days=step.wait.days)


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
