"""Gong raw tables, loaded by the Gong connector (:mod:`revops_pipelines.connectors.gong`).

One multi-asset runs one incremental sync per run and writes four tables: calls (from
``/v2/calls/extensive``, with CRM context), the calls' parties and speakers (affiliation and talk
time, from the same records), transcript sentences (``/v2/calls/transcript``) and the quarantine
(records that could not be loaded, with the reason). In sample mode the connector talks to
the loopback Gong stand-in serving the generated world, so the demo exercises the real client.
"""

import json
from datetime import datetime

import dagster as dg

from revops_pipelines.checks import combine_checks, not_null_check, references_check, sql_check, unique_check
from revops_pipelines.connectors.gong import GongResource
from revops_pipelines.lazy import pd
from revops_pipelines.raw import checkpoint_result, merge_quarantine, request_metadata, sync_asset
from revops_pipelines.run_config import RunConfig
from revops_pipelines.warehouse import Warehouse, table

CALLS = table(
    "raw_gong_calls",
    [
        ("call_id", "TEXT"),
        ("account_id", "TEXT"),
        ("opportunity_id", "TEXT"),
        ("title", "TEXT"),
        ("started", "TIMESTAMP"),
        ("duration_s", "BIGINT"),
        ("primary_user_id", "TEXT"),
        ("direction", "TEXT"),
        ("scope", "TEXT"),
        ("system", "TEXT"),
        ("purpose", "TEXT"),
        ("n_parties", "INTEGER"),
        ("n_external", "INTEGER"),
        ("brief", "TEXT"),
        ("key_points", "TEXT"),
        ("topics", "TEXT"),
        ("trackers", "TEXT"),
        ("talk_ratio_external", "DOUBLE"),
        ("questions_company", "INTEGER"),
        ("questions_non_company", "INTEGER"),
    ],
    keys=("call_id",),
    primary_index=("started", "call_id"),
    description="Gong calls with CRM context (account, opportunity), parties, content and interaction stats.",
)

TRANSCRIPTS = table(
    "raw_gong_transcripts",
    [
        ("call_id", "TEXT"),
        ("seq", "INTEGER"),
        ("speaker_id", "TEXT"),
        ("topic", "TEXT"),
        ("start_ms", "BIGINT"),
        ("end_ms", "BIGINT"),
        ("text", "TEXT", False),
    ],
    keys=("call_id", "seq"),
    primary_index=("call_id", "seq"),
    description="Gong transcript sentences, one row per sentence in call order.",
)


PARTIES = table(
    "raw_gong_parties",
    [
        ("call_id", "TEXT"),
        ("party_id", "TEXT"),
        ("speaker_id", "TEXT"),
        ("affiliation", "TEXT"),
        ("name", "TEXT"),
        ("email", "TEXT"),
        ("title", "TEXT"),
        ("user_id", "TEXT"),
        ("talk_seconds", "DOUBLE"),
    ],
    keys=("call_id", "party_id"),
    primary_index=("call_id", "party_id"),
    description="Gong call parties (/v2/calls/extensive parties: Internal/External/Unknown affiliation) "
    "joined to the interaction speakers' talk time. A speaker Gong lists without a matching party is "
    "kept as party_id 'speaker:<speaker id>' with affiliation Unknown.",
)

QUARANTINE = table(
    "raw_gong_quarantine",
    [
        ("call_id", "TEXT"),
        ("stage", "TEXT"),
        ("reason", "TEXT", False),
        ("raw", "TEXT"),
        ("quarantined_at", "TIMESTAMP", False),
    ],
    keys=("call_id", "stage"),
    kind="dimension",
    description="Gong calls that could not be loaded (malformed record, or a request that kept failing), "
    "with the reason. Never silently dropped: once the cause is fixed, run gong_sync with a backfill "
    "window covering the call and it is fetched again (its row here is removed once it loads).",
)


def _crm_object(call: dict, object_type: str) -> str | None:
    for ctx in call.get("context") or []:
        for obj in ctx.get("objects") or []:
            if obj.get("objectType") == object_type:
                return obj.get("objectId")
    return None


