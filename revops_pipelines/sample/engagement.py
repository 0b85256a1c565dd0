"""Gong calls (``/v2/calls/extensive`` shape) and transcripts (``/v2/calls/transcript`` shape).

Call frequency per account-month is Poisson with a segment base rate, raised in the first two
months (onboarding), in the three months before an annual renewal, when the account is at risk
(health < -0.8, escalations), after incidents and after a champion leaves.

Each call has a sentiment ``s = h + N(0, 0.5)`` (``h`` = the account's health that month) and each
topic in it ``s_t = s + U(-0.68, 0.68)``. The customer's sentences on a topic draw their tone from
``softmax(1.6 s_t + 0.1, 0.5, -1.6 s_t - 0.4)`` (positive, neutral, negative); negative sentences in Renewal / Pricing / Competition topics become explicit
cancellation or switching statements with probability ``sigmoid(-2.2 - 2.4 s)`` (x1.5 on renewal
calls). Topics follow the call purpose. Brief, key points, trackers, talk ratios and question
counts are derived from the generated transcript, so they agree with it. A negative customer
sentence takes ``NEGATIVE_TALK_STRETCH`` times longer to say, so on troubled calls the customer
holds more of the talk time (per-speaker talk ratio carries the health signal, as tone does).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import expit

from revops_pipelines.sample import text as T
from revops_pipelines.sample.clock import DAY
from revops_pipelines.sample.crm import champion_on, economic_buyer_on, present_contacts
from revops_pipelines.sample.ids import mix64, numeric_ids

CALL_BASE = np.array([0.5, 0.22, 0.06])  # calls per month by segment (SMB monthly plans x0.4)
PURPOSE_DURATION = {
    "Onboarding": (2700, 3600),
    "QBR": (2700, 3600),
    "Renewal": (1800, 2700),
    "Escalation": (1800, 3600),
    "Check-in": (1200, 2100),
    "Expansion": (1800, 2700),
    "Support Follow-up": (1200, 2400),
}
PURPOSE_TOPICS = {
    "Onboarding": (("Onboarding",), ("Integrations", "Reporting", "Support")),
    "QBR": (("Reporting",), ("Roadmap", "Onboarding", "Pricing", "Support")),
    "Renewal": (("Renewal", "Pricing"), ("Roadmap", "Support", "Reporting")),
    "Escalation": (("Support",), ("Integrations", "Reporting", "Roadmap")),
    "Check-in": ((), ("Onboarding", "Reporting", "Integrations", "Support", "Roadmap")),
    "Expansion": (("Pricing",), ("Onboarding", "Roadmap", "Reporting")),
    "Support Follow-up": (("Support",), ("Integrations", "Reporting", "Roadmap")),
}
TITLE_FORMS = (
    "{acct} <> {vendor} | {purpose}",
    "{purpose}: {acct} / {vendor}",
    "{vendor} x {acct} - {purpose}",
)
NEGATIVE_TALK_STRETCH = 1.8  # customer sentences of negative tone take this much longer to say
TRACKER_IDS = [str(10**17 + mix64(4242, k) % (9 * 10**17)) for k in range(len(T.TRACKERS))]


def _call_counts(sim, rng):
    cal, n, m_total = sim.cal, sim.n, sim.cal.months
    lo = np.maximum(cal.month_start[None, :-1], sim.active_start[:, None])
    hi = np.minimum(cal.month_start[None, 1:], sim.active_end[:, None])
    span = np.maximum(hi - lo, 0)
    frac = span / np.diff(cal.month_start)[None, :]
    h = np.nan_to_num(sim.h, nan=0.0)
    # renewal window: an annual renewal within ~3 months (including renewals after the world end)
    ren = (sim.plan_day >= 0) & ~sim.monthly[:, None]
    k_next = np.zeros(n, dtype=np.int64)
    # next anniversary after the world end
    for k in range(1, (m_total + 40) // 12 + 3):
        d = cal.add_months(sim.cs, 12 * k)
        k_next = np.where((k_next == 0) & (d >= cal.n_days), d, k_next)
    window = np.zeros_like(ren)
    for j in range(3):
        window[:, : m_total - j] |= ren[:, j:]
    late = (~sim.monthly)[:, None] & ((k_next[:, None] - cal.month_start[None, :-1]) <= 92)
    window |= late
    onboarding = (cal.month_start[None, :-1] - sim.cs[:, None] < 62) & (
        cal.month_start[None, 1:] > sim.cs[:, None]
    )
    at_risk = h < -0.8
    base = CALL_BASE[sim.seg] * np.where(sim.monthly, 0.4, 1.0)
    lam = base[:, None] * (1 + 1.4 * window) * (1 + 1.5 * onboarding) * (1 + 1.0 * at_risk)
    lam = lam + 0.5 * ((sim.incident_day >= 0) & (sim.seg < 2)[:, None]) + 0.3 * (sim.comp == 1)
    lam = lam * frac
    counts = rng.poisson(lam)
    return counts, lo, span, window, onboarding, at_risk


def build_calls(sim, rng: np.random.Generator, rng_t: np.random.Generator) -> tuple[list[dict], list[dict]]:
    calls: list[dict] = []
    transcripts: list[dict] = []
    for c, t in iter_calls(sim, rng, rng_t):
        calls.extend(c)
        transcripts.extend(t)
    return calls, transcripts


def iter_calls(sim, rng: np.random.Generator, rng_t: np.random.Generator, chunk: int = 20_000):
    """Yield ``(calls, transcripts)`` in chunks of ``chunk`` calls, in start-time order."""
    cal, n, m_total = sim.cal, sim.n, sim.cal.months
    counts, lo, span, window, onboarding, at_risk = _call_counts(sim, rng)
    flat = np.repeat(np.arange(n * m_total), counts.ravel())
    acct, mon = flat // m_total, flat % m_total
    nc = flat.size
    day = lo[acct, mon] + (rng.random(nc) * span[acct, mon]).astype(np.int64)
    wd = cal.weekday[np.clip(day, 0, cal.n_days - 1)]
    day = np.where(wd == 5, day - 1, np.where(wd == 6, day + 1, day))
    day = np.clip(day, sim.active_start[acct], np.minimum(sim.active_end[acct], cal.n_days) - 1)
    sched = day * DAY + (14 + rng.integers(0, 8, nc)) * 3600 + rng.integers(0, 2, nc) * 1800
    started = sched + rng.integers(0, 240, nc)
    order = np.lexsort((np.arange(nc), started))
    acct, mon, day, sched, started = acct[order], mon[order], day[order], sched[order], started[order]
    h = np.nan_to_num(sim.h[acct, mon], nan=0.0)
    sentiment = h + 0.5 * rng.standard_normal(nc)
    ctx = {
        "window": window[acct, mon],
        "onboarding": onboarding[acct, mon],
        "at_risk": at_risk[acct, mon],
        "incident": (sim.incident_day[acct, mon] >= 0) & (sim.incident_day[acct, mon] <= day),
    }
    call_ids = numeric_ids(sim.seed, 601, nc, 19)
    zoom = numeric_ids(sim.seed, 602, nc, 11)
    party0 = 10**15 + mix64(sim.seed, 603) % (8 * 10**15)
    speaker0 = 10**15 + mix64(sim.seed, 604) % (8 * 10**15)
    workspace = str(10**18 + mix64(sim.seed, 605) % (8 * 10**18))
    sched_s, started_s = cal.gong_ts(sched), cal.gong_ts(started)
    pools = T.pools()
    for c0 in range(0, nc, chunk):
        calls, transcripts = [], []
        c1 = min(nc, c0 + chunk)
        r_all = rng_t.integers(0, 1 << 30, size=(c1 - c0, 96))
        u_all = rng_t.random((c1 - c0, 96))
        for q in range(c0, c1):
            call, tr = _render_call(
                sim, q, int(acct[q]), int(day[q]), float(h[q]), float(sentiment[q]),
                {k: bool(v[q]) for k, v in ctx.items()},
                r_all[q - c0].tolist(), u_all[q - c0].tolist(), pools,
                call_ids[q], zoom[q], party0 + 16 * q, speaker0 + 16 * q, workspace, sched_s[q], started_s[q],
            )  # fmt: skip
            calls.append(call)
            transcripts.append(tr)
        yield calls, transcripts
    _SHARED.clear()


def _purpose(ctx: dict, h: float, u: float, u2: float) -> str:
    if ctx["onboarding"]:
        return "Onboarding" if u < 0.75 else "Check-in"
    if ctx["incident"] and u2 < 0.6:
        return "Support Follow-up"
    if ctx["window"]:
        return "Renewal" if u < 0.6 else ("QBR" if u < 0.8 else "Check-in")
    if ctx["at_risk"]:
        return "Escalation" if u < 0.55 else ("Check-in" if u < 0.85 else "QBR")
    p_exp = 0.35 * float(expit(2.0 * (h - 0.8)))
    if u < p_exp:
        return "Expansion"
    return "QBR" if u < p_exp + 0.3 else "Check-in"


def _render_call(sim, q, i, day, h, s, ctx, r, u, pools, call_id, zoom, party_base, speaker_base, workspace,
                 sched_s, started_s):  # fmt: skip
    scale_small = sim.scale_small
    purpose = _purpose(ctx, h, u[0], u[1])
    lo_d, hi_d = PURPOSE_DURATION[purpose]
    duration = lo_d + r[0] % (hi_d - lo_d)
    # --- topics
    must, optional = PURPOSE_TOPICS[purpose]
    topics = list(must)
    n_opt = (1 + r[1] % 2) if scale_small else 1
    if not must:
        n_opt += 1
    opts = list(optional)
    for k in range(n_opt):
        if not opts:
            break
        t = opts.pop((r[2 + k]) % len(opts))
        topics.append(t)
    if s < -0.6 and u[2] < 0.55 and "Competition" not in topics:
        topics.append("Competition")
    if ctx["window"] and "Renewal" not in topics and u[3] < 0.4:
        topics.append("Renewal")
    # --- parties
    rep = int(sim.csm[i]) if purpose != "Expansion" else int(sim.ae[i])
    internal = [rep]
    if purpose in ("Renewal", "Expansion") and u[4] < 0.5:
        internal.append(int(sim.ae[i]) if rep != sim.ae[i] else int(sim.csm[i]))
    if ("Integrations" in topics or purpose == "Onboarding") and u[5] < 0.4:
        internal.append(int(sim.se[i]))
    present = present_contacts(sim, i, day)
    external = []
    champ = champion_on(sim, i, day)
    if champ is not None and u[6] < (0.9 if h > 0 else 0.65):
        external.append(champ)
    eb = economic_buyer_on(sim, i, day)
    if (
        eb is not None
        and eb not in external
        and u[7] < (0.5 if purpose in ("Renewal", "QBR", "Escalation") else 0.1)
    ):
        external.append(eb)
    others = [c for c in present if c not in external]
    n_more = r[3] % 3 if scale_small else r[3] % 2
    for k in range(n_more):
        if not others:
            break
        external.append(others.pop(r[4 + k] % len(others)))
    if not external:
        external.append(present[0] if present else sim.contacts_of[i][-1])
    # --- transcript sentences: (party index, topic, text, tone) tone: 1 pos, 0 neu, -1 neg, -2 cancel, None internal
    n_int = len(internal)
    sents: list[tuple[int, str | None, str, int | None]] = []  # (party, topic, text, tone)
    ri = 10
    sents.append((0, None, pools.rep_open[r[ri] % len(pools.rep_open)], None))
    if scale_small:  # large worlds skip the customer's small talk to keep transcripts compact
        sents.append((n_int, None, pools.customer_open[r[ri + 1] % len(pools.customer_open)], 0))
    ri += 2
    p_cancel = min(0.9, 1.0 / (1.0 + math.exp(2.2 + 2.4 * s)) * (1.5 if purpose == "Renewal" else 1.0))
    ui = 10
    block = [0] * len(sents)  # topic block of each sentence (timing spreads blocks over the call)
    for b, topic in enumerate(topics, start=1):
        # topic-level sentiment: a customer can love reporting and be angry about support
        st = s + 0.4 * (u[(ui + 40) % 96] - 0.5) * 3.4
        e_pos, e_neu, e_neg = math.exp(1.6 * st + 0.1), math.exp(0.5), math.exp(-1.6 * st - 0.4)
        lp = (e_pos / (e_pos + e_neu + e_neg), e_neu / (e_pos + e_neu + e_neg))
        exchanges = (1 + r[ri % 96] % 3) if scale_small else 1
        ri += 1
        for _ in range(exchanges):
            mode = "recovery" if st < -0.3 else "normal"
            pool = pools.rep[(topic, mode)]
            speaker = 0 if n_int == 1 or u[ui % 96] < 0.7 else 1 + r[ri % 96] % (n_int - 1)
            first = r[(ri + 2) % 96] % len(pool)
            step = 1 + r[(ri + 3) % 96] % max(1, len(pool) - 1)
            for _k in range(1 + (r[(ri + 1) % 96] % 2 if scale_small else 0)):
                sents.append((speaker, topic, pool[(first + _k * step) % len(pool)], None))
                block.append(b)
            ri += 4
            ui += 1
            n_cust = (1 + r[ri % 96] % 3) if scale_small else (1 + r[ri % 96] % 2)
            ri += 1
            speaker = n_int + (
                0 if len(external) == 1 or u[ui % 96] < 0.6 else 1 + r[ri % 96] % (len(external) - 1)
            )
            ui += 1
            for _k in range(n_cust):
                v = u[ui % 96]
                ui += 1
                tone = 1 if v < lp[0] else (0 if v < lp[0] + lp[1] else -1)
                if tone == -1 and topic in ("Renewal", "Pricing", "Competition") and u[ui % 96] < p_cancel:
                    text = pools.cancel[r[ri % 96] % len(pools.cancel)]
                    tone = -2
                else:
                    pool = pools.customer[(topic, T.TONES[1 - tone])]
                    text = pool[r[ri % 96] % len(pool)]
                ui += 1
                ri += 1
                sents.append((speaker, topic, text, tone))
                block.append(b)
    sents.append((0, None, pools.rep_close[r[ri % 96] % len(pools.rep_close)], None))
    block.append(len(topics) + 1)
    if scale_small:
        sents.append((n_int, None, pools.customer_close[r[(ri + 1) % 96] % len(pools.customer_close)], 0))
        block.append(len(topics) + 1)
    # --- timing: sentences within a topic block follow each other; blocks are spread over the call
    # (the transcript is a condensed excerpt: talk between blocks is not rendered)
    # a customer with a problem explains it at length: negative customer sentences take longer to say,
    # so the customer's share of the talk time rises on troubled calls (timing only; no extra draws)
    speak = [
        int((330 * len(t.split()) + 450) * (NEGATIVE_TALK_STRETCH if tone is not None and tone < 0 else 1.0))
        for _, _, t, tone in sents
    ]
    total_ms = duration * 1000
    n_blocks = len(topics) + 2
    inner = [250 + (r[(k * 7) % 96] % 900) for k in range(len(sents))]
    used = sum(speak) + sum(inner)
    block_gap = max(1000, (int(total_ms * 0.96) - used) // n_blocks)
    t_ms = 1500 + r[ri % 96] % 2000
    monologues: list[dict] = []
    party_talk = [0] * (n_int + len(external))
    longest = cur_len = 0
    switches = 0
    prev = None
    for k, ((party, topic, text, _tone), dur) in enumerate(zip(sents, speak, strict=True)):
        if k and block[k] != block[k - 1]:
            t_ms += block_gap
        start, end = t_ms, t_ms + dur
        t_ms = end + inner[k]
        party_talk[party] += dur
        if prev is not None and monologues and prev == (party, topic):
            monologues[-1]["sentences"].append({"start": start, "end": end, "text": text})
            cur_len += dur
        else:
            if prev is not None and prev[0] != party:
                switches += 1
            monologues.append(
                {
                    "speakerId": str(speaker_base + party),
                    "topic": topic,
                    "sentences": [{"start": start, "end": end, "text": text}],
                }
            )
            cur_len = dur
        longest = max(longest, cur_len)
        prev = (party, topic)
    spoken = max(1, sum(party_talk))
    talk_scale = total_ms * 0.92 / spoken  # condensed transcript -> whole-call talk time
    # --- derived content
    cust = [(topic, tone) for party, topic, _t, tone in sents if party >= n_int and topic is not None]
    pos = sum(1 for _, t in cust if t == 1)
    neg = sum(1 for _, t in cust if t is not None and t < 0)
    cancel = any(t == -2 for _, t in cust)
    score = (pos - neg) / max(1, len(cust))
    bucket = (
        0
        if cancel
        else 4
        if score >= 0.5
        else 3
        if score >= 0.2
        else 2
        if score > -0.2
        else 1
        if score > -0.5
        else 0
    )
    acct_name = sim.names[i]
    brief = _shared(
        ("brief", acct_name, purpose, tuple(topics), bucket),
        lambda: (
            f"{T.VENDOR} met with {acct_name} for a {purpose.lower()} call covering "
            f"{', '.join(t.lower() for t in topics)}. {T.BRIEF_TONE[bucket]}"
        ),
    )
    kps: list[str] = []
    if cancel:
        kps.append(T.KEY_POINT_CANCEL)
    for want in (-1, 1):
        for topic, tone in cust:
            if tone == want and len(kps) < 3:
                kp = T.KEY_POINTS[(topic, "negative" if want < 0 else "positive")]
                if kp not in kps:
                    kps.append(kp)
    if not kps:
        kps.append(T.KEY_POINT_NEUTRAL.format(topic=topics[0].lower()))
    topic_ms: dict[str, int] = {}
    for (_p, topic, _t, _tone), dur in zip(sents, speak, strict=True):
        if topic is not None:
            topic_ms[topic] = topic_ms.get(topic, 0) + dur
    tracker_counts = [0] * len(T.TRACKERS)
    for _p, _topic, text, _tone in sents:
        for k, v in enumerate(T.tracker_hits(text)):
            tracker_counts[k] += v
    q_company = sum(1 for p, _tp, t, _tn in sents if p < n_int and t.endswith("?"))
    q_customer = sum(1 for p, _tp, t, _tn in sents if p >= n_int and t.endswith("?"))
    internal_ratio = sum(party_talk[:n_int]) / spoken
    # --- parties
    parties = []
    for k, uidx in enumerate(internal):
        parties.append(
            {
                "id": str(party_base + k),
                "emailAddress": sim.user_email[uidx],
                "name": sim.user_name[uidx],
                "title": sim.user_title[uidx],
                "speakerId": str(speaker_base + k),
                "affiliation": "Internal",
                "methods": ["Invitee"],
            }
        )
    for k, c in enumerate(external):
        parties.append(
            {
                "id": str(party_base + n_int + k),
                "emailAddress": sim.contact_email[c],
                "name": sim.contact_name[c],
                "title": sim.contact_title[c],
                "speakerId": str(speaker_base + n_int + k),
                "affiliation": "External",
                "methods": ["Invitee"],
            }
        )
    speakers = []
    for k in range(n_int + len(external)):
        if party_talk[k] == 0:
            continue
        speakers.append(
            {
                "id": str(speaker_base + k),
                "userId": sim.user_gong_id[internal[k]] if k < n_int else None,
                "talkTime": round(party_talk[k] * talk_scale / 1000.0, 1),
            }
        )
    # --- CRM context
    objects = [
        {
            "objectType": "Account",
            "objectId": sim.account_id[i],
            "fields": [{"name": "Name", "value": acct_name}],
        }
    ]
    opp = _open_opp(sim, i, day, prefer="Renewal" if purpose == "Renewal" else None)
    if opp is not None:
        row = sim.opp_rows[opp]
        objects.append(
            {
                "objectType": "Opportunity",
                "objectId": sim.opp_row_id[opp],
                "fields": [
                    {"name": "Name", "value": row[2]},
                    {"name": "Type", "value": row[1]},
                    {"name": "Amount", "value": row[4]},
                ],
            }
        )
    title = _shared(("title", acct_name, purpose, r[5] % len(TITLE_FORMS)), lambda: TITLE_FORMS[r[5] % len(TITLE_FORMS)].format(
        acct=acct_name, vendor=T.VENDOR, purpose=purpose))  # fmt: skip
    call = {
        "metaData": {
            "id": call_id,
            "url": f"https://app.gong.io/call?id={call_id}",
            "title": title,
            "scheduled": sched_s,
            "started": started_s,
            "duration": int(duration),
            "primaryUserId": sim.user_gong_id[rep],
            "direction": "Conference",
            "system": "Zoom",
            "scope": "External",
            "media": "Video",
            "language": "eng",
            "workspaceId": workspace,
            "purpose": purpose,
            "meetingUrl": f"https://zoom.us/j/{zoom}",
            "isPrivate": False,
        },
        "context": [{"system": "Salesforce", "objects": objects}],
        "parties": parties,
        "content": {
            "brief": brief,
            "keyPoints": [{"text": k} for k in kps],
            "topics": [
                {"name": t, "duration": int(round(topic_ms.get(t, 0) * talk_scale / 1000.0))} for t in topics
            ],
            "trackers": [
                {"id": TRACKER_IDS[k], "name": name, "count": tracker_counts[k], "type": "KEYWORD"}
                for k, (name, _kw) in enumerate(T.TRACKERS)
                if tracker_counts[k]
            ],
        },
        "interaction": {
            "speakers": speakers,
            "interactionStats": [
                {"name": "Talk Ratio", "value": round(internal_ratio, 2)},
                {"name": "Longest Monologue", "value": int(round(longest * talk_scale / 1000.0))},
                {"name": "Interactivity", "value": round(10.0 * switches / max(1, len(sents)), 1)},
                {"name": "Patience", "value": round(0.4 + (r[6] % 120) / 100.0, 2)},
                {"name": "Question Rate", "value": round(60.0 * q_company / max(1.0, duration / 60.0), 1)},
            ],
            "questions": {"companyCount": q_company, "nonCompanyCount": q_customer},
        },
    }
    return call, {"callId": call_id, "transcript": monologues}


_SHARED: dict[tuple, str] = {}


def _shared(key: tuple, make) -> str:
    """One string object per distinct value (strings are immutable): large worlds repeat titles/briefs."""
    v = _SHARED.get(key)
    if v is None:
        if len(_SHARED) > 500_000:
            _SHARED.clear()
        v = _SHARED[key] = make()
    return v


def _open_opp(sim, i: int, day: int, prefer: str | None) -> int | None:
    best = None
    for lo, hi, row in sim.opp_windows[i]:
        if lo <= day <= hi and sim.opp_rows[row][1] != "New Business":
            if prefer is not None and sim.opp_rows[row][1] == prefer:
                return row
            best = row
    return best
