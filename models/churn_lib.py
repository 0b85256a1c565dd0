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
        """The model matrix: float64 columns in ``features`` order, categorical levels as their
        codes (an unseen or missing level: NaN); built as one block, which LightGBM reads without
        a copy per column."""
        cols = {}
        for c in self.features:
            if c in self.categorical:
                cols[c] = _level_codes(df[c], self.levels[c])
            else:
                cols[c] = pd.to_numeric(df[c], errors="coerce").to_numpy(dtype="float64")
        m = np.column_stack([cols[c] for c in self.features]) if cols else np.zeros((len(df), 0))
        return pd.DataFrame(m, index=df.index, columns=list(self.features))

    def to_dict(self) -> dict:
        return {"features": self.features, "categorical": self.categorical, "levels": self.levels}

    @classmethod
    def from_dict(cls, d: dict) -> Encoder:
        return cls(d["features"], d["categorical"], d["levels"])


def _level_codes(col: pd.Series, levels: list[str]) -> np.ndarray:
    """Position of each value (as text) in ``levels``, NaN when missing or unseen: what
    ``pd.Categorical(col.astype("string"), categories=levels).codes`` gives (-1 as NaN), looked up
    once per distinct value instead of once per row."""
    codes, uniques = pd.factorize(col)
    pos = pd.Index(levels, dtype="string").get_indexer(pd.Index(uniques).astype("string")).astype("float64")
    pos[pos < 0] = np.nan
    return np.where(codes < 0, np.nan, pos[np.maximum(codes, 0)]) if len(pos) else np.full(len(col), np.nan)


# Features the model derives from one feature-table row (same row only, so no new leakage risk).
DERIVED_FEATURES = ["decision_in_window", "first_term"]


def derive_features(df: pd.DataFrame, horizon_days: int) -> pd.DataFrame:
    """Add the contract-calendar features the churn process turns on.

    Churn is only decided at a renewal (annual contracts) or a bill (monthly contracts), so whether a
    decision falls inside the label horizon, and whether it is the first term's decision (riskier;
    for a monthly contract, the share of the window's bills that are among its first three), matter
    more than any usage signal. Both use only the row's own snapshot-time columns.
    """
    out = df.copy(deep=False)  # copy-on-write: the new columns never reach the caller's frame
    monthly = out["billing_frequency"].astype("string").eq("Monthly").fillna(False).to_numpy()
    tenure = pd.to_numeric(out["tenure_days"], errors="coerce").to_numpy(dtype="float64")
    to_renewal = pd.to_numeric(out["days_to_renewal"], errors="coerce").to_numpy(dtype="float64")
    out["decision_in_window"] = np.where(monthly, 1.0, (to_renewal <= horizon_days).astype("float64"))
    # monthly: the share of the window's bills that are among the first EARLY_MONTHLY_BILLS (riskier);
    # annual: whether the renewal in view is the first anniversary
    # (an unknown tenure counts as past the first term, as before)
    next_bill = np.floor(np.nan_to_num(np.maximum(tenure, 0), nan=1e9) / 30.0) + 1  # the next bill's index
    bills = max(1.0, round(horizon_days / 30))
    early = np.clip(EARLY_MONTHLY_BILLS + 1 - next_bill, 0, bills) / bills
    out["first_term"] = np.where(monthly, early, ((tenure + to_renewal) < 400).astype("float64"))
    return out


EARLY_MONTHLY_BILLS = 3  # a monthly contract's first bills, when customers still leave more often


# ---- the decision-hazard model -------------------------------------------------------------------
HAZARD_KIND = "decision_hazard_glm"