def calls_frame(records: list[dict]) -> "pd.DataFrame":
    """Flatten /v2/calls/extensive records to raw_gong_calls rows."""
    rows = []
    for c in records:
        md, content, inter = c["metaData"], c.get("content") or {}, c.get("interaction") or {}
        parties = c.get("parties") or []
        external_ids = {p.get("speakerId") for p in parties if p.get("affiliation") == "External"}
        speakers = inter.get("speakers") or []
        talk = sum(s.get("talkTime", 0) for s in speakers)
        ext_talk = sum(s.get("talkTime", 0) for s in speakers if s.get("id") in external_ids)
        questions = inter.get("questions") or {}
        rows.append(
            {
                "call_id": md["id"],
                "account_id": _crm_object(c, "Account"),
                "opportunity_id": _crm_object(c, "Opportunity"),
                "title": md.get("title"),
                "started": md.get("started"),
                "duration_s": md.get("duration"),
                "primary_user_id": md.get("primaryUserId"),
                "direction": md.get("direction"),
                "scope": md.get("scope"),
                "system": md.get("system"),
                "purpose": md.get("purpose"),
                "n_parties": len(parties),
                "n_external": sum(1 for p in parties if p.get("affiliation") == "External"),
                "brief": content.get("brief"),
                "key_points": json.dumps([k.get("text") for k in content.get("keyPoints") or []]),
                "topics": json.dumps(content.get("topics") or []),
                "trackers": json.dumps(content.get("trackers") or []),
                "talk_ratio_external": (ext_talk / talk) if talk else None,
                "questions_company": questions.get("companyCount"),
                "questions_non_company": questions.get("nonCompanyCount"),
            }
        )
    return pd.DataFrame(rows, columns=CALLS.column_names)


def parties_frame(records: list[dict]) -> "pd.DataFrame":
    """Flatten each extensive record's ``parties`` (with ``interaction.speakers`` talk time) to
    raw_gong_parties rows; speakers without a party become rows of their own, never dropped."""
    rows = []
    for c in records:
        call_id = str(c["metaData"]["id"])
        talk: dict[str, float] = {}
        user_of: dict[str, str | None] = {}
        for sp in (c.get("interaction") or {}).get("speakers") or []:
            if sp.get("id") is None:
                continue
            sid = str(sp["id"])
            talk[sid] = talk.get(sid, 0.0) + float(sp.get("talkTime") or 0.0)
            user_of[sid] = sp.get("userId")
        seen_party: set[str] = set()
        seen_speaker: set[str] = set()
        for k, p in enumerate(c.get("parties") or []):
            pid = str(p.get("id") if p.get("id") is not None else f"index:{k}")
            if pid in seen_party:  # a party repeated in one record: the first one counts
                continue
            seen_party.add(pid)
            sid = str(p["speakerId"]) if p.get("speakerId") is not None else None
            if sid is not None:
                seen_speaker.add(sid)
            rows.append(
                {
                    "call_id": call_id,
                    "party_id": pid,
                    "speaker_id": sid,
                    "affiliation": p.get("affiliation"),
                    "name": p.get("name"),
                    "email": p.get("emailAddress"),
                    "title": p.get("title"),
                    "user_id": p.get("userId") or (user_of.get(sid) if sid else None),
                    "talk_seconds": talk.get(sid) if sid else None,
                }
            )
        for sid, seconds in talk.items():
            if sid not in seen_speaker:
                rows.append(
                    {
                        "call_id": call_id,
                        "party_id": f"speaker:{sid}",
                        "speaker_id": sid,
                        "affiliation": "Unknown",
                        "name": None,
                        "email": None,
                        "title": None,
                        "user_id": user_of.get(sid),
                        "talk_seconds": seconds,
                    }
                )
    df = pd.DataFrame(rows, columns=PARTIES.column_names)
    df = df.drop_duplicates(["call_id", "party_id"], keep="last")  # a call sent twice in one batch
    df["talk_seconds"] = pd.to_numeric(df["talk_seconds"], errors="coerce")
    return df


def transcripts_frame(records: list[dict]) -> "pd.DataFrame":
    """Flatten /v2/calls/transcript records to one row per sentence, in call order."""
    cols: dict[str, list] = {c: [] for c in TRANSCRIPTS.column_names}
    for t in records:
        seq = 0
        for mono in t.get("transcript") or []:
            for s in mono.get("sentences") or []:
                cols["call_id"].append(t["callId"])
                cols["seq"].append(seq)
                cols["speaker_id"].append(mono.get("speakerId"))
                cols["topic"].append(mono.get("topic"))
                cols["start_ms"].append(s.get("start"))
                cols["end_ms"].append(s.get("end"))
                cols["text"].append(s.get("text"))
                seq += 1
    return pd.DataFrame(cols)


TABLES = [CALLS, PARTIES, TRANSCRIPTS, QUARANTINE]


