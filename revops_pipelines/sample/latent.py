"""The hidden process behind the sample world: latent account health and the churn decision.

State
    Each account ``i`` has a baseline ``mu_i`` (segment mean + N(0, BASELINE_SD²)) and a monthly
    deviation ``x_{i,t}`` that lives on a fixed grid ``GRID`` (121 points in [-4, 4]). Health in
    month ``t`` is ``h_{i,t} = mu_i + x_{i,t}``; it is constant within the month.

Transition (one step per calendar month, time-homogeneous, per segment ``g``)
    A shock component ``c`` is drawn first: none, champion leaves, incident/outage, or a new
    executive sponsor (probabilities ``SHOCK_PROB[g]``). Given ``c``, the next deviation is
    ``phi * x + m_c + N(0, SIGMA² + s_c²)`` discretised onto ``GRID`` (mass of each grid cell, tails
    folded into the end cells). The mixture over ``c`` is the segment kernel ``K_g`` (G×G, rows sum
    to 1). Because the simulation samples exactly from these discrete kernels, the oracle below is
    exact (no discretisation error between generator and oracle).

Churn decision
    Annual contracts decide at each anniversary of ``Customer_Since__c``; monthly-billed contracts
    at each monthly billing date. A decision on a date in month ``t`` churns with probability
    ``sigmoid(a_{g,billing} + tenure_term - B * h_{i,t})`` (``tenure_term``: first annual renewal, or
    the first three monthly bills). Draws are independent given the health path, and nothing that
    happens after the snapshot feeds back into the health path.

Oracle
    For a snapshot ``s`` (first day of month ``k``) the latent state is ``(mu_i, x_{i,k})`` plus the
    known contract calendar. The churn probability within ``(s, s + H]`` is
    ``1 - E[ prod_{decisions d in window} (1 - p_d(h_{m(d)})) | x_k ]``, computed by the exact
    backward recursion ``V_j = f_j * (K_g V_{j+1})`` over the months of the window, where ``f_j`` is
    the survival factor of the decisions in month ``k + j`` as a function of the grid state. The
    observed signals are functions of the health path up to the snapshot plus independent noise, so
    given the latent state they carry no further information about the future: no model built on
    observed data can beat the oracle in expectation.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, ndtr

SEGMENTS = ("Enterprise", "Mid-Market", "SMB")
BILLING = ("Annual", "Monthly")

GRID = np.linspace(-4.0, 4.0, 121)
G = GRID.size
PHI = 0.80
SIGMA = 0.30

# Shock components: (name, mean jump, extra sd). Component 0 is "no shock".
SHOCKS = (
    ("none", 0.0, 0.0),
    ("champion_left", -1.30, 0.35),
    ("incident", -0.90, 0.30),
    ("exec_sponsor", 0.80, 0.30),
)
# Monthly probability of each shock component per segment (champion loss hurts small teams more often).
SHOCK_PROB = np.array(
    [
        [0.010, 0.010, 0.012],  # Enterprise: champion_left, incident, exec_sponsor
        [0.013, 0.011, 0.012],  # Mid-Market
        [0.016, 0.012, 0.010],  # SMB
    ]
)
BASELINE_MEAN = np.array([0.35, 0.15, -0.05])
BASELINE_SD = 0.55
# Onboarding deviation for accounts that start inside the world (discretised normal).
ONBOARD_MEAN, ONBOARD_SD = -0.15, 0.55

# Churn logit: a[segment, billing] + tenure term - B * health.
CHURN_B = 1.7
CHURN_A = np.array(
    [
        [-3.15, -5.0],  # Enterprise (always annual in this world)
        [-2.85, -5.0],  # Mid-Market (always annual)
        [-2.50, -5.45],  # SMB annual / monthly (per monthly bill)
    ]
)
FIRST_RENEWAL_BONUS = 0.45  # annual: first anniversary is riskier
EARLY_MONTHLY_BONUS = 0.55  # monthly: bills 1..3 are riskier
EARLY_MONTHLY_BILLS = 3


def _component_kernels() -> np.ndarray:
    """(C, G, G) discretised transition kernels, one per shock component."""
    edges = (GRID[1:] + GRID[:-1]) / 2.0
    out = np.empty((len(SHOCKS), G, G))
    for c, (_, m, s) in enumerate(SHOCKS):
        mean = PHI * GRID + m
        sd = np.sqrt(SIGMA**2 + s**2)
        cdf = ndtr((edges[None, :] - mean[:, None]) / sd)  # (G, G-1)
        cdf = np.concatenate([np.zeros((G, 1)), cdf, np.ones((G, 1))], axis=1)
        out[c] = np.diff(cdf, axis=1)
    return out


COMPONENT_KERNELS = _component_kernels()
COMPONENT_CUM = np.cumsum(COMPONENT_KERNELS, axis=2)
COMPONENT_CUM[:, :, -1] = 1.0


def component_probs(segment: int) -> np.ndarray:
    p = SHOCK_PROB[segment]
    return np.concatenate([[1.0 - p.sum()], p])


def segment_kernel(segment: int) -> np.ndarray:
    """Mixture kernel K_g (G, G): K[i, j] = P(x_{t+1} = GRID[j] | x_t = GRID[i])."""
    return np.tensordot(component_probs(segment), COMPONENT_KERNELS, axes=1)


KERNELS = np.stack([segment_kernel(g) for g in range(len(SEGMENTS))])


def stationary(segment: int) -> np.ndarray:
    """Stationary distribution of K_g (used for accounts that were already customers at world start)."""
    k = KERNELS[segment]
    pi = np.full(G, 1.0 / G)
    for _ in range(2000):
        nxt = pi @ k
        if np.abs(nxt - pi).max() < 1e-14:
            pi = nxt
            break
        pi = nxt
    return pi / pi.sum()


def discretised_normal(mean: float, sd: float) -> np.ndarray:
    edges = (GRID[1:] + GRID[:-1]) / 2.0
    cdf = np.concatenate([[0.0], ndtr((edges - mean) / sd), [1.0]])
    return np.diff(cdf)


def sample_from(cum_rows: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-CDF sampling: ``cum_rows`` (n, G) cumulative rows, ``u`` (n,) uniforms -> grid index."""
    idx = (cum_rows < u[:, None]).sum(axis=1)
    return np.minimum(idx, G - 1)


