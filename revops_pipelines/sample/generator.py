"""Deterministic sample RevOps world with ground truth.

``generate_world(WorldConfig(...))`` simulates a B2B SaaS vendor ("Beacon", a revenue-analytics SaaS) and its customer
base, then renders what the vendor's systems would hold: Salesforce (Account, Contact, Opportunity,
Case, Task), HubSpot (companies, contacts; deals and engagements for the SMB slice), Gong (calls, transcripts), Stripe-like invoices and daily
product usage — plus the hidden truth (per-account latent parameters) and the churn oracle.

Hidden process (see :mod:`revops_pipelines.sample.latent` for the exact maths)
    * Each account has a segment (Enterprise / Mid-Market / SMB), a contract (annual, or monthly for
      ~65% of SMB), a latent baseline ``mu`` and a monthly health ``h_t = mu + x_t`` where ``x`` is a
      discretised AR(1) (phi 0.8) with jump shocks: champion leaves (-1.3), incident/outage (-0.9),
      new executive sponsor (+0.8). Accounts already customers at world start begin in the
      stationary distribution; new logos begin from an onboarding distribution.
    * Churn is decided only at contract decision dates: anniversaries for annual contracts, every
      monthly bill for monthly ones, with probability ``sigmoid(a_{segment,billing} + tenure - 1.7 h)``
      (first renewal / first three bills are riskier). Churn per customer-year comes out around
      7% Enterprise, 11% Mid-Market, 16% SMB (about 13% overall; ``sanity.churn_rates``).
    * Every observed signal is a noisy function of the health path up to its own time: product
      usage (adoption, sessions, breadth, weekly seasonality, incident dips), support tickets (volume,
      priority mix, incident bursts, ownership-transfer questions after a champion leaves), Gong call
      frequency (onboarding, renewal windows, escalations), call wording (sentiment, topics,
      cancellation and competitor mentions), invoice payment behaviour, MEDDPICC completeness of
      opportunities (at creation time), contacts (a new champion appears after one leaves), seat
      expansions and downsells. No column is pure noise.
    * The oracle (``truth/churn_oracle.parquet``) is the exact probability, given the latent state at
      each monthly snapshot, that the account churns within ``(snapshot, snapshot + horizon]``.
      Snapshots are the first of each month from start + 6 months while snapshot + horizon <= end
      (a 6-month world therefore has an empty oracle).

Memory: ``generate_world`` keeps everything in memory (about 6.5 GB at 50,000 accounts, mostly
Gong calls and transcripts); ``generate_to_dir`` streams part by part (about 2 GB at 50,000).
Worlds above 10,000 accounts render shorter transcripts (fewer sentences per topic, no small talk).

Leakage hazards that are *realistic on purpose* (a feature builder must handle them): CRM records
show their final state (``StageName``, ``IsWon``, ``Probability``, ``Type``, ``Churn_Date__c``,
``Seats__c``, ``ARR__c``, case ``Status``, invoice ``status``), so anything "as of a snapshot" must be
rebuilt from dated fields (``CreatedDate``, ``CloseDate``, ``ClosedDate``, ``created``,
``status_transitions.paid_at``).

Determinism: every random draw comes from ``numpy.random.default_rng([seed, stream])`` with a fixed
stream number per entity type; ids come from :mod:`revops_pipelines.sample.ids`; nothing reads the
clock. Same seed and config give byte-identical files.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from revops_pipelines.errors import ValidationFailed
from revops_pipelines.sample import latent as L
from revops_pipelines.sample import text as T
from revops_pipelines.sample.clock import DAY, Calendar
from revops_pipelines.sample.ids import sf_ids

GENERATOR_VERSION = "1.5.0"
MAX_ACCOUNTS = 50_000
NEVER = 10**9  # day sentinel for "never" (no churn, contact never leaves)

# Stream numbers for numpy.random.default_rng([seed, stream]); never reuse or renumber.
S_ACCOUNTS, S_LATENT, S_DECISIONS, S_CONTRACTS, S_CONTACTS, S_OPPS = 1, 2, 3, 4, 5, 6
S_CASES, S_CALLS, S_TRANSCRIPTS, S_INVOICES, S_USAGE, S_HUBSPOT, S_USERS = 7, 8, 9, 10, 11, 12, 13
S_TASKS, S_HUBSPOT_ACTIVITY = 14, 15


@dataclass
class WorldConfig:
    """What to generate. Validated on construction and again by :func:`generate_world`."""

    seed: int = 7
    accounts: int = 1000
    start: date = date(2024, 1, 1)
    months: int = 24
    horizons_days: tuple[int, ...] = (90,)

    def __post_init__(self) -> None:
        if isinstance(self.horizons_days, list):
            self.horizons_days = tuple(self.horizons_days)
        self.validate()

    def validate(self) -> None:
        problems: list[str] = []

        def is_int(v: object) -> bool:
            return isinstance(v, int | np.integer) and not isinstance(v, bool)

        if not is_int(self.seed):
            problems.append(f"seed: must be an integer, got {self.seed!r}")
        elif self.seed < 0:
            problems.append(f"seed: must be at least 0, got {self.seed}")
        if not is_int(self.accounts):
            problems.append(f"accounts: must be an integer, got {self.accounts!r}")
        elif self.accounts < 1:
            problems.append(f"accounts: must be at least 1, got {self.accounts}")
        elif self.accounts > MAX_ACCOUNTS:
            problems.append(f"accounts: must be at most {MAX_ACCOUNTS}, got {self.accounts}")
        months_ok = is_int(self.months) and 6 <= self.months <= 48
        if not months_ok:
            problems.append(f"months: must be an integer between 6 and 48, got {self.months!r}")
        if not isinstance(self.start, date) or hasattr(self.start, "hour"):
            problems.append(f"start: must be a datetime.date, got {self.start!r}")
        elif self.start.day != 1:
            problems.append(f"start: must be the first day of a month, got {self.start.isoformat()}")
        elif not 2000 <= self.start.year <= 2090:
            problems.append(f"start: year must be between 2000 and 2090, got {self.start.year}")
        hz = self.horizons_days
        if not isinstance(hz, tuple) or not hz or not all(is_int(h) for h in hz):
            problems.append(f"horizons_days: must be a non-empty tuple of integers, got {hz!r}")
        elif len(set(hz)) != len(hz):
            problems.append(f"horizons_days: must not repeat a horizon, got {hz!r}")
        elif not problems and months_ok:
            cal = Calendar(self.start, self.months)
            # Snapshots start at start + 6 months; a 6-month world has none (its oracle is empty).
            room = cal.n_days - 1 - int(cal.month_start[6]) if self.months > 6 else cal.n_days
            bad = [h for h in hz if not 1 <= h <= room]
            if bad:
                problems.append(
                    f"horizons_days: each must be between 1 and {room} days so that at least one monthly "
                    f"snapshot (from start + 6 months) fits before the world end, got {bad}"
                )
        if problems:
            raise ValidationFailed("sample world config", problems)


@dataclass
class World:
    salesforce: dict[str, list[dict]]
    hubspot: dict[str, list[dict]]
    gong_calls: list[dict]
    gong_transcripts: list[dict]
    usage: pd.DataFrame
    invoices: list[dict]
    truth_accounts: pd.DataFrame
    oracle: pd.DataFrame
    manifest: dict = field(default_factory=dict)


def rng_for(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream])


class Sim:
    """Columnar state of one simulated world, shared by the record builders."""

    cal: Calendar
    n: int
    scale_small: bool  # False for large worlds: shorter transcripts


# ----------------------------------------------------------------------------------------------
# Accounts and users
# ----------------------------------------------------------------------------------------------

SEG_SHARE = np.array([0.12, 0.33, 0.55])
PLAN_BY_SEG = np.array([[0.0, 0.30, 0.70], [0.15, 0.60, 0.25], [0.65, 0.35, 0.0]])
LIST_PRICE = np.array([180.0, 420.0, 780.0])  # per seat per year, by plan
MONTHLY_PREMIUM = 1.15
FEATURE_BASE = np.array([1.4, 1.0, 1.2, 1.3, 0.5, 0.7, 0.6, 0.5])


def _company_names(rng: np.random.Generator, n: int) -> tuple[list[str], list[str]]:
    na, nn, ns = len(T.NAME_ADJ), len(T.NAME_NOUN), len(T.NAME_SUFFIX)
    combos = na * nn
    pick = rng.choice(combos * 4, size=n, replace=n > combos * 4)
    names, domains, seen_d = [], [], set()
    tlds = (".com", ".io", ".co", ".net")
    for k, p in enumerate(pick.tolist()):
        base, variant = divmod(p, 4)
        a, b = divmod(base, nn)
        adj, noun = T.NAME_ADJ[a], T.NAME_NOUN[b]
        suffix = T.NAME_SUFFIX[(p * 7 + k) % ns]
        name = f"{adj} {noun} {suffix}"
        dom = f"{adj}{noun}".lower() + tlds[variant]
        if dom in seen_d:
            dom = f"{adj}{noun}{k}".lower() + tlds[variant]
        seen_d.add(dom)
        names.append(name)
        domains.append(dom)
    # Names must be unique for readability; disambiguate repeats by region.
    seen: dict[str, int] = {}
    regions = ("North America", "EMEA", "APAC", "LATAM", "Europe", "Americas")
    for i, nm in enumerate(names):
        c = seen.get(nm, 0)
        seen[nm] = c + 1
        if c:
            names[i] = f"{nm} ({regions[(c - 1) % len(regions)]}{'' if c <= len(regions) else ' ' + str(c)})"
    return names, domains


def _build_users(sim: Sim, seed: int) -> None:
    rng = rng_for(seed, S_USERS)
    n = sim.n
    counts = {"AE": max(4, n // 150), "CSM": max(4, n // 90), "SE": max(2, n // 500)}
    roles, titles, names, emails = [], [], [], []
    for role, c in counts.items():
        for _ in range(c):
            f = T.FIRST_NAMES[rng.integers(len(T.FIRST_NAMES))]
            la = T.LAST_NAMES[rng.integers(len(T.LAST_NAMES))]
            roles.append(role)
            titles.append(T.USER_TITLES[role][rng.integers(len(T.USER_TITLES[role]))])
            names.append(f"{f} {la}")
            emails.append(f"{f}.{la}{len(emails)}@{T.VENDOR_DOMAIN}".lower())
    from revops_pipelines.sample.ids import numeric_ids

    sim.user_role = np.array(roles)
    sim.user_title = titles
    sim.user_name = names
    sim.user_email = emails
    sim.user_sf_id = sf_ids("User", len(roles), seed)
    sim.user_gong_id = numeric_ids(seed, 501, len(roles), 18)
    sim.users_by_role = {r: np.flatnonzero(sim.user_role == r) for r in counts}


def _build_accounts(sim: Sim, seed: int) -> None:
    rng = rng_for(seed, S_ACCOUNTS)
    cal, n = sim.cal, sim.n
    seg = rng.choice(3, size=n, p=SEG_SHARE)
    monthly = (seg == 2) & (rng.random(n) < 0.65)
    pre = rng.random(n) < 0.72
    # Customer since: pre-existing up to 3 years (monthly: 18 months) before start, new logos until M-6.
    back = np.where(monthly, rng.integers(20, 540, n), rng.integers(20, 1095, n))
    new_day = rng.integers(0, int(max(cal.month_start[cal.months - 6], cal.month_start[1])), n)
    cs = np.where(pre, -back, new_day)
    dom = cal.day_of_month(cs)
    cs = cs - np.maximum(dom - 28, 0)  # keep day-of-month <= 28 so anniversaries exist every month
    emp = np.where(
        seg == 0,
        np.maximum(1000, np.exp(rng.normal(np.log(5000), 0.8, n))),
        np.where(
            seg == 1,
            np.clip(np.exp(rng.normal(np.log(600), 0.5, n)), 200, 2500),
            np.clip(np.exp(rng.normal(np.log(60), 0.7, n)), 5, 250),
        ),
    ).round()
    seat_frac = np.where(
        seg == 0,
        rng.uniform(0.03, 0.15, n),
        np.where(seg == 1, rng.uniform(0.05, 0.25, n), rng.uniform(0.1, 0.5, n)),
    )
    seats0 = np.maximum(np.array([100, 15, 2])[seg], np.round(emp * seat_frac)).astype(np.int64)
    plan = np.array([rng.choice(3, p=PLAN_BY_SEG[g]) for g in seg]) if n else np.zeros(0, int)
    discount = np.where(
        seg == 0,
        rng.uniform(0.15, 0.35, n),
        np.where(seg == 1, rng.uniform(0.05, 0.2, n), rng.uniform(0.0, 0.1, n)),
    )
    unit = LIST_PRICE[plan] * (1 - discount) * np.where(monthly, MONTHLY_PREMIUM, 1.0)
    created_day = cs - rng.integers(20, 150, n)
    created_sec = created_day * DAY + rng.integers(13 * 3600, 22 * 3600, n)

    # Ids are assigned in creation order, like a real org: reorder every per-account array.
    order = np.lexsort((np.arange(n), created_sec))
    take = lambda a: a[order]  # noqa: E731
    seg, monthly, pre, cs, emp, seats0 = map(take, (seg, monthly, pre, cs, emp, seats0))
    plan, unit, created_day, created_sec = map(take, (plan, unit, created_day, created_sec))

    sim.seg, sim.monthly, sim.pre, sim.cs = seg, monthly, pre, cs
    sim.employees, sim.seats0, sim.plan, sim.unit_price = emp.astype(np.int64), seats0, plan, unit
    sim.acct_created_day, sim.acct_created_sec = created_day, created_sec
    sim.names, sim.domains = _company_names(rng, n)
    sim.industry = rng.choice(len(T.INDUSTRIES), size=n, p=T.INDUSTRY_WEIGHTS / T.INDUSTRY_WEIGHTS.sum())
    sim.country = rng.choice(len(T.COUNTRIES), size=n, p=T.COUNTRY_WEIGHTS / T.COUNTRY_WEIGHTS.sum())
    sim.revenue = (sim.employees * rng.uniform(120_000, 320_000, n) / 1000).round() * 1000
    sim.mu = L.BASELINE_MEAN[seg] + L.BASELINE_SD * rng.standard_normal(n)
    sim.adoption = 0.35 * rng.standard_normal(n)
    sim.feature_pref = rng.dirichlet(FEATURE_BASE * 1.5, size=n) if n else np.zeros((0, 8))
    sim.ae = sim.users_by_role["AE"][rng.integers(len(sim.users_by_role["AE"]), size=n)]
    sim.csm = sim.users_by_role["CSM"][rng.integers(len(sim.users_by_role["CSM"]), size=n)]
    sim.se = sim.users_by_role["SE"][rng.integers(len(sim.users_by_role["SE"]), size=n)]
    sim.account_id = sf_ids("Account", n, seed)
    sim.m0 = np.maximum(cal.month_of(cs), 0)


# ----------------------------------------------------------------------------------------------
# Latent health, decisions, churn
# ----------------------------------------------------------------------------------------------


def _simulate_latent(sim: Sim, seed: int) -> None:
    rng = rng_for(seed, S_LATENT)
    n, m_total = sim.n, sim.cal.months
    x = np.full((n, m_total), -1, dtype=np.int16)
    comp = np.zeros((n, m_total), dtype=np.int8)
    stat_cum = np.stack([np.cumsum(L.stationary(g)) for g in range(3)])
    onb_cum = np.cumsum(L.discretised_normal(L.ONBOARD_MEAN, L.ONBOARD_SD))
    comp_cum = np.stack([np.cumsum(L.component_probs(g)) for g in range(3)])
    cur = np.zeros(n, dtype=np.int64)
    for m in range(m_total):
        u1, u2 = rng.random(n), rng.random(n)
        start_now = np.flatnonzero(sim.m0 == m)
        if start_now.size:
            cum = np.where(sim.pre[start_now, None], stat_cum[sim.seg[start_now]], onb_cum[None, :])
            cur[start_now] = L.sample_from(cum, u2[start_now])
        cont = np.flatnonzero(sim.m0 < m)
        if cont.size:
            c = np.minimum((comp_cum[sim.seg[cont]] < u1[cont, None]).sum(axis=1), len(L.SHOCKS) - 1)
            comp[cont, m] = c
            cur[cont] = L.sample_from(L.COMPONENT_CUM[c, cur[cont]], u2[cont])
        x[:, m] = np.where(sim.m0 <= m, cur, -1)
    sim.x = x
    sim.comp = comp
    sim.h = np.where(x >= 0, sim.mu[:, None] + L.GRID[np.maximum(x, 0)], np.nan)


def _decisions(sim: Sim, seed: int) -> None:
    """Contract decision dates (renewals / monthly bills) and the churn outcome."""
    rng = rng_for(seed, S_DECISIONS)
    cal, n, m_total = sim.cal, sim.n, sim.cal.months
    dec_day = np.full((n, m_total), -1, dtype=np.int64)
    dec_int = np.full((n, m_total), np.nan)
    rows = np.arange(n)
    # annual: anniversaries k = 1.. ; monthly: bills k = 1..
    max_k_annual = (cal.months + 40) // 12 + 2
    for k in range(1, max_k_annual + 1):
        d = cal.add_months(sim.cs, 12 * k)
        ok = ~sim.monthly & (d >= 0) & (d < cal.n_days)
        m = cal.month_of(d)
        dec_day[rows[ok], m[ok]] = d[ok]
        dec_int[rows[ok], m[ok]] = L.churn_intercept(
            sim.seg[ok], np.zeros(ok.sum(), bool), np.full(ok.sum(), k == 1)
        )
    for k in range(1, cal.months + 20):
        d = cal.add_months(sim.cs, k)
        ok = sim.monthly & (d >= 0) & (d < cal.n_days)
        m = cal.month_of(d)
        dec_day[rows[ok], m[ok]] = d[ok]
        dec_int[rows[ok], m[ok]] = L.churn_intercept(
            sim.seg[ok], np.ones(ok.sum(), bool), np.full(ok.sum(), k <= L.EARLY_MONTHLY_BILLS)
        )
    u = rng.random((n, m_total))
    has = dec_day >= 0
    p = np.where(has, L.churn_prob(np.nan_to_num(dec_int), np.nan_to_num(sim.h)), 0.0)
    churn = has & (u < p)
    any_churn = churn.any(axis=1)
    first = np.argmax(churn, axis=1)
    sim.plan_day, sim.dec_int, sim.dec_p = dec_day, dec_int, p
    sim.churned = any_churn
    sim.churn_month = np.where(any_churn, first, -1)
    sim.churn_day = np.where(any_churn, dec_day[rows, first], NEVER)
    # Decisions after churn never happen.
    after = np.arange(m_total)[None, :] > np.where(any_churn, first, m_total)[:, None]
    sim.dec_day = np.where(after, -1, dec_day)
    sim.renewed = (sim.dec_day >= 0) & ~churn  # decision taken and survived
    # Last day (exclusive) the account is a customer inside the world.
    sim.active_end = np.minimum(sim.churn_day, cal.n_days)
    sim.active_start = np.maximum(sim.cs, 0)


def _contracts(sim: Sim, seed: int) -> None:
    """Seat expansions (annual: sales-led with opportunities; monthly: self-serve adds) and downsells."""
    rng = rng_for(seed, S_CONTRACTS)
    cal, n, m_total = sim.cal, sim.n, sim.cal.months
    h = np.nan_to_num(sim.h, nan=-9.0)
    mstart = cal.month_start
    factor = np.ones((n, m_total + 2))
    add = np.zeros((n, m_total + 2))
    exp_rows = []  # (acct, created_day, close_day, won, factor, close_month)
    for m in range(m_total):
        active = (sim.m0 < m) & (mstart[m] < sim.active_end) & (mstart[m] - sim.cs > 60)
        # sales-led expansion attempt created this month (annual contracts)
        p_att = 0.045 * L.expit(2.5 * (h[:, m] - 0.6))
        u = rng.random(n)
        f = rng.uniform(1.1, 1.4, n)
        cday = mstart[m] + rng.integers(0, mstart[m + 1] - mstart[m], n)
        close = cday + rng.integers(30, 75, n)
        att = np.flatnonzero(active & ~sim.monthly & (u < p_att))
        for i in att.tolist():
            exp_rows.append((i, int(cday[i]), int(close[i]), float(f[i])))
        # self-serve seat adds (monthly contracts)
        p_add = 0.05 * L.expit(2.0 * (h[:, m] - 0.4))
        ss = active & sim.monthly & (u < p_add)
        add[ss, m + 1] += rng.integers(1, 4, n)[ss]
        # downsell at a renewal the account survived
        ds = sim.renewed[:, m] & ~sim.monthly & (h[:, m] < -0.2) & (rng.random(n) < 0.35)
        factor[ds, m + 1] *= rng.uniform(0.7, 0.9, n)[ds]
    # expansion outcomes: decided by health in the close month; an account that has churned loses it
    won_u = rng.random(len(exp_rows))
    exp_final = []
    for (i, cday, close, f), uu in zip(exp_rows, won_u.tolist(), strict=True):
        cm = int(cal.month_of(np.array([close]))[0])
        if close >= cal.n_days:
            status = "open"
        elif close >= sim.active_end[i]:
            status = "lost"
        else:
            status = "won" if uu < L.expit(0.6 + 1.2 * h[i, cm]) else "lost"
        if status == "won":
            factor[i, cm + 1] *= f
        exp_final.append((i, cday, close, status, f))
    seats = np.zeros((n, m_total), dtype=np.int64)
    cur = sim.seats0.astype(float)
    for m in range(m_total):
        if m > 0:
            cur = np.maximum(1.0, np.round(cur * factor[:, m] + add[:, m]))
        seats[:, m] = cur
    sim.seats_m = seats
    sim.expansions = exp_final
    # Final values as of world end / churn.
    last_m = np.clip(cal.month_of(sim.active_end - 1), 0, m_total - 1)
    sim.last_month = last_m
    sim.seats_final = seats[np.arange(n), last_m]
    sim.arr_final = np.round(sim.seats_final * sim.unit_price, 2)


def _incidents(sim: Sim, seed: int) -> None:
    """Day and feature of each incident shock (drives ticket bursts and usage dips)."""
    rng = rng_for(seed, S_CONTRACTS + 100)
    cal = sim.cal
    n, m_total = sim.n, cal.months
    inc_day = np.full((n, m_total), -1, dtype=np.int64)
    rows, mons = np.nonzero(sim.comp == 2)
    lo = np.maximum(cal.month_start[mons], sim.active_start[rows])
    hi = np.minimum(cal.month_start[mons + 1], sim.active_end[rows])
    ok = hi > lo
    d = lo + (rng.random(rows.size) * np.maximum(hi - lo, 1)).astype(np.int64)
    inc_day[rows[ok], mons[ok]] = d[ok]
    sim.incident_day = inc_day
    sim.incident_len = rng.integers(2, 6, size=(n, m_total))
    sim.incident_feature = rng.choice(8, size=(n, m_total), p=np.array([3, 1, 3, 2, 0, 1, 3, 1]) / 14)


# ----------------------------------------------------------------------------------------------
# Truth and oracle
# ----------------------------------------------------------------------------------------------


def _truth(sim: Sim) -> pd.DataFrame:
    cal = sim.cal
    h = sim.h
    active_month = ~np.isnan(h) & (cal.month_start[None, :-1] < sim.active_end[:, None])
    hm = np.where(active_month, h, np.nan)
    cnt = active_month.sum(axis=1)
    mean_h = np.where(cnt > 0, np.nansum(np.nan_to_num(hm), axis=1) / np.maximum(cnt, 1), np.nan)
    rows = np.arange(sim.n)
    return pd.DataFrame(
        {
            "account_id": pd.array(sim.account_id, dtype="str"),
            "segment": pd.array([L.SEGMENTS[g] for g in sim.seg], dtype="str"),
            "billing_frequency": pd.array(np.where(sim.monthly, "Monthly", "Annual").tolist(), dtype="str"),
            "customer_since": cal.dates64(sim.cs),
            "baseline": sim.mu,
            "adoption_offset": sim.adoption,
            "health_first": h[rows, sim.m0],
            "health_last": h[rows, sim.last_month],
            "health_mean": mean_h,
            "churned": sim.churned.astype(bool),
            "churn_date": np.where(
                sim.churned, cal.dates64(np.where(sim.churned, sim.churn_day, 0)), np.datetime64("NaT", "ms")
            ).astype("M8[ms]"),
            "champion_left_shocks": ((sim.comp == 1) & active_month).sum(axis=1).astype(np.int32),
            "incident_shocks": ((sim.comp == 2) & active_month).sum(axis=1).astype(np.int32),
            "exec_sponsor_shocks": ((sim.comp == 3) & active_month).sum(axis=1).astype(np.int32),
            "initial_seats": sim.seats0.astype(np.int32),
            "unit_price": sim.unit_price,
        }
    )


def snapshot_months(cal: Calendar, horizon: int) -> list[int]:
    return [k for k in range(6, cal.months) if int(cal.month_start[k]) + horizon <= cal.n_days - 1]


def _oracle(sim: Sim, horizons: tuple[int, ...]) -> pd.DataFrame:
    cal = sim.cal
    parts = []
    for hz in horizons:
        for k in snapshot_months(cal, hz):
            s = int(cal.month_start[k])
            act = np.flatnonzero((sim.active_start <= s) & (sim.active_end > s) & (sim.cs <= s))
            last_m = int(cal.month_of(np.array([s + hz]))[0])
            raw = sim.plan_day[act, k : last_m + 1]
            inwin = (raw > s) & (raw <= s + hz)
            ints = np.where(inwin, sim.dec_int[act, k : last_m + 1], np.nan)
            prob = L.oracle_churn_probability(sim.x[act, k].astype(np.int64), sim.seg[act], sim.mu[act], ints)
            realized = (sim.churn_day[act] > s) & (sim.churn_day[act] <= s + hz)
            parts.append(
                pd.DataFrame(
                    {
                        "account_id": pd.array([sim.account_id[i] for i in act.tolist()], dtype="str"),
                        "snapshot_date": np.full(act.size, cal.dates64([s])[0]),
                        "horizon_days": np.full(act.size, hz, dtype=np.int32),
                        "churn_probability": prob,
                        "churned_within_horizon": realized,
                        "latent_health": sim.h[act, k],
                    }
                )
            )
    if not parts:
        return pd.DataFrame(
            {
                "account_id": pd.array([], dtype="str"),
                "snapshot_date": np.array([], dtype="M8[ms]"),
                "horizon_days": np.array([], dtype=np.int32),
                "churn_probability": np.array([], dtype=float),
                "churned_within_horizon": np.array([], dtype=bool),
                "latent_health": np.array([], dtype=float),
            }
        )
    out = pd.concat(parts, ignore_index=True)
    out["snapshot_date"] = out["snapshot_date"].astype("M8[ms]")
    return out


# ----------------------------------------------------------------------------------------------
# Orchestration
# ----------------------------------------------------------------------------------------------


def simulate(cfg: WorldConfig) -> Sim:
    """Run the hidden process only (no records); used by :func:`generate_world` and diagnostics."""
    cfg.validate()
    sim = Sim()
    sim.cal = Calendar(cfg.start, cfg.months)
    sim.n = cfg.accounts
    sim.seed = cfg.seed
    sim.scale_small = cfg.accounts <= 10_000
    _build_users(sim, cfg.seed)
    _build_accounts(sim, cfg.seed)
    _simulate_latent(sim, cfg.seed)
    _decisions(sim, cfg.seed)
    _contracts(sim, cfg.seed)
    _incidents(sim, cfg.seed)
    return sim


@contextmanager
def no_gc() -> Iterator[None]:
    """Pause the cyclic GC while building millions of acyclic dicts (it would rescan them repeatedly)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def generate_world(cfg: WorldConfig) -> World:
    """Simulate and render a whole world in memory."""
    from revops_pipelines.sample.io import JSONL, PARQUET

    data: dict = {"gong_calls": [], "gong_transcripts": [], "invoices": []}
    data["salesforce"] = {key: [] for attr, key in JSONL.values() if attr == "salesforce"}
    data["hubspot"] = {key: [] for attr, key in JSONL.values() if attr == "hubspot"}
    counts: dict[str, int] = {}
    with no_gc():
        sim = simulate(cfg)
        for rel, part in produce(sim, cfg):
            counts[rel] = counts.get(rel, 0) + len(part)
            if rel in PARQUET:
                data[PARQUET[rel][0]] = part
                continue
            attr, key = JSONL[rel]
            (data[attr] if key is None else data[attr][key]).extend(part)
    world = World(**data)
    world.manifest = build_manifest(cfg, sim.cal, counts)
    return world