class WarehouseGongSink:
    """The sync's sink: merges into the raw tables; transcripts are replaced per call."""

    def __init__(self, warehouse: Warehouse):
        self.wh = warehouse
        self.counts = {"calls": 0, "parties": 0, "transcript_calls": 0, "sentences": 0, "quarantined": 0}

    def complete_call_ids(self, call_ids: list[str]) -> set[str]:
        """Calls with their extensive record, parties and transcript loaded. A call loaded before
        raw_gong_parties existed is not complete: listed again (a backfill of its day), it is re-fetched once."""
        if not call_ids or not {CALLS.name, PARTIES.name, TRANSCRIPTS.name} <= set(self.wh.table_names()):
            return set()
        marks = ", ".join("?" for _ in call_ids)
        df = self.wh.query(
            f"SELECT c.call_id FROM {CALLS.name} c WHERE c.call_id IN ({marks}) "
            f"AND EXISTS (SELECT 1 FROM {TRANSCRIPTS.name} t WHERE t.call_id = c.call_id) "
            f"AND EXISTS (SELECT 1 FROM {PARTIES.name} p WHERE p.call_id = c.call_id)",
            call_ids,
        )
        return set(df["call_id"].astype(str))

    def write_calls(self, records: list[dict]) -> None:
        self.wh.merge(CALLS, calls_frame(records))
        self.counts["calls"] += len(records)
        ids = [str(r["metaData"]["id"]) for r in records]  # a call that loads leaves the quarantine
        marks = ", ".join("?" for _ in ids)
        parties = parties_frame(records)  # a call's parties are replaced as a whole
        self.wh.replace_where(PARTIES, parties, f"call_id IN ({marks})", ids)
        self.counts["parties"] += len(parties)
        self.wh.execute(f"DELETE FROM {QUARANTINE.name} WHERE call_id IN ({marks})", ids)

    def write_transcripts(self, records: list[dict]) -> None:
        df = transcripts_frame(records)
        ids = [str(r["callId"]) for r in records]
        marks = ", ".join("?" for _ in ids)
        self.wh.replace_where(TRANSCRIPTS, df, f"call_id IN ({marks})", ids)
        self.counts["transcript_calls"] += len(records)
        self.counts["sentences"] += len(df)

    def write_quarantine(self, rows: list[dict]) -> None:
        merge_quarantine(self.wh, QUARANTINE, rows)
        self.counts["quarantined"] += len(rows)


# Daily partitions by call start. The current day's partition (the ingest job's default) is the
# incremental run from the checkpoint; any older partition or range is a backfill of exactly that
# window, listed again in one run (single-run backfill policy) with its own resumable checkpoint.
PARTITION_START = "2024-01-01"  # the sample world's first day and the connector's default start_date
# a datetime, not the string: Dagster parses a string start with strptime, whose first use costs ~1 ms
# (the _strptime module and its patterns) while the definitions load
DAILY = dg.DailyPartitionsDefinition(start_date=datetime.fromisoformat(PARTITION_START), end_offset=1)


def current_partition_tags() -> dict[str, str]:
    """Run tags selecting today's partition: the incremental sync (used as the ingest job's default)."""
    return {"dagster/partition": DAILY.get_last_partition_key()}


class GongRunConfig(RunConfig):
    """Leave both empty to sync the run's partition (today's: incremental; an older day or range: a
    backfill of that window). Set both (ISO dates, ``to`` exclusive) to backfill any other window —
    e.g. after a Gong outage — without moving the incremental checkpoint."""

    backfill_from: str | None = None
    backfill_to: str | None = None


