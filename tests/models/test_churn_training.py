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
            "billing_frequency": ["Monthly", "Annual", "Annual", "Annual", "Monthly", "Monthly"],
            "tenure_days": [30, 200, 700, 700, 10, 100],
            "days_to_renewal": [10, 100, 30, 200, 20, 20],
        }
    )
    out = derive_features(df, 90)
    assert out["decision_in_window"].tolist() == [1.0, 0.0, 1.0, 0.0, 1.0, 1.0]
    # annual: 200 + 100 days is the first renewal; monthly: the share of the window's three bills
    # among the first three (day 30: bills 2 and 3 of 2-4; day 10: bills 1-3; day 100: none)
    np.testing.assert_allclose(out["first_term"], [2 / 3, 1.0, 0.0, 0.0, 1.0, 0.0])
    with pytest.raises(KeyError):
        derive_features(df.drop(columns="tenure_days"), 90)


def test_hazard_model_round_trips_and_explains_its_scores(warehouse, store):
    """The stored hazard model scores exactly as the fitted one; its contributions sum to the log-odds
    of the window's churn probability; an annual contract without a renewal in the window scores
    far below the same account with one."""
    from models import churn_lib as lib

    df = churn.load_labelled(warehouse)
    version, fit, _ = churn.train_and_save(df, None, ChurnTrainConfig(model_type="hazard_glm"), store)
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
    with pytest.raises(ValueError, match="expected 'lgbm', 'hazard_glm' or 'auto'"):
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


# ---- model_type="auto": champion/challenger between LightGBM and the hazard model ---------------------
def _spy_fits(monkeypatch):
    """Count the LightGBM and hazard-model fits made by churn_lib."""
    from models import churn_lib as lib

    calls = {"lgbm": 0, "hazard_glm": 0}
    train_booster, hazard_fit = lib.train_booster, lib.HazardModel.fit.__func__

    def spy_booster(*a, **kw):
        calls["lgbm"] += 1
        return train_booster(*a, **kw)

    def spy_hazard(cls, *a, **kw):
        calls["hazard_glm"] += 1
        return hazard_fit(cls, *a, **kw)

    monkeypatch.setattr(lib, "train_booster", spy_booster)
    monkeypatch.setattr(lib.HazardModel, "fit", classmethod(spy_hazard))
    return calls


@pytest.mark.parametrize("favoured", ["lgbm", "hazard_glm"])
def test_auto_trains_both_and_keeps_the_better_on_validation(warehouse, store, monkeypatch, favoured):
    """Both candidates are fitted (once on the snapshots a label horizon before validation, once on
    all training snapshots); the one with the higher validation score is kept, registered with its
    type, and is what the stored model reloads as. The scores are biased towards ``favoured`` so that
    each candidate wins once; the validation score only ever sees the calibration snapshots' labels,
    which precede the held-out snapshots."""
    from models import churn_lib as lib

    calls = _spy_fits(monkeypatch)
    df = churn.load_labelled(warehouse)
    real = lib.validation_score
    seen: list[np.ndarray] = []
    order = iter(lib.AUTO_CANDIDATES)  # candidates are scored in this order

    def score(y, p):
        seen.append(np.asarray(y).copy())
        return real(y, p) + (1.0 if next(order) == favoured else 0.0)

    monkeypatch.setattr(lib, "validation_score", score)
    version, fit, _ = churn.train_and_save(
        df, churn.load_oracle(warehouse, 90), ChurnTrainConfig(**FAST), store
    )
    assert calls == {"lgbm": 2, "hazard_glm": 2}
    sel = fit.selection
    assert sel["chosen"] == favoured == fit.model_type
    assert set(sel["candidates"]) == {"lgbm", "hazard_glm"}
    for row in sel["candidates"].values():
        assert {"validation_auc", "holdout_auc", "holdout_precision_at_k"} <= set(row)
        assert 0 < row["holdout_auc"] <= 1
    # the validation rows are the calibration snapshots', all earlier than every held-out snapshot
    assert sel["validation_snapshots"] == fit.split.calib_snapshots
    assert max(sel["validation_snapshots"]) < min(sel["holdout_snapshots"]) == min(fit.split.eval_snapshots)
    # the candidates compared were fitted across a label-horizon gap, as the holdout is graded
    first_val = np.datetime64(min(sel["validation_snapshots"]))
    assert sel["validation_train_snapshots"]
    assert all((first_val - np.datetime64(s)).astype(int) >= 90 for s in sel["validation_train_snapshots"])
    assert sel["validation_gap_days"] >= 90
    calib = df[df["snapshot_date"].isin(sel["validation_snapshots"])]["churned_in_horizon"].astype(int)
    assert len(seen) == 2 and all(len(y) == len(calib) != fit.rows["eval"] for y in seen)
    for y in seen:
        np.testing.assert_array_equal(y, calib.to_numpy())
    meta = store.meta(MODEL_NAME, version)
    assert meta["model_type"] == favoured and meta["requested_model_type"] == "auto"
    assert meta["selection"]["chosen"] == favoured
    booster, *_ = churn.load_version(store, version)
    assert isinstance(booster, lib.HazardModel) == (favoured == "hazard_glm")
    # the kept model is the registered one: its held-out metrics are the candidate's
    assert fit.metrics["model"]["auc"] == pytest.approx(sel["candidates"][favoured]["holdout_auc"])


