"""Resident exact search: unfiltered vector searches answered in process from the table's vectors."""

from __future__ import annotations

import numpy as np
import pytest

from revops_pipelines.kb.embedder import HashingEmbedder
from revops_pipelines.kb.store import KnowledgeBase
from tests.kb.test_search_ann import synthetic_chunks


class ScaledEmbedder:
    """The hashing embedder's vectors scaled by a per-text factor: not unit length, same cosines."""

    def __init__(self) -> None:
        self.inner = HashingEmbedder()
        self.name, self.version, self.dim = "scaled", "1", self.inner.dim

    def embed(self, texts):
        vectors = np.asarray(self.inner.embed(texts), dtype=np.float32)
        return vectors * np.array([1.0 + len(t) % 7 for t in texts], dtype=np.float32)[:, None]


def brute_force(vectors: np.ndarray, ids: list[str], q: np.ndarray, k: int) -> tuple[list[str], np.ndarray]:
    v = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    scores = v @ (q / np.linalg.norm(q))
    top = np.argsort(-scores, kind="stable")[:k]
    return [ids[i] for i in top], scores[top]


@pytest.mark.parametrize("embedder", [HashingEmbedder, ScaledEmbedder])
def test_resident_search_is_exact_and_matches_lancedb(tmp_path, embedder):
    chunks = synthetic_chunks(1500, seed=5)
    resident = KnowledgeBase(tmp_path / "lance", embedder())
    resident.index(chunks)
    lance = KnowledgeBase(tmp_path / "lance", embedder(), resident_rows=0)  # same table, LanceDB path
    vectors = np.asarray(resident.embedder.embed([c.embedding_text for c in chunks]), dtype=np.float32)
    ids = [c.chunk_id for c in chunks]
    rng = np.random.default_rng(1)
    queries = [" ".join(chunks[i].text.split()[:6]) for i in rng.choice(len(chunks), 15, replace=False)]
    queries.append(" ".join(chunks[0].text.split() * 3))  # many features: the dense product
    for query in queries:
        hits = resident.search(query, k=10)
        assert resident._resident is not None  # answered in process
        want_ids, want_scores = brute_force(vectors, ids, resident.embedder.embed([query])[0], 10)
        np.testing.assert_allclose([h.score for h in hits], want_scores, atol=1e-5)
        assert {h.chunk_id for h in hits} == set(want_ids) or hits[-1].score == pytest.approx(want_scores[-1])
        assert all(h.vector_score == h.score for h in hits)
        others = lance.search(query, k=10)
        assert lance._resident is None
        np.testing.assert_allclose([h.score for h in hits], [h.score for h in others], atol=1e-5)
        by_id = {h.chunk_id: h for h in others}
        for h in hits:  # the hit columns are the stored ones
            if h.chunk_id in by_id:
                o = by_id[h.chunk_id]
                assert (h.doc_id, h.title, h.heading, h.text, h.collection, h.tags) == (
                    o.doc_id, o.title, o.heading, o.text, o.collection, o.tags)  # fmt: skip


def test_resident_copy_follows_new_versions_and_other_writers(tmp_path):
    chunks = synthetic_chunks(300, seed=6)
    kb = KnowledgeBase(tmp_path / "lance")
    kb.index(chunks[:200])
    target = chunks[250]
    assert kb.search(target.text, k=1)[0].chunk_id != target.chunk_id
    first = kb._resident
    # another writer (another process would do the same) adds the chunk: the next search sees it
    KnowledgeBase(tmp_path / "lance").index(chunks)
    assert kb.search(target.text, k=1)[0].chunk_id == target.chunk_id
    assert kb._resident is not first and kb._resident.meta.num_rows == 300
    gone = chunks[10]
    KnowledgeBase(tmp_path / "lance").index([c for c in chunks if c.chunk_id != gone.chunk_id])
    assert gone.chunk_id not in {h.chunk_id for h in kb.search(gone.text, k=5)}
    # filters go to LanceDB and still apply
    hits = kb.search(target.text, k=5, collection=target.collection)
    assert hits and {h.collection for h in hits} == {target.collection}
    # a dropped and re-created table is read afresh even though its versions start again
    kb.drop()
    kb.index(chunks[:50])
    assert target.chunk_id not in {h.chunk_id for h in kb.search(target.text, k=5)}


def test_past_resident_rows_search_goes_to_lancedb(tmp_path):
    chunks = synthetic_chunks(120, seed=7)
    kb = KnowledgeBase(tmp_path / "lance", resident_rows=100)
    kb.index(chunks)
    assert kb.search(chunks[3].text, k=1)[0].chunk_id == chunks[3].chunk_id
    assert kb._resident is None