@sync_asset(
    "gong",
    TABLES,
    deps=lambda schema: ["sample_world"] if schema is CALLS else [],
    checkpoint_of=CALLS,
    checkpoint_description="the sync's window was listed to its end: an incremental run's reaches the "
    "run's 'now', so the raw tables are as fresh as Gong allows; a backfill's reaches its requested end",
    partitions_def=DAILY,
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def gong_sync(
    context: dg.AssetExecutionContext, config: GongRunConfig, warehouse: Warehouse, gong: GongResource
):
    """One incremental Gong sync: list new calls, fetch extensive data and transcripts for every call
    not yet complete, quarantine what cannot be loaded. Rate limited, checkpointed, resumable."""
    for schema in TABLES:
        warehouse.ensure_table(schema)
    sink = WarehouseGongSink(warehouse)
    backfill = None
    if config.backfill_from or config.backfill_to:
        from datetime import UTC, datetime

        if not (config.backfill_from and config.backfill_to):
            raise dg.Failure("gong backfill needs both backfill_from and backfill_to")
        backfill = tuple(
            datetime.fromisoformat(d).replace(tzinfo=UTC) for d in (config.backfill_from, config.backfill_to)
        )
    window = None
    if context.has_partition_key or context.has_partition_key_range:
        tw = context.partition_time_window
        window = (tw.start, tw.end)
    summary, stats = gong.sync(sink, log=context.log.info, backfill=backfill, window=window)
    cp = summary.checkpoint
    common = {
        "sync_mode": dg.MetadataValue.text(cp.get("mode", "incremental")),
        **request_metadata(stats),
        "rate_limit_wait_s": dg.MetadataValue.float(round(stats.waited_s, 3)),
        "checkpoint": dg.MetadataValue.json(cp),
        "calls_listed": dg.MetadataValue.int(summary.listed),
        "calls_listed_without_id": dg.MetadataValue.int(summary.listed_without_id),
        "calls_pending_not_ready": dg.MetadataValue.int(summary.pending_after),
    }
    context.log.info(f"gong: {summary} {stats.as_dict()}")
    yield dg.MaterializeResult(
        asset_key=CALLS.name,
        metadata={
            **common,
            "records_fetched": dg.MetadataValue.int(sink.counts["calls"]),
            "dagster/row_count": dg.MetadataValue.int(warehouse.row_count(CALLS.name)),
        },
    )
    yield dg.MaterializeResult(
        asset_key=PARTIES.name,
        metadata={
            **common,
            "records_fetched": dg.MetadataValue.int(sink.counts["calls"]),
            "parties_written": dg.MetadataValue.int(sink.counts["parties"]),
            "dagster/row_count": dg.MetadataValue.int(warehouse.row_count(PARTIES.name)),
        },
    )
    yield dg.MaterializeResult(
        asset_key=TRANSCRIPTS.name,
        metadata={
            **common,
            "records_fetched": dg.MetadataValue.int(sink.counts["transcript_calls"]),
            "sentences_written": dg.MetadataValue.int(sink.counts["sentences"]),
            "dagster/row_count": dg.MetadataValue.int(warehouse.row_count(TRANSCRIPTS.name)),
        },
    )
    yield dg.MaterializeResult(
        asset_key=QUARANTINE.name,
        metadata={
            "quarantined_this_run": dg.MetadataValue.int(sink.counts["quarantined"]),
            "dagster/row_count": dg.MetadataValue.int(warehouse.row_count(QUARANTINE.name)),
        },
    )
    done_to = cp.get("completed_to")
    if cp.get("mode") == "backfill":  # the requested window was listed to its end
        fresh = bool(cp.get("window_done"))
    else:
        fresh = bool(done_to) and done_to == cp.get("to")
    yield checkpoint_result(
        CALLS,
        passed=fresh,
        metadata={
            "completed_to": dg.MetadataValue.text(str(done_to)),
            "window_to": dg.MetadataValue.text(str(cp.get("to"))),
        },
    )


ASSETS = [gong_sync]
CHECKS = combine_checks(
    [
        unique_check("raw_gong_calls", ("call_id",)),
        not_null_check("raw_gong_calls", ("account_id", "started")),
        references_check("raw_gong_calls", "account_id", "raw_sf_accounts", "account_id"),
        references_check("raw_gong_calls", "opportunity_id", "raw_sf_opportunities", "opportunity_id"),
        unique_check("raw_gong_parties", ("call_id", "party_id")),
        not_null_check("raw_gong_parties", ("call_id", "party_id", "affiliation")),
        references_check("raw_gong_parties", "call_id", "raw_gong_calls", "call_id"),
        unique_check("raw_gong_transcripts", ("call_id", "seq")),
        not_null_check("raw_gong_transcripts", ("call_id", "seq", "text")),
        references_check("raw_gong_transcripts", "call_id", "raw_gong_calls", "call_id", blocking=False),
        sql_check(
            "raw_gong_quarantine",
            "raw_gong_quarantine_empty",
            "SELECT COUNT(*) FROM raw_gong_quarantine",
            description="no Gong call is waiting in quarantine (a warning: the rows say why)",
            severity=dg.AssetCheckSeverity.WARN,
            sample_sql="SELECT call_id, stage, reason FROM raw_gong_quarantine ORDER BY quarantined_at DESC",
        ),
    ],
    name="gong",
)