def churn_intercept(segment: np.ndarray, monthly: np.ndarray, first_term: np.ndarray) -> np.ndarray:
    """The part of the churn logit that does not depend on health."""
    a = CHURN_A[segment, monthly.astype(int)]
    bonus = np.where(monthly, EARLY_MONTHLY_BONUS, FIRST_RENEWAL_BONUS)
    return a + np.where(first_term, bonus, 0.0)


def churn_prob(intercept: np.ndarray, health: np.ndarray) -> np.ndarray:
    return expit(intercept - CHURN_B * health)


def oracle_churn_probability(
    x_idx: np.ndarray,
    segment: np.ndarray,
    mu: np.ndarray,
    intercepts: np.ndarray,
    chunk: int = 32768,
) -> np.ndarray:
    """Exact P(churn in window | latent state at snapshot).

    ``intercepts`` is (n, J+1): the churn intercept of the decision in month ``k + j`` of the
    window (NaN where that month has no decision in the window). Row ``r`` starts in grid state
    ``x_idx[r]`` in month ``k``. Returns an (n,) array of probabilities.
    """
    n, width = intercepts.shape
    out = np.zeros(n)
    has_any = ~np.all(np.isnan(intercepts), axis=1)
    for g in range(len(SEGMENTS)):
        kt = KERNELS[g].T.copy()
        rows = np.flatnonzero(has_any & (segment == g))
        for lo in range(0, rows.size, chunk):
            r = rows[lo : lo + chunk]
            h = mu[r][:, None] + GRID[None, :]  # (m, G)
            ints = intercepts[r]
            # last non-empty relative month per row bounds the recursion; run to the global max.
            v = np.ones((r.size, G))
            for j in range(width - 1, -1, -1):
                if j < width - 1:
                    v = v @ kt
                a = ints[:, j]
                dec = ~np.isnan(a)
                if dec.any():
                    f = 1.0 - churn_prob(np.where(dec, a, 0.0)[:, None], h)
                    v = np.where(dec[:, None], v * f, v)
            out[r] = 1.0 - v[np.arange(r.size), x_idx[r]]
    return np.clip(out, 0.0, 1.0)
