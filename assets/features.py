"""Derived tables: call sentiment and the account-level feature table, one partition per snapshot.

``account_features`` is computed in warehouse SQL per monthly snapshot date using only data dated
on or before the snapshot (no leakage); the label ``churned_in_horizon`` looks *after* it and is
null while its window is not yet observable.

Account attributes are as of the snapshot too: ``seats`` is the seat count in force on it (the
product's seats on the last usage day on or before it) and ``arr`` those seats at the price of a
seat in force (the last won new-business or renewal booking closed on or before the snapshot, over
the seats on its close date; before any such booking, the account record's ARR / seats), so
expansions, seat adds, downsells and repricings after the snapshot never reach it (the account
record itself holds only today's seats and ARR). ``segment``, ``plan`` and
``billing_frequency`` come from the account record: the sources keep no history of them, and the
sample world never changes them after the account is created.

Conversation features come from the Gong tables of :mod:`assets.conversations`, cut at the
snapshot like every other source (calls started in the 90 days up to it): the customer's share of
talk time per call, the customer's sentence-weighted sentiment, and competitor / pricing keyword
tracker hits.
"""

import os
from datetime import date, datetime, timedelta

import dagster as dg
from pydantic import Field

from assets.conversations import CALL_TRACKERS, SPEAKER_STATS
from revops_pipelines.checks import combine_checks, sql_check
from revops_pipelines.lazy import pd
from revops_pipelines.raw import column_schema, merge_metadata
from revops_pipelines.run_config import RunConfig
from revops_pipelines.signature import pinned
from revops_pipelines.text.sentiment import score_sentences
from revops_pipelines.warehouse import Warehouse, table

SENTIMENT = table(
    "gong_call_sentiment",
    [
        ("call_id", "TEXT"),
        ("sentiment", "DOUBLE", False),
        ("positive_share", "DOUBLE", False),
        ("negative_share", "DOUBLE", False),
        ("risk_mentions", "INTEGER", False),
        ("sentences", "INTEGER", False),
    ],
    keys=("call_id",),
    description="Per-call transcript sentiment (lexicon, negation-aware) and churn-risk phrase mentions.",
    group="features",
)


@dg.asset(
    group_name="features",
    kinds={"python"},
    deps=["raw_gong_transcripts"],
    description=SENTIMENT.description,
    metadata={"dagster/column_schema": column_schema(SENTIMENT)},
)
@pinned
def gong_call_sentiment(warehouse: Warehouse) -> dg.MaterializeResult:
    df = warehouse.query("SELECT call_id, seq, text FROM raw_gong_transcripts ORDER BY call_id, seq")
    rows = []
    for call_id, g in df.groupby("call_id", sort=True):
        s = score_sentences(g["text"])
        rows.append((call_id, s.score, s.positive_share, s.negative_share, s.risk_mentions, s.sentences))
    out = pd.DataFrame(rows, columns=SENTIMENT.column_names)
    result = warehouse.replace_table(SENTIMENT, out)
    return dg.MaterializeResult(
        metadata={
            **merge_metadata(result),
            "mean_sentiment": float(out["sentiment"].mean()) if len(out) else 0.0,
        }
    )


