"""ANN index past the threshold, hybrid search with filters on it, versions and restore, embedders."""

from __future__ import annotations

import numpy as np
import pytest

from revops_pipelines.errors import ValidationFailed
from revops_pipelines.kb.documents import Chunk, chunk_id, content_hash
from revops_pipelines.kb.store import AnnConfig, KnowledgeBase, KnowledgeBaseError


def synthetic_chunks(n: int, seed: int = 0, topics: int = 40) -> list[Chunk]:
    rng = np.random.default_rng(seed)
    vocab = [f"term{i}" for i in range(topics * 50)]
    out = []
    for i in range(n):
        t = i % topics
        words = list(rng.choice(vocab[t * 50 : (t + 1) * 50], 25)) + [f"unique{i}"]
        text = " ".join(words)
        doc = f"doc-{i // 4}"
        cid = chunk_id(doc, ("Section",), text)
        coll = "product" if t % 2 else "troubleshooting"
        out.append(Chunk(cid, doc, f"Doc {i // 4}", coll, (f"topic-{t}",), ("product_feature.api",), ("Section",),
                         text, i % 4, content_hash(cid, coll)))  # fmt: skip
    return out


def test_ann_index_is_built_past_the_threshold_and_kept_in_step(tmp_path):
    chunks = synthetic_chunks(1200)
    # resident_rows=0: every search goes to LanceDB, through its IVF index
    kb = KnowledgeBase(
        tmp_path / "lance", ann=AnnConfig(threshold=1000, rows_per_partition=100), resident_rows=0
    )
    stats = kb.index(chunks[:900])
    assert stats.ann == "none" and kb.index_info()["index_type"] == "flat (exact)"
    stats = kb.index(chunks)
    info = kb.index_info()
    assert stats.ann == "created" and info["index_type"] == "IVF_FLAT" and info["indexed_rows"] == 1200
    assert info["nprobes"] == AnnConfig(threshold=1000, rows_per_partition=100).nprobes(1200) == 12

    # searches go through the index and still find the exact chunk, with filters (prefiltered)
    target = chunks[777]
    for mode in ("vector", "hybrid"):
        assert kb.search(target.text, k=3, mode=mode)[0].chunk_id == target.chunk_id
    hits = kb.search(target.text, k=5, collection=target.collection, tags=list(target.tags), mode="hybrid")
    assert hits[0].chunk_id == target.chunk_id and {h.collection for h in hits} == {target.collection}

    # a few new chunks: the index is kept, new rows are still searched (exactly, until the next rebuild)
    extra = synthetic_chunks(1250, seed=1)[1200:]
    stats = kb.index([*chunks, *extra])
    assert stats.ann == "kept" and kb.index_info()["unindexed_rows"] == 50
    assert kb.search(extra[3].text, k=1)[0].chunk_id == extra[3].chunk_id
    # many new chunks: rebuilt; shrinking below the threshold drops it
    more = synthetic_chunks(1600, seed=2)[1250:]
    assert kb.index([*chunks, *extra, *more]).ann == "rebuilt"
    assert kb.index(chunks[:500]).ann == "dropped" and kb.index_info()["index_type"] == "flat (exact)"


def test_ann_recall_against_brute_force(tmp_path):
    chunks = synthetic_chunks(3000, seed=3)
    kb = KnowledgeBase(tmp_path / "lance", ann=AnnConfig(threshold=1000), resident_rows=0)  # LanceDB IVF
    kb.index(chunks)
    assert kb.index_info()["index_type"] == "IVF_FLAT"
    vectors = kb.embedder.embed([c.embedding_text for c in chunks])
    rng = np.random.default_rng(0)
    recalls = []
    for i in rng.choice(len(chunks), 30, replace=False):
        query = " ".join(chunks[i].text.split()[:8])
        q = kb.embedder.embed([query])[0]
        truth = {chunks[j].chunk_id for j in np.argsort(-(vectors @ q))[:10]}
        got = {h.chunk_id for h in kb.search(query, k=10)}
        recalls.append(len(truth & got) / 10)
    assert np.mean(recalls) >= 0.9


def test_restore_brings_back_a_previous_version(tmp_path):
    chunks = synthetic_chunks(60)
    kb = KnowledgeBase(tmp_path / "lance")
    first = kb.index(chunks)
    gone = chunks[10]
    kb.index([c for c in chunks if c.doc_id != gone.doc_id])
    assert gone.doc_id not in kb.doc_ids()
    assert gone.chunk_id not in {h.chunk_id for h in kb.search(gone.text, k=5)}
    versions = [v["version"] for v in kb.versions()]
    new = kb.restore(first.version)
    assert new == max(versions) + 1 and [v["version"] for v in kb.versions()][-1] == new
    assert gone.doc_id in kb.doc_ids() and kb.count() == 60
    assert kb.search(gone.text, k=1)[0].chunk_id == gone.chunk_id  # searchable again
    with pytest.raises(KnowledgeBaseError, match="no version 999"):
        kb.restore(999)


def test_ann_config_is_validated():
    with pytest.raises(ValidationFailed, match="kind"):
        AnnConfig(kind="ivf_magic")  # type: ignore[arg-type]
    with pytest.raises(ValidationFailed, match="threshold"):
        AnnConfig(threshold=10)
    cfg = AnnConfig()
    assert cfg.partitions(100_000) == 250 and cfg.nprobes(100_000) == 88 and cfg.nprobes(10_000) == 16


def test_wordllama_embedder_is_pluggable_and_offline(tmp_path):
    pytest.importorskip("wordllama")
    from revops_pipelines.kb.embedder import get_embedder

    emb = get_embedder("wordllama")
    a, b, c = emb.embed(["our champion left the company", "the champion leaves", "invoice proration"])
    assert emb.dim == 256 and abs(float(np.linalg.norm(a)) - 1) < 1e-5
    assert a @ b > a @ c
    assert not emb.embed(["the of and"]).any()
    kb = KnowledgeBase(tmp_path / "lance", emb)
    kb.index(synthetic_chunks(20))
    assert kb.count() == 20 and kb.embedder_id.startswith("wordllama@1+")
