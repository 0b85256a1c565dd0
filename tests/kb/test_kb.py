"""Knowledge base: content validation, taxonomies, chunking, the embedder and incremental indexing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from revops_pipelines.errors import ConfigurationError, ValidationFailed
from revops_pipelines.kb.documents import (
    COLLECTIONS,
    chunk_document,
    chunk_documents,
    default_kb_root,
    load_documents,
    parse_document,
)
from revops_pipelines.kb.embedder import HashingEmbedder, get_embedder, register_embedder
from revops_pipelines.kb.store import KnowledgeBase
from revops_pipelines.kb.taxonomy import (
    check_document_links,
    load_taxonomies,
    parse_taxonomy,
    validate_kb,
)

ROOT = Path(__file__).resolve().parents[2]
KB = ROOT / "kb_assets"

GOOD_FRONT = """---
id: {id}
title: {title}
collection: {collection}
tags: [test]
owner: qa
updated: 2026-01-15
taxonomy: [{taxonomy}]
---
"""


def write_doc(root: Path, folder: str, name: str, body: str, **fm) -> Path:
    meta = {"id": name, "title": name.replace("-", " ").title(), "collection": folder}
    meta["taxonomy"] = "product_feature.api"
    meta.update(fm)
    path = root / folder / f"{name}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(GOOD_FRONT.format(**meta) + textwrap.dedent(body))
    return path


@pytest.fixture()
def docs_copy(tmp_path: Path) -> Path:
    dst = tmp_path / "docs"
    shutil.copytree(KB / "docs", dst)
    return dst


class CountingEmbedder:
    """Wraps an embedder and counts how many texts it was asked to embed."""

    def __init__(self, inner: HashingEmbedder):
        self.inner = inner
        self.name, self.version, self.dim = inner.name, inner.version, inner.dim
        self.texts = 0

    def embed(self, texts):
        self.texts += len(texts)
        return self.inner.embed(texts)


# -- shipped content -------------------------------------------------------------------------------
def test_shipped_docs_and_taxonomies_validate():
    assert default_kb_root() == KB
    content = validate_kb(KB)
    docs = content.documents
    assert len(docs) >= 30
    assert {d.collection for d in docs} == set(COLLECTIONS)
    per_collection = {c: sum(d.collection == c for d in docs) for c in COLLECTIONS}
    assert all(n >= 8 for n in per_collection.values()), per_collection
    assert len({d.id for d in docs}) == len(docs)
    for d in docs:
        assert 300 <= d.word_count <= 900, (d.source, d.word_count)
        assert "\n## " in "\n" + d.body
        assert len(chunk_document(d)) >= 3
        assert "Beacon" in d.body or "Beacon" in d.title, d.source  # written for the sample company
    taxonomies = content.taxonomies
    assert set(taxonomies) == {
        "customer_segmentation", "product_features", "revenue_events", "call_topics", "cs_actions"
    }  # fmt: skip
    features = taxonomies["product_features"]
    names = {n.name for n in features.roots()}
    assert names == {
        "Dashboards",
        "Automation",
        "Integrations",
        "Reporting",
        "Billing",
        "User management",
        "API",
        "Mobile",
    }
    assert all(n.keywords for n in features.roots())
    events = {n.id.split(".")[1] for n in taxonomies["revenue_events"].roots()}
    assert events == {"new", "expansion", "contraction", "renewal", "churn", "reactivation"}
    segments = {n.name for n in taxonomies["customer_segmentation"].roots()}
    assert {"Enterprise", "Mid-Market", "SMB"} <= segments
    # Gong's topic names and call purposes map onto the call-topic and action taxonomies by name
    topics = {n.name for n in taxonomies["call_topics"]}
    assert topics == {
        "Pricing",
        "Onboarding",
        "Integrations",
        "Reporting",
        "Renewal",
        "Support",
        "Roadmap",
        "Competition",
    }
    actions = {n.name for n in taxonomies["cs_actions"]}
    assert {
        "Onboarding",
        "QBR",
        "Renewal",
        "Escalation",
        "Check-in",
        "Expansion",
        "Support Follow-up",
    } <= actions


def test_taxonomy_lookups_rules_and_keywords():
    tax = load_taxonomies(KB / "taxonomies")
    features = tax["product_features"]
    assert [n.id for n in features.path("product_feature.integrations.crm")] == [
        "product_feature.integrations",
        "product_feature.integrations.crm",
    ]
    assert features.is_a("product_feature.integrations.crm", "product_feature.integrations")
    assert {n.id for n in features.descendants("product_feature.integrations")} >= {
        "product_feature.integrations.crm"
    }
    assert tax.owner("segment.enterprise").id == "customer_segmentation"
    top = features.match_keywords("Salesforce sync keeps failing after the OAuth token expired")[0][0]
    assert top.startswith("product_feature.integrations")
    seg = tax["customer_segmentation"].classify(
        {"employee_count": 450, "plan": "growth", "usage_trend_90d": -0.4, "health_score": 71}
    )
    assert seg == ["segment.mid_market", "segment.plan.growth", "segment.behaviour.at_risk"]
    ev = tax["revenue_events"].classify(
        {"previous_arr": 40_000, "current_arr": 0, "arr_change": -40_000, "churn_reason": "payment_failed"}
    )
    assert ev == ["revenue_event.churn", "revenue_event.churn.involuntary"]
    assert tax["revenue_events"].rows()[0]["taxonomy_version"] == "1.0.0"


# -- document validation ---------------------------------------------------------------------------
def test_missing_front_matter_names_the_file(tmp_path):
    (tmp_path / "product").mkdir()
    (tmp_path / "product" / "no-header.md").write_text("# Just text\n\n## Section\nbody\n")
    with pytest.raises(ValidationFailed) as err:
        load_documents(tmp_path)
    assert "product/no-header.md:1" in str(err.value)
    assert "front-matter" in str(err.value)


def test_invalid_fields_are_reported_with_file_and_line(tmp_path):
    path = write_doc(tmp_path, "product", "bad-date", "## A\ntext\n")
    path.write_text(path.read_text().replace("updated: 2026-01-15", "updated: last tuesday"))
    write_doc(tmp_path, "product", "Bad_ID", "## A\ntext\n")
    with pytest.raises(ValidationFailed) as err:
        load_documents(tmp_path)
    msg = str(err.value)
    assert "product/bad-date.md:7: updated:" in msg  # line 7 of the file holds "updated:"
    assert "product/Bad_ID.md:2: id:" in msg


def test_unknown_collection_and_folder_mismatch(tmp_path):
    write_doc(tmp_path, "product", "wrong-place", "## A\ntext\n", collection="troubleshooting")
    write_doc(tmp_path, "recipes", "cake", "## A\ntext\n", collection="recipes")
    with pytest.raises(ValidationFailed) as err:
        load_documents(tmp_path)
    msg = str(err.value)
    assert (
        "product/wrong-place.md:4: collection: 'troubleshooting' does not match its folder 'product'" in msg
    )
    assert "recipes/cake.md: unknown collection folder 'recipes'" in msg
    with pytest.raises(ValidationFailed, match="unknown collection 'recipes'"):
        parse_document((tmp_path / "recipes" / "cake.md").read_text(), "cake.md")


def test_unknown_taxonomy_link_names_the_file(tmp_path):
    write_doc(tmp_path, "product", "typo-link", "## A\ntext\n", taxonomy="product_feature.integration")
    docs = load_documents(tmp_path)
    tax = load_taxonomies(KB / "taxonomies")
    with pytest.raises(ValidationFailed) as err:
        check_document_links(docs, tax)
    msg = str(err.value)
    assert "product/typo-link.md:8: taxonomy: unknown node 'product_feature.integration'" in msg
    assert "did you mean 'product_feature.integrations'" in msg


def test_duplicate_ids_and_missing_headings(tmp_path):
    write_doc(tmp_path, "product", "one", "## A\ntext\n")
    write_doc(tmp_path, "troubleshooting", "two", "## A\ntext\n", id="one")
    write_doc(tmp_path, "best_practices", "flat", "No headings at all.\n")
    with pytest.raises(ValidationFailed) as err:
        load_documents(tmp_path)
    msg = str(err.value)
    assert "troubleshooting/two.md: id: 'one' is already used by product/one.md" in msg
    assert "best_practices/flat.md:10: the body has no '## ' section headings" in msg


# -- taxonomy validation ---------------------------------------------------------------------------
TAX = """taxonomy:
  id: things
  version: 1.0.0
  namespace: thing
  description: test
  nodes:
    - id: thing.a
      name: A
      description: a
      parent: thing.c
    - id: thing.b
      name: B
      description: b
      parent: thing.a
    - id: thing.c
      name: C
      description: c
      parent: thing.b
