"""Transcript processing: parties, per-speaker stats and per-call trackers/topics, from raw frames and
end to end through the Gong stand-in into the warehouse."""

from collections import Counter, defaultdict

import dagster as dg
import pandas as pd
import pytest

from assets import conversations as conv
from assets.gong import DAILY, gong_sync, parties_frame
from revops_pipelines.connectors.gong import GongResource
from revops_pipelines.text.sentiment import score_sentences
from revops_pipelines.warehouse.duckdb import DuckDBWarehouse

from .conftest import read_jsonl

TODAY = DAILY.get_last_partition_key()  # today's partition: the incremental sync

CALLS = pd.DataFrame(
    {
        "call_id": ["A", "B"],
        "account_id": ["001A", "001B"],
        "started": pd.to_datetime(["2025-03-01 10:00", "2025-03-02 11:00"]),
    }
)


def _sentences(rows):
    return pd.DataFrame(rows, columns=["call_id", "speaker_id", "start_ms", "end_ms", "text"])


def test_speaker_stats_use_gong_talk_time_and_party_affiliation():
    parties = pd.DataFrame(
        [
            ("A", "s1", "Internal", 30.0),
            ("A", "s2", "External", 90.0),
            ("A", "s3", "External", 0.0),  # invited, never spoke: no row
            ("B", "s9", "Internal", None),
        ],
        columns=["call_id", "speaker_id", "affiliation", "talk_seconds"],
    )
    sentences = _sentences(
        [
            ("A", "s1", 0, 2000, "Great to see you, thanks for the time."),
            ("A", "s2", 2000, 5000, "Honestly the sync is broken and we are frustrated."),
            ("A", "s2", 5000, 6000, "Not happy with support."),
            ("A", "s2", 6000, 7000, "The dashboards are fine."),
            ("A", "s4", 7000, 8000, "Sorry, who just joined?"),  # in the transcript, not in the parties
            ("B", "s9", 0, 4000, "We love the new reports."),
            ("B", "s8", 4000, 10000, "Our renewal is not a given this year."),
            ("Z", "s1", 0, 1000, "A call that never loaded."),  # no raw_gong_calls row: ignored
        ]
    )
    df = conv.speaker_stats_frame(CALLS, parties, sentences).set_index(["call_id", "speaker_id"])
    assert set(df.index) == {("A", "s1"), ("A", "s2"), ("A", "s4"), ("B", "s8"), ("B", "s9")}
    a = df.loc["A"]
    # call A has Gong talk times: they are used, the transcript-only speaker gets 0
    assert a.loc["s1", "talk_seconds"] == 30.0 and a.loc["s2", "talk_seconds"] == 90.0
    assert a.loc["s4", "talk_seconds"] == 0.0
    assert a["talk_ratio"].sum() == pytest.approx(1.0)
    assert a.loc["s2", "talk_ratio"] == pytest.approx(0.75)
    assert (a.loc["s1", "affiliation"], a.loc["s2", "affiliation"], a.loc["s4", "affiliation"]) == (
        "internal",
        "external",
        "unknown",
    )
    customer = [
        "Honestly the sync is broken and we are frustrated.",
        "Not happy with support.",
        "The dashboards are fine.",
    ]
    assert a.loc["s2", "sentences"] == 3
    assert a.loc["s2", "sentiment"] == pytest.approx(score_sentences(customer).score)
    assert a.loc["s2", "sentiment"] < 0 < a.loc["s1", "sentiment"]
    b = df.loc["B"]
    # no Gong talk time on call B: transcript durations instead (4 s and 6 s)
    assert b.loc["s9", "talk_seconds"] == 4.0 and b.loc["s8", "talk_seconds"] == 6.0
    assert b.loc["s8", "talk_ratio"] == pytest.approx(0.6)
    assert b.loc["s8", "affiliation"] == "unknown" and b.loc["s9", "affiliation"] == "internal"
    assert (df["account_id"].loc["B"] == "001B").all()


def test_speaker_with_talk_time_but_no_sentences_has_null_sentiment():
    parties = pd.DataFrame(
        [("A", "s1", "Internal", 10.0), ("A", "s2", "External", 30.0)],
        columns=["call_id", "speaker_id", "affiliation", "talk_seconds"],
    )
    sentences = _sentences([("A", "s1", 0, 1000, "Hello there.")])
    df = conv.speaker_stats_frame(CALLS, parties, sentences).set_index("speaker_id")
    assert df.loc["s2", "sentences"] == 0 and pd.isna(df.loc["s2", "sentiment"])
    assert df.loc["s2", "talk_ratio"] == pytest.approx(0.75)


def test_parties_frame_keeps_speakers_without_a_party_and_deduplicates():
    rec = {
        "metaData": {"id": "C1"},
        "parties": [
            {
                "id": "p1",
                "speakerId": "s1",
                "affiliation": "Internal",
                "name": "Rep",
                "emailAddress": "r@x.io",
            },
            {"id": "p2", "speakerId": "s2", "affiliation": "External", "name": "Buyer"},
            {"id": "p3", "affiliation": "External", "name": "Silent listener"},
        ],
        "interaction": {
            "speakers": [
                {"id": "s1", "userId": "u1", "talkTime": 12.5},
                {"id": "s2", "talkTime": 30.0},
                {"id": "s7", "talkTime": 4.0},
            ]
        },
    }
    df = parties_frame([rec, rec]).set_index("party_id")  # the same call twice in one batch
    assert list(df.index) == ["p1", "p2", "p3", "speaker:s7"]
    assert df.loc["p1", "talk_seconds"] == 12.5 and df.loc["p1", "user_id"] == "u1"
    assert pd.isna(df.loc["p3", "speaker_id"]) and pd.isna(df.loc["p3", "talk_seconds"])
    assert df.loc["speaker:s7", "affiliation"] == "Unknown" and df.loc["speaker:s7", "talk_seconds"] == 4.0