class HazardModel:
    """Churn as a hazard at each contract decision in the window, linear in the account's signals.

    ``P(churn in window) = 1 - (1 - sigmoid(eta)) ** n`` where ``n`` is the number of decisions in
    the window (an annual renewal inside it: 1, none: ``NO_DECISION``; a monthly contract: one per
    bill) and ``eta = intercept[segment, billing] + w . z``, ``z`` the standardised signals (``log1p``
    of non-negative unbounded ones; a missing value sits at the training mean with its own
    indicator). Fitted by penalised maximum likelihood (L2 on ``w``, not on the intercepts nor on
    the contract-calendar term ``first_term``, which is as structural as they are).

    Few churners per snapshot make trees noisy where it matters most, the top of the ranking; one
    slope per signal, shared by every segment and contract, needs far fewer of them. It offers what
    the scoring code uses of a LightGBM booster: ``predict`` (with ``pred_contrib``),
    ``feature_importance`` and ``model_to_string``; it is deterministic, so it ignores the seed.
    """

    UNPENALISED = ("first_term",)  # calendar terms fitted without the L2 penalty, like the intercepts
    NO_DECISION = 0.02  # an annual contract without a renewal in the window: near zero, ranked by signals

    def __init__(self, state: dict):
        self.state = state

    # -- fitting ---------------------------------------------------------------------------------
    @classmethod
    def fit(cls, x: pd.DataFrame, y: np.ndarray, enc: Encoder, horizon_days: int, l2: float) -> HazardModel:
        from scipy.optimize import minimize

        numeric = [c for c in enc.features if c not in enc.categorical and c != "decision_in_window"]
        transform = {}
        for c in numeric:
            v = x[c].to_numpy(dtype="float64")
            ok = v[~np.isnan(v)]
            transform[c] = "log1p" if len(ok) and ok.min() >= 0 and ok.max() > 1 else "identity"
        state = {
            "kind": HAZARD_KIND,
            "features": list(enc.features),
            "numeric": numeric,
            "transform": transform,
            "monthly_decisions": max(1.0, round(horizon_days / 30)),
            "monthly_code": cls._monthly_code(enc),
        }
        model = cls(state)
        raw = model._raw(x)
        mean = np.nanmean(raw, axis=0)
        sd = np.nanstd(raw, axis=0)
        mean = np.where(np.isnan(mean), 0.0, mean)
        sd = np.where(np.isnan(sd) | (sd == 0), 1.0, sd)
        state["mean"], state["sd"] = mean.tolist(), sd.tolist()
        state["missing"] = [c for i, c in enumerate(numeric) if np.isnan(raw[:, i]).any()]
        groups = model._groups(x)
        state["groups"] = sorted(set(groups))
        z = model._design(x)
        g = np.array([state["groups"].index(k) for k in groups])
        n = model._decisions(x)
        yy = y.astype("float64")
        k, ng = z.shape[1], len(state["groups"])
        # the contract calendar (like the segment/contract intercepts) is not shrunk: only the signals
        cols = numeric + state["missing"]
        pen = np.array([0.0 if c in cls.UNPENALISED else l2 for c in cols])
        onehot = np.zeros((len(g), ng))
        onehot[np.arange(len(g)), g] = 1.0
        m = np.hstack([z, onehot])

        def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
            eta = m @ w
            p = _sigmoid(eta)
            log_s = n * np.log1p(-np.minimum(p, 1 - 1e-12))  # survival through every decision
            surv = np.exp(log_s)
            churn = np.maximum(1.0 - surv, 1e-12)
            ll = yy * np.log(churn) + (1 - yy) * log_s
            d_log_s = -n * p
            grad_eta = yy * (-surv * d_log_s) / churn + (1 - yy) * d_log_s
            reg = float(np.sum(pen * w[:k] ** 2))
            grad = -(m.T @ grad_eta) + np.concatenate([2 * pen * w[:k], np.zeros(ng)])
            return -float(ll.sum()) + reg, grad

        rate = max(float(yy.mean()), 1e-4)
        w0 = np.concatenate([np.zeros(k), np.full(ng, float(_logit(np.array([rate]))[0]))])
        res = minimize(loss, w0, jac=True, method="L-BFGS-B", options={"maxiter": 5000})
        state["weights"] = res.x[:k].tolist()
        state["intercepts"] = res.x[k:].tolist()
        state["base_intercept"] = float(np.average(res.x[k:], weights=onehot.sum(axis=0)))
        return model

    @staticmethod
    def _monthly_code(enc: Encoder) -> float | None:
        levels = enc.levels.get("billing_frequency", [])
        return float(levels.index("Monthly")) if "Monthly" in levels else None

    # -- design ----------------------------------------------------------------------------------
    def _raw(self, x: pd.DataFrame) -> np.ndarray:
        cols = []
        for c in self.state["numeric"]:
            v = x[c].to_numpy(dtype="float64")
            if self.state["transform"][c] == "log1p":
                v = np.log1p(np.maximum(v, 0.0))
            cols.append(v)
        return np.column_stack(cols) if cols else np.zeros((len(x), 0))

    def _design(self, x: pd.DataFrame) -> np.ndarray:
        raw = self._raw(x)
        z = (raw - np.asarray(self.state["mean"])) / np.asarray(self.state["sd"])
        miss = [
            np.isnan(raw[:, self.state["numeric"].index(c)]).astype("float64") for c in self.state["missing"]
        ]
        z = np.where(np.isnan(z), 0.0, z)
        return np.column_stack([z, *miss]) if miss else z

    def _groups(self, x: pd.DataFrame) -> list[str]:
        def code(c: str) -> np.ndarray:
            return x[c].to_numpy(dtype="float64") if c in x.columns else np.full(len(x), np.nan)

        seg, bill = code("segment"), code("billing_frequency")
        return [f"{a:g}|{b:g}" for a, b in zip(seg, bill, strict=True)]

    def _decisions(self, x: pd.DataFrame) -> np.ndarray:
        bill = x["billing_frequency"].to_numpy(dtype="float64") if "billing_frequency" in x else None
        monthly = (
            np.zeros(len(x), bool)
            if bill is None or self.state["monthly_code"] is None
            else bill == self.state["monthly_code"]
        )
        window = x["decision_in_window"].to_numpy(dtype="float64")
        annual = np.where(window > 0, 1.0, self.NO_DECISION)
        return np.where(monthly, float(self.state["monthly_decisions"]), annual)

    def _eta(self, x: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        z = self._design(x)
        w = np.asarray(self.state["weights"])
        lookup = dict(zip(self.state["groups"], self.state["intercepts"], strict=True))
        icpt = np.array([lookup.get(k, self.state["base_intercept"]) for k in self._groups(x)])
        return z, w, icpt

    # -- the booster interface -------------------------------------------------------------------
    def predict(self, x: pd.DataFrame, pred_contrib: bool = False) -> np.ndarray:
        z, w, icpt = self._eta(x)
        eta = z @ w + icpt
        n = self._decisions(x)
        prob = -np.expm1(n * np.log1p(-_sigmoid(eta)))
        if not pred_contrib:
            return prob
        # log-odds contributions: each signal's share of eta, the segment/contract intercept against
        # the average one, and the decisions in the window (what turns eta into the window's log-odds)
        feats = self.state["features"]
        out = np.zeros((len(x), len(feats) + 1))
        nz = len(self.state["numeric"])
        for i, c in enumerate(self.state["numeric"]):
            out[:, feats.index(c)] += z[:, i] * w[i]
        for j, c in enumerate(self.state["missing"]):
            out[:, feats.index(c)] += z[:, nz + j] * w[nz + j]
        base = self.state["base_intercept"]
        if "segment" in feats:
            out[:, feats.index("segment")] += icpt - base
        if "decision_in_window" in feats:
            out[:, feats.index("decision_in_window")] += _logit(prob) - eta
        out[:, -1] = base
        return out

    def feature_importance(self, importance_type: str = "gain") -> np.ndarray:
        """Absolute standardised weight per feature (missing indicators added to their feature)."""
        feats = self.state["features"]
        imp = np.zeros(len(feats))
        w = np.abs(np.asarray(self.state["weights"]))
        names = self.state["numeric"] + self.state["missing"]
        for c, v in zip(names, w, strict=True):
            imp[feats.index(c)] += v
        return imp

    def model_to_string(self) -> str:
        return HAZARD_KIND + "\n" + json.dumps(self.state, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_string(cls, text: str) -> HazardModel:
        head, _, body = text.partition("\n")
        if head != HAZARD_KIND:
            raise ValueError(f"not a {HAZARD_KIND} model")
        return cls(json.loads(body))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))


