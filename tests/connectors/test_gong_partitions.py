"""Gong raw tables are daily-partitioned: today's partition is the incremental sync, an older range is
a backfill of exactly that window in one run, and neither loses nor duplicates a call."""

import dagster as dg
import pytest

from assets.gong import DAILY, current_partition_tags, gong_sync
from revops_pipelines.connectors.base import StateStore
from revops_pipelines.connectors.gong import GongResource
from revops_pipelines.sample.generator import GENERATOR_VERSION
from revops_pipelines.warehouse.duckdb import DuckDBWarehouse

from .conftest import read_jsonl

TODAY = DAILY.get_last_partition_key()
MARCH = {
    "dagster/asset_partition_range_start": "2024-03-01",
    "dagster/asset_partition_range_end": "2024-03-31",
}


def _run(wh, gong, instance, **kw):
    result = dg.materialize(
        [gong_sync], resources={"warehouse": wh, "gong": gong}, instance=instance, raise_on_error=True, **kw
    )
    mats = {}
    for ev in result.get_asset_materialization_events():
        m = ev.event_specific_data.materialization
        mats[m.asset_key.to_user_string()] = m.metadata
    [check] = result.get_asset_check_evaluations()
    return mats, check


def test_gong_sync_is_daily_partitioned_with_single_run_backfills():
    assert gong_sync.partitions_def == DAILY
    assert gong_sync.backfill_policy == dg.BackfillPolicy.single_run()
    assert DAILY.get_first_partition_key() == "2024-01-01"
    assert current_partition_tags() == {"dagster/partition": TODAY}


@pytest.mark.slow  # three Dagster runs through the stand-in
def test_a_range_backfills_its_window_in_one_run_then_today_syncs_the_rest(small_world, tmp_path):
    calls = read_jsonl(small_world / "gong/calls.jsonl")
    march = {c["metaData"]["id"] for c in calls if c["metaData"]["started"].startswith("2024-03")}
    assert march
    wh = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    state = tmp_path / "state"
    gong = GongResource(sample_path=str(small_world), state_dir=str(state), requests_per_second=1000)
    instance = dg.DagsterInstance.ephemeral()

    mats, check = _run(wh, gong, instance, tags=MARCH)
    assert set(wh.query("SELECT call_id FROM raw_gong_calls")["call_id"]) == march
    assert mats["raw_gong_calls"]["sync_mode"].value == "backfill" and check.passed
    assert len(instance.get_runs()) == 1  # the whole range in one run
    march_keys = {f"2024-03-{d:02d}" for d in range(1, 32)}
    assert instance.get_materialized_partitions(dg.AssetKey("raw_gong_calls")) == march_keys
    saved = StateStore(state, f"gong-sample-7-30-v{GENERATOR_VERSION}").load()
    assert saved.get("completed_to") is None  # the incremental checkpoint is untouched

    mats, check = _run(wh, gong, instance, partition_key=TODAY)  # today's partition: incremental
    assert mats["raw_gong_calls"]["sync_mode"].value == "incremental" and check.passed
    assert mats["raw_gong_calls"]["records_fetched"].value == len(calls) - len(march)  # March not again
    ids = wh.query("SELECT call_id FROM raw_gong_calls")["call_id"]
    assert len(ids) == len(set(ids)) == len(calls)

    mats, _ = _run(wh, gong, instance, tags=MARCH)  # the same backfill again: re-listed, nothing re-fetched
    assert mats["raw_gong_calls"]["calls_listed"].value == len(march)
    assert mats["raw_gong_calls"]["records_fetched"].value == 0
    assert wh.row_count("raw_gong_calls") == len(calls)


def test_the_ingest_job_targets_todays_partition_by_default(runtime_env):
    from revops_pipelines.definitions import build_definitions

    defs = build_definitions()
    job = defs.resolve_job_def("ingest_sample_world")
    assert job.tags.get("dagster/partition") == TODAY
    assert job.partitions_def == DAILY


class _Sink:
    def __init__(self):
        self.calls = {}

    def complete_call_ids(self, ids):
        return set()

    def write_calls(self, records):
        self.calls.update({r["metaData"]["id"]: r for r in records})

    def write_transcripts(self, records):
        pass

    def write_quarantine(self, rows):
        pass


def test_a_window_ending_within_a_day_of_now_is_the_incremental_sync(small_world, tmp_path):
    from datetime import UTC, datetime

    def mode(day_from, day_to):
        gong = GongResource(
            sample_path=str(small_world), state_dir=str(tmp_path / day_from), requests_per_second=1000
        )
        window = tuple(datetime.fromisoformat(d).replace(tzinfo=UTC) for d in (day_from, day_to))
        summary, _ = gong.sync(_Sink(), window=window)
        return summary.checkpoint["mode"], summary.checkpoint["from"]

    # the sample world's "now" is 2026-01-01: yesterday's partition (a code location loaded a day
    # ago) still runs incrementally from the start; an older day is a backfill of that day only
    assert mode("2025-12-30", "2025-12-31") == ("incremental", "2024-01-01T00:00:00Z")
    assert mode("2025-12-01", "2025-12-02") == ("backfill", "2025-12-01T00:00:00Z")
