"""Decision quality: graded at several k on expected precision, realised precision with its noise,
the model's held-out snapshots, and a goal that must hold at every k."""

import json
from datetime import date

import numpy as np
import pandas as pd
import pytest

from revops_pipelines.agents.policy import load_policy
from revops_pipelines.agents.quality import (
    decision_quality,
    quality_metadata,
    quality_table,
    resolve_k,
    wilson,
)
from revops_pipelines.errors import RevOpsError
from revops_pipelines.warehouse.duckdb import DuckDBWarehouse

from .test_decision import _world

SNAPS = [date(2025, 8, 1), date(2025, 9, 1), date(2025, 10, 1)]


def _seed(w, n=2_000, snaps=(date(2025, 10, 1),)):
    from assets.features import FEATURES
    from assets.sample_world import ORACLE

    worlds = []
    for i, s in enumerate(snaps):
        world = _world(n, seed_=i + 1).assign(snapshot_date=s)
        churned = np.random.default_rng(100 + i).uniform(size=n) < world["true_p"]
        feats = world[[c for c in world.columns if c in FEATURES.column_names]]
        w.merge(FEATURES, feats.assign(**{c: None for c in FEATURES.column_names if c not in feats.columns}))
        w.merge(
            ORACLE,
            pd.DataFrame(
                {
                    "account_id": world["account_id"],
                    "snapshot_date": s,
                    "horizon_days": 90,
                    "churn_probability": world["true_p"],
                    "churned_within_horizon": churned,
                }
            ),
        )
        worlds.append(world)
    return worlds


def _churn_only_policy():
    """Ranks by the churn score alone (no other criteria, no value multipliers)."""
    pol = load_policy("churn_prevention").model_copy(deep=True)
    pol.criteria = [c for c in pol.criteria if c.name == "churn_score"]
    pol.criteria[0].range = (0.0, 1.0)
    pol.value.arr.per_decade = 0.0
    pol.value.segment_weights = {}
    pol.value.renewal.multiplier = 1.0
    pol.tie_breaks = []
    return pol


def test_graded_at_every_k_with_model_and_oracle_beside(tmp_path):
    w = DuckDBWarehouse(path=str(tmp_path / "q.duckdb"))
    (world,) = _seed(w)
    q = decision_quality(w, 50, scores=world[["account_id", "churn_score"]])
    assert list(q["by_k"]) == ["25", "50", "100", "10%"]
    assert q["by_k"]["10%"]["k"] == 200 and q["by_k"]["25"]["k"] == 25
    assert q["graded_metric"] == "expected_precision_at_k" and q["goal"] == 0.9
    for v in q["by_k"].values():
        exp = v["ratio_to_oracle"]["expected_precision_at_k"]
        assert exp == pytest.approx(
            v["policy_metrics"]["expected_precision_at_k"] / v["oracle"]["expected_precision_at_k"]
        )
        lo, hi = v["precision_interval_90"]["oracle"]
        assert lo <= v["oracle"]["precision_at_k"] <= hi
    # the oracle's expected precision falls as k grows (its top-k is the k most likely churners)
    o = [q["by_k"][k]["oracle"]["expected_precision_at_k"] for k in ("25", "50", "100", "10%")]
    assert o == sorted(o, reverse=True)
    assert q["worst_ratio_over_k"] == pytest.approx(
        min(v["ratio_to_oracle"]["expected_precision_at_k"] for v in q["by_k"].values())
    )
    assert q["goal_met"] == (q["worst_ratio_over_k"] >= 0.9)
    md = quality_metadata(q)
    assert md["model_expected_precision_at_k"] == round(q["model_only"]["expected_precision_at_k"], 4)
    assert md["decision_quality_goal_met"] == q["goal_met"]
    table = quality_table(q)
    assert table.count("\n") == 1 + len(q["by_k"]) and "| 10% (200) |" in table


