"""The Gong multi-asset in Dagster: sample mode through the stand-in, metadata, re-run idempotence."""

import dagster as dg

from assets.gong import DAILY, TABLES, WarehouseGongSink, gong_sync
from revops_pipelines.connectors.gong import GongResource
from revops_pipelines.warehouse.duckdb import DuckDBWarehouse

from .conftest import read_jsonl

TODAY = DAILY.get_last_partition_key()  # today's partition: the incremental sync


def _materialize(wh, gong):
    result = dg.materialize(
        [gong_sync], resources={"warehouse": wh, "gong": gong}, partition_key=TODAY, raise_on_error=True
    )
    mats = {}
    for ev in result.get_asset_materialization_events():
        m = ev.event_specific_data.materialization
        mats[m.asset_key.to_user_string()] = m.metadata
    return result, mats


def test_sync_asset_loads_every_call_once_and_reports_requests(small_world, tmp_path):
    wh = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    gong = GongResource(
        sample_path=str(small_world), state_dir=str(tmp_path / "state"), requests_per_second=1000
    )
    result, mats = _materialize(wh, gong)
    calls = read_jsonl(small_world / "gong/calls.jsonl")
    sentences = sum(
        len(m["sentences"])
        for t in read_jsonl(small_world / "gong/transcripts.jsonl")
        for m in t["transcript"]
    )
    assert wh.row_count("raw_gong_calls") == len(calls)
    assert wh.row_count("raw_gong_transcripts") == sentences
    assert wh.row_count("raw_gong_quarantine") == 0
    md = mats["raw_gong_calls"]
    assert (
        md["records_fetched"].value == len(calls) and md["requests"].value == 6 and md["http_429"].value == 0
    )
    assert md["checkpoint"].value["completed_to"] == "2026-01-01T00:00:00Z"
    [check] = result.get_asset_check_evaluations()
    assert check.passed

    result, mats = _materialize(wh, gong)  # incremental re-run: lookback re-listed, nothing re-fetched
    assert mats["raw_gong_calls"]["records_fetched"].value == 0
    assert mats["raw_gong_calls"]["requests"].value == 1
    assert wh.row_count("raw_gong_calls") == len(calls) and wh.row_count("raw_gong_transcripts") == sentences


def test_quarantined_rows_land_in_the_warehouse_with_their_reason(tmp_path):
    wh = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    sink = WarehouseGongSink(wh)
    sink.write_quarantine(
        [
            {
                "call_id": "42",
                "stage": "extensive",
                "reason": "metaData.started is not an ISO-8601 timestamp",
                "raw": "{}",
                "quarantined_at": "2026-01-01T00:00:00Z",
            }
        ]
    )
    df = wh.query("SELECT call_id, stage, reason FROM raw_gong_quarantine")
    assert df.to_dict("records") == [
        {"call_id": "42", "stage": "extensive", "reason": "metaData.started is not an ISO-8601 timestamp"}
    ]
    sink.write_calls(
        [{"metaData": {"id": "42", "started": "2025-01-01T00:00:00Z"}}]
    )  # fixed and loaded later
    assert wh.row_count("raw_gong_quarantine") == 0 and wh.row_count("raw_gong_calls") == 1


def test_a_call_without_parties_is_not_complete_so_a_backfill_refetches_it(tmp_path):
    """Calls loaded before raw_gong_parties existed get their parties on the next listing."""
    wh = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    for schema in TABLES:  # as gong_sync does before a sync
        wh.ensure_table(schema)
    sink = WarehouseGongSink(wh)
    call = {
        "metaData": {"id": "42", "started": "2025-01-01T10:00:00Z"},
        "parties": [{"id": "p1", "speakerId": "s1", "affiliation": "External"}],
        "interaction": {"speakers": [{"id": "s1", "talkTime": 60.0}]},
    }
    sink.write_calls([call])
    sink.write_transcripts(
        [{"callId": "42", "transcript": [{"speakerId": "s1", "sentences": [{"text": "Hi."}]}]}]
    )
    assert sink.complete_call_ids(["42"]) == {"42"}
    wh.execute("DELETE FROM raw_gong_parties")  # as loaded by an older version
    assert sink.complete_call_ids(["42"]) == set()
    sink.write_calls([call])
    assert sink.complete_call_ids(["42"]) == {"42"} and wh.row_count("raw_gong_parties") == 1