def load_model_text(text: str):
    """A stored churn model: the decision-hazard model or a LightGBM booster (by its first line)."""
    if text.startswith(HAZARD_KIND + "\n"):
        return HazardModel.from_string(text)
    import lightgbm as lgb

    return lgb.Booster(model_str=text)


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
        """Logistic regression of ``y`` on ``logit(raw)``: the fit scikit-learn's
        ``LogisticRegression(C=1e6)`` makes (its L2 penalty ``a**2 / (2 C)`` on the slope, none on
        the intercept), solved exactly by Newton's method on the two coefficients (a few ms, one
        thread, where scikit-learn took ~100 ms and started BLAS threads)."""
        self.a, self.b = _platt_newton(_logit(raw), np.asarray(y, dtype="float64"), c=PLATT_C)
        return self

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(self.a * _logit(raw) + self.b)))


PLATT_C = 1e6  # inverse L2 strength on the Platt slope (scikit-learn's C; near-unpenalised)


def _platt_newton(z: np.ndarray, y: np.ndarray, c: float, max_iter: int = 100) -> tuple[float, float]:
    """Minimise ``sum(log(1 + exp(eta)) - y * eta) + a**2 / (2 c)``, ``eta = a * z + b``: damped
    Newton on (a, b) from the constant model; stops when a step moves both by less than 1e-12."""
    if len(np.unique(y)) < 2:
        raise ValueError("Platt calibration needs both classes in the calibration rows")
    rate = float(np.clip(y.mean(), 1e-12, 1 - 1e-12))
    a, b = 0.0, float(np.log(rate / (1 - rate)))

    def objective(a: float, b: float) -> float:
        eta = a * z + b
        return float(np.sum(np.logaddexp(0.0, eta) - y * eta)) + a * a / (2 * c)

    f = objective(a, b)
    for _ in range(max_iter):
        # element-wise products and sums, no BLAS call (a threaded BLAS dot over ~10^5 rows starts
        # threads that fight LightGBM's OpenMP ones on a small host)
        p = _sigmoid(a * z + b)
        r, s = p - y, p * (1 - p)
        sz = s * z
        g = np.array([float(np.sum(r * z)) + a / c, float(np.sum(r))])
        h_ab = float(np.sum(sz))
        h = np.array([[float(np.sum(sz * z)) + 1 / c, h_ab], [h_ab, float(np.sum(s))]])
        da, db = np.linalg.solve(h, g)
        t = 1.0
        while t > 1e-10:  # halve the step until the objective does not rise
            fa = objective(a - t * da, b - t * db)
            if fa <= f:
                break
            t /= 2
        else:
            break
        a, b, f = a - t * da, b - t * db, fa
        if max(abs(t * da), abs(t * db)) < 1e-12:
            break
    return float(a), float(b)


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