FEATURES = table(
    "account_features",
    [
        ("account_id", "TEXT"),
        ("snapshot_date", "DATE"),
        ("segment", "TEXT"),
        ("plan", "TEXT"),
        ("billing_frequency", "TEXT"),
        ("seats", "INTEGER"),
        ("arr", "DOUBLE"),
        ("tenure_days", "INTEGER"),
        ("days_to_renewal", "INTEGER"),
        ("util_30d", "DOUBLE"),
        ("util_prev_60d", "DOUBLE"),
        ("usage_trend", "DOUBLE"),
        ("usage_slope_90d", "DOUBLE"),
        ("sessions_30d", "DOUBLE"),
        ("features_used_30d", "DOUBLE"),
        ("events_per_session_30d", "DOUBLE"),
        ("events_per_session_prev_60d", "DOUBLE"),
        ("events_per_session_180d", "DOUBLE"),
        ("sessions_per_user_30d", "DOUBLE"),
        ("days_since_active", "INTEGER"),
        ("calls_90d", "INTEGER"),
        ("sentiment_90d", "DOUBLE"),
        ("negative_share_90d", "DOUBLE"),
        ("risk_mentions_90d", "INTEGER"),
        ("tickets_90d", "INTEGER"),
        ("high_tickets_90d", "INTEGER"),
        ("open_tickets", "INTEGER"),
        ("overdue_invoices", "INTEGER"),
        ("meddpicc_completeness", "DOUBLE"),
        ("customer_talk_ratio_90d", "DOUBLE"),
        ("customer_sentiment_90d", "DOUBLE"),
        ("competitor_mentions_90d", "INTEGER"),
        ("pricing_mentions_90d", "INTEGER"),
        ("util_last_day_vs_4w", "DOUBLE"),
        ("sessions_per_user_last_day_vs_28d", "DOUBLE"),
        ("events_per_session_last_day_vs_28d", "DOUBLE"),
        ("churned_in_horizon", "BOOLEAN"),
    ],
    keys=("account_id", "snapshot_date"),
    primary_index=("snapshot_date", "account_id"),
    description="Account features as of each monthly snapshot date, with the churn label after it.",
    group="features",
)
CONVERSATION_TABLES = (SPEAKER_STATS, CALL_TRACKERS)
FEATURE_COLUMNS = [
    c for c in FEATURES.column_names if c not in ("account_id", "snapshot_date", "churned_in_horizon")
]
CATEGORICAL = ("segment", "plan", "billing_frequency")
MEDDPICC_FIELDS = (
    "metrics",
    "economic_buyer",
    "decision_criteria",
    "decision_process",
    "paper_process",
    "identify_pain",
    "champion",
    "competition",
)

# ---- the feature query: one template, rendered per dialect ------------------------------------
#
# Written once in SQL both engines run (``DATE_DIFF('day', a, b)``, ``MOD``, ``CAST(x AS DOUBLE
# PRECISION)``, joins instead of ``ARG_MIN``); what differs is filled in per dialect from
# :data:`DIALECT_PARTS`: how the parameters arrive, the window boundaries and the usage slope.
# Every source is cut at the snapshot (``p.snap``); only the label looks after it.


def _flag(cond: str) -> str:
    return f"CASE WHEN {cond} THEN 1 ELSE 0 END"


_UTIL = "CAST(u.active_users AS DOUBLE PRECISION) / NULLIF(u.seats, 0)"
_DAY_X = "CAST(DATE_DIFF('day', p.snap, u.usage_date) AS DOUBLE PRECISION)"
_XY = f"CASE WHEN u.seats <> 0 THEN {_DAY_X} END"  # least squares over days with a utilisation


def _ratio(num: str, den: str, cond: str) -> str:
    """SUM(num) / SUM(den) over the rows where ``cond`` holds, as a float (null when den sums to 0)."""
    return (
        f"CAST(SUM(CASE WHEN {cond} THEN {num} END) AS DOUBLE PRECISION) / "
        f"NULLIF(SUM(CASE WHEN {cond} THEN {den} END), 0)"
    )


_COMPLETENESS = (
    "("
    + " + ".join(_flag(f"o.meddpicc_{m} IS NOT NULL") for m in MEDDPICC_FIELDS)
    + f") / {float(len(MEDDPICC_FIELDS))}"
)

# Gong keyword trackers counted as competitor and pricing mentions (names compared lower-case)
COMPETITOR_TRACKERS = ("Competitors", "Competition")
PRICING_TRACKERS = ("Pricing",)

