"""Decision Agent: YAML policies, deterministic explained decisions, insights, state, quality, batch."""

import time
from datetime import date

import numpy as np
import pandas as pd
import pytest

from revops_pipelines.agents.decision import DecisionAgent, decide_frame
from revops_pipelines.agents.policy import Policy, load_policy
from revops_pipelines.agents.quality import decision_quality
from revops_pipelines.errors import ValidationFailed
from revops_pipelines.validation import parse


def test_policy_yaml_loads_and_rejects_bad_fields(tmp_path):
    pol = load_policy("churn_prevention")
    names = {c.name for c in pol.criteria}
    assert {
        "churn_score",
        "usage_trend",
        "engagement",
        "open_tickets",
        "renewal_date",
        "meddpicc_gaps",
    } <= names
    bad = pol.model_dump()
    bad["criteria"][0]["wieght"] = 1
    bad["thresholds"]["bands"]["critical"] = 0.1
    with pytest.raises(ValidationFailed) as exc:
        parse(Policy, bad, "policy")
    assert "criteria.0.wieght: unknown field" in str(exc.value) and "bands" in str(exc.value)
    with pytest.raises(ValidationFailed, match="no policy 'nope'"):
        load_policy("nope")


def test_decisions_are_prioritised_explained_and_deterministic(wh, runtime, kb, factors):
    agent = DecisionAgent(wh, runtime, knowledge_base=kb)
    out = agent.run("assess_churn_risk", {"threshold": 0.3})
    ids = [d.account_id for d in out.decisions]
    assert "001A3" not in ids  # below the churn-score gate
    assert ids[0] == "001A0"  # highest risk x ARR x urgent renewal
    top = out.decisions[0]
    assert top.priority == "critical" and top.human_review_required and top.rank == 1
    assert top.account_name == "Acme 0"  # name normalised
    assert [a.type for a in top.actions] == ["slack_message", "crm_task", "email_draft"]
    # evidence = the model's real contributions, in order
    assert [(e.feature, e.contribution) for e in top.evidence] == [
        (f["feature"], f["contribution"]) for f in factors
    ]
    assert (
        "usage in the last 30 days vs the 60 before = 0.41 (raises risk, +0.90 log-odds)" in top.explanation
    )
    assert "tenure" not in top.actions[0].reasoning  # only risk-raising drivers are cited as reasons
    # KB passages behind each action, cited in reasoning and explanation
    for a in top.actions:
        assert a.passages and a.passages[0].doc_id == "churn-risk-playbook"
        assert "Churn-risk playbook › Section 0" in a.reasoning
    assert "declining usage" in kb.queries[0]  # query built from the drivers
    assert "[Churn-risk playbook › Section 0]" in top.explanation
    assert set(top.criteria) == {c.name for c in load_policy("churn_prevention").criteria}
    again = DecisionAgent(wh, runtime, knowledge_base=kb).run("assess_churn_risk", {"threshold": 0.3})
    assert again.model_dump() == out.model_dump()  # same situation → same decision (state included)
    assert wh.row_count("agent_decisions") == len(out.decisions)


def test_insights_recorded_with_category_status_and_kept_on_rerun(wh, runtime, kb):
    agent = DecisionAgent(wh, runtime, knowledge_base=kb)
    agent.run("assess_churn_risk", {"threshold": 0.3})
    ins = wh.query("SELECT * FROM agent_insights ORDER BY insight_id")
    assert {"churn_risk", "consumption_pattern", "deal_quality"} <= set(ins["category"])
    assert set(ins["status"]) == {"open"}
    assert ins[["confidence", "impact", "urgency"]].notna().all().all()
    wh.execute("UPDATE agent_insights SET status = 'acknowledged' WHERE category = 'churn_risk'")
    agent.run("assess_churn_risk", {"threshold": 0.3})
    again = wh.query("SELECT category, status FROM agent_insights")
    assert len(again) == len(ins)
    assert set(again[again["category"] == "churn_risk"]["status"]) == {"acknowledged"}


def test_state_remembers_the_previous_snapshot(wh, runtime, kb, seed_snapshot):
    agent = DecisionAgent(wh, runtime, knowledge_base=kb)
    agent.run("assess_churn_risk", {"threshold": 0.3})
    seed_snapshot(wh, snap=date(2026, 1, 1))
    out = agent.run("assess_churn_risk", {"threshold": 0.3})
    top = out.decisions[0]
    assert top.snapshot_date == date(2026, 1, 1) and top.previous_priority == "critical"
    assert "Previously critical on 2025-12-01" in top.explanation


def test_without_a_knowledge_base_decisions_still_explain_contributions(wh, runtime):
    out = DecisionAgent(wh, runtime).run("assess_churn_risk", {"threshold": 0.3})  # kb_uri has no KB
    assert out.decisions and all(not a.passages for d in out.decisions for a in d.actions)
    assert "log-odds" in out.decisions[0].explanation


