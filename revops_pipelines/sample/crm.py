"""Salesforce (Account, Contact, Opportunity, Case) and HubSpot records of the sample world.

Records are rendered from the columnar simulation state in :mod:`revops_pipelines.sample.generator`.
Ids are assigned in creation order. CRM fields show the *final* state as of the world end (as a real
CRM export would); dated fields allow rebuilding any earlier state.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np

from revops_pipelines.sample import latent as L
from revops_pipelines.sample import text as T
from revops_pipelines.sample.clock import DAY
from revops_pipelines.sample.ids import sequential_numeric_ids, sf_ids

API = "/services/data/v60.0/sobjects"
NEVER = 10**9
STAGE_PROB = {
    "Prospecting": 10,
    "Qualification": 20,
    "Discovery": 30,
    "Proposal": 50,
    "Negotiation": 75,
    "Closed Won": 100,
    "Closed Lost": 0,
}
OPEN_STAGES = ("Prospecting", "Qualification", "Discovery", "Proposal", "Negotiation")
CASE_ORIGINS = ("Email", "Web", "Phone", "Chat")


def _attrs(sobject: str, rid: str) -> dict:
    return {"type": sobject, "url": f"{API}/{sobject}/{rid}"}


def _h_at(sim, i: int, day: int) -> float:
    """Health of account ``i`` on ``day``; before the world (or before its first month) a noisy proxy."""
    m = int(sim.cal.month_of(np.array([day]))[0])
    if 0 <= m < sim.cal.months and not np.isnan(sim.h[i, m]):
        return float(sim.h[i, m])
    return float(sim.h[i, sim.m0[i]])


def _open_stage(days_to_close: int, health: float) -> str:
    if days_to_close > 100:
        k = 0
    elif days_to_close > 75:
        k = 1
    elif days_to_close > 50:
        k = 2
    elif days_to_close > 25:
        k = 3
    else:
        k = 4
    if health < -0.5:
        k = max(0, k - 1)
    return OPEN_STAGES[k]


# ----------------------------------------------------------------------------------------------
# Contacts
# ----------------------------------------------------------------------------------------------


def build_contacts(sim, rng: np.random.Generator) -> list[dict]:
    """Contacts per account with roles; champions leave on champion-left shocks and may be replaced."""
    cal, n = sim.cal, sim.n
    n_contacts = np.where(
        sim.seg == 0,
        rng.integers(6, 17, n),
        np.where(sim.seg == 1, rng.integers(3, 9, n), rng.integers(2, 5, n)),
    )
    acct, role, created, left = [], [], [], []
    for i in range(n):
        base = int(sim.acct_created_day[i])
        hi = int(min(sim.active_end[i], cal.n_days)) - 1
        for k in range(int(n_contacts[i])):
            r = "champion" if k == 0 else "economic_buyer" if k == 1 else "admin" if k == 2 else "user"
            if k < 3 or rng.random() < 0.7:
                d = base + int(rng.integers(0, 45))
            else:  # added later in the relationship
                lo = max(base, int(sim.cs[i]))
                d = int(rng.integers(lo, max(lo + 1, hi + 1)))
            acct.append(i)
            role.append(r)
            created.append(min(d, hi))
            left.append(NEVER)
    acct_l, role_l, created_l, left_l = acct, role, created, left
    # Champion departures and replacements, in time order per account.
    rows, mons = np.nonzero(sim.comp == 1)
    by_acct: dict[int, list[int]] = {}
    for ci, a in enumerate(acct_l):
        by_acct.setdefault(a, []).append(ci)
    u = rng.random((rows.size, 4))
    for (i, m), uu in zip(zip(rows.tolist(), mons.tolist(), strict=True), u.tolist(), strict=True):
        lo = max(int(cal.month_start[m]), int(sim.active_start[i]))
        hi = min(int(cal.month_start[m + 1]), int(sim.active_end[i]))
        if hi <= lo:
            continue
        day = lo + int(uu[0] * (hi - lo))
        present = [c for c in by_acct[i] if created_l[c] <= day < left_l[c] and role_l[c] == "champion"]
        if not present:
            present = [
                c for c in by_acct[i] if created_l[c] <= day < left_l[c] and role_l[c] in ("admin", "user")
            ]
        if not present:
            continue
        leaver = present[0]
        left_l[leaver] = day
        if uu[1] < 0.65:
            nd = day + 20 + int(uu[2] * 70)
            if nd < min(int(sim.active_end[i]), cal.n_days):
                acct_l.append(i)
                role_l.append("champion")
                created_l.append(nd)
                left_l.append(NEVER)
                by_acct[i].append(len(acct_l) - 1)
    nc = len(acct_l)
    acct_a = np.array(acct_l, dtype=np.int64)
    created_a = np.array(created_l, dtype=np.int64)
    sec = created_a * DAY + rng.integers(13 * 3600, 23 * 3600, nc)
    first = rng.integers(len(T.FIRST_NAMES), size=nc)
    last = rng.integers(len(T.LAST_NAMES), size=nc)
    title_k = rng.integers(100, size=nc)
    # Deleted duplicates (merged records) that only an include_deleted query returns.
    dup = rng.random(nc) < 0.015
    dup_delay = rng.integers(1, 30, nc)
    order = np.lexsort((np.arange(nc), sec))
    sim.contact_acct = acct_a[order]
    sim.contact_role = [role_l[c] for c in order.tolist()]
    sim.contact_created = created_a[order]
    sim.contact_left = np.array(left_l, dtype=np.int64)[order]
    first, last, title_k, sec = first[order], last[order], title_k[order], sec[order]
    names = [
        (T.FIRST_NAMES[f], T.LAST_NAMES[la]) for f, la in zip(first.tolist(), last.tolist(), strict=True)
    ]
    sim.contact_name = [f"{f} {la}" for f, la in names]
    sim.contact_title = [
        T.CONTACT_TITLES[r][k % len(T.CONTACT_TITLES[r])]
        for r, k in zip(sim.contact_role, title_k.tolist(), strict=True)
    ]
    emails, seen = [], set()
    for c in range(nc):
        f, la = names[c]
        base = f"{f}.{la}".lower()
        dom = sim.domains[int(sim.contact_acct[c])]
        e = f"{base}@{dom}"
        k = 2
        while e in seen:
            e = f"{base}{k}@{dom}"
            k += 1
        seen.add(e)
        emails.append(e)
    sim.contact_email = emails
    # per-account contact index lists (creation order)
    sim.contacts_of = [[] for _ in range(n)]
    for c, a in enumerate(sim.contact_acct.tolist()):
        sim.contacts_of[a].append(c)
    # Ids: real + deleted duplicates, in creation order.
    dup = dup[order]
    dup_sec = sec + dup_delay[order] * DAY
    all_sec = np.concatenate([sec, dup_sec[dup]])
    src = np.concatenate([np.arange(nc), np.flatnonzero(dup)])
    is_dup = np.concatenate([np.zeros(nc, bool), np.ones(int(dup.sum()), bool)])
    ord2 = np.lexsort((is_dup, src, all_sec))
    ids = sf_ids("Contact", ord2.size, sim.seed)
    sim.contact_id = [""] * nc
    end_sec = (cal.n_days - 1) * DAY + 23 * 3600
    mod_delay = rng.integers(0, 200 * DAY, ord2.size)
    records = []
    created_s = sim.cal.sf_ts(all_sec[ord2])
    mod_sec = []
    for j, k in enumerate(ord2.tolist()):
        c = int(src[k])
        if is_dup[k]:
            mod_sec.append(min(int(all_sec[k]) + 3600 * 2, end_sec))
        elif sim.contact_left[c] < NEVER:
            mod_sec.append(min(int(sim.contact_left[c]) * DAY + 15 * 3600, end_sec))
        else:
            mod_sec.append(min(int(all_sec[k]) + int(mod_delay[j]), end_sec))
    mod_s = sim.cal.sf_ts(np.maximum(np.array(mod_sec, dtype=np.int64), all_sec[ord2]))
    for j, k in enumerate(ord2.tolist()):
        c = int(src[k])
        rid = ids[j]
        if not is_dup[k]:
            sim.contact_id[c] = rid
        f, la = names[c]
        records.append(
            {
                "attributes": _attrs("Contact", rid),
                "Id": rid,
                "AccountId": sim.account_id[int(sim.contact_acct[c])],
                "FirstName": f,
                "LastName": la,
                "Email": emails[c],
                "Title": sim.contact_title[c],
                "CreatedDate": created_s[j],
                "SystemModstamp": mod_s[j],
                "IsDeleted": bool(is_dup[k]),
            }
        )
    return records


def present_contacts(sim, i: int, day: int) -> list[int]:
    return [c for c in sim.contacts_of[i] if sim.contact_created[c] <= day < sim.contact_left[c]]


def champion_on(sim, i: int, day: int) -> int | None:
    for c in reversed(sim.contacts_of[i]):
        if sim.contact_role[c] == "champion" and sim.contact_created[c] <= day < sim.contact_left[c]:
            return c
    return None


def economic_buyer_on(sim, i: int, day: int) -> int | None:
    for c in sim.contacts_of[i]:
        if sim.contact_role[c] == "economic_buyer" and sim.contact_created[c] <= day < sim.contact_left[c]:
            return c
    return None


# ----------------------------------------------------------------------------------------------
# Accounts
# ----------------------------------------------------------------------------------------------


def build_accounts(sim) -> list[dict]:
    cal, n = sim.cal, sim.n
    end_sec = (cal.n_days - 1) * DAY + 23 * 3600
    last_event = np.where(sim.churned, sim.churn_day, np.maximum(sim.cs, 0))
    ren = np.where(sim.renewed, sim.plan_day, -1).max(axis=1) if cal.months else np.full(n, -1)
    last_event = np.maximum(last_event, ren)
    for i, _cday, close, status, _f in sim.expansions:
        if status != "open":
            last_event[i] = max(last_event[i], close)
    mod = np.minimum(last_event * DAY + 16 * 3600 + (sim.acct_created_sec % 7) * DAY, end_sec)
    mod = np.maximum(mod, sim.acct_created_sec)
    created_s, mod_s = cal.sf_ts(sim.acct_created_sec), cal.sf_ts(mod)
    cs_s = cal.iso_date(sim.cs)
    churn_s = cal.iso_date(np.where(sim.churned, sim.churn_day, 0))
    out = []
    for i in range(n):
        rid = sim.account_id[i]
        out.append(
            {
                "attributes": _attrs("Account", rid),
                "Id": rid,
                "Name": sim.names[i],
                "Industry": T.INDUSTRIES[sim.industry[i]],
                "Type": "Former Customer" if sim.churned[i] else "Customer",
                "NumberOfEmployees": int(sim.employees[i]),
                "AnnualRevenue": float(sim.revenue[i]),
                "BillingCountry": T.COUNTRIES[sim.country[i]],
                "OwnerId": sim.user_sf_id[sim.ae[i]],
                "CreatedDate": created_s[i],
                "SystemModstamp": mod_s[i],
                "IsDeleted": False,
                "Segment__c": L.SEGMENTS[sim.seg[i]],
                "Plan__c": T.PLANS[sim.plan[i]],
                "Seats__c": int(sim.seats_final[i]),
                "ARR__c": float(sim.arr_final[i]),
                "Billing_Frequency__c": "Monthly" if sim.monthly[i] else "Annual",
                "Customer_Since__c": cs_s[i],
                "Churn_Date__c": churn_s[i] if sim.churned[i] else None,
            }
        )
    return out


# ----------------------------------------------------------------------------------------------
# Opportunities
# ----------------------------------------------------------------------------------------------

# Base logit of each MEDDPICC field being filled (Metrics, EB, Criteria, Process, Paper, Pain, Champion, Competition)
_MEDD_BASE = np.array([0.6, 0.2, 0.8, 0.3, 0.0, 1.0, 0.7, -0.2])
_MEDD_TYPE = {"New Business": 1.4, "Renewal": 0.2, "Expansion": 0.6}


def _meddpicc(sim, i: int, day: int, kind: str, h: float, r: np.ndarray) -> dict:
    q = L.expit(_MEDD_BASE + _MEDD_TYPE[kind] + 1.3 * h)
    filled = (r[:8] / 1000.0 < q).tolist()
    champ = champion_on(sim, i, day)
    eb = economic_buyer_on(sim, i, day)
    # A threat is recorded when the account is struggling; healthy accounts note "none identified".
    threat = bool(r[8] / 1000.0 < L.expit(-0.6 - 1.8 * h))
    if threat:
        filled[7] = filled[7] or bool(r[9] / 1000.0 < 0.6)
    return T.render_meddpicc(
        filled,
        r[10:].tolist(),
        (sim.contact_name[eb], sim.contact_title[eb]) if eb is not None else None,
        (sim.contact_name[champ], sim.contact_title[champ]) if champ is not None else None,
        strong_champion=h > 0.3,
        threat=threat,
    )


def build_opportunities(sim, rng: np.random.Generator) -> list[dict]:
    """New Business at start, a Renewal per annual anniversary, cancellations, Expansions."""
    cal, n = sim.cal, sim.n
    end_day = cal.n_days - 1
    end_sec = end_day * DAY + 23 * 3600
    rows = []  # dicts without ids; sorted and numbered at the end

    def arr_on(i: int, day: int) -> float:
        m = int(cal.month_of(np.array([day]))[0])
        if m < 0:
            return float(sim.seats0[i] * sim.unit_price[i])
        m = min(m, cal.months - 1)
        return float(sim.seats_m[i, m] * sim.unit_price[i])

    def add(i, kind, name, stage, amount, close_day, created_sec, mod_sec, owner, medd):
        rows.append(
            (i, kind, name, stage, round(amount, 2), close_day, int(created_sec), int(mod_sec), owner, medd)
        )

    sim.opp_windows = [[] for _ in range(n)]  # (from_day, to_day, row index) while open
    for i in range(n):
        nm = sim.names[i]
        cs = int(sim.cs[i])
        r = rng.integers(0, 1000, size=(40, 18))
        ri = 0
        # New Business
        cre = int(sim.acct_created_sec[i]) + 3600
        h0 = _h_at(sim, i, cs) + 0.3 * rng.standard_normal()
        amount = sim.seats0[i] * sim.unit_price[i] * (rng.uniform(0.6, 1.0) if sim.pre[i] else 1.0)
        medd = _meddpicc(sim, i, min(cs, end_day), "New Business", h0, r[ri])
        ri += 1
        add(
            i,
            "New Business",
            f"{nm} - New Business",
            "Closed Won",
            amount,
            cs,
            cre,
            cs * DAY + 17 * 3600,
            sim.ae[i],
            medd,
        )
        sim.opp_windows[i].append((cre // DAY, cs, len(rows) - 1))
        if sim.monthly[i]:
            if sim.churned[i]:
                d = int(sim.churn_day[i])
                add(i, "Renewal", f"{nm} - Subscription Cancellation", "Closed Lost", arr_on(i, d), d,
                    d * DAY + 9 * 3600 + int(rng.integers(0, 3600)), d * DAY + 11 * 3600, sim.ae[i],
                    dict.fromkeys(T.MEDDPICC_FIELDS))  # fmt: skip
            continue
        # Renewals at anniversaries
        k = 1
        while True:
            rday = int(cal.add_months(np.array([cs]), 12 * k)[0])
            if rday > end_day + 120 or rday > sim.churn_day[i]:
                break
            cday = rday - int(rng.integers(90, 121))
            if cday > end_day:
                break
            csec = cday * DAY + int(rng.integers(14 * 3600, 22 * 3600))
            hc = _h_at(sim, i, cday) + (0.0 if cday >= 0 else 0.3 * rng.standard_normal())
            medd = _meddpicc(sim, i, cday, "Renewal", hc, r[ri % 40])
            ri += 1
            year = str(cal.start64 + rday)[:4]
            amount = arr_on(i, rday)
            if rday <= end_day:
                lost = rday == sim.churn_day[i]
                stage = "Closed Lost" if lost else "Closed Won"
                mod = min(rday * DAY + 18 * 3600 + int(rng.integers(0, 3 * DAY)), end_sec)
            else:
                stage = _open_stage(rday - end_day, _h_at(sim, i, end_day))
                amount = float(sim.seats_final[i] * sim.unit_price[i]) * 1.04
                mod = max(csec, end_sec - int(rng.integers(0, 10 * DAY)))
            add(i, "Renewal", f"{nm} - Renewal {year}", stage, amount, rday, csec, mod, sim.csm[i], medd)
            sim.opp_windows[i].append((cday, rday, len(rows) - 1))
            k += 1
    for i, cday, close, status, f in sim.expansions:
        r = rng.integers(0, 1000, size=18)
        hc = _h_at(sim, i, cday)
        medd = _meddpicc(sim, i, cday, "Expansion", hc, r)
        amount = arr_on(i, cday) * (f - 1.0)
        csec = cday * DAY + int(rng.integers(14 * 3600, 22 * 3600))
        if status == "open":
            stage = _open_stage(close - (cal.n_days - 1), _h_at(sim, i, cal.n_days - 1))
            mod = max(csec, end_sec - int(rng.integers(0, 10 * DAY)))
        else:
            stage = "Closed Won" if status == "won" else "Closed Lost"
            mod = min(close * DAY + 18 * 3600, end_sec)
        q = T.QUARTERS[(int(str(cal.start64 + close)[5:7]) - 1) // 3]
        add(i, "Expansion", f"{sim.names[i]} - Expansion {q} {str(cal.start64 + close)[:4]}", stage, amount,
            close, csec, mod, sim.ae[i], medd)  # fmt: skip
        sim.opp_windows[i].append((cday, close, len(rows) - 1))

    created = np.array([row[6] for row in rows], dtype=np.int64)
    order = np.lexsort((np.arange(len(rows)), created))
    ids_sorted = sf_ids("Opportunity", len(rows), sim.seed)
    row_id = [""] * len(rows)
    for j, k in enumerate(order.tolist()):
        row_id[k] = ids_sorted[j]
    created_s = cal.sf_ts(created[order])
    mod_s = cal.sf_ts(np.array([max(rows[k][7], rows[k][6]) for k in order.tolist()], dtype=np.int64))
    close_s = cal.iso_date(np.array([rows[k][5] for k in order.tolist()], dtype=np.int64))
    out = []
    for j, k in enumerate(order.tolist()):
        i, kind, name, stage, amount, _close, _c, _m, owner, medd = rows[k]
        rid = row_id[k]
        rec = {
            "attributes": _attrs("Opportunity", rid),
            "Id": rid,
            "AccountId": sim.account_id[i],
            "Name": name,
            "Type": kind,
            "StageName": stage,
            "Amount": amount,
            "CloseDate": close_s[j],
            "IsClosed": stage.startswith("Closed"),
            "IsWon": stage == "Closed Won",
            "Probability": STAGE_PROB[stage],
            "OwnerId": sim.user_sf_id[owner],
            "CreatedDate": created_s[j],
            "SystemModstamp": mod_s[j],
            "IsDeleted": False,
        }
        rec.update(medd)
        out.append(rec)
    sim.opp_rows = rows
    sim.opp_row_id = row_id
    return out


# ----------------------------------------------------------------------------------------------
# Cases (support tickets)
# ----------------------------------------------------------------------------------------------

# Tickets per month by segment at reference seats SEAT_REF; volume scales with seats^0.35.
CASE_BASE = np.array([1.2, 0.45, 0.13])
SEAT_REF = np.array([450.0, 90.0, 18.0])


def _active_bounds(sim):
    cal = sim.cal
    lo = np.maximum(cal.month_start[None, :-1], sim.active_start[:, None])
    hi = np.minimum(cal.month_start[None, 1:], sim.active_end[:, None])
    return lo, hi


def build_cases(sim, rng: np.random.Generator) -> list[dict]:
    cal, n, m_total = sim.cal, sim.n, sim.cal.months
    lo, hi = _active_bounds(sim)
    span = np.maximum(hi - lo, 0)
    frac = span / np.diff(cal.month_start)[None, :]
    h = np.nan_to_num(sim.h, nan=0.0)
    lam = (
        CASE_BASE[sim.seg][:, None]
        * (sim.seats_m / SEAT_REF[sim.seg][:, None]) ** 0.35
        * np.exp(-0.55 * h)
        * frac
    )
    counts = rng.poisson(lam)
    flat = np.repeat(np.arange(n * m_total), counts.ravel())
    acct, mon = flat // m_total, flat % m_total
    day = lo[acct, mon] + (rng.random(flat.size) * span[acct, mon]).astype(np.int64)
    kind_src = np.zeros(
        flat.size, dtype=np.int8
    )  # 0 organic, 1 incident, 2 ownership question, 3 cancellation
    feat = _sample_rows(sim.feature_pref[acct], rng.random(flat.size))
    # incident bursts
    ir, im = np.nonzero(sim.incident_day >= 0)
    burst = 1 + rng.poisson(np.where(sim.seg[ir] == 2, 0.6, 1.6))
    b_acct = np.repeat(ir, burst)
    b_mon = np.repeat(im, burst)
    b_day = np.minimum(
        sim.incident_day[b_acct, b_mon] + rng.integers(0, 2, b_acct.size), sim.active_end[b_acct] - 1
    )
    b_feat = sim.incident_feature[b_acct, b_mon]
    # ownership-transfer questions after a champion leaves
    cr, cm = np.nonzero((sim.comp == 1) & (span > 0))
    keep = rng.random(cr.size) < 0.5
    cr, cm = cr[keep], cm[keep]
    c_day = np.minimum(
        lo[cr, cm] + (rng.random(cr.size) * span[cr, cm]).astype(np.int64) + 7, sim.active_end[cr] - 1
    )
    # cancellations of monthly plans
    xr = np.flatnonzero(sim.monthly & sim.churned & (sim.churn_day < cal.n_days))
    x_day = sim.churn_day[xr]
    acct = np.concatenate([acct, b_acct, cr, xr])
    day = np.concatenate([day, b_day, c_day, x_day])
    feat = np.concatenate([feat, b_feat, np.full(cr.size, 5), np.full(xr.size, 4)])
    kind_src = np.concatenate(
        [kind_src, np.ones(b_acct.size, np.int8), np.full(cr.size, 2, np.int8), np.full(xr.size, 3, np.int8)]
    )
    keep = (day >= sim.active_start[acct]) & (day < np.minimum(sim.active_end[acct], cal.n_days))
    keep |= kind_src == 3
    acct, day, feat, kind_src = acct[keep], day[keep], feat[keep], kind_src[keep]
    nc = acct.size
    # move most weekend tickets to Friday (people file tickets on workdays)
    wd = cal.weekday[np.clip(day, 0, cal.n_days - 1)]
    wk = (wd >= 5) & (rng.random(nc) < 0.75) & (kind_src != 3)
    day = np.where(wk, np.maximum(day - (wd - 4), sim.active_start[acct]), day)
    hm = np.nan_to_num(sim.h[acct, np.clip(cal.month_of(day), 0, m_total - 1)], nan=0.0)
    # type and severity
    u = rng.random(nc)
    p_problem = np.clip(0.52 - 0.12 * hm, 0.3, 0.8)
    p_question = (1 - p_problem) * 0.68
    ctype = np.where(u < p_problem, 0, np.where(u < p_problem + p_question, 1, 2))
    ctype = np.where(kind_src == 1, 0, np.where((kind_src == 2) | (kind_src == 3), 1, ctype))
    sev_logits = np.where(
        (ctype == 0)[:, None],
        np.stack([0.3 + 0 * hm, 0.9 + 0 * hm, -0.2 - 0.7 * hm, -1.7 - 1.0 * hm], axis=1),
        np.stack([1.0 + 0 * hm, 0.6 + 0 * hm, -1.2 + 0 * hm, -3.2 + 0 * hm], axis=1),
    )
    sev_logits[kind_src == 1] = np.array([-9.0, -9.0, 0.0, 0.5])
    sev_logits[kind_src == 2] = np.array([-1.0, 1.0, -1.0, -9.0])
    sev_logits[kind_src == 3] = np.array([0.5, 0.5, -9.0, -9.0])
    sev = _sample_rows(_softmax(sev_logits), rng.random(nc))
    # reported priority = true severity most of the time
    shift = rng.choice([-1, 0, 1], size=nc, p=[0.07, 0.86, 0.07])
    prio = np.clip(sev + np.where(kind_src == 1, 0, shift), 0, 3)
    origin = _sample_rows(
        np.where((sev == 3)[:, None], [[0.25, 0.15, 0.4, 0.2]], [[0.42, 0.3, 0.1, 0.18]]), rng.random(nc)
    )
    mention = rng.random(nc) < 0.12
    mention_feat = (feat + rng.integers(1, 8, nc)) % 8
    sec = day * DAY + rng.integers(12 * 3600, 23 * 3600, nc)
    # resolution time (hours) by severity; struggling accounts' issues take longer
    med = np.array([90.0, 40.0, 14.0, 5.0])[sev]
    res_h = med * np.exp(0.8 * rng.standard_normal(nc) - 0.25 * hm)
    res_h = np.where(ctype == 2, res_h * 3, res_h)
    res_h = np.where(kind_src == 3, 1.0 + rng.random(nc) * 4, res_h)
    closed_sec = sec + (res_h * 3600).astype(np.int64) + 600
    end_sec = (cal.n_days - 1) * DAY + 23 * 3600 + 3599
    is_closed = closed_sec <= end_sec
    escalated = (~is_closed) & (sev >= 2) & ((hm < -0.5) | (rng.random(nc) < 0.3))
    status = np.where(is_closed, 3, np.where(escalated, 2, np.where(end_sec - sec > 86400, 1, 0)))
    mod_sec = np.where(
        is_closed, closed_sec, np.minimum(sec + (rng.random(nc) * (end_sec - sec)).astype(np.int64), end_sec)
    )
    order = np.lexsort((np.arange(nc), sec))
    ids = sf_ids("Case", nc, sim.seed)
    r_all = rng.integers(0, 1 << 30, size=(nc, 12))
    u_contact = rng.random(nc)
    created_s = cal.sf_ts(sec[order])
    closed_s = cal.sf_ts(closed_sec[order])
    mod_s = cal.sf_ts(np.maximum(mod_sec, sec)[order])
    statuses = ("New", "Working", "Escalated", "Closed")
    ctypes = ("Problem", "Question", "Feature Request")
    out = []
    case_no0 = 1000 + int(sim.seed % 97) * 10
    for j, k in enumerate(order.tolist()):
        i = int(acct[k])
        r = r_all[k].tolist()
        if kind_src[k] == 2:
            r[3] = 3  # "transfer ownership when someone leaves"
        pres = present_contacts(sim, i, int(day[k])) or sim.contacts_of[i]
        contact = pres[int(u_contact[k] * len(pres))]
        signer = sim.contact_name[contact].split(" ", 1)[0]
        if kind_src[k] == 3:
            subject, desc = T.render_cancellation(r, signer)
        else:
            subject, desc = T.render_ticket(
                T.FEATURES[feat[k]], T.SEVERITIES[sev[k]], ctypes[ctype[k]], r,
                T.FEATURES[mention_feat[k]] if mention[k] else None, signer,
            )  # fmt: skip
        rid = ids[j]
        closed = bool(is_closed[k])
        out.append(
            {
                "attributes": _attrs("Case", rid),
                "Id": rid,
                "AccountId": sim.account_id[i],
                "ContactId": sim.contact_id[contact],
                "CaseNumber": f"{case_no0 + j:08d}",
                "Subject": subject,
                "Description": desc,
                "Status": statuses[status[k]],
                "Priority": T.SEVERITIES[prio[k]],
                "Origin": CASE_ORIGINS[origin[k]],
                "Type": ctypes[ctype[k]],
                "Product_Feature__c": T.FEATURES[feat[k]],
                "CreatedDate": created_s[j],
                "ClosedDate": closed_s[j] if closed else None,
                "IsClosed": closed,
                "SystemModstamp": mod_s[j],
                "IsDeleted": False,
            }
        )
    return out


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _sample_rows(p: np.ndarray, u: np.ndarray) -> np.ndarray:
    """One categorical draw per row of ``p`` (rows sum to 1)."""
    c = np.cumsum(p, axis=1)
    return np.minimum((c < u[:, None]).sum(axis=1), p.shape[1] - 1)


# ----------------------------------------------------------------------------------------------
# HubSpot
# ----------------------------------------------------------------------------------------------


def build_hubspot(sim, rng: np.random.Generator) -> dict[str, list[dict]]:
    """HubSpot companies (one per Salesforce account plus a few unlinked prospects) and contacts."""
    cal, n = sim.cal, sim.n
    end_sec = (cal.n_days - 1) * DAY + 23 * 3600
    n_prospects = max(1, n // 40)
    comp_created = np.concatenate(
        [
            sim.acct_created_sec - rng.integers(0, 200 * DAY, n),
            rng.integers(0, max(1, end_sec), n_prospects),
        ]
    )
    order = np.lexsort((np.arange(comp_created.size), comp_created))
    comp_ids = sequential_numeric_ids(sim.seed, 7001, comp_created.size, 10_000_000_000)
    comp_id_of = [""] * comp_created.size
    for j, k in enumerate(order.tolist()):
        comp_id_of[k] = comp_ids[j]
    sim.hs_company_id = comp_id_of[:n]  # each account's HubSpot company (engagements link to it)
    pnames, pdomains = _prospect_names(sim, rng, n_prospects)
    mod = np.minimum(
        np.maximum(comp_created, np.concatenate([sim.acct_created_sec, comp_created[n:]]))
        + rng.integers(0, 400 * DAY, comp_created.size),
        end_sec,
    )
    created_s, mod_s = cal.hs_ts(comp_created), cal.hs_ts(mod)
    companies = []
    for k in order.tolist():
        if k < n:
            props = {
                "name": sim.names[k],
                "domain": sim.domains[k],
                "industry": T.INDUSTRIES[sim.industry[k]].upper().replace(" ", "_"),
                "numberofemployees": str(int(sim.employees[k])),
                "annualrevenue": str(int(sim.revenue[k])),
                "lifecyclestage": "other" if sim.churned[k] else "customer",
                "salesforceaccountid": sim.account_id[k],
            }
        else:
            p = k - n
            props = {
                "name": pnames[p],
                "domain": pdomains[p],
                "industry": T.INDUSTRIES[int(rng.integers(len(T.INDUSTRIES)))].upper().replace(" ", "_"),
                "numberofemployees": str(int(rng.integers(10, 3000))),
                "annualrevenue": str(int(rng.integers(1, 500)) * 100_000),
                "lifecyclestage": ("lead", "marketingqualifiedlead", "opportunity")[int(rng.integers(3))],
                "salesforceaccountid": "",
            }
        props["createdate"] = created_s[k]
        props["hs_lastmodifieddate"] = mod_s[k]
        companies.append(
            {
                "id": comp_id_of[k],
                "properties": props,
                "createdAt": created_s[k],
                "updatedAt": mod_s[k],
                "archived": False,
            }
        )
    # contacts: ~92% of Salesforce contacts are synced, plus 1-3 leads per prospect company
    nc = len(sim.contact_id)
    synced = np.flatnonzero(rng.random(nc) < 0.92)
    c_created = sim.contact_created[synced] * DAY + rng.integers(8 * 3600, 20 * 3600, synced.size)
    lead_comp = np.repeat(np.arange(n, n + n_prospects), rng.integers(1, 4, n_prospects))
    l_created = comp_created[lead_comp] + rng.integers(0, 30 * DAY, lead_comp.size)
    all_created = np.minimum(np.concatenate([c_created, l_created]), end_sec)
    corder = np.lexsort((np.arange(all_created.size), all_created))
    ids = sequential_numeric_ids(sim.seed, 7002, all_created.size, 100_000)
    cmod = np.minimum(all_created + rng.integers(0, 300 * DAY, all_created.size), end_sec)
    cs_, cm_ = cal.hs_ts(all_created), cal.hs_ts(cmod)
    lf = rng.integers(len(T.FIRST_NAMES), size=lead_comp.size)
    ll = rng.integers(len(T.LAST_NAMES), size=lead_comp.size)
    lt = rng.integers(len(T.CONTACT_TITLES["user"]), size=lead_comp.size)
    contacts = []
    for j, k in enumerate(corder.tolist()):
        if k < synced.size:
            c = int(synced[k])
            first, last = sim.contact_name[c].split(" ", 1)
            props = {
                "email": sim.contact_email[c],
                "firstname": first,
                "lastname": last,
                "jobtitle": sim.contact_title[c],
                "associatedcompanyid": comp_id_of[int(sim.contact_acct[c])],
            }
        else:
            q = k - synced.size
            pc = int(lead_comp[q])
            first, last = T.FIRST_NAMES[lf[q]], T.LAST_NAMES[ll[q]]
            props = {
                "email": f"{first}.{last}{q}@{pdomains[pc - n]}".lower(),
                "firstname": first,
                "lastname": last,
                "jobtitle": T.CONTACT_TITLES["user"][lt[q]],
                "associatedcompanyid": comp_id_of[pc],
            }
        props["createdate"] = cs_[k]
        props["lastmodifieddate"] = cm_[k]
        contacts.append(
            {"id": ids[j], "properties": props, "createdAt": cs_[k], "updatedAt": cm_[k], "archived": False}
        )
    return {"companies": companies, "contacts": contacts}


def _prospect_names(sim, rng, k: int) -> tuple[list[str], list[str]]:
    """One-word brand names for HubSpot-only prospects (never equal to a customer's name)."""
    names, domains = [], []
    for j in range(k):
        a = T.NAME_ADJ[int(rng.integers(len(T.NAME_ADJ)))]
        b = T.NAME_NOUN[int(rng.integers(len(T.NAME_NOUN)))]
        names.append(f"{a}{b.lower()}")
        domains.append(f"{a}{b}{j}.com".lower())
    return names, domains


# ----------------------------------------------------------------------------------------------
# OpportunityHistory (stage changes)
# ----------------------------------------------------------------------------------------------


def _sf_parse(ts: str) -> datetime:
    return datetime.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")


def _sf_format(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S") + ".000+0000"


def build_opportunity_history(opps: list[dict]) -> list[dict]:
    """One OpportunityHistory row per stage an opportunity passed through, derived from the
    opportunity itself (no random draws, so the rest of the world is unchanged): the open stages up to
    its current one, spread evenly from its creation towards its close date, then Closed Won/Lost at
    its last modification. Renewals and expansions skip Prospecting (an existing customer)."""
    out = []
    for o in opps:
        stage = o["StageName"]
        new = o["Type"] == "New Business" or stage == "Prospecting"
        path = list(OPEN_STAGES if new else OPEN_STAGES[1:])
        if stage in path:
            path = path[: path.index(stage) + 1]
        elif stage == "Closed Lost":  # lost somewhere along the way: how far depends on the record
            path = path[: 1 + sum(map(ord, o["Id"])) % len(path)]
        created, modified = _sf_parse(o["CreatedDate"]), _sf_parse(o["SystemModstamp"])
        end = max(created, modified)
        steps = len(path) + (1 if stage.startswith("Closed") else 0)
        span = (end - created) / max(steps, 1)
        times = [created + span * k for k in range(len(path))]
        if stage.startswith("Closed"):
            path.append(stage)
            times.append(end)
        for k, (name, at) in enumerate(zip(path, times, strict=True)):
            rid = f"008{o['Id'][3:15]}{k}AA"
            ts = _sf_format(at)
            out.append(
                {
                    "attributes": _attrs("OpportunityHistory", rid),
                    "Id": rid,
                    "OpportunityId": o["Id"],
                    "StageName": name,
                    "Amount": o["Amount"],
                    "CloseDate": o["CloseDate"],
                    "Probability": STAGE_PROB[name],
                    "CreatedDate": ts,
                    "SystemModstamp": ts,
                    "IsDeleted": False,
                }
            )
    return out
