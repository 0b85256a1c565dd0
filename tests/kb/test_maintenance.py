"""Validation (links, duplicates, taxonomy references, labelled queries) and the health report."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from revops_pipelines.errors import ValidationFailed
from revops_pipelines.kb.documents import chunk_documents, load_documents
from revops_pipelines.kb.evaluation import evaluate, load_queries, parse_queries
from revops_pipelines.kb.maintenance import build_health_report, validate_content, write_report
from revops_pipelines.kb.store import KnowledgeBase

KB = Path(__file__).resolve().parents[2] / "kb_assets"


def test_shipped_content_is_valid_and_fully_covered():
    report = validate_content(KB)
    assert report.ok, report.problems
    assert report.warnings == []
    s = report.summary()
    assert s["documents"] >= 30 and all(n >= 8 for n in s["collections"].values())
    assert s["labelled_queries"] >= 20 and s["links_checked"] >= 20
    health = build_health_report(KB, None, today=date(2026, 11, 25), validation=report)
    assert health.uncovered_terms == [] and health.near_duplicates == [] and health.broken_links == []


def test_broken_taxonomy_reference_fails_with_file_and_line(content_copy):
    path = content_copy / "docs" / "product" / "mobile-app.md"
    path.write_text(path.read_text().replace("  - product_feature.mobile\n", "  - product_feature.mobil\n"))
    report = validate_content(content_copy)
    assert not report.ok
    assert report.problems == [
        "docs/product/mobile-app.md:8: taxonomy: unknown node 'product_feature.mobil' "
        "(did you mean 'product_feature.mobile'?)"
    ]
    with pytest.raises(ValidationFailed, match=r"docs/product/mobile-app.md:8"):
        report.raise_for_problems()


def test_broken_taxonomy_file_is_reported_with_file_and_line(content_copy):
    path = content_copy / "taxonomies" / "call_topics.yaml"
    path.write_text(
        path.read_text().replace(
            "    - id: call_topic.roadmap\n", "    - id: call_topic.roadmap\n      parent: call_topic.nope\n"
        )
    )
    problems = validate_content(content_copy).problems
    line = next(i for i, t in enumerate(path.read_text().split("\n"), 1) if "id: call_topic.roadmap" in t)
    expected = f"taxonomies/call_topics.yaml:{line}: node 'call_topic.roadmap': parent 'call_topic.nope' does not exist"
    assert any(p.startswith(expected) for p in problems), problems


def test_broken_links_duplicates_and_bad_queries_are_problems(content_copy):
    doc = content_copy / "docs" / "troubleshooting" / "api-errors.md"
    text = doc.read_text()
    text = text.replace(
        "see the [API guide](kb:api-and-webhooks#webhooks)",
        "see the [API guide](kb:api-and-webhook#webhooks)",
    )
    text = text.replace(
        "## 404 NOT_FOUND",
        "See [plans](../product/plans.md) and [limits](kb:plans-and-packaging#nope).\n\n## 404 NOT_FOUND",
    )
    doc.write_text(text)
    # a section copied verbatim into another document
    src = (content_copy / "docs" / "troubleshooting" / "dashboard-performance.md").read_text()
    section = src[src.index("## Too many widgets") : src.index("## Long date ranges")]
    guide = content_copy / "docs" / "product" / "dashboards-guide.md"
    guide.write_text(guide.read_text() + "\n" + section)
    queries = content_copy / "eval" / "queries.yaml"
    queries.write_text(
        queries.read_text().replace("expected: [warehouse-sync]", "expected: [warehouse-syncing]")
    )

    problems = validate_content(content_copy).problems
    joined = "\n".join(problems)
    line = next(i for i, t in enumerate(doc.read_text().split("\n"), 1) if "kb:api-and-webhook#" in t)
    assert (
        f"docs/troubleshooting/api-errors.md:{line}: link [API guide](kb:api-and-webhook#webhooks) links to unknown document id 'api-and-webhook'"
        in problems
    )
    assert "link [plans](../product/plans.md) links to missing file '../product/plans.md'" in joined
    assert (
        "link [limits](kb:plans-and-packaging#nope) links to missing heading #nope in product/plans-and-packaging.md"
        in joined
    )
    dup_line = next(i for i, t in enumerate(guide.read_text().split("\n"), 1) if t == "## Too many widgets")
    assert any(
        p.startswith("docs/troubleshooting/dashboard-performance.md:30: duplicate content: section 'Too many widgets' "
                     f"duplicates docs/product/dashboards-guide.md:{dup_line} section 'Too many widgets'")
        for p in problems
    ), joined  # fmt: skip
    assert any(
        p.startswith("eval/queries.yaml:") and "unknown document 'warehouse-syncing'" in p for p in problems
    )


def test_labelled_query_file_errors_name_the_line():
    text = "version: 1\nfloor: {recall_at_k: 0.9, mrr: 0.8}\nqueries:\n  - id: a\n    query: abc def\n    expected: []\n"
    with pytest.raises(ValidationFailed, match=r"q.yaml:4: queries.0.expected"):
        parse_queries(text, "q.yaml")
    dup = text.replace("expected: []", "expected: [x]") + "  - id: a\n    query: xyz\n    expected: [y]\n"
    with pytest.raises(ValidationFailed, match=r"q.yaml:7: query 'a': duplicate id \(first on line 4\)"):
        parse_queries(dup, "q.yaml")


def test_search_quality_on_the_labelled_set_stays_above_the_floor(shipped_index):
    queries = load_queries(KB / "eval" / "queries.yaml")
    assert len(queries.queries) >= 20
    floor = queries.spec.floor
    assert floor.recall_at_k >= 0.85 and floor.mrr >= 0.7  # a floor that means something
    report = evaluate(shipped_index, queries)
    assert report.passed, report.summary()
    # both rankers are measured; the plain vector ranker clears the same floor
    assert evaluate(shipped_index, queries, mode="vector").passed


def test_health_report_finds_stale_near_duplicates_uncovered_and_quality_drops(content_copy, tmp_path):
    docs = content_copy / "docs"
    stale = docs / "product" / "mobile-app.md"
    stale.write_text(stale.read_text().replace("updated: 2026-08-12", "updated: 2025-01-10"))
    short = docs / "best_practices" / "win-back-playbook.md"
    short.write_text(short.read_text().replace("updated: 2026-08-25", "updated: 2026-08-25\nreview_days: 30"))
    # near-duplicate: a lightly reworded copy of a section in another document
    src = (docs / "troubleshooting" / "sso-login-problems.md").read_text()
    section = src[src.index("## Login loops") : src.index("## Multi-factor")]
    target = docs / "product" / "user-management-and-sso.md"
    target.write_text(target.read_text() + "\n" + section.replace("repeatedly", "again and again"))
    # a taxonomy term nobody links
    tax = content_copy / "taxonomies" / "call_topics.yaml"
    tax.write_text(
        tax.read_text()
        + "    - id: call_topic.security\n      name: Security\n      description: Security reviews and questionnaires.\n"
    )
    kb = KnowledgeBase(tmp_path / "lance")
    kb.index(chunk_documents(load_documents(docs)))
    previous = {"slow-dashboard": 1.0, "sync-auth-expired": 1.0}
    # make one labelled query worse than "last week": its expected document loses its key section
    perf = docs / "troubleshooting" / "dashboard-performance.md"
    text = perf.read_text()
    perf.write_text(text[: text.index("# Troubleshooting slow")] + "## Contact\n\nAsk support engineering.\n")
    kb.index(chunk_documents(load_documents(docs)))

    report = build_health_report(content_copy, kb, today=date(2026, 11, 25), previous_rr=previous)
    assert [s["doc_id"] for s in report.stale] == ["mobile-app", "win-back-playbook"]
    assert report.stale[0]["review_days"] == 180 and report.stale[0]["overdue_days"] > 400
    assert report.stale[1]["review_days"] == 30
    assert any(
        {d["a_doc"], d["b_doc"]} == {"sso-login-problems", "user-management-and-sso"}
        for d in report.near_duplicates
    )
    assert report.uncovered_terms == [
        {"node_id": "call_topic.security", "name": "Security", "taxonomy": "call_topics"}
    ]
    assert [d["query_id"] for d in report.quality_drops] == ["slow-dashboard"]
    # the gutted document also broke a link into it: reported as a validation problem and a broken link
    assert report.broken_links == report.validation_problems
    assert [p.split(": link")[0] for p in report.broken_links] == [
        "docs/product/dashboards-guide.md:43",
        "docs/troubleshooting/scheduled-report-delivery.md:49",
    ]
    assert all("links to missing heading" in p for p in report.broken_links)
    assert not report.healthy
    md = report.to_markdown()
    assert "docs/product/mobile-app.md" in md and "call_topic.security" in md and "slow-dashboard" in md
    path = write_report(report, tmp_path / "reports")
    assert path.read_text() == md and (tmp_path / "reports" / "kb_health_2026-11-25.md").exists()
