"""Entity embeddings: accounts from features + call text, products and features from taxonomies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from revops_pipelines.errors import ValidationFailed
from revops_pipelines.kb.embedder import HashingEmbedder
from revops_pipelines.kb.entities import (
    EntityConfig,
    EntityIndex,
    account_entities,
    neighbour_agreement,
    taxonomy_entities,
)
from revops_pipelines.kb.store import KnowledgeBaseError
from revops_pipelines.kb.taxonomy import load_taxonomies

KB = Path(__file__).resolve().parents[2] / "kb_assets"


class Counting(HashingEmbedder):
    texts = 0

    def embed(self, texts):
        Counting.texts += len(texts)
        return super().embed(texts)


@pytest.fixture()
def built(small_world, tmp_path):
    wh, groups = small_world
    taxonomies = load_taxonomies(KB / "taxonomies")
    config = EntityConfig.from_taxonomies(taxonomies)
    index = EntityIndex(str(tmp_path / "lance"), Counting(), config=config)
    accounts, notes = account_entities(wh, config)
    stats = index.build([*accounts, *taxonomy_entities(taxonomies)])
    return index, groups, accounts, notes, stats, taxonomies


def test_accounts_are_built_from_latest_features_and_call_text(built):
    index, groups, accounts, notes, stats, _ = built
    assert notes["missing_sources"] == [] and notes["accounts_with_calls"] == len(accounts) == 20
    assert stats.by_type == {"account": 20, "product": 3, "feature": 17}
    row = index.get(f"account:{groups['healthy'][0]}")
    assert row["as_of"].isoformat() == "2025-05-01"  # the latest snapshot
    assert row["segment"] == "Enterprise" and row["plan"] == "Scale" and row["churned"] is False
    assert "board pack" in row["text"]
    assert len(row["vector"]) == index.dim == index.config.numeric_dim + 256
    assert abs(float(np.linalg.norm(row["vector"])) - 1.0) < 1e-4
    # categories come from the segmentation taxonomy
    assert index.config.segments == ("Enterprise", "Mid-Market", "SMB")
    assert index.config.plans == ("Starter", "Growth", "Scale")


def test_similar_accounts_are_sensible(built):
    index, groups, *_ = built
    for group in ("healthy", "struggling"):
        hits = index.similar_accounts(groups[group][0], k=5)
        ids = [h.account_id for h in hits]
        assert groups[group][0] not in ids  # never itself
        assert set(ids) <= set(groups[group]), (group, ids)
        assert all(-1.0 <= h.score <= 1.0 for h in hits)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert neighbour_agreement(index, groups["healthy"][:3] + groups["struggling"][:3], k=5) == 1.0
    churned = index.similar_accounts(groups["struggling"][1], k=10, churned=True)
    assert churned and all(h.churned for h in churned)
    same = index.similar_accounts(groups["healthy"][0], k=3, same_segment=True)
    assert {h.segment for h in same} == {"Enterprise"}


def test_text_search_and_related_features(built):
    index, groups, *_ = built
    hits = index.search("salesforce sync failing, thinking about cancelling", k=5, entity_type="account")
    assert {h.account_id for h in hits} <= set(groups["struggling"])
    feats = index.similar(f"account:{groups['struggling'][0]}", k=3, entity_type="feature")
    assert any(h.entity_id.startswith("feature:product_feature.integrations") for h in feats), feats
    plans = index.search("SSO SCIM unlimited integrations", k=1, entity_type="product")
    assert plans[0].entity_id == "product:segment.plan.scale"
    with pytest.raises(ValidationFailed, match="entity_type"):
        index.search("x", entity_type="planet")
    with pytest.raises(KnowledgeBaseError, match="unknown entity"):
        index.similar_accounts("001nope")


def test_entity_index_is_incremental(built):
    index, groups, accounts, _, stats, taxonomies = built
    assert stats.added == 23 + 17 and stats.embedded == 40
    Counting.texts = 0
    again = index.build([*accounts, *taxonomy_entities(taxonomies)])
    assert (again.added, again.updated, again.removed, again.unchanged, again.embedded) == (0, 0, 0, 40, 0)
    assert Counting.texts == 0 and again.version == stats.version

    # one account's call text changes, another account disappears
    changed = [a for a in accounts if a.entity_id != f"account:{groups['healthy'][1]}"]
    target = next(i for i, a in enumerate(changed) if a.entity_id == f"account:{groups['healthy'][0]}")
    from dataclasses import replace

    changed[target] = replace(
        changed[target], text=changed[target].text + "\nNew topic: mobile app push alerts."
    )
    third = index.build([*changed, *taxonomy_entities(taxonomies)])
    assert (third.removed, third.embedded, third.updated) == (1, 1, 1)
    assert Counting.texts == 1
    assert index.count("account") == 19

    # versions and restore work for entities too
    index.restore(stats.version)
    assert index.count("account") == 20


def test_embedder_change_rebuilds_entities(built, tmp_path):
    index, _, accounts, _, _, taxonomies = built
    other = EntityIndex(index.uri, HashingEmbedder(version="3"), config=index.config)
    stats = other.build([*accounts, *taxonomy_entities(taxonomies)])
    assert stats.rebuilt and "hashing@2" in stats.reason
    with pytest.raises(KnowledgeBaseError, match="re-run"):
        index.similar_accounts(accounts[0].entity_id)


def test_missing_call_tables_still_embed_accounts(tmp_path):
    import pandas as pd

    from assets.salesforce import ACCOUNTS
    from revops_pipelines.warehouse.duckdb import DuckDBWarehouse

    wh = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    with pytest.raises(KnowledgeBaseError, match="raw_sf_accounts"):
        account_entities(wh)
    row = dict.fromkeys(ACCOUNTS.column_names)
    row.update(account_id="A1", name="Solo", segment="SMB", plan="Growth", seats=5, arr=1000.0,
               system_modstamp=pd.Timestamp("2025-01-01"), is_deleted=False)  # fmt: skip
    wh.merge(ACCOUNTS, pd.DataFrame([row]))
    entities, notes = account_entities(wh)
    assert len(entities) == 1 and entities[0].text == ""
    assert set(notes["missing_sources"]) == {
        "account_features", "raw_gong_calls", "raw_gong_transcripts", "gong_call_sentiment"
    }  # fmt: skip