# per dialect: parameters (``p``), window starts, label end, slope of utilisation over days
DIALECT_PARTS: dict[str, dict[str, str]] = {
    # (snapshot, horizon days): what the leakage probe (models/leakage.py) and ad-hoc runs pass
    "duckdb": {
        "p": "CAST(? AS DATE) AS snap, CAST(? AS INTEGER) AS horizon",
        "ago30": "p.snap - 30",
        "ago90": "p.snap - 90",
        "ago180": "p.snap - 180",
        "label_end": "p.snap + p.horizon",
        "slope": f"REGR_SLOPE({_UTIL}, {_DAY_X})",
    },
    "firebolt": {
        # no date arithmetic beyond DATE_DIFF: the boundaries arrive as parameters
        "p": "CAST(? AS DATE) AS snap, CAST(? AS DATE) AS d30, CAST(? AS DATE) AS d90, "
        "CAST(? AS DATE) AS d180, CAST(? AS DATE) AS label_end",
        "ago30": "p.d30",
        "ago90": "p.d90",
        "ago180": "p.d180",
        "label_end": "p.label_end",
        # least squares from averages (what REGR_SLOPE computes)
        "slope": f"(AVG({_XY} * ({_UTIL})) - AVG({_XY}) * AVG({_UTIL})) / "
        f"NULLIF(AVG({_XY} * {_XY}) - AVG({_XY}) * AVG({_XY}), 0)",
    },
}

