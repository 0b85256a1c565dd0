"""Conversation features from the Gong raw tables: who spoke, how much, in what tone, about what.

Two derived tables, each rebuilt from the raw tables on every materialisation (a call whose raw rows
change — a re-fetched transcript, a backfill — is recomputed, and nothing is counted twice):

* ``gong_speaker_stats`` — one row per call and speaker: talk time and talk ratio, sentences, the
  speaker's sentiment (:mod:`revops_pipelines.text.sentiment`: offline lexicon, negation-aware, the
  mean clamped sentence polarity in [-1, 1]) and affiliation (``internal`` | ``external`` |
  ``unknown``) from the call's parties in ``/v2/calls/extensive``.
  Talk time is Gong's per-speaker ``talkTime`` (whole call) when the extensive record has it, else
  the summed durations of the speaker's transcript sentences; one source per call, so a call's talk
  ratios always sum to 1.
* ``gong_call_trackers`` — one row per call and tracker or topic: keyword trackers with Gong's hit
  count (``kind='tracker'``) and topics (``kind='topic'``) with the number of transcript sentences
  Gong attributed to the topic (0 when Gong lists the topic but no transcript sentence carries it).

Both carry the call's ``account_id`` and ``started`` so features can be cut at a snapshot date.
"""

import json

import dagster as dg

from revops_pipelines.checks import (
    accepted_values_check,
    combine_checks,
    references_check,
    sql_check,
    unique_check,
)
from revops_pipelines.lazy import pd
from revops_pipelines.raw import column_schema
from revops_pipelines.signature import pinned
from revops_pipelines.text.sentiment import sentence_polarity
from revops_pipelines.warehouse import Warehouse, table

GROUP = "conversations"
AFFILIATIONS = ("internal", "external", "unknown")
KINDS = ("tracker", "topic")

SPEAKER_STATS = table(
    "gong_speaker_stats",
    [
        ("call_id", "TEXT"),
        ("account_id", "TEXT"),
        ("started", "TIMESTAMP"),
        ("speaker_id", "TEXT"),
        ("affiliation", "TEXT", False),
        ("talk_seconds", "DOUBLE"),
        ("talk_ratio", "DOUBLE"),
        ("sentences", "INTEGER", False),
        ("sentiment", "DOUBLE"),
    ],
    keys=("call_id", "speaker_id"),
    primary_index=("call_id", "speaker_id"),
    description="Per call and speaker: talk time and talk ratio (Gong talkTime, else transcript "
    "durations), transcript sentences, lexicon sentiment in [-1, 1] (null without sentences) and "
    "affiliation internal/external/unknown from the call's parties.",
    group=GROUP,
)

CALL_TRACKERS = table(
    "gong_call_trackers",
    [
        ("call_id", "TEXT"),
        ("account_id", "TEXT"),
        ("started", "TIMESTAMP"),
        ("name", "TEXT"),
        ("kind", "TEXT"),
        ("count", "INTEGER", False),
    ],
    keys=("call_id", "kind", "name"),
    primary_index=("call_id", "kind", "name"),
    description="Per call: Gong keyword trackers with their hit counts (kind 'tracker') and the call's "
    "topics with the number of transcript sentences on each (kind 'topic').",
    group=GROUP,
)

TABLES = [SPEAKER_STATS, CALL_TRACKERS]
RAW = ("raw_gong_calls", "raw_gong_parties", "raw_gong_transcripts")
UNKNOWN_SPEAKER = "unknown"  # a transcript monologue without a speaker id


def clamped_polarities(texts: "pd.Series") -> "pd.Series":
    """Each sentence's polarity clamped to [-1, 1] (as in ``score_sentences``), computed once per
    distinct text — transcripts repeat phrases a lot."""
    texts = texts.fillna("").astype(str)
    cache = {t: max(-1, min(1, sentence_polarity(t))) for t in pd.unique(texts)}
    return texts.map(cache).astype("int64")


def _affiliation(value) -> str:
    low = str(value or "").strip().lower()
    return low if low in ("internal", "external") else "unknown"