# ---- one training run, shared by the assets and the benchmark ------------------------------------
def validation_train_snapshots(split: TimeSplit, horizon_days: int) -> list[str]:
    """Training snapshots whose label window closes before the first validation (calibration)
    snapshot: the candidates are compared as the holdout grades, across a gap of one label horizon."""
    cutoff = pd.Timestamp(split.calib_snapshots[0]) - pd.Timedelta(days=horizon_days)
    return [s for s in split.train_snapshots if pd.Timestamp(s) <= cutoff]


def _select(frames, xs, ys, split: TimeSplit, horizon_days: int, k_share: float, fit_raw) -> dict:
    """model="auto": fit every candidate on the same snapshots, score them on the validation
    (calibration) snapshots with ``validation_score`` on realised labels, keep the best."""
    val_train = validation_train_snapshots(split, horizon_days)
    rows = frames["train"]["snapshot_date"].isin(val_train).to_numpy()
    gap = len(val_train) >= 2 and len(np.unique(ys["train"][rows])) == 2
    if not gap:  # too little history for a gap: the candidates fitted on every training snapshot
        val_train, rows = list(split.train_snapshots), np.ones(len(rows), bool)
    x_fit, y_fit = xs["train"][rows], ys["train"][rows]
    k_val = max(1, int(len(ys["calib"]) * k_share))
    scores, candidates = {}, {}
    for m in AUTO_CANDIDATES:
        raw = fit_raw(m, x_fit, y_fit).predict(xs["calib"])
        scores[m] = validation_score(ys["calib"], raw)
        vm = classification_metrics(ys["calib"], raw, k_val)
        candidates[m] = {
            "validation_auc": vm["auc"],
            "validation_pr_auc": scores[m],
            "validation_precision_at_k": vm["precision_at_k"],
        }
    chosen, why = select_model(scores)
    gap_days = (pd.Timestamp(split.calib_snapshots[0]) - pd.Timestamp(val_train[-1])).days
    if not gap:
        why += f" (no label gap: fewer than 2 training snapshots end {horizon_days} days before validation)"
    return {
        "chosen": chosen,
        "reason": why,
        "criterion": SELECTION_CRITERION,
        "validation_train_snapshots": list(val_train),
        "validation_snapshots": list(split.calib_snapshots),
        "validation_gap_days": gap_days,
        "holdout_snapshots": list(split.eval_snapshots),
        "validation_k": k_val,
        "candidates": candidates,
    }