FEATURES_TEMPLATE = """
WITH p AS (SELECT {p}),
acct AS (
  SELECT a.*, p.snap, {label_end} AS label_end FROM raw_sf_accounts a, p
  WHERE NOT a.is_deleted AND a.customer_since <= p.snap AND (a.churn_date IS NULL OR a.churn_date > p.snap)
),
u AS (
  SELECT u.account_id,
    AVG(CASE WHEN u.usage_date > {ago30} THEN {util} END) AS util_30d,
    AVG(CASE WHEN u.usage_date <= {ago30} THEN {util} END) AS util_prev_60d,
    {slope} AS usage_slope_90d,
    AVG(CASE WHEN u.usage_date > {ago30} THEN u.sessions END) AS sessions_30d,
    AVG(CASE WHEN u.usage_date > {ago30} THEN u.features_used END) AS features_used_30d,
    -- depth of use, whatever the team's size or adoption: events per session, sessions per active user
    {eps_30} AS events_per_session_30d,
    {eps_prev_60} AS events_per_session_prev_60d,
    {spu_30} AS sessions_per_user_30d,
    -- the snapshot day itself (the newest data: the first day of the new month) against the weeks before
    MAX(CASE WHEN u.usage_date = p.snap THEN u.seats END) AS seats_last_day,
    MAX(CASE WHEN u.usage_date = p.snap THEN u.active_users END) AS users_last_day,
    MAX(CASE WHEN u.usage_date = p.snap THEN u.sessions END) AS sessions_last_day,
    MAX(CASE WHEN u.usage_date = p.snap THEN u.events END) AS events_last_day,
    AVG(CASE WHEN DATE_DIFF('day', u.usage_date, p.snap) IN (7, 14, 21, 28) THEN {util} END) AS util_same_weekday_4w,
    SUM(CASE WHEN {prev28} THEN u.active_users END) AS users_prev_28d,
    SUM(CASE WHEN {prev28} THEN u.sessions END) AS sessions_prev_28d,
    SUM(CASE WHEN {prev28} THEN u.events END) AS events_prev_28d
  FROM raw_product_usage u, p
  WHERE u.usage_date <= p.snap AND u.usage_date > {ago90}
  GROUP BY u.account_id
),
-- the account's longer-run level (180 days up to the snapshot)
u180 AS (
  SELECT u.account_id, {eps_180} AS events_per_session_180d
  FROM raw_product_usage u, p
  WHERE u.usage_date <= p.snap AND u.usage_date > {ago180}
  GROUP BY u.account_id
),
last_active AS (
  SELECT u.account_id, MAX(u.usage_date) AS last_day FROM raw_product_usage u, p
  WHERE u.usage_date <= p.snap AND u.active_users > 0 GROUP BY u.account_id
),
-- seats in force on the snapshot: the product's seat count on the last usage day on or before it
-- (expansions, self-serve adds and downsells change it; the account record holds only today's)
seats_now AS (
  SELECT u.account_id, u.seats AS seats
  FROM raw_product_usage u
  JOIN (
    SELECT l.account_id, MAX(l.usage_date) AS last_day FROM raw_product_usage l, p
    WHERE l.usage_date <= p.snap GROUP BY l.account_id
  ) n ON n.account_id = u.account_id AND n.last_day = u.usage_date
),
-- the price of a seat in force: the last won new-business or renewal booking closed on or before the
-- snapshot, over the seats on its close date (none yet: the account record's ARR / seats)
bookings AS (
  SELECT o.account_id, o.close_date, o.amount / NULLIF(s.seats, 0) AS price
  FROM raw_sf_opportunities o
  JOIN raw_product_usage s ON s.account_id = o.account_id AND s.usage_date = o.close_date, p
  WHERE o.is_won AND o.type IN ('New Business', 'Renewal') AND o.close_date <= p.snap
    AND CAST(o.created_at AS DATE) <= p.snap AND NOT o.is_deleted
),
price AS (
  SELECT b.account_id, AVG(b.price) AS per_seat
  FROM bookings b
  JOIN (SELECT account_id, MAX(close_date) AS last_close FROM bookings GROUP BY account_id) m
    ON m.account_id = b.account_id AND m.last_close = b.close_date
  GROUP BY b.account_id
),
c AS (
  SELECT g.account_id, COUNT(*) AS calls_90d, AVG(s.sentiment) AS sentiment_90d,
    AVG(s.negative_share) AS negative_share_90d, SUM(s.risk_mentions) AS risk_mentions_90d
  FROM raw_gong_calls g JOIN gong_call_sentiment s ON s.call_id = g.call_id, p
  WHERE CAST(g.started AS DATE) <= p.snap AND CAST(g.started AS DATE) > {ago90}
  GROUP BY g.account_id
),
t AS (
  SELECT k.account_id,
    COUNT(CASE WHEN CAST(k.created_at AS DATE) > {ago90} THEN 1 END) AS tickets_90d,
    COUNT(CASE WHEN CAST(k.created_at AS DATE) > {ago90} AND k.priority IN ('High', 'Critical') THEN 1 END)
      AS high_tickets_90d,
    COUNT(CASE WHEN k.closed_at IS NULL OR CAST(k.closed_at AS DATE) > p.snap THEN 1 END) AS open_tickets
  FROM raw_sf_cases k, p
  WHERE NOT k.is_deleted AND CAST(k.created_at AS DATE) <= p.snap
  GROUP BY k.account_id
),
b AS (
  SELECT i.account_id, COUNT(*) AS overdue_invoices FROM raw_billing_invoices i, p
  WHERE i.due_date < p.snap AND i.due_date >= {ago180}
    AND (i.paid_at IS NULL OR CAST(i.paid_at AS DATE) > p.snap)
  GROUP BY i.account_id
),
-- conversations: the customer's share of talk time per call, the customer's sentence-weighted
-- sentiment, and keyword-tracker hits for competitors and pricing
conv AS (
  SELECT s.account_id,
    SUM(CASE WHEN s.affiliation = 'external' AND s.talk_ratio IS NOT NULL THEN s.talk_ratio ELSE 0 END)
      / NULLIF(COUNT(DISTINCT CASE WHEN s.talk_ratio IS NOT NULL THEN s.call_id END), 0) AS customer_talk_ratio_90d,
    SUM(CASE WHEN s.affiliation = 'external' AND s.sentiment IS NOT NULL THEN s.sentiment * s.sentences END)
      / NULLIF(SUM(CASE WHEN s.affiliation = 'external' AND s.sentiment IS NOT NULL THEN s.sentences END), 0)
      AS customer_sentiment_90d
  FROM gong_speaker_stats s, p
  WHERE CAST(s.started AS DATE) <= p.snap AND CAST(s.started AS DATE) > {ago90}
  GROUP BY s.account_id
),
trk AS (
  SELECT k.account_id,
    SUM(CASE WHEN LOWER(k.name) IN ({competitor_trackers}) THEN k."count" ELSE 0 END) AS competitor_mentions_90d,
    SUM(CASE WHEN LOWER(k.name) IN ({pricing_trackers}) THEN k."count" ELSE 0 END) AS pricing_mentions_90d
  FROM gong_call_trackers k, p
  WHERE k.kind = 'tracker' AND CAST(k.started AS DATE) <= p.snap AND CAST(k.started AS DATE) > {ago90}
  GROUP BY k.account_id
),
renewal_opps AS (
  SELECT o.account_id, o.close_date, {completeness} AS completeness
  FROM raw_sf_opportunities o, p
  WHERE o.type = 'Renewal' AND o.close_date > p.snap AND CAST(o.created_at AS DATE) <= p.snap
    AND NOT o.is_deleted
),
-- the nearest open renewal and its MEDDPICC completeness (averaged if two close the same day)
renewal AS (
  SELECT r.account_id, r.close_date AS next_renewal, AVG(r.completeness) AS meddpicc_completeness
  FROM renewal_opps r
  JOIN (SELECT account_id, MIN(close_date) AS first_close FROM renewal_opps GROUP BY account_id) n
    ON n.account_id = r.account_id AND n.first_close = r.close_date
  GROUP BY r.account_id, r.close_date
)
SELECT acct.account_id, acct.snap AS snapshot_date, acct.segment, acct.plan, acct.billing_frequency,
  -- ARR in force: those seats at the price of a seat in force
  seats_now.seats AS seats,
  ROUND(COALESCE(price.per_seat, acct.arr / NULLIF(acct.seats, 0)) * seats_now.seats, 2) AS arr,
  {tenure} AS tenure_days,
  CASE
    WHEN acct.billing_frequency = 'Monthly' THEN 30 - MOD({tenure}, 30)
    ELSE COALESCE(DATE_DIFF('day', acct.snap, renewal.next_renewal), 365 - MOD({tenure}, 365))
  END AS days_to_renewal,
  u.util_30d, u.util_prev_60d,
  CASE WHEN u.util_prev_60d > 0 THEN u.util_30d / u.util_prev_60d END AS usage_trend,
  u.usage_slope_90d, u.sessions_30d, u.features_used_30d,
  u.events_per_session_30d, u.events_per_session_prev_60d, u180.events_per_session_180d,
  u.sessions_per_user_30d,
  COALESCE(DATE_DIFF('day', last_active.last_day, acct.snap), {tenure}) AS days_since_active,
  COALESCE(c.calls_90d, 0) AS calls_90d, c.sentiment_90d, c.negative_share_90d,
  COALESCE(c.risk_mentions_90d, 0) AS risk_mentions_90d,
  COALESCE(t.tickets_90d, 0) AS tickets_90d, COALESCE(t.high_tickets_90d, 0) AS high_tickets_90d,
  COALESCE(t.open_tickets, 0) AS open_tickets, COALESCE(b.overdue_invoices, 0) AS overdue_invoices,
  renewal.meddpicc_completeness,
  conv.customer_talk_ratio_90d, conv.customer_sentiment_90d,
  COALESCE(trk.competitor_mentions_90d, 0) AS competitor_mentions_90d,
  COALESCE(trk.pricing_mentions_90d, 0) AS pricing_mentions_90d,
  -- log-ratios of the snapshot day to the weeks before (same weekday for utilisation, as weekends are
  -- quiet); null when that day has no usage row, no active user (sessions per user) or no session
  CASE WHEN u.seats_last_day > 0 AND u.util_same_weekday_4w IS NOT NULL
    THEN {util_day}
  END AS util_last_day_vs_4w,
  CASE WHEN u.users_last_day > 0 AND u.users_prev_28d > 0
    THEN {lr_spu}
  END AS sessions_per_user_last_day_vs_28d,
  CASE WHEN u.sessions_last_day > 0 AND u.sessions_prev_28d > 0
    THEN {lr_eps}
  END AS events_per_session_last_day_vs_28d,
  -- known only once the whole window is observed; a partial window would label only the churners
  CASE WHEN acct.label_end <= (SELECT MAX(usage_date) FROM raw_product_usage)
    THEN COALESCE(acct.churn_date <= acct.label_end, FALSE)
  END AS churned_in_horizon
FROM acct
LEFT JOIN u ON u.account_id = acct.account_id
LEFT JOIN u180 ON u180.account_id = acct.account_id
LEFT JOIN last_active ON last_active.account_id = acct.account_id
LEFT JOIN seats_now ON seats_now.account_id = acct.account_id
LEFT JOIN price ON price.account_id = acct.account_id
LEFT JOIN c ON c.account_id = acct.account_id
LEFT JOIN t ON t.account_id = acct.account_id
LEFT JOIN b ON b.account_id = acct.account_id
LEFT JOIN renewal ON renewal.account_id = acct.account_id
LEFT JOIN conv ON conv.account_id = acct.account_id
LEFT JOIN trk ON trk.account_id = acct.account_id
ORDER BY acct.account_id
"""


