"""From stored events to flow runs: one Dagster sensor for every flow with ``trigger: {type: event}``.

Each evaluation

1. confirms earlier submissions: an event in ``submitted`` whose runs now exist (found by the
   ``revops/event`` run tag) becomes ``processed`` with their run ids; one whose runs are still missing
   after :data:`RESUBMIT_AFTER_S` has its run requests emitted again (same run keys, so Dagster never
   creates a second run);
2. reads new (``received``) events in arrival order and, per event, emits exactly one ``RunRequest``
   per matching enabled flow — run key ``<source>:<event_id>/<flow_id>``, the entity as run config of
   the flow's select op (``entity_ids``, ``event``) and as tags — then marks the event ``submitted``;
   an event no flow can take (no flow triggers on its type, no entity, wrong entity kind) goes to the
   dead letter with the reason (``revops events list --status dead_letter``, ``revops events replay``).

Nothing is marked processed before its run exists, and an event is never left behind: it is either
processed, pending (``received``/``submitted``) or dead-lettered.
"""

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg

from revops_pipelines.flows.spec import FlowSpec

EVENT_TAG = "revops/event"
RESUBMIT_AFTER_S = 600
BATCH = 200


class Unprocessable(Exception):
    pass


def run_key(event_key: str, flow_id: str) -> str:
    return f"{event_key}/{flow_id}"


def _event_config(rec: Any) -> dict[str, Any]:
    data = rec.payload.get("data") if isinstance(rec.payload.get("data"), dict) else rec.payload
    return {
        "source": rec.source,
        "event_id": rec.event_id,
        "event_type": rec.event_type,
        "occurred_at": rec.occurred_at,
        "entity": {"type": rec.entity_type, "id": rec.entity_id},
        "data": data,
    }


def run_requests(rec: Any, flows: list[tuple[FlowSpec, dg.JobDefinition]]) -> list[dg.RunRequest]:
    """The run requests for one stored event, or :class:`Unprocessable` with the reason."""
    if not flows:
        raise Unprocessable(f"no enabled flow has trigger {{type: event, event: {rec.event_type}}}")
    out = []
    for spec, job in flows:
        run_config: dict[str, Any] = {}
        if spec.entities is not None:
            column = spec.entities.id_column
            if not rec.entity_id:
                raise Unprocessable(
                    f"flow {spec.flow_id} selects entities by {column}; the event has no entity"
                )
            kind = column.removesuffix("_id") if column.endswith("_id") else None
            if kind and rec.entity_type and rec.entity_type != kind:
                raise Unprocessable(
                    f"flow {spec.flow_id} selects entities by {column}; the event is about a "
                    f"{rec.entity_type} ({rec.entity_id})"
                )
            config = {"entity_ids": [rec.entity_id], "event": _event_config(rec)}
            run_config = {"ops": {f"{spec.flow_id}__select_entities": {"config": config}}}
        out.append(
            dg.RunRequest(
                run_key=run_key(rec.key, spec.flow_id),
                job_name=job.name,
                run_config=run_config,
                tags={
                    EVENT_TAG: rec.key,
                    "revops/event_type": rec.event_type,
                    "revops/entity": f"{rec.entity_type}:{rec.entity_id}",
                },
            )
        )
    return out


def _age_s(iso: str) -> float:
    return (datetime.now(UTC).replace(tzinfo=None) - datetime.fromisoformat(iso)).total_seconds()


def evaluate(
    instance: dg.DagsterInstance,
    by_event: dict[str, list[tuple[FlowSpec, dg.JobDefinition]]],
    store_path: str | Path | None = None,
    log: Any = None,
) -> list[dg.RunRequest]:
    """One sensor evaluation (Dagster-free apart from reading runs): the run requests to emit."""
    from revops_pipelines.webhooks.store import EventStore

    store = EventStore(store_path)
    requests: list[dg.RunRequest] = []
    for rec in store.list(status="submitted", limit=BATCH):
        records = instance.get_run_records(dg.RunsFilter(tags={EVENT_TAG: rec.key}))
        made = {r.dagster_run.tags.get("dagster/run_key") for r in records}
        if set(rec.run_keys) <= made:
            store.mark_processed(rec.seq, sorted(r.dagster_run.run_id for r in records))
        elif _age_s(rec.updated_at) > RESUBMIT_AFTER_S:
            try:
                again = run_requests(rec, by_event.get(rec.event_type, []))
            except Unprocessable as e:  # its flow changed meanwhile
                store.dead_letter(rec.seq, str(e))
                continue
            requests.extend(r for r in again if r.run_key not in made)
            store.mark_submitted(rec.seq, rec.run_keys)  # restarts the resubmission clock
    submitted: list[tuple[int, list[str]]] = []
    for rec in store.list(status="received", limit=BATCH):
        try:
            reqs = run_requests(rec, by_event.get(rec.event_type, []))
        except Unprocessable as e:
            store.dead_letter(rec.seq, str(e))
            if log:
                log.warning(f"event {rec.key} dead-lettered: {e}")
            continue
        requests.extend(reqs)
        submitted.append((rec.seq, [r.run_key for r in reqs]))
    for seq, keys in submitted:
        store.mark_submitted(seq, keys)
    return requests


def build_event_sensor(
    event_flows: list[tuple[FlowSpec, dg.JobDefinition]], store_path: str | Path | None = None
) -> dg.SensorDefinition:
    by_event: dict[str, list[tuple[FlowSpec, dg.JobDefinition]]] = {}
    for spec, job in event_flows:
        by_event.setdefault(spec.trigger.event or "", []).append((spec, job))

    @dg.sensor(
        name="webhook_event_sensor",
        jobs=[job for _, job in event_flows],
        minimum_interval_seconds=15,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description="Start the flow run(s) for each received webhook event, in arrival order; "
        "dead-letter events no flow can take.",
    )
    def _sensor(context: dg.SensorEvaluationContext):
        requests = evaluate(context.instance, by_event, store_path, context.log)
        if not requests:
            return dg.SkipReason("no new events")
        return dg.SensorResult(run_requests=requests)

    return _sensor
