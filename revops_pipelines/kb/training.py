"""Training data for the decision and classification models, labelled through the taxonomies.

Free of Dagster: each builder takes DataFrames read from the warehouse and returns
``(frame, notes)``, where ``frame`` matches a declared table schema below and ``notes`` counts what
was dropped and why (shown as asset metadata). The taxonomies are the one source of truth for
labels: a label is always a taxonomy node id, and every row records the taxonomy version it used.

* :func:`ticket_examples` — support tickets (``raw_sf_cases``) labelled with the product feature
  they concern (``Product_Feature__c`` mapped onto ``product_features``), with the taxonomy's keyword
  guess alongside, for a text classifier;
* :func:`call_topic_examples` — Gong calls with their topics (multi-label, ``call_topics``);
* :func:`revenue_events` — ARR movements from opportunities and monthly invoices, categorised by
  the ``revenue_events`` taxonomy's rules;
* :func:`decision_examples` — situations (an account at a monthly snapshot) → the action the account
  team took next (``cs_actions``, from the purpose of the next call) → outcomes (renewal won or lost,
  churn, ARR change).

Splits are by time (the latest ``test_fraction`` of rows is ``test``, the ``valid_fraction`` before it
``valid``), never at random, so no example is trained on the future of another.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from revops_pipelines.warehouse import table

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from revops_pipelines.kb.taxonomy import Taxonomy

TICKETS = table(
    "training_ticket_labels",
    [
        ("case_id", "TEXT"),
        ("account_id", "TEXT"),
        ("created_at", "TIMESTAMP"),
        ("text", "TEXT", False),
        ("case_type", "TEXT"),
        ("priority", "TEXT"),
        ("label", "TEXT", False),
        ("label_name", "TEXT", False),
        ("keyword_label", "TEXT"),
        ("keyword_agrees", "BOOLEAN", False),
        ("split", "TEXT", False),
        ("taxonomy_version", "TEXT", False),
    ],
    keys=("case_id",),
    description="Support tickets labelled with the product feature they concern (product_features taxonomy).",
    group="training_data",
)

CALL_TOPICS = table(
    "training_call_topics",
    [
        ("call_id", "TEXT"),
        ("account_id", "TEXT"),
        ("started", "TIMESTAMP"),
        ("purpose", "TEXT"),
        ("text", "TEXT", False),
        ("topics", "TEXT", False),
        ("primary_topic", "TEXT", False),
        ("n_topics", "INTEGER", False),
        ("split", "TEXT", False),
        ("taxonomy_version", "TEXT", False),
    ],
    keys=("call_id",),
    description="Gong calls with their topics as call_topics taxonomy ids (multi-label, JSON list).",
    group="training_data",
)

REVENUE_EVENTS = table(
    "training_revenue_events",
    [
        ("event_id", "TEXT"),
        ("account_id", "TEXT", False),
        ("event_date", "DATE", False),
        ("source", "TEXT", False),
        ("source_id", "TEXT", False),
        ("previous_arr", "DOUBLE", False),
        ("current_arr", "DOUBLE", False),
        ("arr_change", "DOUBLE", False),
        ("contract_event", "TEXT", False),
        ("plan_change", "TEXT", False),
        ("seat_change", "INTEGER", False),
        ("churn_reason", "TEXT"),
        ("label", "TEXT", False),
        ("labels", "TEXT", False),
        ("split", "TEXT", False),
        ("taxonomy_version", "TEXT", False),
    ],
    keys=("event_id",),
    primary_index=("account_id", "event_date"),
    description="ARR movements (opportunities, monthly invoices) categorised by the revenue_events taxonomy.",
    group="training_data",
)

DECISION_EXAMPLES = table(
    "training_decision_examples",
    [
        ("account_id", "TEXT"),
        ("snapshot_date", "DATE"),
        ("segment", "TEXT"),
        ("plan", "TEXT"),
        ("arr", "DOUBLE"),
        ("days_to_renewal", "INTEGER"),
        ("util_30d", "DOUBLE"),
        ("usage_trend", "DOUBLE"),
        ("days_since_active", "INTEGER"),
        ("sentiment_90d", "DOUBLE"),
        ("risk_mentions_90d", "INTEGER"),
        ("tickets_90d", "INTEGER"),
        ("high_tickets_90d", "INTEGER"),
        ("overdue_invoices", "INTEGER"),
        ("meddpicc_completeness", "DOUBLE"),
        ("situation", "TEXT", False),
        ("situation_segments", "TEXT", False),
        ("action", "TEXT", False),
        ("action_date", "DATE"),
        ("action_call_id", "TEXT"),
        ("renewal_outcome", "TEXT"),
        ("churned_in_horizon", "BOOLEAN"),
        ("arr_after", "DOUBLE"),
        ("arr_change", "DOUBLE"),
        ("split", "TEXT", False),
        ("taxonomy_version", "TEXT", False),
    ],
    keys=("account_id", "snapshot_date"),
    primary_index=("snapshot_date", "account_id"),
    description=(
        "Decision-model examples: situation (account snapshot) -> action taken next (cs_actions) -> "
        "outcomes (renewal won/lost, churn, ARR change)."
    ),
    group="training_data",
)

TABLES = [TICKETS, CALL_TOPICS, REVENUE_EVENTS, DECISION_EXAMPLES]


# -- helpers ---------------------------------------------------------------------------------------
def time_split(order: pd.Series, *, test_fraction: float = 0.2, valid_fraction: float = 0.1) -> list[str]:
    """``train`` / ``valid`` / ``test`` by the rank of ``order`` (oldest first, ties in input order)."""
    n = len(order)
    ranks = order.rank(method="first").astype(int).to_numpy() - 1 if n else []
    n_test = int(math.floor(n * test_fraction))
    n_valid = int(math.floor(n * valid_fraction))
    out = []
    for r in ranks:
        out.append("test" if r >= n - n_test else "valid" if r >= n - n_test - n_valid else "train")
    return out


class TaxonomyLabels:
    """The one rule that turns a source system's label (a Salesforce picklist value, a Gong topic
    name, a call purpose) into a taxonomy node id, for training sets and classifiers alike: the node
    the label names, else the node it is a keyword of (names win over keywords), case and surrounding
    white space ignored; ``None`` when there is none. Each miss is counted in ``unmapped``."""

    def __init__(self, taxonomy: Taxonomy, *, roots_only: bool = False):
        nodes = taxonomy.roots() if roots_only else list(taxonomy)
        self.index: dict[str, str] = {}
        for n in nodes:
            for kw in n.keywords:
                self.index.setdefault(kw.lower(), n.id)
        for n in nodes:
            self.index[n.name.lower()] = n.id
        self.unmapped: dict[str, int] = {}  # source label (``<empty>`` when missing) -> misses

    def _node(self, value: Any) -> str | None:
        return None if _missing(value) else self.index.get(str(value).strip().lower())

    def _miss(self, value: Any, times: int = 1) -> None:
        key = "<empty>" if _missing(value) else str(value)
        self.unmapped[key] = self.unmapped.get(key, 0) + times

    def __call__(self, value: Any) -> str | None:
        node = self._node(value)
        if node is None:
            self._miss(value)
        return node

    def series(self, values: pd.Series) -> pd.Series:
        """The node id of every value (missing where there is none); each distinct value looked up once."""
        nodes = {}
        for value, times in values.value_counts(dropna=False).items():
            node = self._node(value)
            if node is None:
                self._miss(value, int(times))
            else:
                nodes[value] = node
        return values.map(nodes)


def _counts(values: pd.Series) -> dict[str, int]:
    """How many rows carry each value, by value."""
    return {k: int(v) for k, v in values.value_counts().sort_index().items()}


def _root(taxonomy: Taxonomy, node_id: str) -> str:
    return taxonomy.path(node_id)[0].id


def _missing(v: Any) -> bool:
    """None, NaN, NaT or pandas.NA."""
    if v is None:
        return True
    import pandas as pd

    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):  # a list or array is a value, not a missing one
        return False


# -- tickets ---------------------------------------------------------------------------------------
def ticket_examples(
    cases: pd.DataFrame, features: Taxonomy, **split: float
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Label each ticket with the ``product_features`` root named by its ``product_feature`` field.

    Needs columns case_id, account_id, created_at, subject, description, type, priority,
    product_feature. Tickets without a recognised feature are dropped (counted in the notes).
    """
    import pandas as pd

    to_node = TaxonomyLabels(features, roots_only=True)
    labels = to_node.series(cases["product_feature"])
    unmapped = to_node.unmapped
    df = cases.loc[labels.notna()].copy()
    df["label"] = labels[labels.notna()]
    df["label_name"] = df["label"].map(lambda n: features.get(n).name)
    df["text"] = (df["subject"].fillna("") + "\n" + df["description"].fillna("")).str.strip()
    df = df[df["text"] != ""]

    def guess(text: str) -> str | None:
        hits = features.match_keywords(text)
        return _root(features, hits[0][0]) if hits else None

    df["keyword_label"] = df["text"].map(guess)
    df["keyword_agrees"] = df["keyword_label"] == df["label"]
    df["case_type"] = df["type"]
    df["created_at"] = pd.to_datetime(df["created_at"], utc=True).dt.tz_localize(None)
    df = df.sort_values(["created_at", "case_id"], kind="stable").reset_index(drop=True)
    df["split"] = time_split(df["created_at"], **split)
    df["taxonomy_version"] = features.version
    notes = {
        "examples": len(df),
        "dropped_unmapped": int(sum(unmapped.values())),
        "unmapped_values": {str(k): int(v) for k, v in unmapped.items()},
        "class_counts": _counts(df["label"]),
        "keyword_agreement": round(float(df["keyword_agrees"].mean()), 4) if len(df) else 0.0,
    }
    return df[TICKETS.column_names], notes