@dataclass
class ChurnFit:
    booster: Any
    encoder: Encoder
    calibrator: PlattCalibrator
    split: TimeSplit
    rows: dict[str, int]
    metrics: dict[str, dict[str, float]]
    k: int
    eval_keys: pd.DataFrame  # account_id, snapshot_date of the holdout rows
    p_eval: np.ndarray
    y_eval: np.ndarray
    oracle_table: pd.DataFrame | None
    importance: list[tuple[str, float]]
    data_fingerprint: str
    reference: dict[str, dict]
    model_type: str = "lgbm"  # the type that was fitted (with "auto": the one selected)
    selection: dict | None = None  # with "auto": the candidates' metrics and the choice, see select_model


MODEL_TYPES = ("lgbm", "hazard_glm")
# with "auto", a tie on the validation score goes to the earlier entry (the one with fewer parameters)
AUTO_CANDIDATES = ("hazard_glm", "lgbm")
SELECTION_CRITERION = (
    "higher PR-AUC (average precision, realised labels) on the validation (= calibration) snapshots, which end at least the label "
    "horizon before the first held-out snapshot, of both candidates fitted on the training snapshots whose "
    "label window closes before the first validation snapshot; the kept type is then refitted on all "
    "training snapshots; a tie goes to hazard_glm"
)


def validation_score(y: np.ndarray, p: np.ndarray) -> float:
    """The criterion of ``model="auto"``: average precision (PR-AUC) of ``p`` against the realised
    labels. The score serves a ranking of which only the top is acted on; average precision weighs the
    top of the ranking, where AUC weighs every pair of a churner and a stayer alike (on a world where
    LightGBM's AUC was higher, its top-50 held fewer churners)."""
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(y.astype(int), p))


def select_model(scores: dict[str, float]) -> tuple[str, str]:
    """The candidate with the highest validation score (ties: the first in ``scores``), and why."""
    best = max(scores, key=lambda m: (scores[m], -list(scores).index(m)))
    others = ", ".join(f"{m} {v:.4f}" for m, v in scores.items() if m != best)
    return best, f"validation PR-AUC {scores[best]:.4f} against {others}"


