"""Churn model code, free of Dagster: matrix preparation, time split, training, calibration,
evaluation against the oracle, scoring with per-feature contributions.

lightgbm and scikit-learn are imported inside functions so that loading definitions stays fast.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd


@dataclass
class TimeSplit:
    train_snapshots: list[str]
    calib_snapshots: list[str]
    eval_snapshots: list[str]


def time_split(snapshots: list, horizon_days: int, eval_months: int, calib_months: int = 2) -> TimeSplit:
    """Evaluation on the last ``eval_months`` labelled snapshots; training only on snapshots whose
    label window closes before the first evaluation snapshot (no label overlap across the split)."""
    snaps = sorted(pd.Timestamp(s) for s in set(snapshots))
    if len(snaps) < eval_months + calib_months + 2:
        raise ValueError(
            f"need at least {eval_months + calib_months + 2} labelled snapshots, have {len(snaps)}"
        )
    evals = snaps[-eval_months:]
    cutoff = evals[0] - pd.Timedelta(days=horizon_days)
    before = [s for s in snaps if s <= cutoff]
    if len(before) < calib_months + 2:
        raise ValueError("not enough history before the evaluation window for training and calibration")
    fmt = lambda xs: [s.date().isoformat() for s in xs]  # noqa: E731
    return TimeSplit(fmt(before[:-calib_months]), fmt(before[-calib_months:]), fmt(evals))


@dataclass
class Encoder:
    """Fixed categorical levels learnt at training time, so scoring sees the same codes."""

    features: list[str]
    categorical: list[str]
    levels: dict[str, list[str]] = field(default_factory=dict)

    def fit(self, df: pd.DataFrame) -> Encoder:
        self.levels = {c: sorted(df[c].dropna().astype(str).unique().tolist()) for c in self.categorical}
        return self

    def transform(self, df: pd.DataFrame) -> pd.DataFrame:
        x = df[self.features].copy()
        for c in self.features:
            if c in self.categorical:
                x[c] = pd.Categorical(x[c].astype("string"), categories=self.levels[c]).codes.astype(
                    "float64"
                )
                x.loc[x[c] < 0, c] = np.nan
            else:
                x[c] = pd.to_numeric(x[c], errors="coerce").astype("float64")
        return x

    def to_dict(self) -> dict:
        return {"features": self.features, "categorical": self.categorical, "levels": self.levels}

    @classmethod
    def from_dict(cls, d: dict) -> Encoder:
        return cls(d["features"], d["categorical"], d["levels"])


def fingerprint(df: pd.DataFrame) -> str:
    h = hashlib.sha256(pd.util.hash_pandas_object(df, index=False).values.tobytes())
    return h.hexdigest()[:16]


def train_booster(
    x: pd.DataFrame, y: np.ndarray, params: dict[str, Any], num_boost_round: int, cat: list[str]
):
    import lightgbm as lgb

    ds = lgb.Dataset(x, label=y, categorical_feature=[c for c in cat if c in x.columns], free_raw_data=False)
    return lgb.train(params, ds, num_boost_round=num_boost_round)


@dataclass
class PlattCalibrator:
    a: float = 1.0
    b: float = 0.0

    def fit(self, raw: np.ndarray, y: np.ndarray) -> PlattCalibrator:
        from sklearn.linear_model import LogisticRegression

        z = _logit(raw).reshape(-1, 1)
        lr = LogisticRegression(C=1e6, max_iter=1000).fit(z, y)
        self.a, self.b = float(lr.coef_[0][0]), float(lr.intercept_[0])
        return self

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(self.a * _logit(raw) + self.b)))


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype="float64"), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def precision_at_k(y: np.ndarray, score: np.ndarray, k: int) -> float:
    k = max(1, min(k, len(y)))
    top = np.argsort(-score, kind="stable")[:k]
    return float(np.mean(y[top]))


def classification_metrics(y: np.ndarray, p: np.ndarray, k: int) -> dict[str, float]:
    from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

    y = y.astype(int)
    return {
        "auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "log_loss": float(log_loss(y, np.clip(p, 1e-6, 1 - 1e-6), labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
        "precision_at_k": precision_at_k(y, p, k),
    }


def calibration_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> pd.DataFrame:
    df = pd.DataFrame({"y": y.astype(float), "p": p})
    df["bin"] = pd.qcut(df["p"].rank(method="first"), q=min(bins, len(df)), labels=False)
    return (
        df.groupby("bin").agg(predicted=("p", "mean"), observed=("y", "mean"), n=("y", "size")).reset_index()
    )


def calibration_png(model_tbl: pd.DataFrame, oracle_tbl: pd.DataFrame | None) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4), dpi=90)
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1, label="perfect")
    ax.plot(model_tbl["predicted"], model_tbl["observed"], "o-", label="model")
    if oracle_tbl is not None:
        ax.plot(oracle_tbl["predicted"], oracle_tbl["observed"], "s-", alpha=0.7, label="oracle")
    hi = float(max(model_tbl["predicted"].max(), model_tbl["observed"].max(), 0.05)) * 1.1
    ax.set_xlim(0, min(1, hi))
    ax.set_ylim(0, min(1, hi))
    ax.set_xlabel("predicted churn probability")
    ax.set_ylabel("observed churn rate")
    ax.set_title("Calibration (evaluation snapshots)")
    ax.legend(loc="upper left")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def contributions(booster, x: pd.DataFrame) -> np.ndarray:
    """Per-row feature contributions in log-odds (last column is the bias)."""
    return booster.predict(x, pred_contrib=True)


def top_factors(contrib_row: np.ndarray, names: list[str], values: pd.Series, n: int = 5) -> list[dict]:
    order = np.argsort(-np.abs(contrib_row[:-1]))[:n]
    out = []
    for i in order:
        v = values.iloc[i]
        out.append(
            {
                "feature": names[i],
                "value": None
                if pd.isna(v)
                else (float(v) if isinstance(v, int | float | np.number) else str(v)),
                "contribution": round(float(contrib_row[i]), 4),
            }
        )
    return out


def dumps_factors(factors: list[dict]) -> str:
    return json.dumps(factors, separators=(",", ":"))
