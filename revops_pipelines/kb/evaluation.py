"""Search quality on a labelled query set: recall@k and MRR against a stated floor.

The set lives in ``kb_assets/eval/queries.yaml``::

    version: 1
    k: 5                       # documents considered per query
    mode: hybrid               # search mode the floor applies to (vector | hybrid | fts)
    floor: {recall_at_k: 0.9, mrr: 0.75}
    queries:
      - id: sync-auth-expired
        query: Salesforce connector fails with AUTH_EXPIRED after a password reset
        expected: [integration-sync-failures]      # document ids; any of them counts as relevant

Results are ranked by document: chunk hits are folded into the order in which their documents first
appear, so one document with many matching sections does not crowd out the others.

* recall@k — per query, the share of its expected documents among the top ``k`` documents; averaged.
* MRR — per query, ``1 / rank`` of the first expected document (0 when it is not in the top ``k``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from revops_pipelines.errors import ValidationFailed
from revops_pipelines.kb.documents import SLUG, LineDict, load_yaml, located
from revops_pipelines.validation import StrictModel, parse

if TYPE_CHECKING:  # pragma: no cover
    from revops_pipelines.kb.store import KnowledgeBase


class Floor(StrictModel):
    recall_at_k: float = Field(ge=0, le=1, description="minimum mean recall@k")
    mrr: float = Field(ge=0, le=1, description="minimum mean reciprocal rank")


class LabelledQuery(StrictModel):
    id: str = Field(pattern=SLUG, max_length=80)
    query: str = Field(min_length=3, max_length=500)
    expected: list[str] = Field(min_length=1, description="ids of documents that answer the query")
    collection: str | None = Field(default=None, description="optional collection filter")
    note: str | None = None


class QuerySetSpec(StrictModel):
    version: int = Field(ge=1)
    k: int = Field(default=5, ge=1, le=50)
    mode: Literal["vector", "hybrid", "fts"] = "hybrid"
    floor: Floor
    queries: list[LabelledQuery] = Field(min_length=1)


@dataclass(frozen=True)
class QuerySet:
    spec: QuerySetSpec
    source: str
    lines: dict[str, int] = field(default_factory=dict)  # query id -> line in the file

    @property
    def queries(self) -> list[LabelledQuery]:
        return self.spec.queries

    def problems(self, doc_ids: Iterable[str]) -> list[str]:
        """Expected documents that do not exist, as ``file:line: ...`` problems."""
        known = set(doc_ids)
        out = []
        for q in self.queries:
            for d in q.expected:
                if d not in known:
                    out.append(
                        f"{self.source}:{self.lines.get(q.id, '?')}: query {q.id!r}: expected: unknown document {d!r}"
                    )
        return out


def parse_queries(text: str, source: str) -> QuerySet:
    try:
        raw = load_yaml(text)
    except ValueError as err:
        raise ValidationFailed("labelled queries", [f"{source}: {err}"]) from None
    if not isinstance(raw, dict):
        raise ValidationFailed(
            "labelled queries", [f"{source}:1: expected a mapping with version, floor and queries"]
        )
    try:
        spec = parse(QuerySetSpec, raw, "labelled queries")
    except ValidationFailed as err:
        problems = []
        for p in err.problems:
            head = p.split(":", 1)[0]
            parts = head.split(".")
            line = None
            if parts[0] == "queries" and len(parts) > 1 and parts[1].isdigit():
                items = raw.get("queries") or []
                idx = int(parts[1])
                if idx < len(items) and isinstance(items[idx], LineDict):
                    line = items[idx].line
            problems.extend([f"{source}:{line}: {p}"] if line else located([p], source, raw, 1))
        raise ValidationFailed("labelled queries", problems) from None
    lines: dict[str, int] = {}
    problems = []
    for item, q in zip(raw.get("queries") or [], spec.queries, strict=True):
        line = item.line if isinstance(item, LineDict) else 0
        if q.id in lines:
            problems.append(f"{source}:{line}: query {q.id!r}: duplicate id (first on line {lines[q.id]})")
        lines.setdefault(q.id, line)
    if problems:
        raise ValidationFailed("labelled queries", problems)
    return QuerySet(spec, source, lines)


def load_queries(path: str | Path, source: str | None = None) -> QuerySet:
    path = Path(path)
    if not path.is_file():
        raise ValidationFailed("labelled queries", [f"{source or path}: file not found"])
    return parse_queries(path.read_text(encoding="utf-8"), source or path.name)


@dataclass(frozen=True)
class QueryResult:
    id: str
    query: str
    expected: tuple[str, ...]
    top: tuple[str, ...]  # document ids in rank order (at most k)
    rank: int | None  # 1-based rank of the first expected document within the top k
    recall: float

    @property
    def reciprocal_rank(self) -> float:
        return 1.0 / self.rank if self.rank else 0.0


@dataclass(frozen=True)
class QualityReport:
    k: int
    mode: str
    recall_at_k: float
    mrr: float
    floor: Floor
    results: tuple[QueryResult, ...]

    @property
    def passed(self) -> bool:
        return self.recall_at_k >= self.floor.recall_at_k and self.mrr >= self.floor.mrr

    @property
    def misses(self) -> list[QueryResult]:
        return [r for r in self.results if r.rank is None]

    def per_query_rr(self) -> dict[str, float]:
        return {r.id: round(r.reciprocal_rank, 4) for r in self.results}

    def summary(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "mode": self.mode,
            "queries": len(self.results),
            "recall_at_k": round(self.recall_at_k, 4),
            "mrr": round(self.mrr, 4),
            "floor": self.floor.model_dump(),
            "passed": self.passed,
            "misses": [r.id for r in self.misses],
        }

    def table_markdown(self) -> str:
        lines = ["| query | expected | rank | top documents |", "|---|---|---|---|"]
        for r in self.results:
            top = ", ".join(r.top[:3])
            lines.append(f"| {r.id} | {', '.join(r.expected)} | {r.rank or '-'} | {top} |")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {**self.summary(), "results": [asdict(r) for r in self.results]}


def rank_documents(
    kb: KnowledgeBase, query: str, k: int, mode: str, collection: str | None = None
) -> list[str]:
    """Distinct document ids for ``query`` in rank order (at most ``k``)."""
    hits = kb.search(query, k=min(200, max(4 * k, 20)), mode=mode, collection=collection)  # type: ignore[arg-type]
    docs: list[str] = []
    for h in hits:
        if h.doc_id not in docs:
            docs.append(h.doc_id)
        if len(docs) == k:
            break
    return docs


def evaluate(
    kb: KnowledgeBase, queries: QuerySet, *, k: int | None = None, mode: str | None = None
) -> QualityReport:
    """Run every labelled query against ``kb`` and compute recall@k and MRR."""
    k = k or queries.spec.k
    mode = mode or queries.spec.mode
    results = []
    for q in queries.queries:
        top = rank_documents(kb, q.query, k, mode, q.collection)
        expected = set(q.expected)
        rank = next((i + 1 for i, d in enumerate(top) if d in expected), None)
        recall = len(expected & set(top)) / len(expected)
        results.append(QueryResult(q.id, q.query, tuple(q.expected), tuple(top), rank, recall))
    n = len(results) or 1
    return QualityReport(
        k=k,
        mode=mode,
        recall_at_k=sum(r.recall for r in results) / n,
        mrr=sum(r.reciprocal_rank for r in results) / n,
        floor=queries.spec.floor,
        results=tuple(results),
    )


def quality_drops(
    previous: Mapping[str, float], current: QualityReport, *, tolerance: float = 1e-9
) -> list[dict[str, Any]]:
    """Labelled queries whose reciprocal rank fell since ``previous`` (query id → reciprocal rank)."""
    out = []
    for r in current.results:
        before = previous.get(r.id)
        if before is not None and r.reciprocal_rank < before - tolerance:
            out.append(
                {
                    "query_id": r.id,
                    "query": r.query,
                    "rank_before": round(1 / before) if before else None,
                    "rank_now": r.rank,
                    "top_now": list(r.top[:3]),
                }
            )
    return out