def speaker_stats_frame(
    calls: "pd.DataFrame", parties: "pd.DataFrame", sentences: "pd.DataFrame"
) -> "pd.DataFrame":
    """gong_speaker_stats rows from raw frames.

    ``calls``: call_id, account_id, started; ``parties``: call_id, speaker_id, affiliation,
    talk_seconds; ``sentences``: call_id, speaker_id, start_ms, end_ms, text. Only calls present in
    ``calls`` produce rows (a transcript without its call has no account to belong to)."""
    keys = ["call_id", "speaker_id"]
    s = sentences[sentences["call_id"].isin(calls["call_id"])].copy()
    s["speaker_id"] = s["speaker_id"].fillna(UNKNOWN_SPEAKER).astype(str)
    s["pol"] = clamped_polarities(s["text"]) if len(s) else pd.Series(dtype="int64")
    dur = (
        pd.to_numeric(s["end_ms"], errors="coerce") - pd.to_numeric(s["start_ms"], errors="coerce")
    ) / 1000.0
    s["dur"] = dur.clip(lower=0).fillna(0.0)
    by_speaker = (
        s.groupby(keys, sort=False)
        .agg(sentences=("pol", "size"), sentiment=("pol", "mean"), transcript_s=("dur", "sum"))
        .reset_index()
    )
    p = parties[parties["speaker_id"].notna() & parties["call_id"].isin(calls["call_id"])].copy()
    p["speaker_id"] = p["speaker_id"].astype(str)
    p["affiliation"] = p["affiliation"].map(_affiliation)
    p["talk_seconds"] = pd.to_numeric(p["talk_seconds"], errors="coerce")
    # one speaker id may belong to two party rows (rare): a known affiliation wins over unknown
    p["_known"] = (p["affiliation"] != "unknown").astype(int)
    p = p.sort_values(["call_id", "speaker_id", "_known"], ascending=[True, True, False])
    by_party = (
        p.groupby(keys, sort=False)
        .agg(affiliation=("affiliation", "first"), gong_s=("talk_seconds", lambda x: x.sum(min_count=1)))
        .reset_index()
    )
    spoke = by_party[by_party["gong_s"].fillna(0) > 0]
    out = by_speaker.merge(by_party, on=keys, how="outer")
    out = out[out["sentences"].notna() | out.set_index(keys).index.isin(spoke.set_index(keys).index)]
    out = out.copy()
    out["sentences"] = out["sentences"].fillna(0).astype("int64")
    out["affiliation"] = out["affiliation"].fillna("unknown")
    has_gong = out.groupby("call_id")["gong_s"].transform(lambda x: bool((x.fillna(0) > 0).any()))
    out["talk_seconds"] = out["gong_s"].fillna(0.0).where(has_gong, out["transcript_s"].fillna(0.0))
    total = out.groupby("call_id")["talk_seconds"].transform("sum")
    out["talk_ratio"] = (out["talk_seconds"] / total).where(total > 0)
    out["talk_source"] = has_gong.map({True: "gong", False: "transcript"})
    out = out.merge(calls[["call_id", "account_id", "started"]], on="call_id", how="inner")
    out = out.sort_values(keys).reset_index(drop=True)
    return out[[*SPEAKER_STATS.column_names, "talk_source"]]


def _json_list(value) -> list:
    if value is None or (isinstance(value, float) and value != value):
        return []
    try:
        data = json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return []
    return data if isinstance(data, list) else []


def call_trackers_frame(calls: "pd.DataFrame", topic_sentences: "pd.DataFrame") -> "pd.DataFrame":
    """gong_call_trackers rows. ``calls``: call_id, account_id, started, topics, trackers (the JSON
    of raw_gong_calls); ``topic_sentences``: call_id, topic, n (transcript sentences per topic)."""
    rows: dict[tuple[str, str, str], int] = {}
    for call_id, topics, trackers in zip(calls["call_id"], calls["topics"], calls["trackers"], strict=True):
        for t in _json_list(trackers):
            name = t.get("name") if isinstance(t, dict) else None
            count = int(t.get("count") or 0) if isinstance(t, dict) else 0
            if name and count > 0:  # the same tracker name listed twice adds up
                key = (call_id, "tracker", str(name))
                rows[key] = rows.get(key, 0) + count
        for t in _json_list(topics):
            name = t.get("name") if isinstance(t, dict) else t
            if name:
                rows.setdefault((call_id, "topic", str(name)), 0)
    known = set(calls["call_id"])
    for call_id, topic, n in zip(
        topic_sentences["call_id"], topic_sentences["topic"], topic_sentences["n"], strict=True
    ):
        if call_id in known and topic:
            key = (call_id, "topic", str(topic))
            rows[key] = rows.get(key, 0) + int(n)
    df = pd.DataFrame(
        [(c, n, k, v) for (c, k, n), v in rows.items()], columns=["call_id", "name", "kind", "count"]
    )
    df = df.merge(calls[["call_id", "account_id", "started"]], on="call_id", how="left")
    df["count"] = df["count"].astype("int64")
    return df.sort_values(["call_id", "kind", "name"]).reset_index(drop=True)[CALL_TRACKERS.column_names]


