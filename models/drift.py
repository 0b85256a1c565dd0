"""Feature drift: population stability index (PSI) of current feature rows against the distribution
the serving model was trained on. Dagster-free; the reference profile is stored in the model's
metadata at training time."""

from __future__ import annotations

import numpy as np
import pandas as pd

BINS = 10
EPS = 1e-4


def reference_profile(x: pd.DataFrame, columns: list[str]) -> dict[str, dict]:
    """Decile edges and the share of training rows per bin (plus the missing share) per feature.

    The deciles of every column without missing values come from one ``np.quantile`` over the
    stacked columns (the same values as column by column); a column with missing values is done on
    its own, over its known values."""
    out: dict[str, dict] = {}
    values = {c: pd.to_numeric(x[c], errors="coerce").to_numpy(dtype="float64") for c in columns}
    qs = np.linspace(0, 1, BINS + 1)[1:-1]
    full = [c for c, v in values.items() if v.size and not np.isnan(v).any()]
    deciles: dict[str, np.ndarray] = {}
    if full:
        q = np.quantile(np.column_stack([values[c] for c in full]), qs, axis=0)
        deciles = {c: q[:, i] for i, c in enumerate(full)}
    for c, v in values.items():
        if c in deciles:
            q = deciles[c]
        else:
            ok = v[~np.isnan(v)]
            if ok.size == 0:
                continue
            q = np.quantile(ok, qs)
        edges = np.unique(q)
        out[c] = {"edges": edges.tolist(), "shares": _shares(v, edges).tolist()}
    return out


def _shares(v: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of ``v`` per bin ``[edges[i-1], edges[i])`` (open at both ends), then the missing share:
    the counts ``np.searchsorted(edges, v, side="right")`` gives, from one comparison per edge."""
    miss = np.isnan(v)
    below = np.array([np.count_nonzero(v < e) for e in edges], dtype="int64")  # NaN compares False
    n_ok = v.size - int(miss.sum())
    counts = np.diff(np.concatenate([[0], below, [n_ok]]))
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
