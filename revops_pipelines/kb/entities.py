"""Entity embeddings: accounts, products and features in one LanceDB table, for "similar accounts".

One row per entity (table ``kb_entities``)::

    entity_id, entity_type, name, segment, plan, as_of, churned, attributes (JSON), text,
    content_hash, text_hash, embedder_name, embedder_version, text_vector[text_dim], vector[dim]

``vector`` has two blocks, each L2-normalised and weighted so that cosine similarity between two
accounts is ``w_num · cos(numeric) + w_text · cos(text)``:

* **numeric** — the account's latest ``account_features`` snapshot (usage, engagement, support,
  billing, contract) transformed (log for counts and money), standardised over the population and
  clipped to ±3 σ, plus one-hot segment / plan / billing frequency. The category lists come from the
  ``customer_segmentation`` taxonomy (its size segments and plans), the one source of truth;
* **text** — the embedder's vector of the account's recent call text (Gong briefs, key points and
  transcript sentences of its latest calls).

Products (plans) and features come from the taxonomies: their numeric block is zero, so their
similarity to an account is the similarity of their description to the account's call text —
"which features does this account talk about". A free-text query is embedded into the text block.

Incremental: the text block is re-embedded only when an entity's text changed (``text_hash``), and
a row is rewritten only when its stored ``content_hash`` (every field and the rounded vector)
changed; entities no longer present are deleted. A change of embedder rebuilds the table.
``lancedb`` is imported lazily (through :mod:`revops_pipelines.kb.store`).
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np

from revops_pipelines.errors import ValidationFailed
from revops_pipelines.kb.documents import content_hash
from revops_pipelines.kb.embedder import Embedder, get_embedder
from revops_pipelines.kb.store import (
    KnowledgeBaseError,
    _sql_str,
    connect_db,
    open_table,
    restore_version,
    table_versions,
    write_verified,
)
from revops_pipelines.logging import get_logger

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import pyarrow as pa

    from revops_pipelines.kb.taxonomy import Taxonomies
    from revops_pipelines.warehouse import Warehouse

log = get_logger("revops.kb.entities")

ENTITY_TYPES = ("account", "product", "feature")

# (column of account_features, transform) — "log" = sign-preserving log1p, "lin" = as is.
NUMERIC_FEATURES: tuple[tuple[str, str], ...] = (
    ("util_30d", "lin"),
    ("util_prev_60d", "lin"),
    ("usage_trend", "lin"),
    ("usage_slope_90d", "lin"),
    ("sessions_30d", "log"),
    ("features_used_30d", "lin"),
    ("days_since_active", "log"),
    ("calls_90d", "log"),
    ("sentiment_90d", "lin"),
    ("negative_share_90d", "lin"),
    ("risk_mentions_90d", "log"),
    ("tickets_90d", "log"),
    ("high_tickets_90d", "log"),
    ("open_tickets", "log"),
    ("overdue_invoices", "log"),
    ("meddpicc_completeness", "lin"),
    ("arr", "log"),
    ("seats", "log"),
    ("tenure_days", "log"),
    ("days_to_renewal", "lin"),
    ("employees", "log"),
    ("recent_call_sentiment", "lin"),
)
BILLING_FREQUENCIES = ("Monthly", "Annual")
DEFAULT_SEGMENTS = ("Enterprise", "Mid-Market", "SMB")
DEFAULT_PLANS = ("Starter", "Growth", "Scale")


@dataclass(frozen=True)
class EntityConfig:
    """How entity vectors are put together."""

    numeric_weight: float = 0.6  # share of the cosine that comes from the numeric block
    calls_per_account: int = 8  # latest calls whose brief and key points form the account text
    transcript_calls: int = 3  # of those, how many contribute transcript sentences
    max_text_chars: int = 6000
    segments: tuple[str, ...] = DEFAULT_SEGMENTS
    plans: tuple[str, ...] = DEFAULT_PLANS

    def __post_init__(self) -> None:
        if not 0.0 <= self.numeric_weight <= 1.0:
            raise ValidationFailed(
                "entity config", [f"numeric_weight: must be in [0, 1], got {self.numeric_weight}"]
            )

    @property
    def numeric_dim(self) -> int:
        return len(NUMERIC_FEATURES) + len(self.segments) + len(self.plans) + len(BILLING_FREQUENCIES)

    @classmethod
    def from_taxonomies(cls, taxonomies: Taxonomies, **kwargs: Any) -> EntityConfig:
        """Segments and plans named as in the ``customer_segmentation`` taxonomy."""
        seg = taxonomies["customer_segmentation"]
        sizes = (
            tuple(n.name for n in seg.roots() if any(r.field == "employee_count" for r in n.rules))
            or DEFAULT_SEGMENTS
        )
        plans = (
            tuple(n.name for n in seg.children("segment.plan")) if "segment.plan" in seg else DEFAULT_PLANS
        )
        return cls(segments=sizes, plans=plans or DEFAULT_PLANS, **kwargs)


@dataclass(frozen=True)
class Entity:
    entity_id: str  # "account:<sf id>", "feature:<node id>", "product:<node id>"
    entity_type: str
    name: str
    text: str
    segment: str | None = None
    plan: str | None = None
    as_of: date | None = None
    churned: bool | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    numeric: tuple[float, ...] | None = None  # the numeric block before weighting (None: zeros)

    @property
    def text_hash(self) -> str:
        return content_hash(self.text)


@dataclass(frozen=True)
class EntityStats:
    added: int
    updated: int
    removed: int
    unchanged: int
    embedded: int  # texts sent to the embedder
    rebuilt: bool = False
    reason: str | None = None
    total: int = 0
    by_type: dict[str, int] = field(default_factory=dict)
    version: int | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SimilarEntity:
    entity_id: str
    entity_type: str
    name: str
    score: float  # cosine similarity, higher is more similar
    segment: str | None
    plan: str | None
    churned: bool | None
    as_of: date | None
    attributes: dict[str, Any]

    @property
    def account_id(self) -> str:
        return self.entity_id.split(":", 1)[1]


# -- building entities -----------------------------------------------------------------------------
def _finite(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _transform(value: float | None, how: str) -> float | None:
    if value is None:
        return None
    return math.copysign(math.log1p(abs(value)), value) if how == "log" else value


def numeric_blocks(rows: Sequence[Mapping[str, Any]], config: EntityConfig) -> np.ndarray:
    """Standardised numeric block per row: transformed features → z-scores over ``rows`` (±3σ, missing
    = 0) followed by one-hot segment, plan and billing frequency."""
    n = len(rows)
    raw = np.full((n, len(NUMERIC_FEATURES)), np.nan)
    for i, r in enumerate(rows):
        for j, (col, how) in enumerate(NUMERIC_FEATURES):
            v = _transform(_finite(r.get(col)), how)
            if v is not None:
                raw[i, j] = v
    with warnings.catch_warnings():  # all-missing columns: nan mean/std, handled below
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(raw, axis=0) if n else np.zeros(raw.shape[1])
        std = np.nanstd(raw, axis=0) if n else np.ones(raw.shape[1])
    mean = np.nan_to_num(mean)
    std = np.where(np.nan_to_num(std) > 1e-9, np.nan_to_num(std), 1.0)
    z = np.clip(np.nan_to_num((raw - mean) / std, nan=0.0), -3.0, 3.0)
    cats = []
    for values, key in (
        (config.segments, "segment"),
        (config.plans, "plan"),
        (BILLING_FREQUENCIES, "billing_frequency"),
    ):
        onehot = np.zeros((n, len(values)))
        index = {v.lower(): k for k, v in enumerate(values)}
        for i, r in enumerate(rows):
            k = index.get(str(r.get(key) or "").lower())
            if k is not None:
                onehot[i, k] = 1.0
        cats.append(onehot)
    return np.hstack([z, *cats]).astype(np.float32)


def taxonomy_entities(taxonomies: Taxonomies) -> list[Entity]:
    """Products (the plans of ``customer_segmentation``) and features (every ``product_features`` node)."""
    out: list[Entity] = []
    seg = taxonomies.get("customer_segmentation")
    if seg is not None and "segment.plan" in seg:
        for node in seg.children("segment.plan"):
            out.append(
                Entity(
                    entity_id=f"product:{node.id}",
                    entity_type="product",
                    name=f"Beacon {node.name}",
                    text=f"Beacon {node.name} plan. {node.description} {' '.join(node.keywords)}",
                    plan=node.name,
                    attributes={"taxonomy": seg.id, "taxonomy_version": seg.version, "node_id": node.id},
                )
            )
    if "product_features" in taxonomies:
        feats = taxonomies["product_features"]
        for node in feats:
            path = " > ".join(n.name for n in feats.path(node.id))
            out.append(
                Entity(
                    entity_id=f"feature:{node.id}",
                    entity_type="feature",
                    name=path,
                    text=f"{path}. {node.description} {' '.join(node.keywords)}",
                    attributes={"taxonomy": feats.id, "taxonomy_version": feats.version, "node_id": node.id},
                )
            )
    return out


LATEST_FEATURES_SQL = """
SELECT * FROM (
  SELECT f.*, ROW_NUMBER() OVER (PARTITION BY f.account_id ORDER BY f.snapshot_date DESC) AS rn
  FROM account_features f
) x WHERE rn = 1
"""
ACCOUNTS_SQL = """
SELECT account_id, name, industry, employees, billing_country, segment, plan, billing_frequency,
  seats, arr, churn_date
