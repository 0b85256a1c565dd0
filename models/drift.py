"""Feature drift: population stability index (PSI) of current feature rows against the distribution
the serving model was trained on. Dagster-free; the reference profile is stored in the model's
metadata at training time."""

from __future__ import annotations

import numpy as np
import pandas as pd

BINS = 10
EPS = 1e-4


def reference_profile(x: pd.DataFrame, columns: list[str]) -> dict[str, dict]:
    """Decile edges and the share of training rows per bin (plus the missing share) per feature."""
    out: dict[str, dict] = {}
    for c in columns:
        v = pd.to_numeric(x[c], errors="coerce").to_numpy(dtype="float64")
        ok = v[~np.isnan(v)]
        if ok.size == 0:
            continue
        edges = np.unique(np.quantile(ok, np.linspace(0, 1, BINS + 1)[1:-1]))
        out[c] = {"edges": edges.tolist(), "shares": _shares(v, edges).tolist()}
    return out


def _shares(v: np.ndarray, edges: np.ndarray) -> np.ndarray:
    miss = np.isnan(v)
    counts = np.bincount(np.searchsorted(edges, v[~miss], side="right"), minlength=len(edges) + 1)
    counts = np.append(counts, miss.sum()).astype("float64")
    return counts / max(1.0, counts.sum())


def psi(reference: dict[str, dict], x: pd.DataFrame) -> dict[str, float]:
    """PSI per feature (0 = same distribution; > 0.2 is the usual 'significant shift')."""
    out = {}
    for c, ref in reference.items():
        if c not in x.columns:
            continue
        v = pd.to_numeric(x[c], errors="coerce").to_numpy(dtype="float64")
        cur = _shares(v, np.asarray(ref["edges"])) + EPS
        base = np.asarray(ref["shares"]) + EPS
        out[c] = float(np.sum((cur - base) * np.log(cur / base)))
    return out
