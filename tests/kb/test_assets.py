"""The KB assets end to end on a temporary content copy: checks block, metadata, incremental runs."""

from __future__ import annotations

import dagster as dg
import pytest

from kb_assets.assets import kb_content, kb_health_report, kb_index
from revops_pipelines.kb.resource import KnowledgeBaseResource


@pytest.fixture()
def run(content_copy, tmp_path):
    instance = dg.DagsterInstance.ephemeral()
    resource = KnowledgeBaseResource(
        uri=str(tmp_path / "lance"), content_root=str(content_copy), reports_dir=str(tmp_path / "reports")
    )

    def _run(assets=(kb_content, kb_index, kb_health_report)):
        result = dg.materialize(
            list(assets), resources={"knowledge_base": resource}, instance=instance, raise_on_error=False
        )
        mats = {
            m.asset_key.to_user_string(): m.event_specific_data.materialization.metadata
            for m in result.get_asset_materialization_events()
        }
        checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
        return result, mats, checks

    _run.resource = resource
    return _run


def test_assets_index_check_quality_and_report(run, tmp_path):
    result, mats, checks = run()
    assert result.success
    assert checks["kb_content_valid"].passed and checks["kb_search_quality"].passed
    meta = mats["kb_index"]
    assert meta["documents"].value >= 30 and meta["chunks"].value == meta["dagster/row_count"].value
    assert meta["embedder"].value == "hashing:2" and meta["index_type"].value == "flat (exact)"
    assert meta["recall_at_5"].value >= 0.9 and meta["mrr"].value >= 0.75
    assert set(checks["kb_search_quality"].metadata) >= {
        "recall_at_5",
        "mrr",
        "floor_recall_at_k",
        "floor_mrr",
        "per_query",
    }
    health = mats["kb_health_report"]
    assert health["issues"].value == 0 and (tmp_path / "reports" / "kb_health.md").exists()


def test_editing_one_document_reembeds_only_its_chunks(run, content_copy):
    run()
    doc = content_copy / "docs" / "troubleshooting" / "sso-login-problems.md"
    doc.write_text(doc.read_text().replace("Sync the clock.", "Synchronise the device clock with NTP."))
    _, mats, _ = run((kb_content, kb_index))
    meta = mats["kb_index"]
    assert (meta["embedded"].value, meta["updated"].value, meta["added"].value, meta["removed"].value) == (
        1,
        1,
        0,
        0,
    )
    kb = run.resource.open()
    assert "NTP" in kb.search("device clock NTP SAML assertion expired", k=1)[0].text


def _drop_query(content, query_id: str) -> None:
    path = content / "eval" / "queries.yaml"
    text = path.read_text()
    start = text.index(f"  - id: {query_id}\n")
    end = text.find("  - id: ", start + 1)
    path.write_text(text[:start] + (text[end:] if end != -1 else ""))


def test_deleted_document_disappears_from_search(run, content_copy):
    run((kb_content, kb_index))
    kb = run.resource.open()
    query = "when should we reach out to a churned customer to win them back"
    assert kb.search(query, k=1)[0].doc_id == "win-back-playbook"
    n_doc = sum(
        1
        for c in kb.table().search().select(["doc_id"]).limit(None).to_list()
        if c["doc_id"] == "win-back-playbook"
    )
    (content_copy / "docs" / "best_practices" / "win-back-playbook.md").unlink()
    _drop_query(content_copy, "win-back-former-customers")  # its labelled query goes with it
    _, mats, checks = run((kb_content, kb_index))
    assert checks["kb_content_valid"].passed and mats["kb_index"]["removed"].value == n_doc > 0
    assert mats["kb_index"]["embedded"].value == 0
    assert "win-back-playbook" not in {h.doc_id for h in kb.search(query, k=50)}
    assert "win-back-playbook" not in kb.doc_ids()


def test_deleting_a_linked_document_is_a_validation_error(run, content_copy):
    run((kb_content, kb_index))
    (content_copy / "docs" / "troubleshooting" / "call-data-missing.md").unlink()
    _drop_query(content_copy, "missing-transcripts")
    _, mats, checks = run((kb_content, kb_index))
    problems = checks["kb_content_valid"].metadata["problem_list"].value
    assert (
        "docs/product/conversation-intelligence.md:66: link [call data missing](kb:call-data-missing)"
        in problems
    )
    assert "kb_index" not in mats


def test_validation_errors_block_indexing(run, content_copy):
    run((kb_content, kb_index))
    before = run.resource.open().versions()[-1]["version"]
    doc = content_copy / "docs" / "product" / "api-and-webhooks.md"
    doc.write_text(doc.read_text().replace("  - product_feature.api\n", "  - product_feature.apis\n"))
    result, mats, checks = run((kb_content, kb_index))
    check = checks["kb_content_valid"]
    assert not check.passed and check.metadata["problems"].value == 1
    assert (
        "docs/product/api-and-webhooks.md:8: taxonomy: unknown node 'product_feature.apis'"
        in check.metadata["problem_list"].value
    )
    assert "kb_index" not in mats  # blocked: the index was not touched
    assert run.resource.open().versions()[-1]["version"] == before


def test_quality_below_the_floor_blocks_and_rolls_back(run, content_copy):
    run((kb_content, kb_index))
    kb = run.resource.open()
    good = kb.versions()[-1]["version"]
    # a change that buries the answer to a labelled query, under an unforgiving floor
    doc = content_copy / "docs" / "troubleshooting" / "dashboard-performance.md"
    text = doc.read_text()
    doc.write_text(text[: text.index("# Troubleshooting slow")] + "## Contact\n\nAsk support engineering.\n")
    for other in ("dashboards-guide.md", "../troubleshooting/scheduled-report-delivery.md"):
        path = content_copy / "docs" / "product" / other
        path.write_text(path.read_text().replace("kb:dashboard-performance#too-many-widgets", "kb:dashboard-performance")
                        .replace("kb:dashboard-performance#exports-and-scheduled-reports", "kb:dashboard-performance"))  # fmt: skip
    queries = content_copy / "eval" / "queries.yaml"
    queries.write_text(queries.read_text().replace("recall_at_k: 0.9", "recall_at_k: 0.99"))
    result, mats, checks = run()
    assert checks["kb_content_valid"].passed and not checks["kb_search_quality"].passed
    assert checks["kb_search_quality"].metadata["rolled_back_to_version"].value == good
    assert "kb_health_report" not in mats  # downstream of a failed blocking check
    # the degraded content never serves searches: the previous chunks are back
    assert kb.search("dashboard is slow to load, query timed out", k=1)[0].doc_id == "dashboard-performance"