# -- call topics -----------------------------------------------------------------------------------
def _topics(raw: Any) -> list[tuple[str, float]]:
    if _missing(raw) or raw == "":
        return []
    try:
        items = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return []
    out = []
    for it in items or []:
        if isinstance(it, Mapping) and it.get("name"):
            out.append((str(it["name"]), float(it.get("duration") or 0)))
        elif isinstance(it, str):
            out.append((it, 0.0))
    return out


def call_topic_examples(
    calls: pd.DataFrame,
    transcripts: pd.DataFrame | None,
    topics: Taxonomy,
    *,
    max_chars: int = 4000,
    **split: float,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Calls (title, brief, key points, transcript) with their Gong topics as ``call_topics`` ids.

    Needs calls columns call_id, account_id, started, purpose, title, brief, key_points, topics (Gong
    JSON) and, optionally, transcripts call_id, seq, text. The primary topic is the longest one.
    """
    import pandas as pd

    to_node = TaxonomyLabels(topics)
    sentences: dict[str, list[str]] = {}
    if transcripts is not None and len(transcripts):
        for cid, g in transcripts.sort_values(["call_id", "seq"]).groupby("call_id", sort=False):
            sentences[cid] = [str(t) for t in g["text"]]
    rows = []
    dropped = 0
    for c in calls.to_dict("records"):
        mapped: dict[str, float] = {}
        for name, duration in _topics(c.get("topics")):
            node = to_node(name)
            if node is not None:
                mapped[node] = mapped.get(node, 0.0) + duration
        if not mapped:
            dropped += 1
            continue
        try:
            points = json.loads(c.get("key_points") or "[]")
        except ValueError:
            points = []
        parts = [
            c.get("title") or "",
            c.get("brief") or "",
            *[str(p) for p in points or []],
            *sentences.get(c["call_id"], []),
        ]
        text = "\n".join(p for p in parts if p).strip()[:max_chars]
        ordered = sorted(mapped, key=lambda n: (-mapped[n], n))
        rows.append(
            {
                "call_id": c["call_id"],
                "account_id": c.get("account_id"),
                "started": c.get("started"),
                "purpose": c.get("purpose"),
                "text": text or "(no text)",
                "topics": json.dumps(sorted(mapped)),
                "primary_topic": ordered[0],
                "n_topics": len(mapped),
            }
        )
    df = pd.DataFrame(rows, columns=[*CALL_TOPICS.column_names[:8]])
    if len(df):
        df["started"] = pd.to_datetime(df["started"], utc=True).dt.tz_localize(None)
        df = df.sort_values(["started", "call_id"], kind="stable").reset_index(drop=True)
    df["split"] = time_split(df["started"], **split) if len(df) else []
    df["taxonomy_version"] = topics.version
    counts: dict[str, int] = {}
    for t in df["topics"]:
        for n in json.loads(t):
            counts[n] = counts.get(n, 0) + 1
    notes = {
        "examples": len(df),
        "dropped_without_topics": dropped,
        "unknown_topics": to_node.unmapped,
        "topic_counts": dict(sorted(counts.items())),
        "mean_topics_per_call": round(float(df["n_topics"].mean()), 3) if len(df) else 0.0,
    }
    return df[CALL_TOPICS.column_names], notes


# -- revenue events --------------------------------------------------------------------------------
#: The label of an event is the most specific matching node under the first matching root in this order.
EVENT_PRECEDENCE = (
    "revenue_event.churn",
    "revenue_event.reactivation",
    "revenue_event.new",
    "revenue_event.contraction",
    "revenue_event.expansion",
    "revenue_event.renewal",
)


def primary_label(taxonomy: Taxonomy, matched: list[str]) -> str | None:
    for root in EVENT_PRECEDENCE:
        under = [m for m in matched if root in taxonomy and taxonomy.is_a(m, root)]
        if under:
            return max(under, key=lambda m: (taxonomy.depth(m), -matched.index(m)))
    return matched[0] if matched else None


def _as_day(v: Any) -> date | None:
    if _missing(v):
        return None
    if hasattr(v, "date") and callable(v.date):
        return v.date()
    if isinstance(v, date):
        return v
    return date.fromisoformat(str(v)[:10])


def revenue_events(
    opportunities: pd.DataFrame,
    invoices: pd.DataFrame,
    accounts: pd.DataFrame,
    events: Taxonomy,
    *,
    payment_failure_window_days: int = 90,
    **split: float,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """ARR movements per account, in date order, each categorised by ``events.classify``.

    * opportunities (closed, not deleted): New Business won → new (or reactivation after a churn);
      Renewal won → renewal at the new ARR; Renewal lost → churn (``payment_failed`` when an
      uncollectible invoice fell due within ``payment_failure_window_days`` before it); Expansion won
      → amendment adding its amount;
    * invoices of monthly-billed accounts: a paid invoice whose amount differs from the previous paid
      one → amendment (ARR = 12 × amount). Annual invoices repeat the renewals and are not used.

    Seat changes are derived from the account's price per seat (ARR / seats).
    """
    import pandas as pd

    acc = accounts.set_index("account_id")
    price = {}
    monthly = set()
    for aid, r in acc.iterrows():
        seats, arr = r.get("seats"), r.get("arr")
        if not _missing(seats) and not _missing(arr) and seats:
            price[aid] = float(arr) / float(seats)
        if str(r.get("billing_frequency") or "").lower() == "monthly":
            monthly.add(aid)
    failed_due: dict[str, list[date]] = {}
    inv = invoices.copy()
    for r in inv[inv["status"] == "uncollectible"].to_dict("records"):
        d = _as_day(r.get("due_date"))
        if d is not None and r.get("account_id"):
            failed_due.setdefault(r["account_id"], []).append(d)

    raw: list[dict[str, Any]] = []
    opps = opportunities[
        (opportunities["is_closed"].fillna(False)) & ~(opportunities["is_deleted"].fillna(False))
    ]
    for r in opps.to_dict("records"):
        raw.append({"kind": "opp", **r, "day": _as_day(r["close_date"])})
    paid = inv[(inv["status"] == "paid") & inv["account_id"].isin(monthly)]
    for r in paid.to_dict("records"):
        raw.append({"kind": "invoice", **r, "day": _as_day(r.get("period_start") or r.get("due_date"))})
    order = {"New Business": 0, "Expansion": 1, "Renewal": 2}
    raw = [r for r in raw if r["day"] is not None and r.get("account_id")]
    raw.sort(
        key=lambda r: (r["account_id"], r["day"], 0 if r["kind"] == "opp" else 1, order.get(r.get("type"), 3))
    )

    rows = []
    skipped = {"lost_expansions": 0, "unchanged_invoices": 0}
    state: dict[str, dict[str, Any]] = {}
    for r in raw:
        aid = r["account_id"]
        st = state.setdefault(aid, {"arr": 0.0, "paid_before": False, "last_invoice": None})
        prev = st["arr"]
        if r["kind"] == "opp":
            kind, won, amount = r.get("type"), bool(r.get("is_won")), float(r.get("amount") or 0.0)
            if kind == "New Business" and won:
                cur, contract = amount, "new"
            elif kind == "Renewal" and won:
                cur, contract = amount, "renewal"
            elif kind == "Renewal":
                cur, contract = 0.0, "cancellation"
            elif kind == "Expansion" and won:
                cur, contract = prev + amount, "amendment"
            else:
                skipped["lost_expansions"] += 1
                continue
            source, source_id = "salesforce_opportunity", r["opportunity_id"]
        else:
            amount = float(r.get("amount_due") or 0.0)
            last = st["last_invoice"]
            st["last_invoice"] = amount
            if last is None or abs(amount - last) < 0.005 or prev <= 0:
                skipped["unchanged_invoices"] += 1
                continue
            cur, contract = 12.0 * amount, "amendment"
            source, source_id = "billing_invoice", r["invoice_id"]
        change = cur - prev
        reason = None
        if cur == 0 and prev > 0:
            window = [
                d
                for d in failed_due.get(aid, [])
                if r["day"] - timedelta(days=payment_failure_window_days) <= d <= r["day"]
            ]
            reason = "payment_failed" if window else "customer_decision"
        unit = price.get(aid)
        seats = 0 if not unit or contract in ("new", "cancellation") else int(round(change / unit))
        record = {
            "previous_arr": round(prev, 2),
            "current_arr": round(cur, 2),
            "arr_change": round(change, 2),
            "prior_customer": st["paid_before"],
            "contract_event": contract,
            "plan_change": "none",
            "seat_change": seats,
            "churn_reason": reason,
        }
        matched = events.classify(record)
        label = primary_label(events, matched)
        if cur > 0:
            st["paid_before"] = True
        st["arr"] = cur
        if label is None:
            skipped.setdefault("unlabelled", 0)
            skipped["unlabelled"] += 1
            continue
        rows.append(
            {
                "event_id": f"{source}:{source_id}",
                "account_id": aid,
                "event_date": r["day"],
                "source": source,
                "source_id": source_id,
                **{
                    k: record[k]
                    for k in (
                        "previous_arr",
                        "current_arr",
                        "arr_change",
                        "contract_event",
                        "plan_change",
                        "seat_change",
                        "churn_reason",
                    )
                },
                "label": label,
                "labels": json.dumps(matched),
            }
        )
    df = pd.DataFrame(rows, columns=REVENUE_EVENTS.column_names[:14])
    if len(df):
        df = df.sort_values(["event_date", "event_id"], kind="stable").reset_index(drop=True)
    df["split"] = time_split(pd.to_datetime(df["event_date"]), **split) if len(df) else []
    df["taxonomy_version"] = events.version
    notes = {
        "events": len(df),
        "label_counts": _counts(df["label"]),
        "skipped": skipped,
        "net_arr_change": round(float(df["arr_change"].sum()), 2) if len(df) else 0.0,
    }
    return df[REVENUE_EVENTS.column_names], notes


# -- decision examples -----------------------------------------------------------------------------
BEHAVIOUR_PRECEDENCE = (
    "segment.behaviour.at_risk",
    "segment.behaviour.dormant",
    "segment.behaviour.expansion_ready",
    "segment.behaviour.power_user",
)


def segment_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """The fields the ``customer_segmentation`` rules read, from an account_features row (+ employees)."""

    def num(key: str) -> float | None:
        v = row.get(key)
        return None if _missing(v) else float(v)

    trend = num("usage_trend")
    return {
        "employee_count": num("employees"),
        "plan": str(row.get("plan") or "").lower() or None,
        "active_user_ratio": num("util_30d"),
        "seat_utilization": num("util_30d"),
        "usage_trend_90d": None if trend is None else trend - 1.0,
        "days_since_last_login": num("days_since_active"),
    }


def decision_examples(
    features: pd.DataFrame,
    accounts: pd.DataFrame,
    calls: pd.DataFrame,
    renewals: pd.DataFrame,
    segments: Taxonomy,
    actions: Taxonomy,
    *,
    action_window_days: int = 30,
    horizon_days: int = 90,
    **split: float,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One example per (account, snapshot): situation → next action → outcomes.

    * situation: the snapshot's features and its behavioural segment (``customer_segmentation``
      rules; ``segment.behaviour`` when none applies);
    * action: the purpose of the account's first call within ``action_window_days`` after the
      snapshot, as a ``cs_actions`` node (``cs_action.no_touch`` when there was none);
    * outcomes: the first renewal opportunity closing within ``horizon_days`` (``won``/``lost``),
      the snapshot's ``churned_in_horizon`` label, and ARR at the snapshot ``horizon_days`` later
      (0 when the account churned in between, null when that snapshot is not observed yet).
    """
    import pandas as pd

    f = features.copy()
    f["snapshot_date"] = pd.to_datetime(f["snapshot_date"]).dt.date
    emp = dict(zip(accounts["account_id"], accounts["employees"], strict=True)) if len(accounts) else {}
    to_action = TaxonomyLabels(actions)
    no_touch = "cs_action.no_touch" if "cs_action.no_touch" in actions else next(iter(actions)).id

    calls_by: dict[str, list[tuple[date, str, str]]] = {}
    for c in calls.to_dict("records"):
        if not c.get("account_id"):
            continue
        node = to_action(c.get("purpose"))
        if node is not None:
            calls_by.setdefault(c["account_id"], []).append((_as_day(c["started"]), c["call_id"], node))
    for v in calls_by.values():
        v.sort()
    ren_by: dict[str, list[tuple[date, bool]]] = {}
    for r in renewals.to_dict("records"):
        if r.get("is_closed"):
            ren_by.setdefault(r["account_id"], []).append((_as_day(r["close_date"]), bool(r.get("is_won"))))
    for v in ren_by.values():
        v.sort()
    arr_at = {
        (a, s): (None if _missing(x) else float(x))
        for a, s, x in zip(f["account_id"], f["snapshot_date"], f["arr"], strict=True)
    }
    last_snapshot = max(f["snapshot_date"]) if len(f) else None

    rows = []
    for r in f.to_dict("records"):
        aid, snap = r["account_id"], r["snapshot_date"]
        rec = segment_record({**r, "employees": emp.get(aid)})
        matched = [m for m in segments.classify(rec) if m.startswith("segment.behaviour.")]
        situation = next((b for b in BEHAVIOUR_PRECEDENCE if b in matched), "segment.behaviour")
        end = snap + timedelta(days=action_window_days)
        nxt = next(((d, cid, node) for d, cid, node in calls_by.get(aid, []) if snap < d <= end), None)
        horizon_end = snap + timedelta(days=horizon_days)
        ren = next(((d, won) for d, won in ren_by.get(aid, []) if snap < d <= horizon_end), None)
        churned = r.get("churned_in_horizon")
        churned = None if _missing(churned) else bool(churned)
        later = _add_months(snap, round(horizon_days / 30))
        if churned:
            arr_after = 0.0
        elif (aid, later) in arr_at:
            arr_after = arr_at[(aid, later)]
        else:
            arr_after = None
        arr = None if _missing(r.get("arr")) else float(r["arr"])
        rows.append(
            {
                **{c: r.get(c) for c in ("account_id", "snapshot_date", "segment", "plan", "arr", "days_to_renewal", "util_30d",
                                          "usage_trend", "days_since_active", "sentiment_90d", "risk_mentions_90d",
                                          "tickets_90d", "high_tickets_90d", "overdue_invoices", "meddpicc_completeness")},
                "situation": situation,
                "situation_segments": json.dumps(matched),
                "action": nxt[2] if nxt else no_touch,
                "action_date": nxt[0] if nxt else None,
                "action_call_id": nxt[1] if nxt else None,
                "renewal_outcome": None if ren is None else ("won" if ren[1] else "lost"),
                "churned_in_horizon": churned,
                "arr_after": arr_after,
                "arr_change": None if arr_after is None or arr is None else round(arr_after - arr, 2),
            }
        )  # fmt: skip
    df = pd.DataFrame(rows, columns=DECISION_EXAMPLES.column_names[:24])
    df["split"] = time_split(pd.to_datetime(df["snapshot_date"]), **split) if len(df) else []
    df["taxonomy_version"] = f"{segments.id}@{segments.version},{actions.id}@{actions.version}"
    for c in (
        "days_to_renewal",
        "days_since_active",
        "risk_mentions_90d",
        "tickets_90d",
        "high_tickets_90d",
        "overdue_invoices",
    ):
        df[c] = pd.to_numeric(df[c], errors="coerce").astype("Int64")
    outcome = df["renewal_outcome"].notna()
    notes = {
        "examples": len(df),
        "snapshots": int(df["snapshot_date"].nunique()) if len(df) else 0,
        "last_snapshot": str(last_snapshot) if last_snapshot else None,
        "action_counts": _counts(df["action"]),
        "situation_counts": _counts(df["situation"]),
        "with_renewal_outcome": int(outcome.sum()),
        "renewal_win_rate": round(float((df.loc[outcome, "renewal_outcome"] == "won").mean()), 4)
        if outcome.any()
        else None,
        "unknown_call_purposes": to_action.unmapped,
    }
    return df[DECISION_EXAMPLES.column_names], notes


def _add_months(d: date, months: int) -> date:
    m = d.month - 1 + months
    return (
        date(d.year + m // 12, m % 12 + 1, 1)
        if d.day == 1
        else date(d.year + m // 12, m % 12 + 1, min(d.day, 28))
    )
