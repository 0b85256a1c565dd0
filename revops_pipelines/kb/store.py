"""The knowledge-base store: incremental indexing and search over LanceDB (0.40).

One LanceDB table (default ``kb_chunks``) holds one row per chunk::

    chunk_id, doc_id, title, collection, tags[], taxonomy[], heading, position, text,
    content_hash, embed_hash, embedder_name, embedder_version, vector[dim]

:meth:`KnowledgeBase.index` treats its input as the complete corpus and syncs the table to it:

* a chunk whose id and ``content_hash`` are stored is left alone (not embedded, not written);
* a stored chunk id whose ``content_hash`` changed (title/tags/position edits) is rewritten, reusing the
  stored vector when ``embed_hash`` (title + heading + text) is unchanged;
* new chunk ids are embedded and inserted, stored ids absent from the input are deleted. Because a
  chunk id hashes its text, an edited section arrives as a new id replacing an old one under the same
  (doc, heading); the statistics report such pairs as *updated*, not as added + removed;
* rows written by another embedder (name/version) or with another vector size trigger a full rebuild.

Writes go through one ``merge_insert`` commit (upsert + delete-by-source). DESIGN.md §5 records a
LanceDB trap where ``when_matched_update_all`` silently updates 0 rows when the key has a scalar
index, so the returned counts are compared with the expected ones; on a mismatch the touched ids are
deleted and re-added, and the final row count is checked. No scalar index is created on ``chunk_id``.

Search is vector search (cosine) with optional prefilters, or hybrid: vector + LanceDB's native
full-text (BM25) index on ``text`` fused by reciprocal-rank fusion. The FTS index is Lance's built-in
one (no tantivy, no downloads), rebuilt after every write; rows added since are still searched.

Approximate nearest neighbours: below :attr:`AnnConfig.threshold` rows search is exact (a flat scan is
a few milliseconds there). From the threshold on, :meth:`KnowledgeBase.index` builds an IVF index on
``vector`` (``IVF_FLAT`` by default, ``IVF_PQ`` + refine or ``IVF_HNSW_SQ`` on request) and rebuilds it
when more than ``reindex_fraction`` of the rows are not yet in it (LanceDB scans unindexed rows
exactly meanwhile, so new chunks are never missed). Why IVF_FLAT by default: on 100k hashing-embedder
chunks (256-d, short queries) measured here, IVF_FLAT with a quarter of the partitions probed reached
recall@10 ≈ 0.97 at ~4 ms and builds in ~8 s, while IVF_PQ (64 sub-vectors, refine 10) reached ≈ 0.96
at ~6.5 ms and needed ~50 s to build; at 256 dimensions PQ's memory saving is not worth it yet
(``benchmarks/kb_search.py`` measures both).

Resident exact search: an unfiltered vector search over a table of at most ``resident_rows`` rows
(default 200,000) is answered in process, exactly, from a copy of the vectors loaded once per table
version (at the first search after a write; ~100 MB at 100k 256-d chunks, held column-major) with
the columns the hits show. Queries of the default hashing embedder are sparse (an 8-word query sets
~50 of 256 dimensions), so the score of every row is the sum of ~50 contiguous columns scaled by the
query's weights — a fifth of the memory traffic of a dense matrix-vector product, single-threaded
and exact (recall 1.0, same cosine scores as the LanceDB path). Dense queries use one BLAS
product. Filtered, full-text and hybrid searches, and tables past ``resident_rows``, go to LanceDB.

``lancedb`` is imported inside methods only, so importing this module stays cheap.
"""

from __future__ import annotations

import os
import re
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from revops_pipelines.errors import RevOpsError, ValidationFailed
from revops_pipelines.kb.documents import Chunk
from revops_pipelines.kb.embedder import Embedder, get_embedder
from revops_pipelines.logging import get_logger

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

log = get_logger("revops.kb.store")

SearchMode = Literal["vector", "hybrid", "fts"]
_CHUNK_ID = re.compile(r"^[0-9a-f]{8,64}$")
_FILTER_VALUE = re.compile(r"^[A-Za-z0-9_.:-]{1,120}$")
_DELETE_BATCH = 1000
COLUMNS = (
    "chunk_id",
    "doc_id",
    "title",
    "collection",
    "tags",
    "taxonomy",
    "heading",
    "position",
    "text",
    "content_hash",
    "embed_hash",
    "embedder_name",
    "embedder_version",
    "vector",
)


HIT_COLUMNS = ("chunk_id", "doc_id", "title", "heading", "text", "collection", "tags")


class KnowledgeBaseError(RevOpsError):
    """The vector store is not in the state an operation expected (the message says which)."""


AnnKind = Literal["ivf_flat", "ivf_pq", "ivf_hnsw_sq"]