def render_features_sql(dialect: str) -> str:
    """:data:`FEATURES_TEMPLATE` with ``dialect``'s parts filled in."""
    if dialect not in DIALECT_PARTS:
        raise ValueError(f"unknown dialect {dialect!r} (one of {sorted(DIALECT_PARTS)})")
    parts = DIALECT_PARTS[dialect]
    recent, earlier = f"u.usage_date > {parts['ago30']}", f"u.usage_date <= {parts['ago30']}"
    return FEATURES_TEMPLATE.format(
        **parts,
        eps_30=_ratio("u.events", "u.sessions", recent),
        eps_prev_60=_ratio("u.events", "u.sessions", earlier),
        eps_180=_ratio("u.events", "u.sessions", "u.usage_date <= p.snap"),
        spu_30=_ratio("u.sessions", "u.active_users", recent),
        prev28="DATE_DIFF('day', u.usage_date, p.snap) BETWEEN 1 AND 28",
        # + 0.5: a day's counts are small (a quiet day can be 0); the same smoothing on both sides
        util_day="LN((CAST(u.users_last_day AS DOUBLE PRECISION) + 0.5) / u.seats_last_day) - "
        "LN(u.util_same_weekday_4w + 0.5 / CAST(u.seats_last_day AS DOUBLE PRECISION))",
        lr_spu=_log_ratio_change("sessions", "users"),
        lr_eps=_log_ratio_change("events", "sessions"),
        util=_UTIL,
        completeness=_COMPLETENESS,
        tenure="DATE_DIFF('day', acct.customer_since, acct.snap)",
        competitor_trackers=_names(COMPETITOR_TRACKERS),
        pricing_trackers=_names(PRICING_TRACKERS),
    )