def _read(warehouse: Warehouse, sql: str, table_name: str, columns: list[str]) -> "pd.DataFrame":
    if table_name not in set(warehouse.table_names()):
        return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})
    return warehouse.query(sql)


def _spec_metadata(schema) -> dict:
    return {"dagster/column_schema": column_schema(schema), "merge_keys": ", ".join(schema.keys)}


@dg.asset(
    name=SPEAKER_STATS.name,
    group_name=GROUP,
    kinds={"python"},
    deps=list(RAW),
    description=SPEAKER_STATS.description,
    metadata=_spec_metadata(SPEAKER_STATS),
)
@pinned
def gong_speaker_stats(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """Per call and speaker talk time, talk ratio, sentences, sentiment and affiliation."""
    calls = _read(
        warehouse, "SELECT call_id, account_id, started FROM raw_gong_calls", "raw_gong_calls",
        ["call_id", "account_id", "started"],
    )  # fmt: skip
    parties = _read(
        warehouse,
        "SELECT call_id, speaker_id, affiliation, talk_seconds FROM raw_gong_parties",
        "raw_gong_parties",
        ["call_id", "speaker_id", "affiliation", "talk_seconds"],
    )
    sentences = _read(
        warehouse,
        "SELECT call_id, speaker_id, start_ms, end_ms, text FROM raw_gong_transcripts",
        "raw_gong_transcripts",
        ["call_id", "speaker_id", "start_ms", "end_ms", "text"],
    )
    df = speaker_stats_frame(calls, parties, sentences)
    result = warehouse.replace_table(SPEAKER_STATS, df[SPEAKER_STATS.column_names])
    per_call = df.drop_duplicates("call_id")
    ext = df[df["affiliation"] == "external"]
    calls_with_parties = set(parties["call_id"])
    by_aff = df.groupby("affiliation")["sentiment"].mean()
    context.log.info(f"gong_speaker_stats: {len(df)} rows for {len(per_call)} calls")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": dg.MetadataValue.int(result.total),
            "calls": dg.MetadataValue.int(len(per_call)),
            "calls_talk_from_gong": dg.MetadataValue.int(int((per_call["talk_source"] == "gong").sum())),
            "calls_talk_from_transcript": dg.MetadataValue.int(
                int((per_call["talk_source"] == "transcript").sum())
            ),
            "calls_without_parties": dg.MetadataValue.int(
                int((~per_call["call_id"].isin(calls_with_parties)).sum())
            ),
            "mean_external_talk_ratio": dg.MetadataValue.float(
                float(ext.groupby("call_id")["talk_ratio"].sum().mean()) if len(ext) else 0.0
            ),
            "mean_sentiment_by_affiliation": dg.MetadataValue.json(
                {k: round(float(v), 4) for k, v in by_aff.items() if v == v}
            ),
        }
    )


