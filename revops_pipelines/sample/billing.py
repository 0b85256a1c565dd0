"""Stripe-like invoices.

Annual contracts are invoiced at each term start (new logo, renewal) with net-30 terms, plus a
prorated invoice when a sales-led expansion closes. Monthly plans are charged automatically on
every bill date. Payment behaviour depends on the account's health in the invoice month: late
payment ``sigmoid(-1.3 - 1.4 h)`` (annual), failed card charge ``sigmoid(-2.8 - 1.3 h)`` (monthly,
75% recovered by a retry within a week), uncollectible otherwise / ``sigmoid(-6 - 1.6 h)`` (annual).
``status`` and ``paid_at`` are as of the world end.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from revops_pipelines.sample.clock import DAY
from revops_pipelines.sample.ids import b62_tokens


def build_invoices(sim, rng: np.random.Generator) -> list[dict]:
    cal, n, m_total = sim.cal, sim.n, sim.cal.months
    rows_a, rows_d, rows_amt, rows_end, rows_kind = [], [], [], [], []

    def seats_after(i: np.ndarray, m: np.ndarray) -> np.ndarray:
        return sim.seats_m[i, np.minimum(m + 1, m_total - 1)]

    # term / bill starts: the first day as customer inside the world, and every survived decision
    new = np.flatnonzero(sim.cs >= 0)
    m_new = cal.month_of(sim.cs[new])
    rows_a.append(new)
    rows_d.append(sim.cs[new])
    rows_amt.append(sim.seats_m[new, m_new] * sim.unit_price[new] / np.where(sim.monthly[new], 12.0, 1.0))
    rows_end.append(cal.add_months(sim.cs[new], np.where(sim.monthly[new], 1, 12)))
    rows_kind.append(np.where(sim.monthly[new], 1, 0))
    ri, rm = np.nonzero(sim.renewed)
    d = sim.plan_day[ri, rm]
    mon = sim.monthly[ri]
    rows_a.append(ri)
    rows_d.append(d)
    rows_amt.append(np.where(mon, sim.seats_m[ri, rm] / 12.0, seats_after(ri, rm)) * sim.unit_price[ri])
    rows_end.append(cal.add_months(d, np.where(mon, 1, 12)))
    rows_kind.append(np.where(mon, 1, 0))
    # prorated expansion invoices
    ex = [(i, close, f) for i, _c, close, status, f in sim.expansions if status == "won"]
    if ex:
        ea = np.array([e[0] for e in ex], dtype=np.int64)
        ed = np.array([e[1] for e in ex], dtype=np.int64)
        ef = np.array([e[2] for e in ex])
        em = cal.month_of(ed)
        nxt = np.full(ea.size, cal.n_days + 365)
        for k in range(1, (m_total + 40) // 12 + 3):
            a = cal.add_months(sim.cs[ea], 12 * k)
            nxt = np.where((a > ed) & (a < nxt), a, nxt)
        remaining = np.clip((nxt - ed) / 365.0, 0.02, 1.0)
        rows_a.append(ea)
        rows_d.append(ed)
        rows_amt.append(sim.seats_m[ea, em] * (ef - 1.0) * sim.unit_price[ea] * remaining)
        rows_end.append(nxt)
        rows_kind.append(np.full(ea.size, 2))
    acct = np.concatenate(rows_a)
    day = np.concatenate(rows_d)
    amount = np.maximum(100, np.round(np.concatenate(rows_amt) * 100)).astype(np.int64)
    pend = np.concatenate(rows_end)
    kind = np.concatenate(rows_kind)
    keep = (day >= 0) & (day < cal.n_days)
    acct, day, amount, pend, kind = acct[keep], day[keep], amount[keep], pend[keep], kind[keep]
    k = acct.size
    h = np.nan_to_num(sim.h[acct, np.clip(cal.month_of(day), 0, m_total - 1)], nan=0.0)
    created = day * DAY + rng.integers(0, 6 * 3600, k)
    card = kind == 1
    due = np.where(card, created, created + 30 * DAY)
    u = rng.random((k, 4))
    late = u[:, 0] < expit(-1.3 - 1.4 * h)
    delay_ok = rng.uniform(2, 30, k) * DAY
    delay_late = (30 + rng.gamma(2.0, 9.0 * np.exp(-0.4 * h))) * DAY
    unc_annual = u[:, 1] < expit(-6.0 - 1.6 * h)
    fail = u[:, 2] < expit(-2.8 - 1.3 * h)
    recovered = u[:, 3] < 0.75
    delay_card = np.where(fail, rng.uniform(1, 8, k) * DAY, rng.integers(30, 900, k))
    delay = np.where(card, delay_card, np.where(late, delay_late, delay_ok)).astype(np.int64)
    uncollectible = np.where(card, fail & ~recovered, unc_annual)
    write_off = created + np.where(card, 21, 90) * DAY
    end_sec = (cal.n_days - 1) * DAY + 86_399
    paid_sec = created + delay
    status = np.where(
        uncollectible,
        np.where(write_off <= end_sec, "uncollectible", "open"),
        np.where(paid_sec <= end_sec, "paid", "open"),
    )
    order = np.lexsort((np.arange(k), created))
    inv_ids = b62_tokens(sim.seed, 801, k, 24)
    cus = ["cus_" + t for t in b62_tokens(sim.seed, 802, n, 14)]
    c_e, due_e, paid_e = cal.epoch(created[order]), cal.epoch(due[order]), cal.epoch(paid_sec[order])
    ps_e, pe_e = cal.epoch(day[order] * DAY), cal.epoch(pend[order] * DAY)
    out = []
    for j, q in enumerate(order.tolist()):
        i = int(acct[q])
        st = str(status[q])
        amt = int(amount[q])
        out.append(
            {
                "id": "in_" + inv_ids[j],
                "customer": cus[i],
                "metadata": {"sf_account_id": sim.account_id[i]},
                "amount_due": amt,
                "amount_paid": amt if st == "paid" else 0,
                "currency": "usd",
                "status": st,
                "period_start": ps_e[j],
                "period_end": pe_e[j],
                "due_date": due_e[j],
                "created": c_e[j],
                "status_transitions": {"paid_at": paid_e[j] if st == "paid" else None},
            }
        )
    return out