def _log_ratio_change(num: str, den: str) -> str:
    """LN of num/den on the snapshot day minus LN of num/den over the 28 days before it (``u``'s
    ``<num>_last_day`` / ``<num>_prev_28d`` columns), each count + 0.5."""

    def ln(a: str, b: str) -> str:
        return f"LN((CAST({a} AS DOUBLE PRECISION) + 0.5) / (CAST({b} AS DOUBLE PRECISION) + 0.5))"

    return f"{ln(f'u.{num}_last_day', f'u.{den}_last_day')} - {ln(f'u.{num}_prev_28d', f'u.{den}_prev_28d')}"


def _names(names: tuple[str, ...]) -> str:
    """A SQL list of lower-case name literals (constants of this module, checked to be plain words)."""
    for n in names:
        if not n.replace(" ", "").isalnum():
            raise ValueError(f"tracker name {n!r} must be letters, digits and spaces")
    return ", ".join(f"'{n.lower()}'" for n in names)


# The renderings (parameters: :func:`features_params`). FEATURES_SQL takes (snapshot, horizon days).
FEATURES_SQL = render_features_sql("duckdb")
FIREBOLT_FEATURES_SQL = render_features_sql("firebolt")


def features_sql(dialect: str) -> str:
    """The feature query for one snapshot, rendered for ``dialect`` from the one template. Both
    renderings are tested to give the same rows (the Firebolt one through the SDK against the
    stand-in, which executes on DuckDB; real-Firebolt function coverage is not exercised in CI)."""
    return {"duckdb": FEATURES_SQL, "firebolt": FIREBOLT_FEATURES_SQL}.get(dialect) or render_features_sql(
        dialect
    )


