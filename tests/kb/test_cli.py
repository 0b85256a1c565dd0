"""``revops kb``: validate, index/rebuild, search, versions, restore, health, evaluate, similar."""

from __future__ import annotations

import json

from click.testing import CliRunner

from revops_pipelines.kb.cli import kb


def _run(*args: str):
    return CliRunner().invoke(kb, list(args), catch_exceptions=False)


def test_validate_reports_every_problem_with_file_and_line(content_copy):
    ok = _run("validate", "--root", str(content_copy))
    assert ok.exit_code == 0 and "0 problem(s)" in ok.output
    doc = content_copy / "docs" / "product" / "reporting-guide.md"
    doc.write_text(
        doc.read_text().replace("owner: product-marketing\n", "").replace("(kb:reporting", "(kb:reportin")
    )
    bad = _run("validate", "--root", str(content_copy))
    assert bad.exit_code == 1
    assert "docs/product/reporting-guide.md:2: owner: Field required" in bad.output
    data = json.loads(_run("validate", "--root", str(content_copy), "--json").output)
    assert data["problems"] == 1 and data["problem_list"][0].startswith("docs/product/reporting-guide.md:2")


def test_index_search_versions_restore_and_health(content_copy, tmp_path):
    uri = str(tmp_path / "lance")
    root = ("--root", str(content_copy))
    first = _run("rebuild", "--uri", uri, *root)
    assert first.exit_code == 0, first.output
    assert "rebuilt" in first.output and "search quality (hybrid)" in first.output and "ok" in first.output

    hits = json.loads(
        _run(
            "search", "Salesforce connector fails with AUTH_EXPIRED", "--uri", uri, "-k", "3", "--json"
        ).output
    )
    assert hits[0]["doc_id"] == "integration-sync-failures" and hits[0]["rank"] == 1
    text = _run(
        "search", "seat limit reached", "--uri", uri, "--collection", "troubleshooting", "-k", "2"
    ).output
    assert text.startswith("1. [") and "(troubleshooting)" in text and "(product)" not in text

    # delete a document, re-index incrementally, then restore the version that still had it
    (content_copy / "docs" / "product" / "warehouse-sync.md").unlink()
    queries = content_copy / "eval" / "queries.yaml"
    t = queries.read_text()
    start = t.index("  - id: reverse-etl-snowflake")
    queries.write_text(t[:start] + t[t.index("  - id: ", start + 1) :])
    second = json.loads(_run("index", "--uri", uri, *root, "--json").output)
    assert second["stats"]["removed"] > 0 and second["stats"]["embedded"] == 0
    versions = json.loads(_run("versions", "--uri", uri, "--json").output)
    assert len(versions) >= 2 and versions[-1]["rows"] < versions[0]["rows"]
    out = _run("search", "reverse ETL write back to Snowflake", "--uri", uri, "--json").output
    assert "warehouse-sync" not in {h["doc_id"] for h in json.loads(out)}
    restored = _run("restore", str(versions[0]["version"]), "--uri", uri)
    assert restored.exit_code == 0 and f"restored chunks version {versions[0]['version']}" in restored.output
    out = _run("search", "reverse ETL write back to Snowflake", "--uri", uri, "--json").output
    assert "warehouse-sync" in {h["doc_id"] for h in json.loads(out)}  # back after the restore
    assert _run("restore", "999", "--uri", uri).exit_code == 2

    health = _run("health", "--uri", uri, *root, "--today", "2026-11-25", "--out", str(tmp_path / "h.md"))
    assert health.exit_code == 0 and "# Knowledge-base health report" in health.output
    assert (tmp_path / "h.md").read_text() == health.output
    late = _run("health", "--uri", uri, *root, "--today", "2028-01-01", "--strict", "--json")
    assert late.exit_code == 1 and len(json.loads(late.output)["stale"]) >= 30
    ev = _run("evaluate", "--uri", uri, *root, "--mode", "vector")
    assert ev.exit_code == 0 and "recall@5" in ev.output


def test_similar_accounts_command(small_world, tmp_path):
    from revops_pipelines.kb.documents import default_kb_root
    from revops_pipelines.kb.entities import EntityConfig, EntityIndex, account_entities, taxonomy_entities
    from revops_pipelines.kb.taxonomy import load_taxonomies

    wh, groups = small_world
    tax = load_taxonomies(default_kb_root() / "taxonomies")
    index = EntityIndex(str(tmp_path / "lance"), config=EntityConfig.from_taxonomies(tax))
    accounts, _ = account_entities(wh, index.config)
    index.build([*accounts, *taxonomy_entities(tax)])
    res = _run("similar", groups["healthy"][2], "--uri", str(tmp_path / "lance"), "-k", "3", "--json")
    assert res.exit_code == 0, res.output
    assert {h["account_id"] for h in json.loads(res.output)} <= set(groups["healthy"])
    assert _run("versions", "--uri", str(tmp_path / "lance"), "--table", "entities").exit_code == 0
    assert _run("similar", "nope", "--uri", str(tmp_path / "lance")).exit_code == 2


def test_cli_errors_are_short_messages(tmp_path):
    res = _run("search", "anything", "--uri", str(tmp_path / "empty"))
    assert (
        res.exit_code == 2
        and res.output.startswith("error: knowledge base")
        and "index() first" in res.output
    )
    assert _run("search", "x", "--uri", str(tmp_path), "--collection", "a'b").exit_code == 2