def test_goal_needs_every_k_not_a_chosen_one(tmp_path):
    w = DuckDBWarehouse(path=str(tmp_path / "q.duckdb"))
    (world,) = _seed(w)
    pol = _churn_only_policy()
    perfect = world[["account_id"]].assign(churn_score=world["true_p"])
    q = decision_quality(w, 50, policy=pol, scores=perfect)
    assert q["goal_met"] and q["worst_ratio_over_k"] == pytest.approx(1.0)
    assert q["confidence_gap_top_k"] == pytest.approx(0.0)  # true probabilities as scores: calibrated
    inflated = perfect.assign(churn_score=np.clip(perfect["churn_score"] + 0.1, 0, 1))
    q = decision_quality(w, 50, policy=pol, scores=inflated)
    assert q["confidence_gap_top_k"] == pytest.approx(0.1, abs=1e-3) and q["goal_met"]  # same order
    # right about the 25 most likely churners, noise after them: passes at k=25 only
    order = world["true_p"].rank(ascending=False, method="first")
    noise = np.random.default_rng(5).uniform(0, 0.01, len(world))
    partial = world[["account_id"]].assign(churn_score=np.where(order <= 25, 1.0, noise))
    q = decision_quality(w, 25, policy=pol, scores=partial)
    assert q["ratio_to_oracle"]["expected_precision_at_k"] == pytest.approx(1.0)
    assert q["by_k"]["100"]["ratio_to_oracle"]["expected_precision_at_k"] < 0.9
    assert not q["goal_met"]
    # a constant score carries no signal: the model-alone ratio shows it
    flat = world[["account_id"]].assign(churn_score=0.5)
    q = decision_quality(w, 50, policy=pol, scores=flat)
    assert q["model_ratio_to_oracle"]["expected_precision_at_k"] < 0.5 and not q["goal_met"]


class _Store:
    """Model store stand-in: a champion whose metadata names its held-out snapshots."""

    def champion(self, name):
        return "v1"

    def meta(self, name, version):
        return {"split": {"eval": ["2025-08-01", "2025-09-01"]}}


def test_graded_on_the_models_held_out_snapshots(tmp_path):
    from models.churn import SCORES

    w = DuckDBWarehouse(path=str(tmp_path / "q.duckdb"))
    worlds = _seed(w, n=400, snaps=SNAPS)
    for world in worlds:
        w.merge(
            SCORES,
            world[["account_id", "snapshot_date", "churn_score"]].assign(
                model_version="v1", top_factors=json.dumps([])
            ),
        )
    q = decision_quality(w, 50, model_store=_Store())
    assert q["snapshots"] == ["2025-08-01", "2025-09-01"]  # not the latest oracle snapshot
    assert q["snapshot_basis"].startswith("the serving model's held-out")
    assert q["scores_from"] == "churn_scores" and q["accounts_per_snapshot"] == [400, 400]
    assert [p["snapshot_date"] for p in q["per_snapshot"]] == q["snapshots"]
    q = decision_quality(
        w, 50, model_store=None, snapshots=2, scores=worlds[2][["account_id", "churn_score"]]
    )
    assert (
        q["snapshots"] == ["2025-09-01", "2025-10-01"] and q["snapshot_basis"] == "latest 2 oracle snapshots"
    )


def test_k_and_interval_helpers():
    assert resolve_k("10%", 845) == 84 and resolve_k(50, 30) == 30 and resolve_k("25", 100) == 25
    for bad in ("ten", "0%", "150%", 0):
        with pytest.raises(RevOpsError, match="k"):
            resolve_k(bad, 100)
    lo, hi = wilson(11, 50)
    assert lo < 0.22 < hi and hi - lo > 0.15  # ~11 churners in a top-50: the realised ratio is noisy
    lo2, hi2 = wilson(33, 150)
    assert hi2 - lo2 < hi - lo


