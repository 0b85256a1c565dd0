"""Gong raw tables: calls (from /v2/calls/extensive, with CRM context) and transcript sentences."""

from __future__ import annotations

import json

from revops_pipelines.checks import not_null_check, references_check, unique_check
from revops_pipelines.lazy import pd
from revops_pipelines.raw import raw_table_asset
from revops_pipelines.sources import SampleWorldSource
from revops_pipelines.warehouse import table

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


def _crm_object(call: dict, object_type: str) -> str | None:
    for ctx in call.get("context") or []:
        for obj in ctx.get("objects") or []:
            if obj.get("objectType") == object_type:
                return obj.get("objectId")
    return None


def _calls(src: SampleWorldSource) -> pd.DataFrame:
    rows = []
    for c in src.records("gong/calls.jsonl"):
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


def _transcripts(src: SampleWorldSource) -> pd.DataFrame:
    cols: dict[str, list] = {c: [] for c in TRANSCRIPTS.column_names}
    for t in src.records("gong/transcripts.jsonl"):
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


raw_gong_calls = raw_table_asset(CALLS, _calls, source="gong", description=CALLS.description)
raw_gong_transcripts = raw_table_asset(
    TRANSCRIPTS, _transcripts, source="gong", description=TRANSCRIPTS.description
)

ASSETS = [raw_gong_calls, raw_gong_transcripts]
TABLES = [CALLS, TRANSCRIPTS]
CHECKS = [
    unique_check("raw_gong_calls", ("call_id",)),
    not_null_check("raw_gong_calls", ("account_id", "started")),
    references_check("raw_gong_calls", "account_id", "raw_sf_accounts", "account_id"),
    references_check("raw_gong_transcripts", "call_id", "raw_gong_calls", "call_id", blocking=False),
]
