"""Knowledge-base validation and the health report.

:func:`validate_content` is what ``revops kb validate`` and the blocking ``kb_content_valid`` check
run. Its *problems* block indexing; each names the file and line:

* documents: missing or invalid front-matter, unknown collection, duplicate ids, no headings;
* taxonomies: structure, duplicate ids, missing parents, cycles;
* documents' taxonomy links to unknown nodes;
* broken internal links (``kb:<doc-id>``, relative ``.md`` paths, ``#anchors``);
* duplicate content: a section whose text is identical to a section of another document;
* the labelled query set (``eval/queries.yaml``): structure, and expected documents that do not exist.

:func:`build_health_report` adds what needs attention but does not block: stale documents (not
updated within their review period), near-duplicate chunks (cosine above a threshold between
sections of different documents), taxonomy terms no document covers, and labelled queries whose
ranking dropped since the previous report. :meth:`HealthReport.to_markdown` renders it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from revops_pipelines.errors import ValidationFailed
from revops_pipelines.kb.documents import (
    Chunk,
    Document,
    chunk_documents,
    content_files,
    content_hash,
    extract_links,
    load_documents,
    resolve_link,
)
from revops_pipelines.kb.evaluation import QualityReport, QuerySet, evaluate, load_queries, quality_drops
from revops_pipelines.kb.taxonomy import Taxonomies, link_problems, load_taxonomies

if TYPE_CHECKING:  # pragma: no cover
    from revops_pipelines.kb.embedder import Embedder
    from revops_pipelines.kb.store import KnowledgeBase

QUERIES_FILE = "eval/queries.yaml"
NEAR_DUPLICATE_THRESHOLD = 0.9


@dataclass
class ValidationReport:
    root: str
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    documents: list[Document] = field(default_factory=list)
    taxonomies: Taxonomies | None = None
    queries: QuerySet | None = None
    links_checked: int = 0
    fingerprint: str = ""  # hash of every content file: the same content always gives the same value

    @property
    def ok(self) -> bool:
        return not self.problems

    def raise_for_problems(self) -> None:
        if self.problems:
            raise ValidationFailed(f"knowledge base at {self.root}", self.problems)

    def collections(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for d in self.documents:
            out[d.collection] = out.get(d.collection, 0) + 1
        return dict(sorted(out.items()))

    def summary(self) -> dict[str, Any]:
        return {
            "documents": len(self.documents),
            "collections": self.collections(),
            "taxonomies": self.taxonomies.versions() if self.taxonomies else {},
            "labelled_queries": len(self.queries.queries) if self.queries else 0,
            "links_checked": self.links_checked,
            "problems": len(self.problems),
            "warnings": len(self.warnings),
            "fingerprint": self.fingerprint,
        }


def _heading_line(doc: Document, chunk: Chunk) -> int:
    """Line of the heading that starts ``chunk``'s section (the body start for the intro)."""
    if not chunk.heading_path:
        return doc.body_line
    name = chunk.heading_path[-1]
    pattern = re.compile(r"^#{1,6}[ \t]+" + re.escape(name) + r"[ \t]*#*[ \t]*$")
    for offset, line in enumerate(doc.body.split("\n")):
        if pattern.match(line):
            return doc.body_line + offset
    return doc.body_line


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower())


def validate_content(root: str | Path, *, queries_file: str | None = QUERIES_FILE) -> ValidationReport:
    """Check everything under ``root`` (``docs/``, ``taxonomies/``, ``eval/``); never raises for content
    problems — they are returned, each as ``<path under root>:<line>: <message>``."""
    root = Path(root)
    report = ValidationReport(root=str(root), fingerprint=content_hash(content_files(root)))
    try:
        report.documents = load_documents(root / "docs")
    except ValidationFailed as err:
        report.problems.extend(f"docs/{p}" for p in err.problems)
    try:
        report.taxonomies = load_taxonomies(root / "taxonomies")
    except ValidationFailed as err:
        report.problems.extend(f"taxonomies/{p}" for p in err.problems)
    docs = report.documents
    if report.taxonomies is not None:
        report.problems.extend(f"docs/{p}" for p in link_problems(docs, report.taxonomies))

    # internal links
    by_source = {d.source: d for d in docs}
    by_id = {d.id: d for d in docs}
    for doc in docs:
        for link in extract_links(doc):
            report.links_checked += 1
            problem = resolve_link(link, by_source, by_id)
            if problem:
                report.problems.append(
                    f"docs/{link.source}:{link.line}: link [{link.text}]({link.target}) {problem}"
                )

    # duplicate content: identical section text in two documents blocks; within one document it warns
    seen: dict[str, tuple[Document, Chunk]] = {}
    for doc in docs:
        for chunk in chunk_documents([doc]):
            key = _normalise(chunk.text)
            if len(key) < 80:  # short boilerplate ("See the guide.") is not worth flagging
                continue
            first = seen.get(key)
            if first is None:
                seen[key] = (doc, chunk)
                continue
            other_doc, other_chunk = first
            where = f"docs/{doc.source}:{_heading_line(doc, chunk)}"
            msg = (
                f"section {chunk.heading or '(intro)'!r} duplicates docs/{other_doc.source}:"
                f"{_heading_line(other_doc, other_chunk)} section {other_chunk.heading or '(intro)'!r}"
            )
            (report.warnings if other_doc.id == doc.id else report.problems).append(
                f"{where}: duplicate content: {msg}"
            )

    # labelled queries
    if queries_file:
        path = root / queries_file
        if path.exists():
            try:
                report.queries = load_queries(path, queries_file)
            except ValidationFailed as err:
                report.problems.extend(err.problems)
            else:
                if docs:
                    report.problems.extend(report.queries.problems(d.id for d in docs))
        else:
            report.warnings.append(f"{queries_file}: no labelled query set; search quality is not measured")
    return report