"""


def test_taxonomy_cycle_is_detected():
    with pytest.raises(ValidationFailed) as err:
        parse_taxonomy(TAX, "things.yaml")
    msg = str(err.value)
    assert (
        "things.yaml:7: node 'thing.a': parent links form a cycle: thing.a -> thing.c -> thing.b -> thing.a"
        in msg
    )


def test_taxonomy_missing_parent_duplicate_and_bad_fields(tmp_path):
    text = TAX.replace("parent: thing.c", "parent: thing.z").replace("id: thing.c", "id: thing.b")
    text += "    - id: other.d\n      name: D\n      description: d\n      colour: red\n"
    (tmp_path / "things.yaml").write_text(text)
    with pytest.raises(ValidationFailed) as err:
        load_taxonomies(tmp_path)
    msg = str(err.value)
    assert "things.yaml:19: node 'other.d': colour: unknown field" in msg
    text = text.replace("      colour: red\n", "")
    (tmp_path / "things.yaml").write_text(text)
    with pytest.raises(ValidationFailed) as err:
        load_taxonomies(tmp_path)
    msg = str(err.value)
    assert "things.yaml:7: node 'thing.a': parent 'thing.z' does not exist" in msg
    assert "things.yaml:15: node 'thing.b': duplicate id" in msg
    assert "things.yaml:19: node 'other.d': id must start with the namespace 'thing.'" in msg


def test_yaml_duplicate_keys_are_rejected():
    with pytest.raises(ValidationFailed, match=r"things.yaml: line 4: duplicate key 'version'"):
        parse_taxonomy(
            TAX.replace("  version: 1.0.0\n", "  version: 1.0.0\n  version: 2.0.0\n"), "things.yaml"
        )


# -- chunking --------------------------------------------------------------------------------------
def test_chunk_ids_are_stable_and_change_only_for_edited_chunks(docs_copy):
    before = {c.chunk_id: c for c in chunk_documents(load_documents(docs_copy))}
    assert before.keys() == {c.chunk_id for c in chunk_documents(load_documents(docs_copy))}
    path = docs_copy / "best_practices" / "churn-risk-playbook.md"
    text = path.read_text()
    path.write_text(text.replace("the most common way accounts are lost", "how accounts are usually lost"))
    after = {c.chunk_id: c for c in chunk_documents(load_documents(docs_copy))}
    gone, new = before.keys() - after.keys(), after.keys() - before.keys()
    assert len(gone) == len(new) == 1
    assert before[gone.pop()].heading == after[new.pop()].heading == ""  # the intro paragraph


def test_chunker_follows_headings_and_splits_long_sections():
    body = "Intro.\n\n## Setup\n```\n# not a heading\n```\nSteps.\n\n### Details\nMore.\n\n## Long\n"
    body += "\n\n".join(f"Sentence number {i} is here. It has words." for i in range(80))
    doc = parse_document(
        GOOD_FRONT.format(id="t", title="Test doc", collection="product", taxonomy="x.y") + body, "t.md"
    )
    chunks = chunk_document(doc, max_chars=300)
    assert [c.heading_path for c in chunks[:3]] == [(), ("Setup",), ("Setup", "Details")]
    assert "# not a heading" in chunks[1].text
    long = [c for c in chunks if c.heading_path == ("Long",)]
    assert len(long) > 5 and all(len(c.text) <= 300 for c in long)
    assert [c.position for c in chunks] == list(range(len(chunks)))


# -- embedder --------------------------------------------------------------------------------------
def test_embedder_is_deterministic_normalised_and_process_independent():
    emb = get_embedder("hashing")
    assert (emb.name, emb.version, emb.dim) == ("hashing", "2", 256)
    texts = ["Salesforce sync failing with AUTH_EXPIRED", "Dashboards load slowly", "", "the of and"]
    a = emb.embed(texts)
    b = HashingEmbedder().embed(texts)
    assert a.dtype == np.float32 and a.shape == (4, 256)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(np.linalg.norm(a[:2], axis=1), 1.0, rtol=1e-5)
    assert not a[2:].any()  # texts without features embed to zero
    code = (
        f"import sys, hashlib; sys.path.insert(0, {str(ROOT)!r});"
        "from revops_pipelines.kb.embedder import HashingEmbedder;"
        f"print(hashlib.sha256(HashingEmbedder().embed({texts[:2]!r}).tobytes()).hexdigest())"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for seed in ("1", "2")
    }
    import hashlib

    assert digests == {hashlib.sha256(a[:2].tobytes()).hexdigest()}


def test_embedder_vectors_do_not_depend_on_batch_or_history():
    texts = [f"renewal risk {i} champion left sync failing {'usage dropped ' * (i % 3)}" for i in range(40)]
    texts += ["", "the of and", "Salesforce sync failing with AUTH_EXPIRED"]
    alone = np.vstack([HashingEmbedder().embed([t]) for t in texts])
    warmed = HashingEmbedder()
    warmed.embed(["dashboards load slowly", *texts[::-1]])  # other words first, other order
    np.testing.assert_array_equal(warmed.embed(texts), alone)
    tiny_memo = HashingEmbedder(cache_size=10)  # the memo is dropped between batches
    for _ in range(2):
        np.testing.assert_array_equal(tiny_memo.embed(texts), alone)
    # repeats count sublinearly (1 + ln c): "renewal" twice weighs 1.69 against "discount"'s 1
    emb = HashingEmbedder(char_ngrams=False, bigram_weight=0)
    renewal, discount, both = emb.embed(["renewal", "discount", "renewal renewal discount"])
    assert renewal @ discount == 0  # different buckets, so the weights can be read off
    tf = 1 + np.log(2)
    assert both @ renewal == pytest.approx(tf / np.hypot(tf, 1), abs=1e-6)


def test_embedder_similarity_is_sensible():
    emb = HashingEmbedder()
    q, near, far = emb.embed(["integration syncs failing", "the integration sync failed", "renewal discount"])
    assert q @ near > 0.3 > q @ far
    assert HashingEmbedder(dim=128).version != HashingEmbedder().version
    with pytest.raises(ConfigurationError, match="unknown embedder 'nope'"):
        get_embedder("nope")
    with pytest.raises(ConfigurationError, match="already registered"):
        register_embedder("hashing", HashingEmbedder)


# -- store -----------------------------------------------------------------------------------------
def test_store_module_does_not_import_lancedb():
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r});"
        "import revops_pipelines.kb.store, revops_pipelines.kb.taxonomy, kb_assets;"
        "print('lancedb' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_search_ranks_the_right_document_and_filters(tmp_path):
    kb = KnowledgeBase(tmp_path / "lance", HashingEmbedder())
    docs = load_documents(KB / "docs")
    kb.index(chunk_documents(docs))
    for mode in ("vector", "hybrid"):
        hits = kb.search("integration sync failing", k=3, mode=mode)
        assert hits[0].doc_id == "integration-sync-failures", (mode, hits)
    assert kb.search("dashboard is slow to load")[0].doc_id == "dashboard-performance"
    # lexical embedder: the win-back section about former champions competes; the playbook is still found
    assert "When the champion leaves" in [h.heading for h in kb.search("our champion left the company", k=5)]
    assert kb.search("RATE_LIMITED", mode="fts")[0].heading.startswith("RATE_LIMITED")

    hits = kb.search("integration sync failing", k=5, collection="product")
    assert hits and {h.collection for h in hits} == {"product"}
    hits = kb.search(
        "sync", k=10, collection=["product", "troubleshooting"], tags=["salesforce"], mode="hybrid"
    )
    assert hits and all("salesforce" in h.tags for h in hits)
    linked = {d.id for d in docs if "revenue_event.renewal" in d.taxonomy}
    assert "renewal-management-playbook" in linked and len(linked) < len(docs)
    assert {h.doc_id for h in kb.search("renewal", k=10, taxonomy="revenue_event.renewal")} <= linked
    assert kb.search("the of and") == []
    with pytest.raises(ValidationFailed, match="collection"):
        kb.search("x", collection="product' OR '1'='1")
    vector_hits = kb.search("integration sync failing", k=5)
    scores = [h.score for h in vector_hits]
    assert scores == sorted(scores, reverse=True) and all(-1.0 <= s <= 1.0 for s in scores)


def test_incremental_indexing(tmp_path, docs_copy):
    emb = CountingEmbedder(HashingEmbedder())
    kb = KnowledgeBase(tmp_path / "lance", emb)
    chunks = chunk_documents(load_documents(docs_copy))
    first = kb.index(chunks)
    assert (first.added, first.updated, first.removed, first.unchanged) == (len(chunks), 0, 0, 0)
    assert kb.count() == len(chunks) and emb.texts == len(chunks)

    # same corpus again: nothing added, nothing embedded, no new table version
    emb.texts = 0
    again = kb.index(chunk_documents(load_documents(docs_copy)))
    assert (again.added, again.updated, again.removed, again.unchanged) == (0, 0, 0, len(chunks))
    assert emb.texts == 0 and again.version == first.version

    # edit one section of one document: only that chunk is re-embedded and reported updated
    path = docs_copy / "troubleshooting" / "dashboard-performance.md"
    path.write_text(path.read_text().replace("under three seconds", "under two seconds"))
    edited = kb.index(chunk_documents(load_documents(docs_copy)))
    assert (edited.added, edited.updated, edited.removed, edited.unchanged) == (0, 1, 0, len(chunks) - 1)
    assert emb.texts == 1
    assert "under two seconds" in kb.search("dashboard should load in under two seconds", k=1)[0].text

    # a metadata-only change (tags) rewrites the doc's rows but reuses their vectors
    emb.texts = 0
    n_doc = sum(c.doc_id == "automation-guide" for c in chunks)
    path = docs_copy / "product" / "automation-guide.md"
    path.write_text(path.read_text().replace("tags: [automation,", "tags: [automation, no-code,"))
    retagged = kb.index(chunk_documents(load_documents(docs_copy)))
    assert (retagged.updated, retagged.embedded) == (n_doc, 0)
    assert kb.search("automation", k=3, tags="no-code")

    # delete a document: its chunks go
    n_del = sum(c.doc_id == "plans-and-packaging" for c in chunks)
    (docs_copy / "product" / "plans-and-packaging.md").unlink()
    deleted = kb.index(chunk_documents(load_documents(docs_copy)))
    assert (deleted.added, deleted.updated, deleted.removed) == (0, 0, n_del)
    assert "plans-and-packaging" not in kb.doc_ids()
    assert kb.count() == len(chunks) - n_del

    # history is kept: every write is a version, and an old one can be restored
    versions = kb.versions()
    assert [v["version"] for v in versions] == sorted(v["version"] for v in versions)
    assert versions[-1]["rows"] == len(chunks) - n_del
    kb.restore(first.version)
    assert kb.count() == len(chunks)

    # an empty corpus does not silently wipe the store
    with pytest.raises(ValidationFailed, match="allow_empty"):
        kb.index([])
    assert kb.index([], allow_empty=True).removed == len(chunks) and kb.count() == 0


def test_reindex_after_optimize(tmp_path, docs_copy):
    """DESIGN.md §5: merge_insert after optimize() must still update rows (counts are verified)."""
    from lancedb.index import BTree

    kb = KnowledgeBase(tmp_path / "lance")
    kb.index(chunk_documents(load_documents(docs_copy)))
    kb.table().create_index("chunk_id", config=BTree())  # the trap needs a scalar index on the key
    kb.optimize()
    path = docs_copy / "product" / "integrations-guide.md"
    path.write_text(
        path.read_text().replace("title: Beacon Integrations feature guide", "title: Integrations guide")
    )
    stats = kb.index(chunk_documents(load_documents(docs_copy)))
    n_doc = sum(
        d == "integrations-guide" for d in (c.doc_id for c in chunk_documents(load_documents(docs_copy)))
    )
    assert (stats.updated, stats.embedded) == (n_doc, n_doc)
    assert {
        h.title
        for h in kb.search("connectors", k=20, collection="product")
        if h.doc_id == "integrations-guide"
    } == {"Integrations guide"}


def test_merge_count_mismatch_is_repaired(tmp_path, docs_copy, monkeypatch):
    """Simulate the silent 0-row update: the store notices the counts and rewrites the rows."""
    kb = KnowledgeBase(tmp_path / "lance")
    kb.index(chunk_documents(load_documents(docs_copy)))
    path = docs_copy / "product" / "automation-guide.md"
    path.write_text(
        path.read_text()
        .replace("owner: product-marketing", "owner: product")
        .replace("tags: [", "tags: [x, ")
    )

    class Silent:
        num_inserted_rows = num_updated_rows = num_deleted_rows = 0

    monkeypatch.setattr(KnowledgeBase, "_execute_merge", staticmethod(lambda merge, rows: Silent()))
    stats = kb.index(chunk_documents(load_documents(docs_copy)))
    assert stats.updated > 0
    assert kb.search("automation", k=3, tags="x")  # the rows really changed


def test_embedder_change_triggers_full_rebuild(tmp_path, docs_copy):
    chunks = chunk_documents(load_documents(docs_copy))
    KnowledgeBase(tmp_path / "lance", HashingEmbedder()).index(chunks)
    v3 = CountingEmbedder(HashingEmbedder(version="3"))
    stats = KnowledgeBase(tmp_path / "lance", v3).index(chunks)
    assert stats.rebuilt and "hashing@2" in stats.reason and "hashing@3" in stats.reason
    assert (stats.added, stats.removed, v3.texts) == (len(chunks), len(chunks), len(chunks))
    # a different dimension also rebuilds; searching with a mismatched embedder is refused
    small = KnowledgeBase(tmp_path / "lance", HashingEmbedder(dim=64))
    assert small.index(chunks).rebuilt
    assert small.search("integration sync failing")[0].doc_id == "integration-sync-failures"
    from revops_pipelines.kb.store import KnowledgeBaseError

    with pytest.raises(KnowledgeBaseError, match="re-run index"):
        KnowledgeBase(tmp_path / "lance", HashingEmbedder()).search("sync")
