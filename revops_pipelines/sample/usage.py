"""Daily product usage per account while it is a customer.

``active_users ~ Binomial(seats, rate)`` with
``rate = sigmoid(-0.1 + h + adoption_offset) x weekday x holidays x onboarding ramp x incident dip x
exp(z)`` where ``z`` is a daily AR(1) (rho 0.7, sd 0.18) per account; sessions and events are
Poisson in active users and health; ``features_used`` (0..8) widens with health and team size.
Generated in chunks of accounts with their own child seeds, so memory stays flat at 50k accounts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit

CHUNK = 2048
WEEKDAY = np.array([0.97, 1.0, 1.0, 0.98, 0.86, 0.16, 0.10])
RHO, NOISE_SD = 0.7, 0.18


def build_usage(sim, seed: int, stream: int) -> pd.DataFrame:
    cal, n = sim.cal, sim.n
    n_days = cal.n_days
    dm = cal.day_month
    days = np.arange(n_days)
    md = np.datetime_as_string(cal.start64 + days, unit="D")
    holiday = np.array([s[5:] >= "12-24" or s[5:] == "01-01" for s in md.tolist()])
    season = WEEKDAY[cal.weekday] * np.where(holiday, 0.45, 1.0)
    # Row counts are known up front: fill preallocated columns chunk by chunk (no concatenation copies).
    rows_per = np.clip(sim.active_end - sim.active_start, 0, None).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(rows_per)])
    total = int(offsets[-1])
    col = {k: np.empty(total, dtype=np.int32) for k in ("acct", "day", "seats", "au", "ses", "ev")}
    col["fu"] = np.empty(total, dtype=np.int8)
    for c, lo in enumerate(range(0, n, CHUNK)):
        hi = min(n, lo + CHUNK)
        rng = np.random.default_rng([seed, stream, c])
        idx = np.arange(lo, hi)
        active = (days[None, :] >= sim.active_start[idx, None]) & (days[None, :] < sim.active_end[idx, None])
        h = np.nan_to_num(sim.h[idx][:, dm], nan=0.0)
        seats = np.where(active, sim.seats_m[idx][:, dm], 0)
        ramp = np.clip(0.3 + 0.7 * (days[None, :] - sim.cs[idx, None]) / 75.0, 0.3, 1.0)
        dip = np.ones((idx.size, n_days))
        ir, im = np.nonzero(sim.incident_day[idx] >= 0)
        for r, m in zip(ir.tolist(), im.tolist(), strict=True):
            d0 = int(sim.incident_day[lo + r, m])
            dip[r, d0 : d0 + int(sim.incident_len[lo + r, m])] = 0.35
        zt = rng.standard_normal((n_days, idx.size)) * (NOISE_SD * np.sqrt(1 - RHO**2))
        zt[0] *= 1.0 / np.sqrt(1 - RHO**2)  # start in the stationary distribution
        for d in range(1, n_days):  # AR(1) along days, vectorised over accounts (in place)
            zt[d] += RHO * zt[d - 1]
        z = zt.T
        rate = expit(-0.1 + h + sim.adoption[idx, None]) * season[None, :] * ramp * dip * np.exp(z)
        rate = np.clip(rate, 0.0, 0.97)
        au = rng.binomial(seats, rate)
        ses = rng.poisson(au * np.exp(0.35 + 0.2 * h))
        ev = rng.poisson(ses * 14.0 * np.exp(0.15 * h))
        q = expit(-1.4 + 0.8 * h + 0.35 * np.log1p(au))
        fu = np.where(au > 0, 1 + rng.binomial(7, q), 0)
        a_i, d_i = np.nonzero(active)
        sl = slice(int(offsets[lo]), int(offsets[hi]))
        col["acct"][sl] = a_i + lo
        col["day"][sl] = d_i
        col["seats"][sl] = seats[a_i, d_i]
        col["au"][sl] = au[a_i, d_i]
        col["ses"][sl] = ses[a_i, d_i]
        col["ev"][sl] = ev[a_i, d_i]
        col["fu"][sl] = fu[a_i, d_i]
        del h, seats, ramp, dip, zt, z, rate, au, ses, ev, q, fu, active, a_i, d_i
    categories = pd.Index(sim.account_id, dtype="str")
    acct = pd.Categorical.from_codes(col.pop("acct"), categories=categories)
    dates = cal.dates64(col.pop("day"))
    return pd.DataFrame(
        {
            "account_id": acct,
            "usage_date": dates,
            "seats": col.pop("seats"),
            "active_users": col.pop("au"),
            "sessions": col.pop("ses"),
            "events": col.pop("ev"),
            "features_used": col.pop("fu"),
        },
        copy=False,
    )
