"""The fast numeric paths of churn training match the library code they replaced: the Platt fit
(Newton on two coefficients vs scikit-learn's LogisticRegression), the categorical encoding and the
drift profile's deciles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models import churn_lib as lib
from models.drift import BINS, psi, reference_profile


def _platt_case(n: int, a: float, b: float, seed: int, beta: float = 8.0):
    rng = np.random.default_rng(seed)
    raw = rng.beta(1.0, beta, n)
    z = lib._logit(raw)
    y = (rng.random(n) < 1 / (1 + np.exp(-(a * z + b)))).astype(int)
    return raw, z, y


@pytest.mark.parametrize(
    ("n", "a", "b", "seed", "former_atol"),
    [
        (20_000, 1.3, -0.4, 0, 1e-3),
        (400, 0.7, 0.5, 1, 1e-3),
        (5_000, -0.5, 0.2, 3, 1e-3),
        # few, well-separated positives: the former default stopped visibly short (~0.06 off)
        (8_000, 2.5, -3.0, 2, None),
    ],
)
def test_platt_newton_matches_sklearn_logistic_regression(n, a, b, seed, former_atol):
    from sklearn.linear_model import LogisticRegression

    raw, z, y = _platt_case(n, a, b, seed)
    cal = lib.PlattCalibrator().fit(raw, y)
    x = z.reshape(-1, 1)
    # the same objective solved to convergence: the same coefficients and scores
    tight = LogisticRegression(C=lib.PLATT_C, tol=1e-12, max_iter=10_000).fit(x, y)
    assert cal.a == pytest.approx(tight.coef_[0][0], abs=1e-6)
    assert cal.b == pytest.approx(tight.intercept_[0], abs=1e-6)
    np.testing.assert_allclose(cal(raw), tight.predict_proba(x)[:, 1], atol=1e-8)
    # the former call (default tolerance 1e-4, so it stops short of the optimum): close, and never
    # a better fit than the new one
    former = LogisticRegression(C=lib.PLATT_C, max_iter=1000).fit(x, y)
    if former_atol is not None:
        np.testing.assert_allclose(cal(raw), former.predict_proba(x)[:, 1], atol=former_atol)

    def objective(a_: float, b_: float) -> float:
        eta = a_ * z + b_
        return float(np.sum(np.logaddexp(0, eta) - y * eta)) + a_**2 / (2 * lib.PLATT_C)

    assert objective(cal.a, cal.b) <= objective(former.coef_[0][0], former.intercept_[0]) + 1e-9


def test_platt_needs_both_classes():
    with pytest.raises(ValueError, match="both classes"):
        lib.PlattCalibrator().fit(np.array([0.1, 0.2, 0.3]), np.array([0, 0, 0]))


def test_level_codes_match_pandas_categorical_codes():
    cases = [
        (pd.Series(["a", "b", None, "c", "a"]), ["a", "b"]),
        (pd.Series([1, 2, 3, 1]), ["1", "3"]),
        (pd.Series([1.0, np.nan, 2.0]), ["1.0"]),
        (pd.Series([], dtype="str"), ["a"]),
        (pd.Series([None, None], dtype=object), ["a"]),
    ]
    for col, levels in cases:
        ref = pd.Categorical(col.astype("string").where(col.astype("string").isin(levels)), categories=levels)
        expected = np.where(ref.codes < 0, np.nan, ref.codes.astype("float64"))
        np.testing.assert_array_equal(lib._level_codes(col, levels), expected)


def _profile_column_by_column(x: pd.DataFrame, columns: list[str]) -> dict:
    out = {}
    for c in columns:
        v = pd.to_numeric(x[c], errors="coerce").to_numpy(dtype="float64")
        ok = v[~np.isnan(v)]
        if ok.size == 0:
            continue
        edges = np.unique(np.quantile(ok, np.linspace(0, 1, BINS + 1)[1:-1]))
        bins = np.searchsorted(edges, ok, side="right")
        counts = np.append(np.bincount(bins, minlength=len(edges) + 1), np.isnan(v).sum()).astype(float)
        out[c] = {"edges": edges.tolist(), "shares": (counts / counts.sum()).tolist()}
    return out


def test_reference_profile_matches_quantiles_column_by_column():
    rng = np.random.default_rng(5)
    n = 3_000
    x = pd.DataFrame(
        {
            "normal": rng.normal(size=n),
            "ties": rng.integers(0, 4, n).astype(float),  # fewer distinct values than bins
            "holes": np.where(rng.random(n) < 0.2, np.nan, rng.exponential(size=n)),
            "empty": np.full(n, np.nan),
            "ints": rng.integers(0, 1000, n),
        }
    )
    cols = list(x.columns)
    ref = reference_profile(x, cols)
    assert ref == _profile_column_by_column(x, cols)
    assert "empty" not in ref
    assert len(ref["ties"]["edges"]) < BINS - 1
    assert psi(ref, x) == pytest.approx(dict.fromkeys(ref, 0.0), abs=1e-12)