def fit_churn(
    df: pd.DataFrame,
    *,
    features: list[str],
    categorical: list[str],
    params: dict[str, Any],
    num_boost_round: int,
    horizon_days: int,
    eval_months: int,
    calib_months: int = 2,
    k_share: float = 0.05,
    oracle: pd.DataFrame | None = None,
    model: str = "lgbm",
    hazard_l2: float = 30.0,
) -> ChurnFit:
    """Time split → a model on the past → Platt on the next snapshots → metrics on the latest ones.

    ``model`` is ``"lgbm"``, ``"hazard_glm"`` or ``"auto"``: both fitted on the same training
    snapshots, each Platt-calibrated on the calibration snapshots, and the one with the higher
    ``validation_score`` on those (earlier than the held-out ones) kept; ``ChurnFit.selection`` then
    records both candidates' validation and held-out metrics and the choice. ``df`` holds labelled feature rows (``snapshot_date`` as ISO text); ``oracle`` optionally holds
    ``account_id, snapshot_date, churn_probability`` for grading the holdout against the truth.
    """
    from models.drift import reference_profile

    df = derive_features(df, horizon_days)
    split = time_split(df["snapshot_date"].unique().tolist(), horizon_days, eval_months, calib_months)
    part = {"train": split.train_snapshots, "calib": split.calib_snapshots, "eval": split.eval_snapshots}
    frames = {k: df[df["snapshot_date"].isin(v)].reset_index(drop=True) for k, v in part.items()}
    enc = Encoder(list(features), [c for c in categorical if c in features]).fit(frames["train"])
    # the calibration and held-out rows as one matrix (both are predicted together), sliced per part
    n_calib = len(frames["calib"])
    x_held = enc.transform(pd.concat([frames["calib"], frames["eval"]], ignore_index=True))
    xs = {
        "train": enc.transform(frames["train"]),
        "calib": x_held.iloc[:n_calib],
        "eval": x_held.iloc[n_calib:],
    }
    ys = {k: f["churned_in_horizon"].astype(int).to_numpy() for k, f in frames.items()}
    for k, yv in ys.items():
        if len(np.unique(yv)) < 2:
            raise ValueError(f"the {k} snapshots {part[k]} hold only one class: not enough churners to train")
    if model not in (*MODEL_TYPES, "auto"):
        raise ValueError(f"model: expected 'lgbm', 'hazard_glm' or 'auto', got {model!r}")
    k = max(1, int(len(frames["eval"]) * k_share))
    keys = frames["eval"][["account_id", "snapshot_date"]]
    p_oracle = None
    if oracle is not None and len(oracle):
        ev = keys.merge(oracle, how="left", on=["account_id", "snapshot_date"])
        if ev["churn_probability"].notna().all():
            p_oracle = ev["churn_probability"].to_numpy()

    def fit_raw(kind: str, x: pd.DataFrame, y: np.ndarray):
        if kind == "hazard_glm":
            return HazardModel.fit(x, y, enc, horizon_days, hazard_l2)
        return train_booster(x, y, params, num_boost_round, enc.categorical)

    def fit_one(kind: str):
        b = fit_raw(kind, xs["train"], ys["train"])
        raw = b.predict(x_held)  # the calibration and held-out rows in one call
        c = PlattCalibrator().fit(raw[:n_calib], ys["calib"])
        return b, c, c(raw[n_calib:])

    selection = None
    if model == "auto":
        selection = _select(frames, xs, ys, split, horizon_days, k_share, fit_raw)
        # every candidate is refitted on all training snapshots; their held-out metrics are recorded
        # after the choice and never enter it
        fitted = {m: fit_one(m) for m in AUTO_CANDIDATES}
        for m, (_, _, p) in fitted.items():
            hm = classification_metrics(ys["eval"], p, k)
            selection["candidates"][m].update(
                {
                    "holdout_auc": hm["auc"],
                    "holdout_pr_auc": hm["pr_auc"],
                    "holdout_precision_at_k": hm["precision_at_k"],
                }
            )
        model = selection["chosen"]
        booster, calibrator, p_eval = fitted[model]
    else:
        booster, calibrator, p_eval = fit_one(model)
    metrics = {"model": classification_metrics(ys["eval"], p_eval, k)}
    oracle_tbl = None
    if p_oracle is not None:
        metrics["oracle"] = classification_metrics(ys["eval"], p_oracle, k)
        oracle_tbl = calibration_table(ys["eval"], p_oracle)
    gain = booster.feature_importance(importance_type="gain")
    importance = sorted(zip(enc.features, (float(g) for g in gain), strict=True), key=lambda t: -t[1])
    fp = fingerprint(frames["train"][["account_id", "snapshot_date", *features, "churned_in_horizon"]])
    return ChurnFit(
        booster=booster,
        encoder=enc,
        calibrator=calibrator,
        split=split,
        rows={k: len(f) for k, f in frames.items()},
        metrics=metrics,
        k=k,
        eval_keys=keys,
        p_eval=p_eval,
        y_eval=ys["eval"],
        oracle_table=oracle_tbl,
        importance=importance,
        data_fingerprint=fp,
        reference=reference_profile(xs["train"], [c for c in enc.features if c not in enc.categorical]),
        model_type=model,
        selection=selection,
    )


def score(booster, enc: Encoder, cal: PlattCalibrator, df: pd.DataFrame, horizon_days: int) -> np.ndarray:
    """Calibrated churn probabilities of feature rows with a stored model."""
    missing = [c for c in enc.features if c not in DERIVED_FEATURES and c not in df.columns]
    if missing:
        raise ValueError(f"the feature table lacks columns the model was trained on: {missing}")
    return cal(booster.predict(enc.transform(derive_features(df, horizon_days))))