def features_params(dialect: str, snapshot: date, horizon_days: int) -> list:
    """Parameters of :func:`features_sql`: DuckDB takes (snapshot, horizon days); Firebolt the
    snapshot, its 30/90/180-day window starts and the end of the label horizon."""
    if dialect == "duckdb":
        return [snapshot, horizon_days]
    if dialect != "firebolt":
        raise ValueError(f"unknown dialect {dialect!r} (one of {sorted(DIALECT_PARTS)})")
    return [
        snapshot,
        snapshot - timedelta(days=30),
        snapshot - timedelta(days=90),
        snapshot - timedelta(days=180),
        snapshot + timedelta(days=horizon_days),
    ]


def snapshot_partitions() -> dg.MonthlyPartitionsDefinition:
    """Monthly snapshot dates. Defaults cover the default sample world (2024-01 .. 2025-12)."""
    # datetimes, not strings: Dagster parses a string date with strptime (~1 ms the first time)
    return dg.MonthlyPartitionsDefinition(
        start_date=datetime.fromisoformat(os.environ.get("REVOPS_SNAPSHOT_START", "2024-07-01")),
        end_date=datetime.fromisoformat(os.environ.get("REVOPS_SNAPSHOT_END", "2026-01-01")),
    )


SNAPSHOTS = snapshot_partitions()


class FeatureConfig(RunConfig):
    horizon_days: int = Field(default=90, ge=7, le=730, description="Churn label horizon after the snapshot.")


@dg.asset(
    group_name="features",
    kinds={"sql"},
    partitions_def=SNAPSHOTS,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[
        "raw_sf_accounts",
        "raw_sf_opportunities",
        "raw_sf_cases",
        "raw_product_usage",
        "raw_billing_invoices",
        "raw_gong_calls",
        "gong_call_sentiment",
        "gong_speaker_stats",
        "gong_call_trackers",
    ],
    description=FEATURES.description,
    metadata={"dagster/column_schema": column_schema(FEATURES)},
)
@pinned
def account_features(
    context: dg.AssetExecutionContext, config: FeatureConfig, warehouse: Warehouse
) -> dg.MaterializeResult:
    """Recomputes each snapshot in the run's partition range (one run per backfill) and replaces
    exactly that snapshot's rows, so re-runs and backfills never duplicate."""
    window = context.partition_time_window
    snapshots = pd.date_range(window.start.date(), window.end.date(), freq="MS", inclusive="left")
    sql = features_sql(warehouse.dialect)
    for schema in CONVERSATION_TABLES:  # an empty table before the first conversation sync
        warehouse.ensure_table(schema)
    frames = []
    for snap in snapshots:
        frames.append(
            warehouse.query(sql, features_params(warehouse.dialect, snap.date(), config.horizon_days))
        )
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=FEATURES.column_names)
    result = warehouse.replace_where(
        FEATURES,
        df[FEATURES.column_names],
        "snapshot_date >= ? AND snapshot_date < ?",
        [window.start.date(), window.end.date()],
    )
    labelled = df["churned_in_horizon"].notna()
    return dg.MaterializeResult(
        metadata={
            **merge_metadata(result),
            "snapshots": dg.MetadataValue.text(", ".join(s.date().isoformat() for s in snapshots)),
            "rows_in_range": len(df),
            "labelled_rows": int(labelled.sum()),
            "churn_rate": float(df.loc[labelled, "churned_in_horizon"].astype(float).mean())
            if labelled.any()
            else 0.0,
        }
    )


ASSETS = [gong_call_sentiment, account_features]
TABLES = [SENTIMENT, FEATURES]
CHECKS = combine_checks(
    [
        sql_check(
            "account_features",
            "account_features_no_future_churned",
            "SELECT COUNT(*) FROM account_features f JOIN raw_sf_accounts a ON a.account_id = f.account_id "
            "WHERE a.churn_date IS NOT NULL AND a.churn_date <= f.snapshot_date",
            description="no account appears in a snapshot on or after its churn date (no leakage of churned accounts)",
            blocking=True,
        ),
        sql_check(
            "account_features",
            "account_features_utilisation_range",
            "SELECT COUNT(*) FROM account_features WHERE util_30d < 0 OR util_30d > 2",
            description="30-day utilisation lies in [0, 2]",
            blocking=True,
        ),
    ],
    name="features",
)