def test_informed_ceiling_is_the_oracle_given_the_previous_months_state(tmp_path):
    """The informed ceiling re-runs the sample world's latent process: on the snapshot's own state it
    reproduces the stored oracle exactly; given the previous month's state it is the oracle averaged
    over the transition kernel; it is reported beside the graded ratio (never above the oracle's
    expected precision), and left out when the manifest does not describe the warehouse's world."""
    from assets.features import FEATURES
    from assets.sample_world import ORACLE
    from revops_pipelines.agents.quality import informed_probabilities
    from revops_pipelines.sample import generator as gen
    from revops_pipelines.sample import latent as L

    world = {"seed": 3, "accounts": 300, "start": "2024-01-01", "months": 24}
    sim = gen.simulate(gen.WorldConfig(seed=3, accounts=300))
    oracle = gen._oracle(sim, (90,))
    snap = date(2025, 6, 1)
    stored = oracle[oracle["snapshot_date"] == pd.Timestamp(snap)]
    inf = informed_probabilities(world, snap)
    m = stored.merge(inf, on="account_id", suffixes=("", "_rerun"))
    assert len(m) == len(stored) == len(inf) > 100
    np.testing.assert_allclose(m["churn_probability_rerun"], m["churn_probability"], atol=1e-12)
    assert (m["informed_probability"] != m["churn_probability"]).mean() > 0.5

    # brute force for a few accounts: the generator's oracle from every possible state of month k,
    # weighted by the kernel row of the state in month k - 1
    k = 17  # 2025-06 in a world starting 2024-01
    s = int(sim.cal.month_start[k])
    act = np.flatnonzero((sim.active_start <= s) & (sim.active_end > s) & (sim.cs <= s))
    last_m = int(sim.cal.month_of(np.array([s + 90]))[0])
    for i in act[sim.x[act, k - 1] >= 0][:5]:
        raw = sim.plan_day[i, k : last_m + 1]
        ints = np.where((raw > s) & (raw <= s + 90), sim.dec_int[i, k : last_m + 1], np.nan)
        p_all = L.oracle_churn_probability(
            np.arange(L.G), np.full(L.G, sim.seg[i]), np.full(L.G, sim.mu[i]), np.tile(ints, (L.G, 1))
        )
        expected = float(L.KERNELS[sim.seg[i], sim.x[i, k - 1]] @ p_all)
        got = inf.loc[inf["account_id"] == str(sim.account_id[i]), "informed_probability"].item()
        assert got == pytest.approx(expected, abs=1e-12)

    w = DuckDBWarehouse(path=str(tmp_path / "q.duckdb"))
    rows = stored.assign(snapshot_date=snap)
    w.merge(ORACLE, rows[[c for c in ORACLE.column_names if c in rows.columns]])
    w.merge(
        FEATURES,
        pd.DataFrame(
            [
                {c: None for c in FEATURES.column_names}
                | {"account_id": a, "snapshot_date": snap, "arr": 1e4}
                for a in rows["account_id"]
            ]
        ),
    )
    scores = rows[["account_id"]].assign(churn_score=rows["churn_probability"].to_numpy())
    kw = {"policy": _churn_only_policy(), "scores": scores, "snapshot_date": snap}
    q = decision_quality(w, 25, world=world, **kw)
    assert q["informed_note"].startswith("exact")
    for v in q["by_k"].values():
        assert 0.3 < v["informed_ratio_to_oracle"]["expected_precision_at_k"] <= 1.0 + 1e-12
    assert "informed ceiling/oracle" in quality_table(q)
    assert quality_metadata(q)["informed_ceiling_vs_oracle"] == pytest.approx(
        q["informed_ratio_to_oracle"]["expected_precision_at_k"], abs=1e-4
    )
    other = decision_quality(w, 25, world={**world, "seed": 4}, **kw)
    assert other["informed"] is None and "does not reproduce" in other["informed_note"]
    assert "informed" not in other["by_k"]["25"] and "informed ceiling" not in quality_table(other)
    assert decision_quality(w, 25, **kw)["informed_note"] == "no sample world given"
