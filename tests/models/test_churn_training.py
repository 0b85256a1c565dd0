"""Churn training: determinism, metadata next to the oracle, champion/challenger gate, scoring."""

from __future__ import annotations

import json

import dagster as dg
import numpy as np
import pytest

from models import churn
from models.churn import MODEL_NAME, ChurnTrainConfig

FAST = {"num_boost_round": 120}


def _materialize(warehouse, store, instance, **config):
    return dg.materialize(
        [churn.churn_model, churn.churn_scores, churn.churn_model_not_worse_than_champion],
        instance=instance,
        resources={"warehouse": warehouse, "model_store": store},
        run_config={"ops": {"churn_model": {"config": {**FAST, **config}}}},
        raise_on_error=False,
    )


def test_training_is_deterministic_for_a_fixed_seed(warehouse, store):
    df = churn.load_labelled(warehouse)
    oracle = churn.load_oracle(warehouse, 90)
    cfg = ChurnTrainConfig(**FAST)
    v1, fit1, _ = churn.train_and_save(df, oracle, cfg, store)
    v2, fit2, _ = churn.train_and_save(df, oracle, cfg, store)
    assert v1 != v2
    assert fit1.booster.model_to_string() == fit2.booster.model_to_string()
    np.testing.assert_array_equal(fit1.p_eval, fit2.p_eval)
    assert fit1.data_fingerprint == fit2.data_fingerprint
    assert store.load(MODEL_NAME, v1, "model.txt") == store.load(MODEL_NAME, v2, "model.txt")
    # the seed matters to LightGBM (bagging); the hazard model has no randomness
    lgbm = [
        churn.train_and_save(df, oracle, ChurnTrainConfig(**FAST, model_type="lgbm", seed=s), store)[1]
        for s in (7, 8)
    ]
    assert lgbm[0].booster.model_to_string() != lgbm[1].booster.model_to_string()


def test_time_split_trains_only_on_closed_label_windows(warehouse, store):
    df = churn.load_labelled(warehouse)
    _, fit, _ = churn.train_and_save(df, None, ChurnTrainConfig(**FAST), store)
    split = fit.split
    assert max(split.train_snapshots) < min(split.calib_snapshots) < min(split.eval_snapshots)
    gap = (np.datetime64(min(split.eval_snapshots)) - np.datetime64(max(split.calib_snapshots))).astype(int)
    assert gap >= 90  # no training/calibration label window overlaps the holdout


def test_first_model_is_graded_against_the_oracle_and_promoted(warehouse, store):
    instance = dg.DagsterInstance.ephemeral()
    result = _materialize(warehouse, store, instance)
    assert result.success
    md = instance.get_latest_materialization_event(dg.AssetKey("churn_model")).asset_materialization.metadata
    for key in (
        "auc",
        "oracle_auc",
        "auc_over_oracle",
        "pr_auc",
        "log_loss",
        "brier",
        "precision_at_k",
        "oracle_pr_auc",
        "oracle_log_loss",
        "oracle_brier",
        "oracle_precision_at_k",
        "metrics_vs_oracle",
        "calibration_plot",
        "top_features",
        "data_fingerprint",
        "code_version",
    ):
        assert key in md, key
    assert 0.5 < md["auc"].value <= md["oracle_auc"].value + 0.05
    version = md["version"].value
    assert store.champion(MODEL_NAME) == version
    meta = store.meta(MODEL_NAME, version)
    for key in (
        "params",
        "training_window",
        "data_fingerprint",
        "code_version",
        "metrics",
        "split",
        "checksums",
    ):
        assert meta[key], key
    assert meta["params"]["seed"] == 7
    scores = warehouse.query("SELECT * FROM churn_scores")
    assert len(scores) > 0 and scores["model_version"].eq(version).all()
    assert scores["churn_score"].between(0, 1).all()
    factors = json.loads(scores["top_factors"].iloc[0])
    assert {"feature", "value", "contribution"} == set(factors[0])


def test_degraded_challenger_is_refused_and_blocks_scoring(warehouse, store):
    instance = dg.DagsterInstance.ephemeral()
    assert _materialize(warehouse, store, instance).success
    champion = store.champion(MODEL_NAME)
    # a model that cannot split (every leaf needs more rows than exist) predicts a constant: AUC 0.5
    result = _materialize(warehouse, store, instance, model_type="lgbm", min_data_in_leaf=10_000_000)
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    verdict = checks["churn_model_not_worse_than_champion"]
    assert not verdict.passed
    assert (
        verdict.metadata["challenger_auc"].value
        < verdict.metadata["champion_auc"].value - churn.AUC_TOLERANCE
    )
    assert store.champion(MODEL_NAME) == champion  # not promoted
    assert "churn_scores" not in {
        e.asset_key.to_user_string() for e in result.get_asset_materialization_events() if e.asset_key
    }
    challenger = store.versions(MODEL_NAME)[-1]
    again = churn.compare_on_holdout(warehouse, store, challenger)
    assert again["passed"] is False and again["reason"].startswith("worse")