def test_auto_selection_uses_realised_validation_pr_auc(warehouse, store):
    """Without patching, the kept candidate is the one with the higher recorded validation PR-AUC
    (average precision: the top of the ranking is what is acted on), and that figure is the
    candidate's own on the validation rows."""
    df = churn.load_labelled(warehouse)
    version, fit, _ = churn.train_and_save(df, None, ChurnTrainConfig(**FAST), store)
    cands = fit.selection["candidates"]
    best = max(cands, key=lambda m: cands[m]["validation_pr_auc"])
    assert fit.model_type == fit.selection["chosen"] == best
    assert f"validation PR-AUC {cands[best]['validation_pr_auc']:.4f}" in fit.selection["reason"]


def test_auto_without_history_for_a_gap_says_so(warehouse, store):
    """With too few training snapshots for a label-horizon gap before validation, auto still chooses,
    from fits on every training snapshot, and the reason says the comparison had no gap."""
    from assets.features import CATEGORICAL
    from models import churn_lib as lib

    df = churn.load_labelled(warehouse)
    snaps = sorted(df["snapshot_date"].unique())
    short = df[df["snapshot_date"].isin(snaps[-(3 + 2 + 2 + 2) :])]  # eval 3, 2 months' gap, calib 2, train 2
    fit = lib.fit_churn(
        short,
        features=churn.model_features(),
        categorical=list(CATEGORICAL),
        params=churn.lgbm_params(ChurnTrainConfig(**FAST), len(short)),
        num_boost_round=FAST["num_boost_round"],
        horizon_days=90,
        eval_months=3,
        model="auto",
    )
    sel = fit.selection
    assert sel["validation_train_snapshots"] == fit.split.train_snapshots
    assert sel["validation_gap_days"] < 90 and "no label gap" in sel["reason"]
    assert fit.model_type == sel["chosen"]


@pytest.mark.parametrize("model_type", ["lgbm", "hazard_glm"])
def test_an_explicit_model_type_trains_only_that_model(warehouse, store, monkeypatch, model_type):
    calls = _spy_fits(monkeypatch)
    df = churn.load_labelled(warehouse)
    version, fit, _ = churn.train_and_save(df, None, ChurnTrainConfig(**FAST, model_type=model_type), store)
    assert calls == {"lgbm": int(model_type == "lgbm"), "hazard_glm": int(model_type == "hazard_glm")}
    assert fit.selection is None and fit.model_type == model_type
    meta = store.meta(MODEL_NAME, version)
    assert meta["model_type"] == model_type and meta["selection"] is None


def test_auto_records_the_candidates_in_the_asset_metadata(warehouse, store, monkeypatch):
    """The asset's metadata names the kept type and why, with both candidates' validation and
    held-out metrics; the kept model serves and scores with contributions."""
    from models import churn_lib as lib

    real = lib.validation_score
    order = iter(lib.AUTO_CANDIDATES)
    monkeypatch.setattr(lib, "validation_score", lambda y, p: real(y, p) + (next(order) == "lgbm"))
    instance = dg.DagsterInstance.ephemeral()
    assert _materialize(warehouse, store, instance).success
    md = instance.get_latest_materialization_event(dg.AssetKey("churn_model")).asset_materialization.metadata
    assert md["model_type"].value == "lgbm"
    assert md["selection_reason"].value.startswith("lgbm: validation PR-AUC")
    table = md["candidates"].value
    assert "lgbm (chosen)" in table and "| hazard_glm |" in table
    assert "validation_auc" in table and "holdout_auc" in table
    val, held = (md[k].value.split(", ") for k in ("validation_snapshots", "eval_snapshots"))
    assert val and max(val) < min(held)
    version = md["version"].value
    assert store.champion(MODEL_NAME) == version
    assert store.meta(MODEL_NAME, version)["model_type"] == "lgbm"
    scores = warehouse.query("SELECT * FROM churn_scores")
    assert scores["model_version"].eq(version).all()
    assert json.loads(scores["top_factors"].iloc[0])[0]["feature"]


def test_hazard_model_does_not_shrink_the_contract_calendar():
    """The L2 penalty shrinks the signals' weights, not the first-term (calendar) term: with a huge
    penalty the signal's weight vanishes while first_term keeps its unpenalised size."""
    import pandas as pd

    from models import churn_lib as lib

    rng = np.random.default_rng(3)
    n = 6000
    x = pd.DataFrame(
        {
            "signal": rng.standard_normal(n),
            "first_term": (rng.random(n) < 0.3).astype(float),
            "decision_in_window": np.ones(n),
        }
    )
    eta = -2.0 + 0.8 * x["signal"] + 1.0 * x["first_term"]
    y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int)
    enc = lib.Encoder(["signal", "first_term", "decision_in_window"], [])
    fits = {l2: lib.HazardModel.fit(x, y.to_numpy(), enc, 90, l2) for l2 in (0.0, 1e7)}
    w = {l2: dict(zip(m.state["numeric"], m.state["weights"], strict=True)) for l2, m in fits.items()}
    assert abs(w[1e7]["signal"]) < 0.01 < abs(w[0.0]["signal"])
    assert w[1e7]["first_term"] == pytest.approx(w[0.0]["first_term"], rel=0.25)
    assert w[0.0]["first_term"] > 0.3
