"""Logged sales and success activity: Salesforce Tasks and the HubSpot-managed slice (deals, engagements).

Salesforce ``Task``
    Per account-month Poisson with a segment base rate, raised when the account is at risk
    (health < -0.5: save plays, escalation follow-ups) and in the months before an annual renewal.
    A task is a call, an e-mail or a to-do (``TaskSubtype``), owned by the CSM (the AE on expansion
    and renewal work), about the champion (else a present contact) and the open opportunity of the
    day (else the account). Subjects follow the account's state: at-risk accounts get save-plan and
    escalation subjects. Tasks due before the world end are completed with probability
    ``sigmoid(1.5 + 1.2 h)`` (struggling accounts leave more follow-ups open, "Not Started").

HubSpot (the SMB segment is run in HubSpot, as small-deal sales often are)
    * ``deals`` — every Salesforce opportunity of an SMB account mirrored as a HubSpot deal (the
      integration's ``salesforceopportunityid`` links them): same name, amount, close date, the
      stage in HubSpot's default pipeline, created a few minutes after the opportunity.
    * engagements — ``calls``, ``emails``, ``meetings``, ``notes``, ``tasks``: per SMB account-month
      Poisson per type; at-risk months bring more e-mails, calls and notes and fewer meetings, and
      the notes' and calls' wording follows health.
    * ``associations`` — each deal's and engagement's link to its account's HubSpot company, as
      HubSpot's v4 associations API reports it (``associationTypes`` with the HubSpot-defined type
      ids: deal → company primary 5 and unlabeled 341; call 182, email 186, meeting 188, note 190,
      task 192 → company). Search results carry no associations; the stand-in serves these links
      on ``POST /crm/v4/associations/{from}/{to}/batch/read``.

Every builder draws from its own random stream, after everything else, so adding them left the
rest of the world unchanged.
"""

from __future__ import annotations

import numpy as np

from revops_pipelines.sample import text as T
from revops_pipelines.sample.clock import DAY
from revops_pipelines.sample.crm import champion_on, present_contacts
from revops_pipelines.sample.ids import numeric_ids, sequential_numeric_ids, sf_ids

TASK_BASE = np.array([1.6, 0.8, 0.3])  # tasks per account-month by segment
SUBTYPES = ("Call", "Email", "Task")
SUBTYPE_P = np.array([0.35, 0.45, 0.20])
TASK_SUBJECTS = {
    ("Call", "normal"): ("Quarterly check-in call", "Call to review adoption", "Intro call with new admin",
                         "Call about {feature} rollout"),
    ("Call", "risk"): ("Escalation follow-up call", "Call re: open support issues", "Save-plan call with champion",
                       "Call with exec sponsor about renewal risk"),
    ("Email", "normal"): ("Send adoption report", "Share {feature} best practices", "Send QBR deck",
                          "Email: webinar invite"),
    ("Email", "risk"): ("Email: recovery plan for {feature}", "Send outage follow-up", "Email: renewal concerns",
                        "Email exec sponsor: success plan"),
    ("Task", "normal"): ("Update account plan", "Prepare QBR", "Log expansion opportunity",
                         "Review {feature} usage"),
    ("Task", "risk"): ("Build save plan", "Escalate open cases to support lead", "Review churn risk",
                       "Schedule executive business review"),
}  # fmt: skip