def test_call_trackers_rows():
    calls = CALLS.assign(
        topics=['[{"name": "Pricing", "duration": 120}, {"name": "Renewal", "duration": 60}]', None],
        trackers=[
            '[{"name": "Competitors", "count": 2}, {"name": "Competitors", "count": 1},'
            ' {"name": "Next Steps", "count": 0}]',
            "not json",
        ],
    )
    topic_sentences = pd.DataFrame(
        [("A", "Pricing", 5), ("B", "Support", 3), ("Z", "Pricing", 9)], columns=["call_id", "topic", "n"]
    )
    df = conv.call_trackers_frame(calls, topic_sentences)
    got = {(r.call_id, r.kind, r.name): r.count for r in df.itertuples()}
    assert got == {
        ("A", "tracker", "Competitors"): 3,
        ("A", "topic", "Pricing"): 5,
        ("A", "topic", "Renewal"): 0,  # Gong lists it, no transcript sentence carries it
        ("B", "topic", "Support"): 3,
    }
    assert list(df.columns) == conv.CALL_TRACKERS.column_names
    assert set(df.loc[df["call_id"] == "B", "account_id"]) == {"001B"}


@pytest.mark.slow  # a full Gong sync through the stand-in, then every check
def test_sample_world_calls_flow_into_speaker_and_tracker_tables(small_world, tmp_path):
    wh = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    gong = GongResource(
        sample_path=str(small_world), state_dir=str(tmp_path / "state"), requests_per_second=1000
    )
    assets = [gong_sync, *conv.ASSETS, *conv.CHECKS]
    result = dg.materialize(
        assets, resources={"warehouse": wh, "gong": gong}, partition_key=TODAY, raise_on_error=True
    )
    evals = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert len(evals) >= len(conv.CHECKS) and all(evals.values()), evals

    calls = read_jsonl(small_world / "gong/calls.jsonl")
    transcripts = {t["callId"]: t for t in read_jsonl(small_world / "gong/transcripts.jsonl")}
    stats = wh.query("SELECT * FROM gong_speaker_stats")
    assert not stats.duplicated(["call_id", "speaker_id"]).any()
    by_call = {cid: g.set_index("speaker_id") for cid, g in stats.groupby("call_id")}
    assert set(by_call) == {c["metaData"]["id"] for c in calls}
    for call in calls:
        cid = call["metaData"]["id"]
        got = by_call[cid]
        affiliation = {p["speakerId"]: p["affiliation"].lower() for p in call["parties"]}
        talk = {s["id"]: s["talkTime"] for s in call["interaction"]["speakers"]}
        sents = Counter()
        for mono in transcripts[cid]["transcript"]:
            sents[mono["speakerId"]] += len(mono["sentences"])
        assert set(got.index) == set(talk) | set(sents)
        for sid, row in got.iterrows():
            assert row["affiliation"] == affiliation[sid]
            assert row["talk_seconds"] == pytest.approx(talk.get(sid, 0.0))
            assert row["sentences"] == sents[sid]
        assert got["talk_ratio"].sum() == pytest.approx(1.0)
        assert (got["account_id"] == call["context"][0]["objects"][0]["objectId"]).all()

    trackers = wh.query("SELECT call_id, kind, name, count FROM gong_call_trackers")
    want = defaultdict(int)
    for call in calls:
        for t in call["content"]["trackers"]:
            want[(call["metaData"]["id"], t["name"])] += t["count"]
    got_trackers = {
        (r.call_id, r.name): r.count for r in trackers[trackers["kind"] == "tracker"].itertuples()
    }
    assert got_trackers == dict(want)
    topics = trackers[trackers["kind"] == "topic"]
    assert {(r.call_id, r.name) for r in topics.itertuples()} == {
        (c["metaData"]["id"], t["name"]) for c in calls for t in c["content"]["topics"]
    }

    # a re-run rebuilds the same rows, never doubles them
    dg.materialize(conv.ASSETS, resources={"warehouse": wh}, raise_on_error=True)
    assert wh.row_count("gong_speaker_stats") == len(stats)
    assert wh.row_count("gong_call_trackers") == len(trackers)


def test_a_broken_talk_ratio_fails_the_blocking_check(tmp_path):
    wh = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    bad = pd.DataFrame(
        [
            ("A", "001A", pd.Timestamp("2025-03-01"), "s1", "internal", 10.0, 0.5, 1, 0.0),
            ("A", "001A", pd.Timestamp("2025-03-01"), "s2", "external", 30.0, 0.2, 1, 0.0),
        ],
        columns=conv.SPEAKER_STATS.column_names,
    )
    wh.replace_table(conv.SPEAKER_STATS, bad)
    key = next(k for c in conv.CHECKS for k in c.check_keys if k.name.endswith("talk_ratios_sum_to_one"))
    result = dg.materialize(
        [dg.AssetSpec(conv.SPEAKER_STATS.name), *conv.CHECKS],
        resources={"warehouse": wh},
        selection=dg.AssetSelection.checks(key),
        raise_on_error=False,
    )
    [ev] = result.get_asset_check_evaluations()
    assert not ev.passed and ev.metadata["offending_rows"].value == 1