def produce(sim: Sim, cfg: WorldConfig) -> Iterator[tuple[str, list[dict] | pd.DataFrame]]:
    """Render the world part by part as ``(relative file, records or frame)``; large parts come in chunks.

    Builders depend on earlier ones through ``sim`` (contacts -> opportunities -> cases, calls,
    HubSpot, tasks and HubSpot deals/engagements), so the order is fixed; each builder has its own random stream.
    """
    from revops_pipelines.sample import activities, billing, crm, engagement, usage

    seed = cfg.seed
    yield "salesforce/Contact.jsonl", crm.build_contacts(sim, rng_for(seed, S_CONTACTS))
    opportunities = crm.build_opportunities(sim, rng_for(seed, S_OPPS))
    yield "salesforce/Opportunity.jsonl", opportunities
    yield "salesforce/OpportunityHistory.jsonl", crm.build_opportunity_history(opportunities)
    yield "salesforce/Case.jsonl", crm.build_cases(sim, rng_for(seed, S_CASES))
    yield "salesforce/Account.jsonl", crm.build_accounts(sim)
    for calls, transcripts in engagement.iter_calls(
        sim, rng_for(seed, S_CALLS), rng_for(seed, S_TRANSCRIPTS)
    ):
        yield "gong/calls.jsonl", calls
        yield "gong/transcripts.jsonl", transcripts
    yield "billing/invoices.jsonl", billing.build_invoices(sim, rng_for(seed, S_INVOICES))
    hub = crm.build_hubspot(sim, rng_for(seed, S_HUBSPOT))
    yield "hubspot/companies.jsonl", hub.pop("companies")
    yield "hubspot/contacts.jsonl", hub.pop("contacts")
    yield "salesforce/Task.jsonl", activities.build_tasks(sim, rng_for(seed, S_TASKS))
    hub_activity = activities.build_hubspot_activity(sim, rng_for(seed, S_HUBSPOT_ACTIVITY))
    for object_type, records in hub_activity.items():
        yield f"hubspot/{object_type}.jsonl", records
    yield "product/usage_daily.parquet", usage.build_usage(sim, seed, S_USAGE)
    yield "truth/accounts.parquet", _truth(sim)
    yield "truth/churn_oracle.parquet", _oracle(sim, tuple(cfg.horizons_days))