HS_STAGE = {
    "Prospecting": "appointmentscheduled",
    "Qualification": "qualifiedtobuy",
    "Discovery": "presentationscheduled",
    "Proposal": "decisionmakerboughtin",
    "Negotiation": "contractsent",
    "Closed Won": "closedwon",
    "Closed Lost": "closedlost",
}
ENGAGEMENT_TYPES = ("calls", "emails", "meetings", "notes", "tasks")
# HubSpot-defined association type ids (v4) of a record to its company
COMPANY_ASSOCIATION = {
    "deals": ((5, "Primary"), (341, None)),
    "calls": ((182, None),),
    "emails": ((186, None),),
    "meetings": ((188, None),),
    "notes": ((190, None),),
    "tasks": ((192, None),),
}
# per SMB account-month: base rate and the multiplier in at-risk months
ENGAGEMENT_RATE = {
    "calls": (0.35, 1.8),
    "emails": (1.0, 1.5),
    "meetings": (0.2, 0.6),
    "notes": (0.4, 2.0),
    "tasks": (0.3, 1.3),
}
TITLE_PROPERTY = {
    "calls": "hs_call_title",
    "emails": "hs_email_subject",
    "meetings": "hs_meeting_title",
    "tasks": "hs_task_subject",
}
HS_TEXT = {
    ("calls", "normal"): ("Check-in call", "Adoption review call", "Onboarding follow-up call"),
    ("calls", "risk"): ("Escalation call", "Renewal risk call", "Call about open issues"),
    ("emails", "normal"): ("Your monthly usage summary", "Tips for {feature}", "Webinar: getting more from {feature}"),
    ("emails", "risk"): ("Following up on your support tickets", "A plan to get {feature} working for you",
                         "Checking in before your renewal"),
    ("meetings", "normal"): ("Quarterly review", "Training session: {feature}", "Roadmap preview"),
    ("meetings", "risk"): ("Recovery plan review", "Executive check-in", "Support escalation review"),
    ("tasks", "normal"): ("Send usage report", "Follow up on training", "Share {feature} guide"),
    ("tasks", "risk"): ("Follow up on escalation", "Build save plan", "Confirm renewal decision maker"),
}  # fmt: skip
NOTE_TEXT = {
    "normal": (
        "Customer happy with {feature}; team adoption growing.",
        "Good call, they want to roll {feature} out to another team.",
        "Champion engaged, no open issues.",
    ),
    "risk": (
        "Customer frustrated with {feature}; asked about contract terms.",
        "Champion mentioned budget pressure, renewal not a given.",
        "They are evaluating {competitor}; need an exec call.",
        "Open support issues are blocking adoption.",
    ),
}


def _bounds(sim):
    cal = sim.cal
    lo = np.maximum(cal.month_start[None, :-1], sim.active_start[:, None])
    hi = np.minimum(cal.month_start[None, 1:], sim.active_end[:, None])
    return lo, np.maximum(hi - lo, 0)


def _renewal_window(sim) -> np.ndarray:
    """Annual contracts in the three months up to a renewal decision."""
    m_total = sim.cal.months
    ren = (sim.plan_day >= 0) & ~sim.monthly[:, None]
    window = np.zeros_like(ren)
    for j in range(3):
        window[:, : m_total - j] |= ren[:, j:]
    return window


