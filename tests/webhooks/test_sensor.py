"""From received events to flow runs: the webhook_event_sensor (build_sensor_context) emits exactly one
run per event and matching flow, in arrival order, marks events processed only once their runs exist,
dead-letters what no flow takes; the support_escalation flow runs end to end for the event's account
only."""

from pathlib import Path

import dagster as dg
import pytest

from revops_pipelines.agents.base import AgentRuntime
from revops_pipelines.flows.compiler import compile_flows
from revops_pipelines.flows.loader import load_all
from revops_pipelines.warehouse.duckdb import DuckDBWarehouse
from revops_pipelines.webhooks.sensor import EVENT_TAG
from tests.agents.conftest import seed
from tests.webhooks.conftest import escalation, generic_request

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def compiled():
    flows = compile_flows(load_all(ROOT / "flows_yaml"))
    sensor = next(s for s in flows.sensors if s.name == "webhook_event_sensor")
    return sensor, {j.name: j for j in flows.jobs}


def _post(client, doc):
    body, headers = generic_request(doc)
    r = client.post("/webhooks/generic", content=body, headers=headers)
    assert r.status_code == 200, r.text


def _tick(sensor, instance):
    return sensor.evaluate_tick(dg.build_sensor_context(instance=instance))


def test_each_event_starts_exactly_one_flow_run_for_its_entity(client, store, compiled, tmp_path):
    sensor, jobs = compiled
    _post(client, escalation("esc-A", "001A0", "critical"))
    _post(client, escalation("esc-B", "001A2", "high"))
    _post(
        client,
        {
            "event_id": "opp-1",
            "event_type": "renewal_opportunity_created",
            "occurred_at": "2026-01-05T10:00:00Z",
            "entity": {"type": "account", "id": "001A1"},
            "data": {"opportunity_id": "006X", "amount": 8000, "close_date": "2026-06-30"},
        },
    )
    _post(client, escalation("esc-C", "001A0", "medium"))  # a second escalation of the same account
    _post(client, escalation("esc-A", "001A0", "critical"))  # a redelivery: stored once

    instance = dg.DagsterInstance.ephemeral()
    first = _tick(sensor, instance)
    keys = [r.run_key for r in first.run_requests]
    assert keys == [f"generic:{e}/support_escalation" for e in ("esc-A", "esc-B", "esc-C")]  # in order
    assert [r.job_name for r in first.run_requests] == ["flow_support_escalation"] * 3
    config = first.run_requests[1].run_config["ops"]["support_escalation__select_entities"]["config"]
    assert config["entity_ids"] == ["001A2"] and config["event"]["data"]["severity"] == "high"
    assert first.run_requests[0].tags[EVENT_TAG] == "generic:esc-A"
    dead = store.get("generic:opp-1")
    assert dead.status == "dead_letter"
    assert dead.reason == "no enabled flow has trigger {type: event, event: renewal_opportunity_created}"
    assert {r.status for r in store.list() if r.event_type == "support_escalation"} == {"submitted"}

    assert not _tick(sensor, instance).run_requests  # nothing twice while the runs are pending

    world = DuckDBWarehouse(path=str(tmp_path / "world.duckdb"))
    seed(world)  # 001A0..001A3; days to renewal 30, 200, 45, 100
    agents = AgentRuntime(  # a weekly guardrail above this test's 5 actions for 001A0
        state_path=str(tmp_path / "state" / "agent_state.sqlite"),
        kb_uri=str(tmp_path / "kb"),
        max_actions_per_account_per_week=10,
    )
    for rr in first.run_requests:  # what the daemon would launch
        result = jobs[rr.job_name].execute_in_process(
            run_config=rr.run_config,
            tags={**rr.tags, "dagster/run_key": rr.run_key},
            instance=instance,
            resources={"warehouse": world, "agents": agents},
        )
        assert result.success
        assert instance.get_run_by_id(result.run_id).tags["flow/entity_count"] == "1"

    assert not _tick(sensor, instance).run_requests
    processed = {r.event_id: r for r in store.list(status="processed")}
    assert set(processed) == {"esc-A", "esc-B", "esc-C"}
    assert all(len(r.run_ids) == 1 for r in processed.values())
    assert len(instance.get_runs()) == 3

    actions = world.query(
        "SELECT account_id, step_id, action_type, status FROM action_log "
        "WHERE flow_id = 'support_escalation' ORDER BY 1, 2"
    )
    got = sorted(map(tuple, actions.itertuples(index=False, name=None)))
    assert got == sorted(
        [
            ("001A0", "escalation_task", "crm_task", "dry_run"),  # esc-A
            ("001A0", "critical_alert", "slack_message", "dry_run"),  # esc-A is critical
            ("001A0", "renewal_risk_alert", "slack_message", "dry_run"),  # renewal in 30 days
            ("001A0", "escalation_task", "crm_task", "dry_run"),  # esc-C
            ("001A0", "renewal_risk_alert", "slack_message", "dry_run"),
            ("001A2", "escalation_task", "crm_task", "dry_run"),  # esc-B: high, renewal in 45 days
            ("001A2", "renewal_risk_alert", "slack_message", "dry_run"),
        ]
    )  # nothing for 001A1 or 001A3: each run processed its event's account only


def test_unconfirmed_submissions_are_emitted_again_with_the_same_run_key(client, store, compiled):
    from revops_pipelines.webhooks import sensor as sensor_mod

    sensor, _ = compiled
    _post(client, escalation("esc-Z", "001A3"))
    instance = dg.DagsterInstance.ephemeral()
    (rr,) = _tick(sensor, instance).run_requests
    store._conn().execute("UPDATE events SET updated_at = '2000-01-01T00:00:00'")  # daemon died long ago
    (again,) = _tick(sensor, instance).run_requests
    assert again.run_key == rr.run_key  # Dagster would not create a second run for it
    assert store.get("generic:esc-Z").status == "submitted"
    assert sensor_mod.RESUBMIT_AFTER_S >= 60


def test_an_event_about_the_wrong_kind_of_entity_is_dead_lettered(store, tmp_path):
    from revops_pipelines.flows.spec import FlowSpec
    from revops_pipelines.webhooks.store import NewEvent, Submission

    spec = FlowSpec.model_validate(
        {
            "flow_id": "deal_followup",
            "version": 1,
            "owner": "sales",
            "trigger": {"type": "event", "event": "hubspot_deal_creation"},
            "entities": {"sql": "SELECT account_id FROM accts", "id_column": "account_id"},
            "steps": [{"id": "s", "type": "action", "parameters": {"type": "crm_task", "parameters": {}}}],
        }
    )
    sensor = next(s for s in compile_flows([spec]).sensors if s.name == "webhook_event_sensor")
    store.submit(
        Submission("hubspot", [NewEvent("hubspot", "501", "hubspot_deal_creation", "deal", "9001", None, {})])
    )
    assert not _tick(sensor, dg.DagsterInstance.ephemeral()).run_requests
    rec = store.get("hubspot:501")
    assert rec.status == "dead_letter"
    assert rec.reason == "flow deal_followup selects entities by account_id; the event is about a deal (9001)"