def test_an_equal_challenger_is_promoted(warehouse, store):
    instance = dg.DagsterInstance.ephemeral()
    assert _materialize(warehouse, store, instance).success
    first = store.champion(MODEL_NAME)
    assert _materialize(warehouse, store, instance).success
    assert store.champion(MODEL_NAME) != first
    assert store.champion_history(MODEL_NAME)[0]["version"] == first


def test_derived_features_use_only_the_rows_own_columns():
    import pandas as pd

    from models.churn_lib import derive_features

    df = pd.DataFrame(
        {
            "billing_frequency": ["Monthly", "Annual", "Annual", "Annual"],
            "tenure_days": [30, 200, 700, 700],
            "days_to_renewal": [10, 100, 30, 200],
        }
    )
    out = derive_features(df, 90)
    assert out["decision_in_window"].tolist() == [1.0, 0.0, 1.0, 0.0]
    assert out["first_term"].tolist() == [1.0, 1.0, 0.0, 0.0]  # 200 + 100 days: first renewal
    with pytest.raises(KeyError):
        derive_features(df.drop(columns="tenure_days"), 90)


def test_hazard_model_round_trips_and_explains_its_scores(warehouse, store):
    """The stored hazard model scores exactly as the fitted one; its contributions sum to the log-odds
    of the window's churn probability; an annual contract without a renewal in the window scores
    far below the same account with one."""
    from models import churn_lib as lib

    df = churn.load_labelled(warehouse)
    version, fit, _ = churn.train_and_save(df, None, ChurnTrainConfig(), store)
    assert store.meta(MODEL_NAME, version)["model_type"] == "hazard_glm"
    booster, enc, cal, _ = churn.load_version(store, version)
    assert isinstance(booster, lib.HazardModel)
    rows = df[df["snapshot_date"].isin(fit.split.eval_snapshots)].reset_index(drop=True)
    np.testing.assert_allclose(lib.score(booster, enc, cal, rows, 90), fit.p_eval, rtol=1e-12)
    x = enc.transform(lib.derive_features(rows, 90))
    raw = booster.predict(x)
    contrib = booster.predict(x, pred_contrib=True)
    assert contrib.shape == (len(x), len(enc.features) + 1)
    np.testing.assert_allclose(contrib.sum(axis=1), lib._logit(raw), rtol=1e-9, atol=1e-9)
    annual = x[(rows["billing_frequency"] == "Annual").to_numpy()].head(20).copy()
    with_renewal, without = annual.assign(decision_in_window=1.0), annual.assign(decision_in_window=0.0)
    assert (booster.predict(without) < 0.1 * booster.predict(with_renewal)).all()
    with pytest.raises(ValueError, match="expected 'lgbm' or 'hazard_glm'"):
        lib.fit_churn(
            df,
            features=enc.features,
            categorical=[],
            params={},
            num_boost_round=1,
            horizon_days=90,
            eval_months=3,
            model="forest",
        )


def test_hazard_model_ranks_by_the_signal_it_was_trained_on():
    """On synthetic rows where churn follows one signal at the decisions, the fitted hazard model
    ranks by that signal (and ignores a pure-noise column)."""
    import pandas as pd

    from models import churn_lib as lib

    rng = np.random.default_rng(0)
    n = 6000
    health = rng.normal(size=n)
    df = pd.DataFrame(
        {
            "billing_frequency": np.where(rng.random(n) < 0.3, "Monthly", "Annual"),
            "segment": rng.choice(["SMB", "Enterprise"], n),
            "signal": health + 0.3 * rng.normal(size=n),
            "noise": rng.normal(size=n),
            "decision_in_window": (rng.random(n) < 0.3).astype(float),
        }
    )
    monthly = df["billing_frequency"].eq("Monthly").to_numpy()
    decisions = np.where(monthly, 3.0, df["decision_in_window"].to_numpy())
    p = 1 - (1 - 1 / (1 + np.exp(-(-2.5 - 1.5 * health)))) ** decisions
    y = (rng.random(n) < p).astype(int)
    enc = lib.Encoder(
        ["segment", "billing_frequency", "signal", "noise", "decision_in_window"],
        ["segment", "billing_frequency"],
    ).fit(df)
    model = lib.HazardModel.fit(enc.transform(df), y, enc, 90, l2=1.0)
    w = dict(zip(model.state["numeric"], model.state["weights"], strict=True))
    assert w["signal"] < -1.0 and abs(w["noise"]) < 0.2
    again = lib.HazardModel.from_string(model.model_to_string())
    np.testing.assert_array_equal(again.predict(enc.transform(df)), model.predict(enc.transform(df)))