FROM raw_sf_accounts WHERE NOT is_deleted
"""
RECENT_CALLS_SQL = """
SELECT call_id, account_id, started, purpose, brief, key_points, rn FROM (
  SELECT c.call_id, c.account_id, c.started, c.purpose, c.brief, c.key_points,
    ROW_NUMBER() OVER (PARTITION BY c.account_id ORDER BY c.started DESC, c.call_id) AS rn
  FROM raw_gong_calls c WHERE c.account_id IS NOT NULL
) x WHERE rn <= ?
"""
TRANSCRIPTS_SQL = """
SELECT t.call_id, t.seq, t.text FROM raw_gong_transcripts t
JOIN (
  SELECT call_id FROM (
    SELECT c.call_id, ROW_NUMBER() OVER (PARTITION BY c.account_id ORDER BY c.started DESC, c.call_id) AS rn
    FROM raw_gong_calls c WHERE c.account_id IS NOT NULL
  ) r WHERE rn <= ?
) k ON k.call_id = t.call_id
ORDER BY t.call_id, t.seq
"""
SENTIMENT_SQL = """
SELECT s.call_id, s.sentiment FROM gong_call_sentiment s
"""


def _key_points(raw: Any) -> list[str]:
    if not raw:
        return []
    try:
        points = json.loads(raw)
    except (TypeError, ValueError):
        return [str(raw)]
    return [str(p) for p in points if p] if isinstance(points, list) else [str(points)]


def account_entities(
    warehouse: Warehouse, config: EntityConfig | None = None
) -> tuple[list[Entity], dict[str, Any]]:
    """One entity per non-deleted Salesforce account, from the warehouse; returns (entities, notes).

    Reads ``raw_sf_accounts``, the latest ``account_features`` row per account, and — when loaded —
    the latest calls of ``raw_gong_calls`` with their ``raw_gong_transcripts`` sentences and
    ``gong_call_sentiment``. ``notes`` says which optional sources were absent.
    """
    config = config or EntityConfig()
    tables = set(warehouse.table_names())
    if "raw_sf_accounts" not in tables:
        raise KnowledgeBaseError("entity embeddings need raw_sf_accounts in the warehouse; load it first")
    notes: dict[str, Any] = {
        "missing_sources": sorted(
            {"account_features", "raw_gong_calls", "raw_gong_transcripts", "gong_call_sentiment"} - tables
        )
    }
    accounts = warehouse.query(ACCOUNTS_SQL)
    feats = warehouse.query(LATEST_FEATURES_SQL) if "account_features" in tables else None
    calls = (
        warehouse.query(RECENT_CALLS_SQL, [config.calls_per_account]) if "raw_gong_calls" in tables else None
    )
    sentences = (
        warehouse.query(TRANSCRIPTS_SQL, [config.transcript_calls])
        if calls is not None and "raw_gong_transcripts" in tables and config.transcript_calls > 0
        else None
    )
    sentiment = warehouse.query(SENTIMENT_SQL) if "gong_call_sentiment" in tables else None

    feat_by_id = {} if feats is None else {r["account_id"]: r for r in feats.to_dict("records")}
    sent_by_call = (
        {} if sentiment is None else dict(zip(sentiment["call_id"], sentiment["sentiment"], strict=True))
    )
    text_by_call: dict[str, list[str]] = {}
    if sentences is not None:
        for call_id, text in zip(sentences["call_id"], sentences["text"], strict=True):
            text_by_call.setdefault(call_id, []).append(str(text))
    calls_by_account: dict[str, list[dict[str, Any]]] = {}
    if calls is not None:
        for r in calls.sort_values(["account_id", "rn"]).to_dict("records"):
            calls_by_account.setdefault(r["account_id"], []).append(r)

    rows: list[dict[str, Any]] = []
    texts: list[str] = []
    for acc in accounts.sort_values("account_id").to_dict("records"):
        aid = acc["account_id"]
        f = feat_by_id.get(aid, {})
        recent = calls_by_account.get(aid, [])
        parts: list[str] = []
        for c in recent:
            parts.append(" ".join(p for p in [str(c.get("purpose") or ""), str(c.get("brief") or "")] if p))
            parts.extend(_key_points(c.get("key_points")))
            parts.extend(text_by_call.get(c["call_id"], []))
        text = "\n".join(p for p in parts if p.strip())[: config.max_text_chars]
        sents = [_finite(sent_by_call.get(c["call_id"])) for c in recent]
        sents = [s for s in sents if s is not None]
        row = {k: f.get(k) for k, _ in NUMERIC_FEATURES if k in f}
        row.update(
            employees=acc.get("employees"),
            recent_call_sentiment=float(np.mean(sents)) if sents else None,
            segment=f.get("segment") or acc.get("segment"),
            plan=f.get("plan") or acc.get("plan"),
            billing_frequency=f.get("billing_frequency") or acc.get("billing_frequency"),
        )
        for k in ("arr", "seats"):
            if row.get(k) is None:
                row[k] = acc.get(k)
        rows.append(row)
        texts.append(text)

    numeric = numeric_blocks(rows, config)
    out = []
    for i, acc in enumerate(accounts.sort_values("account_id").to_dict("records")):
        aid = acc["account_id"]
        f = feat_by_id.get(aid, {})
        snap = f.get("snapshot_date")
        churn_date = acc.get("churn_date")
        attrs = {
            "industry": acc.get("industry"),
            "country": acc.get("billing_country"),
            "employees": _int_or_none(acc.get("employees")),
            "arr": _finite(rows[i].get("arr")),
            "seats": _int_or_none(rows[i].get("seats")),
            "util_30d": _round(f.get("util_30d")),
            "usage_trend": _round(f.get("usage_trend")),
            "sentiment_90d": _round(f.get("sentiment_90d")),
            "tickets_90d": _int_or_none(f.get("tickets_90d")),
            "days_to_renewal": _int_or_none(f.get("days_to_renewal")),
            "calls_used": len(calls_by_account.get(aid, [])),
            "churn_date": None if _is_missing(churn_date) else str(_as_date(churn_date)),
        }
        out.append(
            Entity(
                entity_id=f"account:{aid}",
                entity_type="account",
                name=str(acc.get("name") or aid),
                text=texts[i],
                segment=rows[i].get("segment"),
                plan=rows[i].get("plan"),
                as_of=None if _is_missing(snap) else _as_date(snap),
                churned=not _is_missing(churn_date),
                attributes=attrs,
                numeric=tuple(float(x) for x in numeric[i]),
            )
        )
    notes["accounts_with_features"] = sum(1 for a in accounts["account_id"] if a in feat_by_id)
    notes["accounts_with_calls"] = sum(1 for a in accounts["account_id"] if a in calls_by_account)
    return out, notes


def _is_missing(v: Any) -> bool:
    if v is None:
        return True
    try:
        return bool(v != v)  # NaN / NaT
    except (TypeError, ValueError):
        return False


def _as_date(v: Any) -> date:
    if hasattr(v, "date") and callable(v.date):
        return v.date()
    if isinstance(v, date):
        return v
    return date.fromisoformat(str(v)[:10])


def _round(v: Any, digits: int = 3) -> float | None:
    f = _finite(v)
    return None if f is None else round(f, digits)


def _int_or_none(v: Any) -> int | None:
    f = _finite(v)
    return None if f is None else int(f)


# -- the index -------------------------------------------------------------------------------------
COLUMNS = (
    "entity_id",
    "entity_type",
    "name",
    "segment",
    "plan",
    "as_of",
    "churned",
    "attributes",
    "text",
    "content_hash",
    "text_hash",
    "embedder_name",
    "embedder_version",
    "text_vector",
    "vector",
)


class EntityIndex:
    """Entity vectors in one LanceDB table, with similarity queries."""

    def __init__(
        self,
        uri: str,
        embedder: Embedder | None = None,
        *,
        config: EntityConfig | None = None,
        table_name: str = "kb_entities",
        storage_options: dict[str, str] | None = None,
    ):
        self.uri = str(uri)
        self.embedder: Embedder = embedder if embedder is not None else get_embedder("hashing")
        self.config = config or EntityConfig()
        self.table_name = table_name
        self.storage_options = storage_options
        self._db: Any = None

    def __repr__(self) -> str:
        return f"EntityIndex(uri={self.uri!r}, table={self.table_name!r}, embedder={self.embedder_id})"

    @property
    def embedder_id(self) -> str:
        return f"{self.embedder.name}@{self.embedder.version}"

    @property
    def dim(self) -> int:
        return self.config.numeric_dim + self.embedder.dim

    def _open(self) -> Any | None:
        if self._db is None:
            self._db = connect_db(self.uri, self.storage_options)
        return open_table(self._db, self.table_name)

    def _require(self) -> Any:
        table = self._open()
        if table is None:
            raise KnowledgeBaseError(
                f"entity index {self.uri!r} has no table {self.table_name!r} yet: materialise kb_entity_index first"
            )
        return table

    def _schema(self) -> pa.Schema:
        import pyarrow as pa

        return pa.schema(
            [
                pa.field("entity_id", pa.string(), nullable=False),
                pa.field("entity_type", pa.string(), nullable=False),
                pa.field("name", pa.string()),
                pa.field("segment", pa.string()),
                pa.field("plan", pa.string()),
                pa.field("as_of", pa.date32()),
                pa.field("churned", pa.bool_()),
                pa.field("attributes", pa.string()),
                pa.field("text", pa.string()),
                pa.field("content_hash", pa.string()),
                pa.field("text_hash", pa.string()),
                pa.field("embedder_name", pa.string()),
                pa.field("embedder_version", pa.string()),
                pa.field("text_vector", pa.list_(pa.float32(), self.embedder.dim)),
                pa.field("vector", pa.list_(pa.float32(), self.dim)),
            ]
        )

    def _rebuild_reason(self, table: Any) -> str | None:
        if tuple(table.schema.names) != COLUMNS:
            return f"table columns {table.schema.names} differ from the expected {list(COLUMNS)}"
        if table.schema.field("vector").type.list_size != self.dim:
            return f"stored vectors have {table.schema.field('vector').type.list_size} dimensions, expected {self.dim}"
        stored = table.search().select(["embedder_name", "embedder_version"]).limit(None).to_arrow()
        pairs = set(
            zip(stored["embedder_name"].to_pylist(), stored["embedder_version"].to_pylist(), strict=True)
        )
        if pairs and pairs != {(self.embedder.name, self.embedder.version)}:
            found = ", ".join(sorted(f"{n}@{v}" for n, v in pairs))
            return f"stored vectors come from {found}, the current embedder is {self.embedder_id}"
        return None

    def _combine(self, numeric: np.ndarray, text: np.ndarray) -> np.ndarray:
        def unit(m: np.ndarray) -> np.ndarray:
            norms = np.linalg.norm(m, axis=1, keepdims=True)
            return np.divide(m, norms, out=np.zeros_like(m), where=norms > 0)

        w = self.config.numeric_weight
        out = np.hstack([unit(numeric) * math.sqrt(w), unit(text) * math.sqrt(1.0 - w)]).astype(np.float32)
        return unit(out)

    def _rows(
        self, entities: Sequence[Entity], text_vectors: np.ndarray, vectors: np.ndarray, hashes: list[str]
    ) -> pa.Table:
        import pyarrow as pa

        schema = self._schema()
        cols: dict[str, list[Any]] = {
            "entity_id": [e.entity_id for e in entities],
            "entity_type": [e.entity_type for e in entities],
            "name": [e.name for e in entities],
            "segment": [e.segment for e in entities],
            "plan": [e.plan for e in entities],
            "as_of": [e.as_of for e in entities],
            "churned": [e.churned for e in entities],
            "attributes": [json.dumps(dict(e.attributes), sort_keys=True, default=str) for e in entities],
            "text": [e.text for e in entities],
            "content_hash": hashes,
            "text_hash": [e.text_hash for e in entities],
            "embedder_name": [self.embedder.name] * len(entities),
            "embedder_version": [self.embedder.version] * len(entities),
        }
        arrays = [
            pa.array(cols[f.name], type=f.type) for f in schema if f.name not in ("text_vector", "vector")
        ]
        for m, d in ((text_vectors, self.embedder.dim), (vectors, self.dim)):
            flat = pa.array(np.ascontiguousarray(m, dtype=np.float32).reshape(-1), type=pa.float32())
            arrays.append(pa.FixedSizeListArray.from_arrays(flat, d))
        return pa.Table.from_arrays(arrays, schema=schema)

    def build(self, entities: Iterable[Entity], *, rebuild: bool = False) -> EntityStats:
        """Sync the table to ``entities`` (the complete set): embed changed texts, rewrite changed rows."""
        started = time.perf_counter()
        entities = sorted(entities, key=lambda e: e.entity_id)
        problems = []
        seen: set[str] = set()
        for e in entities:
            if e.entity_type not in ENTITY_TYPES:
                problems.append(
                    f"{e.entity_id}: entity_type must be one of {ENTITY_TYPES}, got {e.entity_type!r}"
                )
            if not e.entity_id.startswith(e.entity_type + ":"):
                problems.append(f"{e.entity_id}: id must start with '{e.entity_type}:'")
            if e.entity_id in seen:
                problems.append(f"{e.entity_id}: appears more than once")
            if e.numeric is not None and len(e.numeric) != self.config.numeric_dim:
                problems.append(
                    f"{e.entity_id}: numeric block has {len(e.numeric)} values, expected {self.config.numeric_dim}"
                )
            seen.add(e.entity_id)
        if problems:
            raise ValidationFailed("entities to index", problems)

        table = self._open()
        reason = None
        if table is not None:
            reason = "rebuild requested" if rebuild else self._rebuild_reason(table)
        stored: dict[str, tuple[str, str, np.ndarray | None]] = {}
        if table is not None and reason is None:
            got = (
                table.search()
                .select(["entity_id", "content_hash", "text_hash", "text_vector"])
                .limit(None)
                .to_arrow()
            )
            tv = (
                got["text_vector"].combine_chunks().flatten().to_numpy().reshape(-1, self.embedder.dim)
                if got.num_rows
                else None
            )
            for i, (eid, ch, th) in enumerate(
                zip(
                    got["entity_id"].to_pylist(),
                    got["content_hash"].to_pylist(),
                    got["text_hash"].to_pylist(),
                    strict=True,
                )
            ):
                stored[eid] = (ch, th, None if tv is None else tv[i])

        # text block: reuse stored vectors whose text did not change
        text_vectors = np.zeros((len(entities), self.embedder.dim), dtype=np.float32)
        to_embed = {
            i
            for i, e in enumerate(entities)
            if e.entity_id not in stored or stored[e.entity_id][1] != e.text_hash
        }
        for i, e in enumerate(entities):
            if i not in to_embed and e.entity_id in stored:
                text_vectors[i] = stored[e.entity_id][2]
        embed_idx = sorted(i for i in to_embed if entities[i].text.strip())
        if embed_idx:
            text_vectors[embed_idx] = np.asarray(
                self.embedder.embed([entities[i].text for i in embed_idx]), dtype=np.float32
            )
        numeric = np.zeros((len(entities), self.config.numeric_dim), dtype=np.float32)
        for i, e in enumerate(entities):
            if e.numeric is not None:
                numeric[i] = e.numeric
        vectors = self._combine(numeric, text_vectors)
        hashes = [
            content_hash(
                e.entity_id,
                e.entity_type,
                e.name,
                e.segment,
                e.plan,
                e.as_of,
                e.churned,
                dict(e.attributes),
                e.text,
                [round(float(x), 5) for x in vectors[i]],
            )  # fmt: skip
            for i, e in enumerate(entities)
        ]
        by_type = {t: sum(e.entity_type == t for e in entities) for t in ENTITY_TYPES}

        if table is None or reason:
            previous = table.count_rows() if table is not None else 0
            if reason:
                log.warning("entity index full rebuild: %s", reason)
            table = self._db.create_table(
                self.table_name,
                data=self._rows(entities, text_vectors, vectors, hashes),
                schema=self._schema(),
                mode="overwrite",
            )
            stats = EntityStats(len(entities), 0, previous, 0, len(embed_idx), reason is not None, reason)
        else:
            changed = [
                i
                for i, e in enumerate(entities)
                if e.entity_id in stored and stored[e.entity_id][0] != hashes[i]
            ]
            added = [i for i, e in enumerate(entities) if e.entity_id not in stored]
            wanted = {e.entity_id for e in entities}
            removed = [eid for eid in stored if eid not in wanted]
            writes = added + changed
            if writes or removed:
                sub = [entities[i] for i in writes]
                rows = self._rows(sub, text_vectors[writes], vectors[writes], [hashes[i] for i in writes])
                write_verified(
                    table, rows, key="entity_id", inserted=len(added), updated=len(changed), removed=removed
                )
            stats = EntityStats(
                len(added), len(changed), len(removed), len(entities) - len(writes), len(embed_idx)
            )
        if table.count_rows() != len(entities):
            raise KnowledgeBaseError(
                f"after indexing, table {self.table_name!r} holds {table.count_rows()} rows for {len(entities)} entities"
            )
        return EntityStats(
            **{**stats.as_dict(), "total": len(entities), "by_type": by_type, "version": table.version,
               "seconds": round(time.perf_counter() - started, 4)}
        )  # fmt: skip

    # -- queries -----------------------------------------------------------------------------------
    def _hits(self, rows: list[dict[str, Any]]) -> list[SimilarEntity]:
        out = []
        for r in rows:
            as_of = r.get("as_of")
            out.append(
                SimilarEntity(
                    entity_id=r["entity_id"],
                    entity_type=r["entity_type"],
                    name=r["name"],
                    score=1.0 - float(r["_distance"]),
                    segment=r.get("segment"),
                    plan=r.get("plan"),
                    churned=r.get("churned"),
                    as_of=as_of,
                    attributes=json.loads(r.get("attributes") or "{}"),
                )
            )
        return out

    def _search(self, vector: np.ndarray, k: int, where: str) -> list[SimilarEntity]:
        if not 1 <= int(k) <= 500:
            raise ValidationFailed("entity search", [f"k: must be between 1 and 500, got {k}"])
        table = self._require()
        reason = self._rebuild_reason(table)
        if reason:
            raise KnowledgeBaseError(
                f"cannot search {self.uri!r} entities: {reason}; re-run the entity index"
            )
        columns = [
            "entity_id",
            "entity_type",
            "name",
            "segment",
            "plan",
            "as_of",
            "churned",
            "attributes",
            "_distance",
        ]
        q = table.search(vector.astype(np.float32)).distance_type("cosine").where(where, prefilter=True)
        return self._hits(q.select(columns).limit(int(k)).to_list())

    def get(self, entity_id: str) -> dict[str, Any] | None:
        table = self._require()
        rows = table.search().where(f"entity_id = {_sql_str(entity_id)}").limit(1).to_list()
        if not rows:
            return None
        row = rows[0]
        row["attributes"] = json.loads(row.get("attributes") or "{}")
        return row

    def similar(
        self, entity_id: str, k: int = 5, *, entity_type: str | None = None, where: str | None = None
    ) -> list[SimilarEntity]:
        """The ``k`` entities most similar to ``entity_id`` (itself excluded), optionally of one type."""
        row = self.get(entity_id)
        if row is None:
            raise KnowledgeBaseError(f"unknown entity {entity_id!r} in {self.table_name!r}")
        if entity_type is not None and entity_type not in ENTITY_TYPES:
            raise ValidationFailed(
                "entity search", [f"entity_type: must be one of {ENTITY_TYPES}, got {entity_type!r}"]
            )
        parts = [f"entity_id != {_sql_str(entity_id)}"]
        if entity_type:
            parts.append(f"entity_type = {_sql_str(entity_type)}")
        if where:
            parts.append(where)
        return self._search(np.asarray(row["vector"], dtype=np.float32), k, " AND ".join(parts))

    def similar_accounts(
        self, account_id: str, k: int = 5, *, same_segment: bool = False, churned: bool | None = None
    ) -> list[SimilarEntity]:
        """Accounts most like ``account_id`` (by usage, engagement, support, contract and call text).

        ``same_segment`` keeps the account's own segment; ``churned`` keeps only churned (True) or only
        retained (False) accounts — e.g. "how did accounts like this one end up?".
        """
        eid = account_id if account_id.startswith("account:") else f"account:{account_id}"
        extra = []
        if same_segment:
            row = self.get(eid)
            if row is None:
                raise KnowledgeBaseError(f"unknown account {account_id!r} in {self.table_name!r}")
            if row.get("segment"):
                extra.append(f"segment = {_sql_str(row['segment'])}")
        if churned is not None:
            extra.append(f"churned = {'true' if churned else 'false'}")
        return self.similar(eid, k, entity_type="account", where=" AND ".join(extra) or None)

    def search(self, text: str, k: int = 5, *, entity_type: str | None = None) -> list[SimilarEntity]:
        """Entities whose text (call text for accounts, descriptions for products and features) is
        closest to ``text``."""
        if not isinstance(text, str) or not text.strip():
            raise ValidationFailed("entity search", ["text: must be a non-empty string"])
        if entity_type is not None and entity_type not in ENTITY_TYPES:
            raise ValidationFailed(
                "entity search", [f"entity_type: must be one of {ENTITY_TYPES}, got {entity_type!r}"]
            )
        tv = np.asarray(self.embedder.embed([text]), dtype=np.float32)
        if not tv.any():
            return []
        vec = self._combine(np.zeros((1, self.config.numeric_dim), dtype=np.float32), tv)[0]
        where = f"entity_type = {_sql_str(entity_type)}" if entity_type else "entity_id IS NOT NULL"
        return self._search(vec, k, where)

    def count(self, entity_type: str | None = None) -> int:
        table = self._open()
        if table is None:
            return 0
        if entity_type is None:
            return table.count_rows()
        return table.count_rows(f"entity_type = {_sql_str(entity_type)}")

    def exists(self) -> bool:
        return self._open() is not None

    def versions(self) -> list[dict[str, Any]]:
        return table_versions(self._open())

    def restore(self, version: int) -> int:
        return restore_version(self._require(), version)


def neighbour_agreement(
    index: EntityIndex, account_ids: Sequence[str], k: int = 5, field_name: str = "segment"
) -> float:
    """Share of the ``k`` nearest accounts that share ``field_name`` with the query account, averaged
    over ``account_ids`` — a quick sanity figure for the entity space (chance ≈ the field's mix)."""
    agree = total = 0
    for aid in account_ids:
        row = index.get(f"account:{aid}" if not aid.startswith("account:") else aid)
        if row is None:
            continue
        for hit in index.similar_accounts(aid, k):
            total += 1
            agree += getattr(hit, field_name) == row.get(field_name)
    return agree / total if total else 0.0


def frame_of(hits: Sequence[SimilarEntity]) -> pd.DataFrame:
    """Hits as a DataFrame (for display)."""
    import pandas as pd

    return pd.DataFrame(
        [{**asdict(h), **{f"attr_{k}": v for k, v in h.attributes.items()}} for h in hits]
    ).drop(columns=["attributes"], errors="ignore")
