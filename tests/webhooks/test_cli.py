"""`revops events list|replay` and `revops webhook openapi`."""

import json

import dagster as dg
from click.testing import CliRunner

from revops_pipelines.cli import main
from revops_pipelines.flows.compiler import compile_flows
from revops_pipelines.flows.loader import load_all
from tests.webhooks.conftest import escalation, generic_request
from tests.webhooks.test_sensor import ROOT


def test_events_list_and_replay_dead_letters(client, store):
    opp = {
        "event_id": "opp-9",
        "event_type": "renewal_opportunity_created",
        "occurred_at": "2026-01-05T10:00:00Z",
        "entity": {"type": "account", "id": "001A1"},
        "data": {"opportunity_id": "006X", "amount": 1, "close_date": "2026-06-30"},
    }
    for doc in (escalation("esc-1"), opp):
        body, headers = generic_request(doc)
        assert client.post("/webhooks/generic", content=body, headers=headers).status_code == 200
    flows = compile_flows(load_all(ROOT / "flows_yaml"))
    sensor = next(s for s in flows.sensors if s.name == "webhook_event_sensor")
    instance = dg.DagsterInstance.ephemeral()
    sensor.evaluate_tick(dg.build_sensor_context(instance=instance))

    runner = CliRunner()
    out = runner.invoke(main, ["events", "list"])
    assert out.exit_code == 0, out.output
    assert "dead_letter 1, submitted 1" in out.output
    assert "generic:opp-9" in out.output and "no enabled flow has trigger" in out.output
    out = runner.invoke(main, ["events", "list", "--status", "dead_letter", "--json"])
    (row,) = [json.loads(line) for line in out.output.splitlines()]
    assert row["key"] == "generic:opp-9" and row["status"] == "dead_letter"

    out = runner.invoke(main, ["events", "replay", "generic:esc-1"])  # submitted: may be stuck
    assert out.exit_code == 0 and "replayed generic:esc-1" in out.output
    out = runner.invoke(main, ["events", "replay", "1"])  # esc-1 is received again: nothing to replay
    assert out.exit_code == 2 and "event is received" in out.output
    out = runner.invoke(main, ["events", "replay", "--dead-letter"])
    assert out.exit_code == 0 and "replayed generic:opp-9 (was dead_letter)" in out.output
    rec = store.get("generic:opp-9")
    assert (rec.status, rec.reason, rec.attempts) == ("received", None, 1)
    out = runner.invoke(main, ["events", "replay", "--dead-letter"])
    assert out.exit_code == 0 and "no dead-lettered events" in out.output
    sensor.evaluate_tick(dg.build_sensor_context(instance=instance))  # still no flow for it
    assert store.get("generic:opp-9").status == "dead_letter"

    out = runner.invoke(main, ["events", "replay", "generic:nope"])
    assert out.exit_code == 2 and "no event 'generic:nope'" in out.output
    out = runner.invoke(main, ["events", "replay"])
    assert out.exit_code == 2 and "give an event" in out.output
    store.mark_processed(store.get("generic:esc-1").seq, ["r1"])
    out = runner.invoke(main, ["events", "replay", "generic:esc-1"])
    assert out.exit_code == 2 and "event is processed" in out.output


def test_openapi_command_writes_the_document(tmp_path, runtime_env):
    from openapi_spec_validator import validate

    out = CliRunner().invoke(main, ["webhook", "openapi", "--out", str(tmp_path / "openapi.json")])
    assert out.exit_code == 0, out.output
    doc = json.loads((tmp_path / "openapi.json").read_text())
    validate(doc)
    assert "/webhooks/hubspot" in doc["paths"]