def _fill(template: str, r: int) -> str:
    return template.format(
        feature=T.FEATURES[r % len(T.FEATURES)].lower(),
        competitor=T.COMPETITORS[(r // 7) % len(T.COMPETITORS)],
    )


def _open_opp_row(sim, i: int, day: int) -> int | None:
    best = None
    for lo, hi, row in sim.opp_windows[i]:
        if lo <= day <= hi:
            best = row
    return best


def build_tasks(sim, rng: np.random.Generator) -> list[dict]:
    cal, n, m_total = sim.cal, sim.n, sim.cal.months
    end_day = cal.n_days - 1
    end_sec = end_day * DAY + 23 * 3600
    lo, span = _bounds(sim)
    frac = span / np.diff(cal.month_start)[None, :]
    h = np.nan_to_num(sim.h, nan=0.0)
    at_risk = h < -0.5
    lam = TASK_BASE[sim.seg][:, None] * (1 + 0.8 * at_risk) * (1 + 0.6 * _renewal_window(sim)) * frac
    counts = rng.poisson(lam)
    flat = np.repeat(np.arange(n * m_total), counts.ravel())
    acct, mon = flat // m_total, flat % m_total
    k = flat.size
    day = lo[acct, mon] + (rng.random(k) * span[acct, mon]).astype(np.int64)
    sub = np.minimum((rng.random(k)[:, None] > np.cumsum(SUBTYPE_P)[None, :]).sum(axis=1), 2)
    r = rng.integers(0, 1 << 30, k)
    done_u, prio_u = rng.random(k), rng.random(k)
    created = day * DAY + rng.integers(8 * 3600, 19 * 3600, k)
    due = day + rng.integers(0, 10, k)
    completed_after = rng.integers(0, 4, k)
    order = np.lexsort((np.arange(k), created))
    ids = sf_ids("Task", k, sim.seed)
    created_s = cal.sf_ts(created[order])
    out = []
    for j, q in enumerate(order.tolist()):
        i, d, hq = int(acct[q]), int(day[q]), float(h[acct[q], mon[q]])
        risk = bool(at_risk[acct[q], mon[q]])
        subtype = SUBTYPES[int(sub[q])]
        pool = TASK_SUBJECTS[(subtype, "risk" if risk else "normal")]
        row = _open_opp_row(sim, i, d)
        what = sim.opp_row_id[row] if row is not None else sim.account_id[i]
        owner = (
            sim.ae[i] if row is not None and sim.opp_rows[row][1] in ("Expansion", "Renewal") else sim.csm[i]
        )
        champ = champion_on(sim, i, d)
        present = present_contacts(sim, i, d)
        who = champ if champ is not None else (present[0] if present else None)
        due_day = int(due[q])
        if due_day > end_day:
            status = "Not Started"
            mod = int(created[q])
        elif done_u[q] < 1.0 / (1.0 + np.exp(-(1.5 + 1.2 * hq))):
            status = "Completed"
            mod = min((due_day + int(completed_after[q])) * DAY + 17 * 3600, end_sec)
        else:
            status = "Not Started"  # left open past its due date
            mod = int(created[q])
        mod = max(mod, int(created[q]))
        priority = "High" if prio_u[q] < (0.6 if risk else 0.1) else "Normal"
        rid = ids[j]
        out.append(
            {
                "attributes": {"type": "Task", "url": f"/services/data/v60.0/sobjects/Task/{rid}"},
                "Id": rid,
                "AccountId": sim.account_id[i],
                "WhoId": sim.contact_id[who] if who is not None else None,
                "WhatId": what,
                "Subject": _fill(pool[int(r[q]) % len(pool)], int(r[q]) >> 3),
                "Status": status,
                "Priority": priority,
                "ActivityDate": cal.iso_date([due_day])[0],
                "TaskSubtype": subtype,
                "OwnerId": sim.user_sf_id[owner],
                "CreatedDate": created_s[j],
                "SystemModstamp": cal.sf_ts([mod])[0],
                "IsDeleted": False,
            }
        )
    return out


def hubspot_owner_ids(sim) -> list[str]:
    """HubSpot owner id of each user (HubSpot owners are numeric)."""
    return numeric_ids(sim.seed, 506, len(sim.user_role), 9)


def build_hubspot_activity(sim, rng: np.random.Generator) -> dict[str, list[dict]]:
    """Deals mirroring the SMB accounts' opportunities, and their engagements, in HubSpot's shape."""
    cal, n, m_total = sim.cal, sim.n, sim.cal.months
    end_sec = (cal.n_days - 1) * DAY + 23 * 3600
    owners = hubspot_owner_ids(sim)
    smb = sim.seg == 2
    out: dict[str, list[dict]] = {}

    # ---- deals
    rows = [k for k, row in enumerate(sim.opp_rows) if smb[row[0]]]
    lag = rng.integers(120, 3600, len(rows))  # the integration syncs a few minutes later
    created = np.array([sim.opp_rows[k][6] for k in rows], dtype=np.int64) + lag
    created = np.minimum(created, end_sec)
    mod = np.array([max(sim.opp_rows[k][7], sim.opp_rows[k][6]) for k in rows], dtype=np.int64) + lag
    mod = np.maximum(np.minimum(mod, end_sec), created)
    order = np.lexsort((np.arange(len(rows)), created))
    ids = sequential_numeric_ids(sim.seed, 7003, len(rows), 1_000_000_000)
    c_s, m_s = cal.hs_ts(created[order]), cal.hs_ts(mod[order])
    close = cal.hs_ts(
        np.array([sim.opp_rows[rows[q]][5] * DAY + 12 * 3600 for q in order.tolist()], dtype=np.int64)
    )
    deals = []
    for j, q in enumerate(order.tolist()):
        k = rows[q]
        _i, _kind, name, stage, amount, _cd, _cs, _ms, owner, _medd = sim.opp_rows[k]
        props = {
            "dealname": name,
            "dealstage": HS_STAGE[stage],
            "pipeline": "default",
            "amount": f"{amount:.2f}",
            "closedate": close[j],
            "hubspot_owner_id": owners[owner],
            "salesforceopportunityid": sim.opp_row_id[k],
            "createdate": c_s[j],
            "hs_lastmodifieddate": m_s[j],
        }
        deals.append(
            {"id": ids[j], "properties": props, "createdAt": c_s[j], "updatedAt": m_s[j], "archived": False}
        )
    out["deals"] = deals
    links = [(deals[j]["id"], "deals", sim.opp_rows[rows[q]][0]) for j, q in enumerate(order.tolist())]

    # ---- engagements
    lo, span = _bounds(sim)
    frac = span / np.diff(cal.month_start)[None, :]
    h = np.nan_to_num(sim.h, nan=0.0)
    at_risk = h < -0.5
    for t_no, etype in enumerate(ENGAGEMENT_TYPES):
        base, risk_mult = ENGAGEMENT_RATE[etype]
        lam = np.where(smb[:, None], base * np.where(at_risk, risk_mult, 1.0) * frac, 0.0)
        counts = rng.poisson(lam)
        flat = np.repeat(np.arange(n * m_total), counts.ravel())
        acct, mon = flat // m_total, flat % m_total
        k = flat.size
        ts = (lo[acct, mon] + (rng.random(k) * span[acct, mon]).astype(np.int64)) * DAY
        ts = ts + rng.integers(8 * 3600, 19 * 3600, k)
        created = np.minimum(ts + rng.integers(0, 2 * 3600, k), end_sec)  # logged after it happened
        mod = np.minimum(created + rng.integers(0, 5 * DAY, k) * (rng.random(k) < 0.3), end_sec)
        r = rng.integers(0, 1 << 30, k)
        order = np.lexsort((np.arange(k), created))
        ids = sequential_numeric_ids(sim.seed, 7010 + t_no, k, 10_000_000_000)
        ts_s, c_s, m_s = cal.hs_ts(ts[order]), cal.hs_ts(created[order]), cal.hs_ts(mod[order])
        recs = []
        for j, q in enumerate(order.tolist()):
            i = int(acct[q])
            mood = "risk" if at_risk[i, mon[q]] else "normal"
            rq = int(r[q])
            props = {
                "hs_timestamp": ts_s[j],
                "hubspot_owner_id": owners[sim.csm[i]],
                "hs_createdate": c_s[j],
                "hs_lastmodifieddate": m_s[j],
            }
            if etype == "notes":
                props["hs_body_preview"] = _fill(NOTE_TEXT[mood][rq % len(NOTE_TEXT[mood])], rq >> 3)
            else:
                pool = HS_TEXT[(etype, mood)]
                title = _fill(pool[rq % len(pool)], rq >> 3)
                props[TITLE_PROPERTY[etype]] = title
                props["hs_body_preview"] = f"{title} — {sim.names[i]}"
            links.append((ids[j], etype, i))
            recs.append(
                {
                    "id": ids[j],
                    "properties": props,
                    "createdAt": c_s[j],
                    "updatedAt": m_s[j],
                    "archived": False,
                }
            )
        out[etype] = recs
    out["associations"] = [
        {
            "fromObjectType": from_type,
            "fromObjectId": from_id,
            "toObjectType": "companies",
            "toObjectId": sim.hs_company_id[int(acct)],
            "associationTypes": [
                {"category": "HUBSPOT_DEFINED", "typeId": t, "label": label}
                for t, label in COMPANY_ASSOCIATION[from_type]
            ],
        }
        for from_id, from_type, acct in links
    ]
    return out
