"""The content sensor (cursor = content hashes) and the maintenance schedule."""

from __future__ import annotations

import json

import dagster as dg

from kb_assets.assets import kb_content_sensor, kb_maintenance_schedule
from kb_assets.sensors import build_content_sensor, diff_files, parse_cursor

AFFECTED = {
    "docs": ["kb_content", "kb_index"],
    "eval": ["kb_content", "kb_index"],
    "taxonomies": ["kb_content", "kb_index", "kb_taxonomy_nodes", "kb_entity_index"],
}


def _definitions(*sensors) -> dg.Definitions:
    """The KB assets (upstream warehouse assets as stubs) so the sensor's asset selection resolves."""
    from kb_assets.assets import ASSETS
    from revops_pipelines.kb.resource import KnowledgeBaseResource
    from revops_pipelines.warehouse.duckdb import DuckDBWarehouse

    stubs = [
        dg.AssetSpec(k)
        for k in ("account_features", "raw_sf_accounts", "raw_gong_calls", "raw_gong_transcripts",
                  "gong_call_sentiment", "raw_sf_cases", "raw_sf_opportunities", "raw_billing_invoices")
    ]  # fmt: skip
    return dg.Definitions(
        assets=[*ASSETS, *stubs],
        sensors=list(sensors),
        resources={
            "knowledge_base": KnowledgeBaseResource(uri="unused"),
            "warehouse": DuckDBWarehouse(path=":memory:"),
        },
    )


def _tick(sensor, cursor):
    ctx = dg.build_sensor_context(cursor=cursor, repository_def=_definitions(sensor).get_repository_def())
    result = sensor.evaluate_tick(ctx)
    return result, result.cursor


def _selected(result) -> list[list[str]]:
    return [sorted(k.to_user_string() for k in r.asset_selection) for r in result.run_requests]


def test_sensor_cursor_tracks_added_changed_and_removed_content(content_copy):
    sensor = build_content_sensor(content_copy, affected=AFFECTED, initial=["kb_content", "kb_index"])
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED

    # first tick: no cursor -> one initial index run; the cursor holds every file's hash
    result, cursor = _tick(sensor, None)
    assert _selected(result) == [["kb_content", "kb_index"]]
    files = parse_cursor(cursor)
    assert len(files) == len(list(content_copy.rglob("*.md"))) + len(list(content_copy.rglob("*.yaml")))
    assert "docs/product/automation-guide.md" in files and "eval/queries.yaml" in files
    first_key = result.run_requests[0].run_key

    # nothing changed: no run, same cursor
    result, again = _tick(sensor, cursor)
    assert result.run_requests == [] and again == cursor
    assert "no content changes" in (result.skip_message or "")

    # edit one document: only the document assets run; the cursor records the new hash
    doc = content_copy / "docs" / "product" / "automation-guide.md"
    doc.write_text(doc.read_text().replace("Test run", "Dry run"))
    result, edited = _tick(sensor, cursor)
    assert _selected(result) == [["kb_content", "kb_index"]]
    assert result.run_requests[0].tags["kb/changed"] == "1" and result.run_requests[0].run_key != first_key
    diff = diff_files(parse_cursor(cursor), parse_cursor(edited))
    assert diff == {"added": [], "changed": ["docs/product/automation-guide.md"], "removed": []}

    # add and remove documents in one tick
    (content_copy / "docs" / "product" / "new-feature.md").write_text(
        (content_copy / "docs" / "product" / "mobile-app.md")
        .read_text()
        .replace("id: mobile-app", "id: new-feature")
    )
    (content_copy / "docs" / "troubleshooting" / "api-errors.md").unlink()
    result, moved = _tick(sensor, edited)
    tags = result.run_requests[0].tags
    assert (tags["kb/added"], tags["kb/removed"], tags["kb/changed"]) == ("1", "1", "0")
    assert "docs/product/new-feature.md" in parse_cursor(moved)
    assert "docs/troubleshooting/api-errors.md" not in parse_cursor(moved)

    # a taxonomy change affects the taxonomy table and the entity index too
    tax = content_copy / "taxonomies" / "call_topics.yaml"
    tax.write_text(tax.read_text().replace("version: 1.0.0", "version: 1.0.1"))
    result, taxed = _tick(sensor, moved)
    assert _selected(result) == [["kb_content", "kb_entity_index", "kb_index", "kb_taxonomy_nodes"]]

    # going back to an earlier content state re-indexes (a new run key), and re-evaluating the same
    # tick with the same cursor asks for the same run key (Dagster starts it once)
    tax.write_text(tax.read_text().replace("version: 1.0.1", "version: 1.0.0"))
    back, reverted = _tick(sensor, taxed)
    assert back.run_requests and back.run_requests[0].run_key != result.run_requests[0].run_key
    assert parse_cursor(reverted) == parse_cursor(moved)  # same content as before the taxonomy edit ...
    assert json.loads(reverted)["seq"] == json.loads(moved)["seq"] + 2  # ... but two changes later
    retry, _ = _tick(sensor, taxed)
    assert retry.run_requests[0].run_key == back.run_requests[0].run_key


def test_unreadable_cursor_is_treated_as_none(content_copy):
    sensor = build_content_sensor(content_copy, affected=AFFECTED, initial=["kb_content"])
    result, cursor = _tick(sensor, "not json")
    assert _selected(result) == [["kb_content"]] and json.loads(cursor)["files"]


def test_shipped_sensor_and_schedule_are_stopped_and_target_kb_assets():
    assert kb_content_sensor.default_status == dg.DefaultSensorStatus.STOPPED
    graph = _definitions(kb_content_sensor).resolve_asset_graph()
    keys = {k.to_user_string() for k in kb_content_sensor.asset_selection.resolve(graph)}
    assert {
        "kb_content",
        "kb_index",
        "kb_taxonomy_nodes",
        "kb_entity_index",
        "training_ticket_labels",
    } <= keys
    assert kb_maintenance_schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    assert kb_maintenance_schedule.cron_schedule == "0 6 * * 1"
    assert kb_maintenance_schedule.job_name == "kb_maintenance"