@dg.asset(
    name=CALL_TRACKERS.name,
    group_name=GROUP,
    kinds={"python"},
    deps=["raw_gong_calls", "raw_gong_transcripts"],
    description=CALL_TRACKERS.description,
    metadata=_spec_metadata(CALL_TRACKERS),
)
@pinned
def gong_call_trackers(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """Per call tracker hits and topics, as rows."""
    calls = _read(
        warehouse,
        "SELECT call_id, account_id, started, topics, trackers FROM raw_gong_calls",
        "raw_gong_calls",
        ["call_id", "account_id", "started", "topics", "trackers"],
    )
    topic_sentences = _read(
        warehouse,
        "SELECT call_id, topic, COUNT(*) AS n FROM raw_gong_transcripts WHERE topic IS NOT NULL "
        "GROUP BY call_id, topic",
        "raw_gong_transcripts",
        ["call_id", "topic", "n"],
    )
    df = call_trackers_frame(calls, topic_sentences)
    result = warehouse.replace_table(CALL_TRACKERS, df)
    totals = df.groupby(["kind", "name"])["count"].sum().sort_values(ascending=False)
    context.log.info(f"gong_call_trackers: {len(df)} rows")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": dg.MetadataValue.int(result.total),
            "tracker_rows": dg.MetadataValue.int(int((df["kind"] == "tracker").sum())),
            "topic_rows": dg.MetadataValue.int(int((df["kind"] == "topic").sum())),
            "calls": dg.MetadataValue.int(int(df["call_id"].nunique())),
            "totals": dg.MetadataValue.json({f"{k}:{n}": int(v) for (k, n), v in totals.items()}),
        }
    )


ASSETS = [gong_speaker_stats, gong_call_trackers]

_RATIO_SUM = (
    "SELECT COUNT(*) FROM (SELECT call_id FROM gong_speaker_stats GROUP BY call_id "
    "HAVING SUM(talk_seconds) > 0 AND ABS(SUM(talk_ratio) - 1.0) > 0.001) d"
)
CHECKS = combine_checks(
    [
        unique_check(SPEAKER_STATS.name, ("call_id", "speaker_id")),
        accepted_values_check(SPEAKER_STATS.name, "affiliation", AFFILIATIONS, allow_null=False),
        sql_check(
            SPEAKER_STATS.name,
            "gong_speaker_stats_talk_ratios_sum_to_one",
            _RATIO_SUM,
            description="the talk ratios of each call with any talk time sum to 1 (within 0.001)",
            blocking=True,
            sample_sql="SELECT call_id, SUM(talk_ratio) AS ratio_sum, SUM(talk_seconds) AS talk_seconds "
            "FROM gong_speaker_stats GROUP BY call_id HAVING SUM(talk_seconds) > 0 "
            "AND ABS(SUM(talk_ratio) - 1.0) > 0.001",
        ),
        sql_check(
            SPEAKER_STATS.name,
            "gong_speaker_stats_ranges",
            "SELECT COUNT(*) FROM gong_speaker_stats WHERE talk_seconds < 0 OR talk_ratio < 0 "
            "OR talk_ratio > 1.000001 OR sentences < 0 OR sentiment < -1 OR sentiment > 1 "
            "OR (sentences = 0 AND sentiment IS NOT NULL) OR (sentences > 0 AND sentiment IS NULL)",
            description="talk seconds and sentences are non-negative, talk ratio in [0, 1], sentiment in "
            "[-1, 1] and present exactly when the speaker has sentences",
            blocking=True,
        ),
        sql_check(
            SPEAKER_STATS.name,
            "gong_speaker_stats_every_transcript_sentence_counted",
            "SELECT ABS((SELECT COUNT(*) FROM raw_gong_transcripts t WHERE EXISTS "
            "(SELECT 1 FROM raw_gong_calls c WHERE c.call_id = t.call_id)) - "
            "(SELECT COALESCE(SUM(sentences), 0) FROM gong_speaker_stats))",
            description="the speakers' sentence counts add up to the transcript sentences of the loaded calls "
            "(no call or speaker missing, none counted twice)",
            blocking=True,
            additional_deps=("raw_gong_transcripts", "raw_gong_calls"),
        ),
        references_check(SPEAKER_STATS.name, "call_id", "raw_gong_calls", "call_id", blocking=False),
        unique_check(CALL_TRACKERS.name, ("call_id", "kind", "name")),
        accepted_values_check(CALL_TRACKERS.name, "kind", KINDS, allow_null=False),
        sql_check(
            CALL_TRACKERS.name,
            "gong_call_trackers_counts",
            "SELECT COUNT(*) FROM gong_call_trackers WHERE count < 0 OR (kind = 'tracker' AND count = 0)",
            description="counts are non-negative, and a tracker row always has at least one hit",
            blocking=True,
        ),
        references_check(CALL_TRACKERS.name, "call_id", "raw_gong_calls", "call_id", blocking=False),
    ],
    name="conversations",
)