def build_manifest(cfg: WorldConfig, cal: Calendar, counts: dict[str, int]) -> dict:
    from revops_pipelines.sample.io import FILES

    return {
        "generator_version": GENERATOR_VERSION,
        "seed": int(cfg.seed),
        "accounts": int(cfg.accounts),
        "start": cfg.start.isoformat(),
        "end": cal.end.isoformat(),
        "months": int(cfg.months),
        "horizons_days": [int(h) for h in cfg.horizons_days],
        "vendor": T.VENDOR,
        "files": list(FILES),
        "row_counts": {rel: int(counts.get(rel, 0)) for rel in FILES},
    }


def write_world(world: World, out_dir: Path) -> dict:
    from revops_pipelines.sample.io import write_world as _write

    return _write(world, Path(out_dir))


def load_world(out_dir: Path) -> World:
    from revops_pipelines.sample.io import load_world as _load

    return _load(Path(out_dir))


def generate_to_dir(cfg: WorldConfig, out_dir: Path) -> dict:
    """Generate ``cfg`` straight to ``out_dir`` and return the manifest.

    Streams: each part is written and released before the next is built, so peak memory is about
    the largest single part rather than the whole world. The files are byte-identical to
    ``write_world(generate_world(cfg), out_dir)``.
    """
    from revops_pipelines.sample.io import WorldWriter

    counts: dict[str, int] = {}
    with no_gc():
        sim = simulate(cfg)
        with WorldWriter(Path(out_dir)) as w:
            for rel, part in produce(sim, cfg):
                counts[rel] = counts.get(rel, 0) + len(part)
                w.write(rel, part)
                del part
            manifest = build_manifest(cfg, sim.cal, counts)
            w.write_manifest(manifest)
    return manifest