@dataclass(frozen=True)
class AnnConfig:
    """When and how to build the approximate-nearest-neighbour index on ``vector``."""

    kind: AnnKind = "ivf_flat"
    threshold: int = 5_000  # rows from which an ANN index is built (below: exact search)
    rows_per_partition: int = 400  # IVF partitions = rows / this (bounded to [8, 4096])
    probe_fraction: float = 0.35  # share of partitions searched per query (at least min_probes)
    min_probes: int = 16
    refine_factor: int = 10  # IVF_PQ / IVF_HNSW_SQ: re-rank k * refine candidates on exact vectors
    num_sub_vectors: int | None = None  # IVF_PQ: default dim // 4
    reindex_fraction: float = 0.10  # rebuild when this share of rows is not in the index

    def __post_init__(self) -> None:
        if self.kind not in ("ivf_flat", "ivf_pq", "ivf_hnsw_sq"):
            raise ValidationFailed(
                "ANN config", [f"kind: must be ivf_flat, ivf_pq or ivf_hnsw_sq, got {self.kind!r}"]
            )
        if self.threshold < 256:
            raise ValidationFailed(
                "ANN config", [f"threshold: must be at least 256 rows, got {self.threshold}"]
            )
        if not 0 < self.probe_fraction <= 1:
            raise ValidationFailed(
                "ANN config", [f"probe_fraction: must be in (0, 1], got {self.probe_fraction}"]
            )

    def partitions(self, rows: int) -> int:
        return int(min(4096, max(8, round(rows / self.rows_per_partition))))

    def nprobes(self, rows: int) -> int:
        parts = self.partitions(rows)
        return int(min(parts, max(self.min_probes, np.ceil(parts * self.probe_fraction))))

    def index_config(self, rows: int, dim: int) -> Any:
        from lancedb.index import IvfFlat, IvfHnswSq, IvfPq

        parts = self.partitions(rows)
        if self.kind == "ivf_flat":
            return IvfFlat(distance_type="cosine", num_partitions=parts, max_iterations=20)
        if self.kind == "ivf_pq":
            sub = self.num_sub_vectors or max(1, dim // 4)
            return IvfPq(distance_type="cosine", num_partitions=parts, num_sub_vectors=sub, max_iterations=20)
        return IvfHnswSq(distance_type="cosine", num_partitions=max(1, parts // 4))


VECTOR_INDEX = "vector_idx"


@dataclass(frozen=True)
class IndexStats:
    added: int
    updated: int
    removed: int
    unchanged: int
    embedded: int = 0  # chunks sent to the embedder
    rebuilt: bool = False
    reason: str | None = None  # why a full rebuild happened
    total: int = 0  # rows after the run
    version: int | None = None  # table version after the run
    seconds: float = 0.0
    ann: str = "none"  # what happened to the ANN index: none | created | rebuilt | kept | dropped

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _SearchState:
    version: int
    rows: int
    ann_kind: str | None  # "ivf_flat", "ivf_pq", ... or None for exact search
    indexed_rows: int


@dataclass(frozen=True)
class _Resident:
    """One table version's vectors and hit columns, held in process for exact unfiltered search."""

    version: int
    columns: np.ndarray  # (dim, rows) float32, C order: row i of it is dimension i of every vector
    meta: Any  # pyarrow.Table of the hit columns, in the same row order
    unit: bool  # every stored vector has norm 1 (the hashing embedder's): scores need no division
    inverse_norms: np.ndarray | None  # 1 / |row| (0 for a zero vector) when not unit


@dataclass(frozen=True)
class Hit:
    chunk_id: str
    doc_id: str
    title: str
    heading: str
    text: str
    score: float  # cosine similarity (vector), RRF relevance (hybrid) or BM25 (fts) — higher is better
    collection: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)
    vector_score: float | None = None  # cosine similarity when the vector side saw this chunk

    @classmethod
    def from_row(cls, r: dict[str, Any], score: float, vector_score: float | None) -> Hit:
        """A hit from a row of the chunk table's hit columns."""
        return cls(
            chunk_id=r["chunk_id"],
            doc_id=r["doc_id"],
            title=r["title"],
            heading=r["heading"],
            text=r["text"],
            score=score,
            collection=r["collection"],
            tags=tuple(r["tags"] or ()),
            vector_score=vector_score,
        )


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _sql_list(values: Iterable[str]) -> str:
    return "[" + ", ".join(_sql_str(v) for v in values) + "]"


def _check_filter_values(name: str, values: Sequence[str]) -> None:
    bad = [v for v in values if not isinstance(v, str) or not _FILTER_VALUE.match(v)]
    if bad:
        raise ValidationFailed("search filter", [f"{name}: invalid value(s) {bad!r}"])


def _as_list(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def connect_db(uri: str, storage_options: dict[str, str] | None = None) -> Any:
    """``lancedb.connect`` for a local folder (created if missing) or an object-store URI."""
    # Lance logs a deprecation warning from Rust on every hybrid query; keep its log at "error"
    # unless the operator chose a level.
    os.environ.setdefault("LANCEDB_LOG", "error")
    import lancedb

    if "://" not in uri:
        Path(uri).mkdir(parents=True, exist_ok=True)
    return lancedb.connect(uri, storage_options=storage_options)


def open_table(db: Any, name: str) -> Any | None:
    """The table, or ``None`` if it does not exist yet."""
    try:
        return db.open_table(name)
    except ValueError as err:
        if "not found" in str(err).lower() or "does not exist" in str(err).lower():
            return None
        raise


def table_versions(table: Any | None) -> list[dict[str, Any]]:
    """Table versions, oldest first: ``{"version", "timestamp", "rows"}``."""
    if table is None:
        return []
    out = []
    for v in table.list_versions():
        meta = v.get("metadata") or {}
        rows = meta.get("total_rows")
        out.append(
            {
                "version": v["version"],
                "timestamp": v["timestamp"],
                "rows": int(rows) if rows is not None else None,
            }
        )
    return out


def restore_version(table: Any, version: int) -> int:
    """Make ``version`` the latest again (a new commit; history is kept). Returns the new version."""
    known = [v["version"] for v in table_versions(table)]
    if version not in known:
        raise KnowledgeBaseError(
            f"table {table.name!r} has no version {version} (versions: {known[0]}..{known[-1]})"
            if known
            else f"table {table.name!r} has no versions"
        )
    table.restore(version)
    return table.version


def _delete_keys(table: Any, key: str, ids: list[str]) -> None:
    result = table.delete(f"{key} IN ({', '.join(map(_sql_str, ids))})")
    deleted = getattr(result, "num_deleted_rows", None)
    if deleted is not None and deleted != len(ids):
        raise KnowledgeBaseError(f"deleting {len(ids)} stale rows removed {deleted} rows")


def write_verified(
    table: Any,
    rows: pa.Table,
    *,
    key: str,
    inserted: int,
    updated: int,
    removed: list[str],
    execute: Any = None,
) -> None:
    """Upsert ``rows`` on ``key`` and delete ``removed`` keys in one ``merge_insert`` commit, verified.

    The merge's (inserted, updated, deleted) counts must equal the expected ones; when they do not
    (the LanceDB trap in DESIGN.md §5) the touched keys are deleted and the rows added again.
    """
    execute = execute or (lambda merge, data: merge.execute(data))
    in_merge = removed if len(removed) <= _DELETE_BATCH else []
    if len(removed) > _DELETE_BATCH:  # keep the SQL small: delete big removals in batches first
        for i in range(0, len(removed), _DELETE_BATCH):
            _delete_keys(table, key, removed[i : i + _DELETE_BATCH])
    if rows.num_rows == 0:
        if in_merge:
            _delete_keys(table, key, in_merge)
        return
    merge = table.merge_insert(key).when_matched_update_all().when_not_matched_insert_all()
    if in_merge:
        merge = merge.when_not_matched_by_source_delete(f"{key} IN ({', '.join(map(_sql_str, in_merge))})")
    result = execute(merge, rows)
    got = (result.num_inserted_rows, result.num_updated_rows, result.num_deleted_rows)
    want = (inserted, updated, len(in_merge))
    if got != want:
        log.warning(
            "merge_insert reported (inserted, updated, deleted)=%s, expected %s; repairing with delete + add",
            got,
            want,
        )
        ids = rows[key].to_pylist() + in_merge
        for i in range(0, len(ids), _DELETE_BATCH):
            table.delete(f"{key} IN ({', '.join(map(_sql_str, ids[i : i + _DELETE_BATCH]))})")
        table.add(rows)


class KnowledgeBase:
    """Chunks + vectors in one LanceDB table, at a local path or an object-store URI (``s3://...``)."""

    def __init__(
        self,
        uri: str | Path,
        embedder: Embedder | None = None,
        *,
        table_name: str = "kb_chunks",
        storage_options: dict[str, str] | None = None,
        full_text: bool = True,
        ann: AnnConfig | None = None,
        resident_rows: int = 200_000,
    ):
        self.uri = str(uri)
        self.embedder: Embedder = embedder if embedder is not None else get_embedder("hashing")
        self.table_name = table_name
        self.storage_options = storage_options
        self.full_text = full_text
        self.ann = ann if ann is not None else AnnConfig()
        self._db: Any = None
        self._table: Any = None  # handle kept for searches
        self._state: _SearchState | None = None  # what the last-seen table version needs for search
        self.resident_rows = int(resident_rows)  # 0: every search goes to LanceDB
        self._resident: _Resident | None = None

    def __repr__(self) -> str:
        return f"KnowledgeBase(uri={self.uri!r}, table={self.table_name!r}, embedder={self.embedder_id})"

    @property
    def embedder_id(self) -> str:
        return f"{self.embedder.name}@{self.embedder.version}"

    # -- connection --------------------------------------------------------------------------------
    def _connect(self) -> Any:
        if self._db is None:
            self._db = connect_db(self.uri, self.storage_options)
        return self._db

    def _open(self) -> Any | None:
        return open_table(self._connect(), self.table_name)

    def _require(self) -> Any:
        table = self._open()
        if table is None:
            raise KnowledgeBaseError(
                f"knowledge base {self.uri!r} has no table {self.table_name!r} yet: run index() first"
            )
        return table

    def _schema(self) -> pa.Schema:
        import pyarrow as pa

        return pa.schema(
            [
                pa.field("chunk_id", pa.string(), nullable=False),
                pa.field("doc_id", pa.string(), nullable=False),
                pa.field("title", pa.string()),
                pa.field("collection", pa.string()),
                pa.field("tags", pa.list_(pa.string())),
                pa.field("taxonomy", pa.list_(pa.string())),
                pa.field("heading", pa.string()),
                pa.field("position", pa.int32()),
                pa.field("text", pa.string()),
                pa.field("content_hash", pa.string()),
                pa.field("embed_hash", pa.string()),
                pa.field("embedder_name", pa.string()),
                pa.field("embedder_version", pa.string()),
                pa.field("vector", pa.list_(pa.float32(), self.embedder.dim)),
            ]
        )

    # -- embedding ---------------------------------------------------------------------------------
    def _embed(self, chunks: Sequence[Chunk]) -> np.ndarray:
        if not chunks:
            return np.zeros((0, self.embedder.dim), dtype=np.float32)
        vectors = np.asarray(self.embedder.embed([c.embedding_text for c in chunks]), dtype=np.float32)
        if vectors.shape != (len(chunks), self.embedder.dim):
            raise KnowledgeBaseError(
                f"embedder {self.embedder_id} returned shape {vectors.shape}, expected ({len(chunks)}, {self.embedder.dim})"
            )
        if not np.isfinite(vectors).all():
            raise KnowledgeBaseError(f"embedder {self.embedder_id} returned non-finite values")
        return vectors

    def _rows(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> pa.Table:
        import pyarrow as pa

        schema = self._schema()
        dim = self.embedder.dim
        flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1), type=pa.float32())
        columns = {
            "chunk_id": [c.chunk_id for c in chunks],
            "doc_id": [c.doc_id for c in chunks],
            "title": [c.title for c in chunks],
            "collection": [c.collection for c in chunks],
            "tags": [list(c.tags) for c in chunks],
            "taxonomy": [list(c.taxonomy) for c in chunks],
            "heading": [c.heading for c in chunks],
            "position": [c.position for c in chunks],
            "text": [c.text for c in chunks],
            "content_hash": [c.content_hash for c in chunks],
            "embed_hash": [c.embed_hash for c in chunks],
            "embedder_name": [self.embedder.name] * len(chunks),
            "embedder_version": [self.embedder.version] * len(chunks),
        }
        arrays = [pa.array(columns[f.name], type=f.type) for f in schema if f.name != "vector"]
        arrays.append(pa.FixedSizeListArray.from_arrays(flat, dim))
        return pa.Table.from_arrays(arrays, schema=schema)

    # -- reading the stored state ------------------------------------------------------------------
    @staticmethod
    def _scan(table: Any, columns: list[str], where: str | None = None) -> pa.Table:
        q = table.search().select(columns)
        if where:
            q = q.where(where)
        return q.limit(None).to_arrow()

    def _rebuild_reason(self, table: Any) -> str | None:
        import pyarrow as pa

        schema = table.schema
        if tuple(schema.names) != COLUMNS:
            return f"table columns {schema.names} differ from the expected {list(COLUMNS)}"
        vtype = schema.field("vector").type
        if not pa.types.is_fixed_size_list(vtype) or vtype.list_size != self.embedder.dim:
            return f"stored vector type {vtype} differs from the embedder's dim {self.embedder.dim}"
        stored = self._scan(table, ["embedder_name", "embedder_version"])
        pairs = set(
            zip(stored["embedder_name"].to_pylist(), stored["embedder_version"].to_pylist(), strict=True)
        )
        current = (self.embedder.name, self.embedder.version)
        if pairs and pairs != {current}:
            found = ", ".join(sorted(f"{n}@{v}" for n, v in pairs))
            return f"stored vectors come from {found}, the current embedder is {self.embedder_id}"
        return None

    # -- indexing ----------------------------------------------------------------------------------
    def index(
        self, chunks: Iterable[Chunk], *, rebuild: bool = False, allow_empty: bool = False
    ) -> IndexStats:
        """Sync the table to ``chunks`` (the complete corpus); embed only what is new or changed.

        ``rebuild=True`` re-embeds everything. An empty corpus would delete every stored chunk, so it is
        refused unless ``allow_empty=True`` (a loader bug must not wipe the knowledge base).
        """
        started = time.perf_counter()
        chunks = list(chunks)
        problems = [
            f"chunk {c.chunk_id!r} of {c.doc_id!r}: id must be hex"
            for c in chunks
            if not _CHUNK_ID.match(c.chunk_id)
        ]
        dupes = [cid for cid, n in Counter(c.chunk_id for c in chunks).items() if n > 1]
        problems += [f"chunk id {cid!r} appears more than once" for cid in dupes]
        if problems:
            raise ValidationFailed("chunks to index", problems)

        table = self._open()
        if not chunks and not allow_empty and table is not None and table.count_rows():
            raise ValidationFailed(
                "chunks to index",
                [
                    f"the corpus is empty but {table.count_rows()} chunks are stored; pass allow_empty=True to clear"
                ],
            )
        reason = None
        if table is not None:
            reason = "rebuild requested" if rebuild else self._rebuild_reason(table)
        if table is None or reason:
            previous = table.count_rows() if table is not None else 0
            if reason:
                log.warning("knowledge base full rebuild: %s", reason)
            table = self._connect().create_table(
                self.table_name,
                data=self._rows(chunks, self._embed(chunks)),
                schema=self._schema(),
                mode="overwrite",
            )
            self._refresh_fts(table)
            stats = IndexStats(
                added=len(chunks),
                updated=0,
                removed=previous,
                unchanged=0,
                embedded=len(chunks),
                rebuilt=reason is not None,
                reason=reason,
            )
        else:
            stats = self._sync(table, chunks)
        self._verify(table, chunks)
        ann = self._maintain_ann(table)
        total = len(chunks)
        stats = IndexStats(**{**stats.as_dict(), "total": total, "version": table.version, "ann": ann,
                              "seconds": round(time.perf_counter() - started, 4)})  # fmt: skip
        log.info("knowledge base indexed", extra={"fields": stats.as_dict()})
        return stats

    def _verify(self, table: Any, chunks: list[Chunk]) -> None:
        """The table must now hold exactly the corpus: same ids, same content hashes, one embedder."""
        stored = self._scan(table, ["chunk_id", "content_hash", "embedder_version"])
        have = dict(zip(stored["chunk_id"].to_pylist(), stored["content_hash"].to_pylist(), strict=True))
        want = {c.chunk_id: c.content_hash for c in chunks}
        if stored.num_rows != len(have) or have != want:
            missing = len(want.keys() - have.keys())
            extra = len(have.keys() - want.keys())
            stale = sum(1 for k in want.keys() & have.keys() if have[k] != want[k])
            dupes = stored.num_rows - len(have)
            raise KnowledgeBaseError(
                f"after indexing, table {self.table_name!r} does not match the corpus ({missing} missing, "
                f"{extra} extra, {stale} stale, {dupes} duplicate rows); run index(rebuild=True)"
            )
        if set(stored["embedder_version"].to_pylist()) - {self.embedder.version}:
            raise KnowledgeBaseError(f"after indexing, table {self.table_name!r} mixes embedder versions")

    def _sync(self, table: Any, chunks: list[Chunk]) -> IndexStats:
        stored = self._scan(table, ["chunk_id", "doc_id", "heading", "content_hash", "embed_hash"])
        existing = {
            cid: (doc, heading, ch, eh)
            for cid, doc, heading, ch, eh in zip(
                *(
                    stored[c].to_pylist()
                    for c in ("chunk_id", "doc_id", "heading", "content_hash", "embed_hash")
                ),
                strict=True,
            )
        }
        new_ids = {c.chunk_id for c in chunks}
        added = [c for c in chunks if c.chunk_id not in existing]
        changed = [c for c in chunks if c.chunk_id in existing and existing[c.chunk_id][2] != c.content_hash]
        unchanged = len(chunks) - len(added) - len(changed)
        removed = [cid for cid in existing if cid not in new_ids]

        # vectors: embed new text, reuse stored vectors where only metadata moved
        reuse = [c for c in changed if existing[c.chunk_id][3] == c.embed_hash]
        to_embed = added + [c for c in changed if existing[c.chunk_id][3] != c.embed_hash]
        vectors: dict[str, np.ndarray] = {}
        if to_embed:
            vectors.update(zip((c.chunk_id for c in to_embed), self._embed(to_embed), strict=True))
        if reuse:
            got = self._scan(
                table,
                ["chunk_id", "vector"],
                f"chunk_id IN ({', '.join(_sql_str(c.chunk_id) for c in reuse)})",
            )
            vectors.update(
                zip(
                    got["chunk_id"].to_pylist(),
                    got["vector"].combine_chunks().flatten().to_numpy().reshape(-1, self.embedder.dim),
                    strict=True,
                )
            )

        # an edited section = new id replacing an old one under the same (doc, heading): report "updated"
        slots = Counter((existing[cid][0], existing[cid][1]) for cid in removed)
        paired = 0
        for c in added:
            if slots[(c.doc_id, c.heading)] > 0:
                slots[(c.doc_id, c.heading)] -= 1
                paired += 1

        writes = added + changed
        if writes or removed:
            rows = self._rows(
                writes,
                np.stack([vectors[c.chunk_id] for c in writes])
                if writes
                else np.zeros((0, self.embedder.dim), np.float32),
            )
            self._write(table, rows, inserted=len(added), updated=len(changed), removed=removed)
            self._refresh_fts(table)
        return IndexStats(
            added=len(added) - paired,
            updated=len(changed) + paired,
            removed=len(removed) - paired,
            unchanged=unchanged,
            embedded=len(to_embed),
        )

    def _write(self, table: Any, rows: pa.Table, *, inserted: int, updated: int, removed: list[str]) -> None:
        write_verified(
            table, rows, key="chunk_id", inserted=inserted, updated=updated, removed=removed,
            execute=self._execute_merge,
        )  # fmt: skip

    @staticmethod
    def _execute_merge(merge: Any, rows: pa.Table) -> Any:
        return merge.execute(rows)

    def _refresh_fts(self, table: Any) -> None:
        if not self.full_text or table.count_rows() == 0:
            return
        from lancedb.index import FTS

        table.create_index("text", config=FTS(with_position=False), replace=True)

    # -- approximate nearest neighbours -------------------------------------------------------------
    @staticmethod
    def _vector_index_stats(table: Any) -> Any | None:
        if not any(i.name == VECTOR_INDEX for i in table.list_indices()):
            return None
        return table.index_stats(VECTOR_INDEX)

    def _maintain_ann(self, table: Any, *, force: bool = False) -> str:
        """Build, rebuild or drop the vector index according to :class:`AnnConfig`; say what happened."""
        rows = table.count_rows()
        stats = self._vector_index_stats(table)
        if rows < self.ann.threshold:
            if stats is not None:  # the corpus shrank below the threshold: exact search again
                table.drop_index(VECTOR_INDEX)
                return "dropped"
            return "none"
        if stats is not None and not force:
            kind_now = str(stats.index_type).lower()
            unindexed = int(stats.num_unindexed_rows or 0)
            if kind_now == self.ann.kind and unindexed <= self.ann.reindex_fraction * rows:
                return "kept"
        table.create_index(
            "vector",
            config=self.ann.index_config(rows, self.embedder.dim),
            replace=True,
            name=VECTOR_INDEX,
        )
        return "created" if stats is None else "rebuilt"

    def ensure_ann_index(self) -> str:
        """Bring the ANN index in line with the row count now (``index()`` does this after writes)."""
        return self._maintain_ann(self._require())

    def index_info(self) -> dict[str, Any]:
        """Rows, vector index (type, indexed/unindexed rows, probes) and whether full text is indexed."""
        table = self._open()
        if table is None:
            return {"table": self.table_name, "exists": False, "rows": 0, "index_type": "none"}
        rows = table.count_rows()
        stats = self._vector_index_stats(table)
        info: dict[str, Any] = {
            "table": self.table_name,
            "exists": True,
            "rows": rows,
            "version": table.version,
            "index_type": "flat (exact)" if stats is None else str(stats.index_type),
            "ann_threshold": self.ann.threshold,
            "full_text_index": any(i.index_type == "FTS" for i in table.list_indices()),
            "embedder": self.embedder_id,
        }
        if stats is not None:
            info.update(
                indexed_rows=int(stats.num_indexed_rows),
                unindexed_rows=int(stats.num_unindexed_rows),
                nprobes=self.ann.nprobes(int(stats.num_indexed_rows)),
                refine_factor=self.ann.refine_factor if self.ann.kind != "ivf_flat" else None,
            )
        return info

    def _tune(self, query: Any, state: _SearchState) -> Any:
        """Probe/refine settings for a vector (or hybrid) query when the table has an ANN index."""
        if state.ann_kind is None:
            return query
        query = query.nprobes(self.ann.nprobes(state.indexed_rows))
        if state.ann_kind != "ivf_flat" and self.ann.refine_factor > 1:
            query = query.refine_factor(self.ann.refine_factor)
        return query

    def _search_state(self) -> tuple[Any, _SearchState]:
        """The table handle and what searching it needs, recomputed only when the table version moves.

        The handle is kept between searches (opening a table and listing its indices cost more than a
        query); ``checkout_latest`` makes writes by other processes visible on the next search.
        """
        if self._table is None:
            self._table = self._require()
        else:
            self._table.checkout_latest()
        table = self._table
        version = table.version
        if self._state is None or self._state.version != version:
            reason = self._rebuild_reason(table)
            if reason:
                raise KnowledgeBaseError(f"cannot search {self.uri!r}: {reason}; re-run index()")
            if (
                self.full_text
                and table.count_rows()
                and not any(i.index_type == "FTS" for i in table.list_indices())
            ):
                self._refresh_fts(table)  # e.g. indexed earlier with full_text=False
                version = table.version
            stats = self._vector_index_stats(table)
            if stats is not None:
                table.prewarm_index(VECTOR_INDEX)  # load the index once per version, not query by query
            self._state = _SearchState(
                version=version,
                rows=table.count_rows(),
                ann_kind=None if stats is None else str(stats.index_type).lower(),
                indexed_rows=0 if stats is None else int(stats.num_indexed_rows),
            )
        return table, self._state

    # -- search ------------------------------------------------------------------------------------
    def search(
        self,
        query: str,
        k: int = 5,
        *,
        collection: str | Sequence[str] | None = None,
        tags: str | Sequence[str] | None = None,
        taxonomy: str | Sequence[str] | None = None,
        mode: SearchMode = "vector",
    ) -> list[Hit]:
        """Top-``k`` chunks for ``query``.

        Filters (applied before ranking): ``collection`` — any of; ``tags`` — the chunk carries all of
        them; ``taxonomy`` — linked to any of these node ids. ``mode``: ``vector`` (cosine similarity,
        the default; comparable across queries), ``hybrid`` (vector + BM25 fused by RRF; better for exact
        terms like error codes) or ``fts`` (BM25 only).
        """
        if not isinstance(query, str) or not query.strip():
            raise ValidationFailed("search", ["query: must be a non-empty string"])
        if not 1 <= int(k) <= 200:
            raise ValidationFailed("search", [f"k: must be between 1 and 200, got {k}"])
        if mode not in ("vector", "hybrid", "fts"):
            raise ValidationFailed("search", [f"mode: must be vector, hybrid or fts, got {mode!r}"])
        where = self._filter(collection, tags, taxonomy)
        if mode != "vector" and not self.full_text:
            raise ValidationFailed("search", [f"mode: {mode!r} needs full_text=True"])
        table, state = self._search_state()
        if state.rows == 0:
            return []

        columns = list(HIT_COLUMNS)
        vector = self._embed_query(query) if mode != "fts" else None
        if vector is not None and not np.any(vector):
            # no features (e.g. only stop words): cosine is undefined; keyword search may still match
            if mode == "vector":
                return []
            mode = "fts"
        if mode == "vector" and where is None and state.rows <= self.resident_rows:
            return self._resident_search(table, state, vector, int(k))
        if mode == "vector":
            q = self._tune(
                table.search(vector).distance_type("cosine").select([*columns, "_distance"]), state
            )
        elif mode == "fts":
            q = table.search(query, query_type="fts").select([*columns, "_score"])
        else:
            from lancedb.rerankers import RRFReranker

            q = (
                table.search(query_type="hybrid")
                .vector(vector)
                .text(query)
                .distance_type("cosine")
                .rerank(RRFReranker(return_score="all"))
                .select(columns)
            )
            q = self._tune(q, state)
        if where:
            q = q.where(where, prefilter=True)
        rows = q.limit(int(k)).to_list()
        hits = []
        for r in rows:
            distance = r.get("_distance")
            vscore = None if distance is None else 1.0 - float(distance)
            if mode == "vector":
                score = vscore if vscore is not None else 0.0
            elif mode == "fts":
                score = float(r.get("_score") or 0.0)
            else:
                score = float(r.get("_relevance_score") or 0.0)
            hits.append(Hit.from_row(r, score, vscore))
        return hits[: int(k)]

    def _resident_for(self, table: Any, state: _SearchState) -> _Resident:
        """The in-process copy of the table's vectors and hit columns at ``state.version``."""
        res = self._resident
        if res is not None and res.version == state.version and res.meta.num_rows == state.rows:
            return res
        self._resident = None  # the previous version's copy is not kept alongside the new one
        data = self._scan(table, [*HIT_COLUMNS, "vector"])
        dim = self.embedder.dim
        flat = data["vector"].combine_chunks().flatten().to_numpy(zero_copy_only=False)
        vectors = flat.astype(np.float32, copy=False).reshape(-1, dim)
        norms = np.linalg.norm(vectors, axis=1)
        unit = bool(np.all(np.abs(norms - 1.0) < 1e-4))
        inverse = None
        if not unit:
            inverse = np.zeros_like(norms)
            np.divide(1.0, norms, out=inverse, where=norms > 0)
        self._resident = _Resident(
            version=state.version,
            columns=np.ascontiguousarray(vectors.T),
            meta=data.select(list(HIT_COLUMNS)).combine_chunks(),  # one chunk: take() is then cheap
            unit=unit,
            inverse_norms=inverse,
        )
        return self._resident

    def _resident_search(self, table: Any, state: _SearchState, vector: np.ndarray, k: int) -> list[Hit]:
        """Exact cosine top-``k`` over the resident copy (see the module docstring)."""
        res = self._resident_for(table, state)
        dim, rows = res.columns.shape
        if rows == 0:
            return []
        nz = np.flatnonzero(vector)
        if len(nz) * 2 <= dim:  # sparse query: sum the few columns it touches
            from scipy.sparse import csr_matrix

            q = csr_matrix((vector[nz], nz, np.array([0, len(nz)])), shape=(1, dim))
            scores = np.asarray(q @ res.columns).reshape(-1)
        else:
            scores = vector @ res.columns
        scores = scores / np.float32(np.linalg.norm(vector))
        if res.inverse_norms is not None:
            scores = scores * res.inverse_norms
        k = min(k, rows)
        top = np.argpartition(-scores, k - 1)[:k] if k < rows else np.arange(rows)
        top = top[np.lexsort((top, -scores[top]))]  # best first; ties by row order
        rows = res.meta.take(top).to_pylist()
        return [Hit.from_row(r, score, score) for r, score in zip(rows, scores[top].tolist(), strict=True)]

    def _embed_query(self, query: str) -> np.ndarray:
        vector = np.asarray(self.embedder.embed([query]), dtype=np.float32)
        if vector.shape != (1, self.embedder.dim):
            raise KnowledgeBaseError(
                f"embedder {self.embedder_id} returned shape {vector.shape} for one query"
            )
        return vector[0]

    @staticmethod
    def _filter(
        collection: str | Sequence[str] | None,
        tags: str | Sequence[str] | None,
        taxonomy: str | Sequence[str] | None,
    ) -> str | None:
        parts = []
        collections, tag_list, nodes = _as_list(collection), _as_list(tags), _as_list(taxonomy)
        _check_filter_values("collection", collections)
        _check_filter_values("tags", tag_list)
        _check_filter_values("taxonomy", nodes)
        if collections:
            parts.append(f"collection IN ({', '.join(map(_sql_str, collections))})")
        if tag_list:
            parts.append(f"array_has_all(tags, {_sql_list(tag_list)})")
        if nodes:
            parts.append(f"array_has_any(taxonomy, {_sql_list(nodes)})")
        return " AND ".join(parts) or None

    # -- housekeeping ------------------------------------------------------------------------------
    def table(self) -> Any:
        """The underlying ``lancedb`` table (e.g. to add an ANN index once the corpus is large)."""
        return self._require()

    def exists(self) -> bool:
        return self._open() is not None

    def count(self) -> int:
        table = self._open()
        return 0 if table is None else table.count_rows()

    def doc_ids(self) -> list[str]:
        table = self._open()
        if table is None:
            return []
        return sorted(set(self._scan(table, ["doc_id"])["doc_id"].to_pylist()))

    def versions(self) -> list[dict[str, Any]]:
        """Table versions, oldest first: ``{"version", "timestamp", "rows"}``."""
        return table_versions(self._open())

    def restore(self, version: int) -> int:
        """Make ``version`` the latest again (a new commit; history is kept). Returns the new version."""
        table = self._require()
        new = restore_version(table, version)
        self._state = None
        return new

    def optimize(self, cleanup_older_than_days: float | None = None) -> None:
        """Compact files and update indices; optionally drop versions older than N days."""
        from datetime import timedelta

        table = self._require()
        kwargs = {}
        if cleanup_older_than_days is not None:
            kwargs["cleanup_older_than"] = timedelta(days=cleanup_older_than_days)
        table.optimize(**kwargs)

    def drop(self) -> None:
        self._connect().drop_table(self.table_name, ignore_missing=True)
        # a table created again under the name starts its versions afresh: forget what was seen
        self._table, self._state, self._resident = None, None, None