def test_explanations_cite_real_passages_from_lancedb(wh, tmp_path):
    from revops_pipelines.agents.base import AgentRuntime
    from revops_pipelines.kb.resource import KnowledgeBaseResource

    res = KnowledgeBaseResource(uri=str(tmp_path / "kb"))
    store = res.open()
    from revops_pipelines.kb.documents import chunk_documents, load_documents

    store.index(chunk_documents(load_documents(res.root() / "docs")))
    rt = AgentRuntime(state_path=str(tmp_path / "st.sqlite"), kb_uri=str(tmp_path / "kb"))
    out = DecisionAgent(wh, rt).run("assess_churn_risk", {"threshold": 0.3})
    cited = [p for a in out.decisions[0].actions for p in a.passages]
    assert cited
    chunk_ids = set(store.table().to_arrow().column("chunk_id").to_pylist())
    assert {p.chunk_id for p in cited} <= chunk_ids  # passages that exist in the KB
    assert all(p.excerpt and p.title for p in cited)
    assert cited[0].title in out.decisions[0].explanation


def _world(n, seed_=0):
    rng = np.random.default_rng(seed_)
    p = rng.beta(1, 20, n)
    return pd.DataFrame(
        {
            "account_id": [f"A{i:06d}" for i in range(n)],
            "snapshot_date": date(2025, 10, 1),
            "churn_score": np.clip(p + rng.normal(0, 0.02, n), 0, 1),
            "top_factors": "[]",
            "account_name": [f"Co {i}" for i in range(n)],
            "segment": rng.choice(["SMB", "Mid-Market", "Enterprise"], n),
            "arr": rng.lognormal(10, 1, n),
            "owner_id": rng.choice([f"U{i}" for i in range(40)], n),
            "days_to_renewal": rng.integers(0, 365, n),
            "usage_trend": rng.uniform(0.3, 1.2, n),
            "sentiment_90d": rng.normal(0, 0.2, n),
            "risk_mentions_90d": rng.poisson(0.5, n),
            "open_tickets": rng.poisson(1, n),
            "meddpicc_completeness": rng.uniform(0, 1, n),
            "true_p": p,
        }
    )


def test_batch_mode_is_vectorised_and_fast():
    df = _world(20_000)
    pol = load_policy("churn_prevention")
    t = time.perf_counter()
    ranked = decide_frame(pol, df, max_accounts=20_000)
    rate = len(df) / (time.perf_counter() - t)
    assert rate > 10_000, f"{rate:.0f} decisions/s"
    assert ranked["rank"].tolist() == list(range(1, len(ranked) + 1))
    assert ranked["priority_score"].is_monotonic_decreasing
    assert ranked.groupby("owner_id").size().max() <= pol.constraints.max_per_owner
    assert set(ranked["priority"]) <= {"critical", "high", "medium", "low"}
    assert ranked.attrs["evaluated"] == len(df)


def test_tie_breaks_give_a_total_order():
    df = _world(50)
    df["churn_score"] = 0.5
    df[["usage_trend", "sentiment_90d", "risk_mentions_90d", "open_tickets", "meddpicc_completeness"]] = [
        1.0,
        0.3,
        0,
        0,
        1.0,
    ]
    df["days_to_renewal"] = 300
    df["segment"] = "SMB"
    df["owner_id"] = df["account_id"]
    df["arr"] = [100_000.0] * 25 + [5_000.0] * 25
    pol = load_policy("churn_prevention")
    a = decide_frame(pol, df, 50)["account_id"].tolist()
    b = decide_frame(pol, df.sample(frac=1, random_state=3), 50)["account_id"].tolist()
    assert a == b  # same order whatever the input order
    assert a[:25] == sorted(df["account_id"][:25])  # equal score: ARR desc, then account id


def test_decision_quality_against_the_oracle(tmp_path):
    from assets.features import FEATURES
    from assets.sample_world import ORACLE
    from revops_pipelines.warehouse.duckdb import DuckDBWarehouse

    w = DuckDBWarehouse(path=str(tmp_path / "q.duckdb"))
    world = _world(2_000, seed_=1)
    rng = np.random.default_rng(2)
    churned = rng.uniform(size=len(world)) < world["true_p"]
    feats = world[[c for c in world.columns if c in FEATURES.column_names]]
    w.merge(FEATURES, feats.assign(**{c: None for c in FEATURES.column_names if c not in feats.columns}))
    oracle = pd.DataFrame(
        {
            "account_id": world["account_id"],
            "snapshot_date": world["snapshot_date"],
            "horizon_days": 90,
            "churn_probability": world["true_p"],
            "churned_within_horizon": churned,
        }
    )
    w.merge(ORACLE, oracle)
    q = decision_quality(w, 50, scores=world[["account_id", "churn_score"]])
    assert q["snapshots"] == ["2025-10-01"] and q["k"] == 50
    for group in ("policy_metrics", "model_only", "oracle"):
        assert set(q[group]) == {
            "precision_at_k",
            "expected_precision_at_k",
            "arr_recall",
            "expected_arr_recall",
        }
    assert 0 < q["ratio_to_oracle"]["expected_precision_at_k"] <= 1.05
    from revops_pipelines.agents.quality import quality_metadata

    md = quality_metadata(q)
    assert md["decision_quality_k"] == 50 and 0 <= md["policy_precision_at_k"] <= 1
    assert "expected_precision_at_k_vs_oracle" in md
    perfect = decision_quality(w, 50, scores=world[["account_id"]].assign(churn_score=world["true_p"]))
    assert perfect["model_only"]["expected_precision_at_k"] == pytest.approx(
        perfect["oracle"]["expected_precision_at_k"]
    )