# -- health ----------------------------------------------------------------------------------------
@dataclass
class HealthReport:
    generated_at: str
    today: str
    documents: int
    chunks: int
    validation_problems: list[str]
    validation_warnings: list[str]
    stale: list[dict[str, Any]]
    near_duplicates: list[dict[str, Any]]
    broken_links: list[str]
    uncovered_terms: list[dict[str, Any]]
    quality: dict[str, Any] | None
    quality_drops: list[dict[str, Any]]
    per_query_rr: dict[str, float] = field(default_factory=dict)
    index: dict[str, Any] = field(default_factory=dict)

    @property
    def issues(self) -> int:
        failed = 0 if self.quality is None or self.quality.get("passed", True) else 1
        return (
            len(self.validation_problems)
            + len(self.stale)
            + len(self.near_duplicates)
            + len(self.uncovered_terms)
            + len(self.quality_drops)
            + failed
        )

    @property
    def healthy(self) -> bool:
        return self.issues == 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def counts(self) -> dict[str, int]:
        return {
            "validation_problems": len(self.validation_problems),
            "stale_documents": len(self.stale),
            "near_duplicate_chunks": len(self.near_duplicates),
            "broken_links": len(self.broken_links),
            "uncovered_taxonomy_terms": len(self.uncovered_terms),
            "quality_drops": len(self.quality_drops),
        }

    def to_markdown(self) -> str:
        q = self.quality or {}
        lines = [
            "# Knowledge-base health report",
            "",
            f"Generated {self.generated_at} (as of {self.today}). {self.documents} documents, {self.chunks} chunks.",
            "",
            f"**{'Healthy' if self.healthy else f'{self.issues} issue(s) need attention'}.**",
            "",
            "| check | findings |",
            "|---|---|",
            *(f"| {k.replace('_', ' ')} | {v} |" for k, v in self.counts().items()),
        ]
        if q:
            lines += [
                "",
                "## Search quality (labelled queries)",
                "",
                f"recall@{q.get('k')} = {q.get('recall_at_k')}, MRR = {q.get('mrr')} in {q.get('mode')} mode "
                f"over {q.get('queries')} queries; floor recall@k ≥ {q.get('floor', {}).get('recall_at_k')}, "
                f"MRR ≥ {q.get('floor', {}).get('mrr')} — **{'passed' if q.get('passed') else 'BELOW FLOOR'}**.",
            ]
            if q.get("misses"):
                lines.append(
                    f"Queries whose expected document is not in the top {q.get('k')}: {', '.join(q['misses'])}."
                )
        sections: list[tuple[str, list[str]]] = [
            ("Validation problems (these block indexing)", [f"- `{p}`" for p in self.validation_problems]),
            (
                "Stale documents (past their review period)",
                [
                    f"- `{s['source']}` ({s['owner']}): updated {s['updated']}, review every {s['review_days']} days, "
                    f"**{s['overdue_days']} days overdue**"
                    for s in self.stale
                ],
            ),
            (
                "Near-duplicate chunks",
                [
                    f"- {d['similarity']:.3f}: `{d['a_doc']}` › {d['a_heading'] or '(intro)'} ≈ "
                    f"`{d['b_doc']}` › {d['b_heading'] or '(intro)'}"
                    for d in self.near_duplicates
                ],
            ),
            ("Broken links", [f"- `{b}`" for b in self.broken_links]),
            (
                "Taxonomy terms no document covers",
                [f"- `{t['node_id']}` ({t['name']}, {t['taxonomy']})" for t in self.uncovered_terms],
            ),
            (
                "Labelled queries whose ranking dropped",
                [
                    f"- `{d['query_id']}` \u201c{d['query']}\u201d: rank {d['rank_before']} → {d['rank_now'] or 'not in top k'}"
                    f" (now: {', '.join(d['top_now'])})"
                    for d in self.quality_drops
                ],
            ),
            ("Warnings", [f"- `{w}`" for w in self.validation_warnings]),
        ]
        for title, items in sections:
            lines += ["", f"## {title}", ""]
            lines += items or ["None."]
        if self.index:
            lines += ["", "## Vector index", ""]
            lines += [f"- {k}: {v}" for k, v in self.index.items()]
        return "\n".join(lines) + "\n"


def stale_documents(docs: Sequence[Document], today: date) -> list[dict[str, Any]]:
    out = []
    for d in docs:
        overdue = (today - d.review_due()).days
        if overdue > 0:
            out.append(
                {
                    "doc_id": d.id,
                    "source": f"docs/{d.source}",
                    "owner": d.owner,
                    "updated": d.updated.isoformat(),
                    "review_days": d.review_period,
                    "overdue_days": overdue,
                }
            )
    return sorted(out, key=lambda s: -s["overdue_days"])


def near_duplicate_chunks(
    chunks: Sequence[Chunk],
    embedder: Embedder,
    *,
    threshold: float = NEAR_DUPLICATE_THRESHOLD,
    block: int = 2048,
) -> list[dict[str, Any]]:
    """Pairs of chunks from different documents whose text vectors have cosine ≥ ``threshold``."""
    if len(chunks) < 2:
        return []
    vectors = np.asarray(embedder.embed([c.text for c in chunks]), dtype=np.float32)
    doc_of = np.array([c.doc_id for c in chunks])
    pairs = []
    for start in range(0, len(chunks), block):
        sims = vectors[start : start + block] @ vectors.T
        for i_local, j in zip(*np.nonzero(sims >= threshold), strict=True):
            i = start + int(i_local)
            if j <= i or doc_of[i] == doc_of[j]:
                continue
            a, b = chunks[i], chunks[int(j)]
            pairs.append(
                {
                    "similarity": round(float(sims[i_local, j]), 4),
                    "a_doc": a.doc_id,
                    "a_heading": a.heading,
                    "a_chunk": a.chunk_id,
                    "b_doc": b.doc_id,
                    "b_heading": b.heading,
                    "b_chunk": b.chunk_id,
                }
            )
    return sorted(pairs, key=lambda p: -p["similarity"])


def uncovered_terms(docs: Sequence[Document], taxonomies: Taxonomies) -> list[dict[str, Any]]:
    """Taxonomy nodes that no document links, directly or through one of their descendants."""
    linked = {n for d in docs for n in d.taxonomy}
    out = []
    for tax_id in taxonomies:
        tax = taxonomies[tax_id]
        for node in tax:
            if node.id in linked or any(c.id in linked for c in tax.descendants(node.id)):
                continue
            out.append({"node_id": node.id, "name": node.name, "taxonomy": tax.id})
    return out


def build_health_report(
    root: str | Path,
    kb: KnowledgeBase | None,
    *,
    today: date | None = None,
    previous_rr: Mapping[str, float] | None = None,
    near_duplicate_threshold: float = NEAR_DUPLICATE_THRESHOLD,
    embedder: Embedder | None = None,
    validation: ValidationReport | None = None,
) -> HealthReport:
    """Everything that needs an owner's attention, for the weekly maintenance run.

    ``kb`` (the indexed store) is used for the labelled-query quality; ``previous_rr`` (query id →
    reciprocal rank from the previous report) turns it into "queries whose ranking dropped".
    """
    today = today or datetime.now(UTC).date()
    validation = validation or validate_content(root)
    docs = validation.documents
    chunks = chunk_documents(docs)
    if embedder is None:
        from revops_pipelines.kb.embedder import get_embedder

        embedder = kb.embedder if kb is not None else get_embedder("hashing")
    quality: QualityReport | None = None
    if kb is not None and validation.queries is not None and kb.exists() and kb.count():
        quality = evaluate(kb, validation.queries)
    broken = [p for p in validation.problems if ": link [" in p]
    return HealthReport(
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        today=today.isoformat(),
        documents=len(docs),
        chunks=len(chunks),
        validation_problems=list(validation.problems),
        validation_warnings=list(validation.warnings),
        stale=stale_documents(docs, today),
        near_duplicates=near_duplicate_chunks(chunks, embedder, threshold=near_duplicate_threshold),
        broken_links=broken,
        uncovered_terms=uncovered_terms(docs, validation.taxonomies) if validation.taxonomies else [],
        quality=None if quality is None else quality.summary(),
        quality_drops=[] if quality is None or not previous_rr else quality_drops(previous_rr, quality),
        per_query_rr={} if quality is None else quality.per_query_rr(),
        index=kb.index_info() if kb is not None and kb.exists() else {},
    )


def write_report(report: HealthReport, folder: str | Path) -> Path:
    """Write ``kb_health.md`` (latest) and ``kb_health_<date>.md`` into ``folder``; return the latest."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    text = report.to_markdown()
    (folder / f"kb_health_{report.today}.md").write_text(text, encoding="utf-8")
    latest = folder / "kb_health.md"
    latest.write_text(text, encoding="utf-8")
    return latest
