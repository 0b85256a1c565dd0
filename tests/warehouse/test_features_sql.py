"""account_features SQL per dialect: the Firebolt rendering (through the SDK to the stand-in) gives
the same rows as DuckDB's, and nothing dated after a snapshot changes that snapshot's features."""

from __future__ import annotations

import datetime as dt
import random

import pandas as pd
import pytest

from assets import features as F
from assets.conversations import CALL_TRACKERS, SPEAKER_STATS
from assets.gong import CALLS
from assets.product import INVOICES, USAGE
from assets.salesforce import ACCOUNTS, CASES, OPPORTUNITIES
from revops_pipelines.warehouse.duckdb import DuckDBWarehouse
from revops_pipelines.warehouse.firebolt import FireboltWarehouse

SNAP = dt.date(2025, 6, 1)
EXPANSION_DAY = dt.date(2025, 8, 1)  # after SNAP
REPRICE_DAY = dt.date(2025, 9, 1)  # account 7 renews at a new price per seat, after SNAP
START = dt.date(2024, 10, 1)
DEFAULTS = {
    "TEXT": "x",
    "BIGINT": 0,
    "INTEGER": 0,
    "DOUBLE": 0.0,
    "BOOLEAN": False,
    "DATE": START,
    "TIMESTAMP": dt.datetime(2024, 10, 1),
}


def row(schema, **values):
    """All declared columns: given values, NOT NULL ones defaulted, the rest null."""
    out = {c.name: (None if c.nullable else DEFAULTS[c.type]) for c in schema.columns}
    out.update(values)
    return out


def world(until: dt.date, seed: int = 3) -> dict:
    """A small world with every source the features read, with events up to ``until``."""
    acc, use, calls, sent, cases, inv, opps, speakers, trackers = [], [], [], [], [], [], [], [], []
    for i in range(8):
        a = f"001A{i}"
        rnd = random.Random(f"{seed}-{i}")  # per account: later days never shift earlier draws
        since = START - dt.timedelta(days=400 + 30 * i)
        churn = dt.date(2025, 8, 1) if i == 1 else (dt.date(2025, 3, 1) if i == 2 else None)
        # seat changes: account 4 expands before SNAP, account 3 after it (an expansion closed in
        # July); the account record holds the seats and ARR of the latest change known by ``until``
        changes = {4: [(dt.date(2025, 3, 1), 25)], 3: [(EXPANSION_DAY, 26)]}.get(i, [])
        seats_on = lambda d, changes=changes: max([20] + [n for when, n in changes if when <= d])  # noqa: E731
        seats_now = seats_on(until)
        acc.append(
            row(
                ACCOUNTS,
                account_id=a,
                segment="SMB" if i % 2 else "Enterprise",
                plan="Growth",
                billing_frequency="Monthly" if i % 3 == 0 else "Annual",
                seats=seats_now,
                arr=(9000.0 if until >= REPRICE_DAY else 8000.0)
                if i == 7
                else 1000.0 * (i + 1) * seats_now / 20,
                customer_since=since,
                churn_date=churn,
            )
        )
        day = START
        while day <= until:
            if churn is None or day < churn:
                use.append(
                    row(
                        USAGE,
                        account_id=a,
                        usage_date=day,
                        seats=seats_on(day) if i != 5 else 0,
                        active_users=rnd.randint(0, 20),
                        sessions=rnd.randint(0, 50),
                        events=rnd.randint(0, 500),
                        features_used=rnd.randint(0, 9),
                    )
                )
            if rnd.random() < 0.05:
                cid = f"call-{a}-{day}"
                started = dt.datetime.combine(day, dt.time(15, 30))
                calls.append(row(CALLS, call_id=cid, account_id=a, started=started))
                share = rnd.uniform(0.2, 0.7)  # the customer's talk share
                for sid, aff, ratio, n in (
                    ("rep", "internal", 1 - share, 12),
                    ("cust", "external", share, 8),
                ):
                    speakers.append(
                        row(
                            SPEAKER_STATS,
                            call_id=cid,
                            account_id=a,
                            started=started,
                            speaker_id=f"{sid}-{a}",
                            affiliation=aff,
                            talk_seconds=1800 * ratio,
                            talk_ratio=ratio,
                            sentences=n,
                            sentiment=rnd.uniform(-1, 1),
                        )
                    )
                for name in ("Competitors", "Pricing", "Next Steps"):
                    if rnd.random() < 0.6:
                        trackers.append(
                            row(
                                CALL_TRACKERS,
                                call_id=cid,
                                account_id=a,
                                started=started,
                                name=name,
                                kind="tracker",
                                count=rnd.randint(1, 4),
                            )
                        )
                sent.append(
                    row(
                        F.SENTIMENT,
                        call_id=cid,
                        sentiment=rnd.uniform(-1, 1),
                        positive_share=0.3,
                        negative_share=rnd.random(),
                        risk_mentions=rnd.randint(0, 2),
                        sentences=10,
                    )
                )
            if rnd.random() < 0.04:
                created = dt.datetime.combine(day, dt.time(9))
                closed = created + dt.timedelta(days=rnd.randint(1, 40)) if rnd.random() < 0.8 else None
                cases.append(
                    row(
                        CASES,
                        case_id=f"case-{a}-{day}",
                        account_id=a,
                        created_at=created,
                        closed_at=closed,
                        priority=rnd.choice(["Low", "High", "Critical"]),
                    )
                )
            if day.day == 1:
                paid = dt.datetime.combine(day + dt.timedelta(days=rnd.choice([5, 20, 45, 400])), dt.time(0))
                inv.append(
                    row(
                        INVOICES,
                        invoice_id=f"in-{a}-{day}",
                        account_id=a,
                        due_date=day + dt.timedelta(days=14),
                        period_start=day,
                        paid_at=paid if paid.date() <= until else None,
                    )
                )
            day += dt.timedelta(days=1)
        rnd = random.Random(f"{seed}-{i}-opps")
        # account 7's won renewals: 350 per seat from November 2024, 450 from REPRICE_DAY
        for k, (close, amount) in enumerate([(dt.date(2024, 11, 1), 7000.0), (REPRICE_DAY, 9000.0)]):
            if i == 7 and until >= close:
                opps.append(
                    row(
                        OPPORTUNITIES,
                        opportunity_id=f"opp-{a}-won{k}",
                        account_id=a,
                        type="Renewal",
                        stage_name="Closed Won",
                        amount=amount,
                        is_closed=True,
                        is_won=True,
                        close_date=close,
                        created_at=dt.datetime.combine(close - dt.timedelta(days=60), dt.time(9)),
                    )
                )
        if i == 3 and until >= EXPANSION_DAY:  # the won expansion behind account 3's new seats
            opps.append(
                row(
                    OPPORTUNITIES,
                    opportunity_id=f"opp-{a}-x",
                    account_id=a,
                    type="Expansion",
                    stage_name="Closed Won",
                    amount=300.0,
                    is_closed=True,
                    is_won=True,
                    close_date=EXPANSION_DAY - dt.timedelta(days=12),
                    created_at=dt.datetime(2025, 6, 10),
                )
            )
        for k, close in enumerate([dt.date(2025, 7, 15) + dt.timedelta(days=10 * i), dt.date(2026, 7, 15)]):
            created = dt.datetime(2025, 4, 1) if k == 0 else dt.datetime(2025, 9, 1)
            if created.date() <= until:
                opps.append(
                    row(
                        OPPORTUNITIES,
                        opportunity_id=f"opp-{a}-{k}",
                        account_id=a,
                        type="Renewal",
                        close_date=close,
                        created_at=created,
                        **{f"meddpicc_{m}": ("y" if rnd.random() < 0.5 else None) for m in F.MEDDPICC_FIELDS},
                    )
                )
    return {
        ACCOUNTS: acc,
        USAGE: use,
        CALLS: calls,
        F.SENTIMENT: sent,
        CASES: cases,
        INVOICES: inv,
        OPPORTUNITIES: opps,
        SPEAKER_STATS: speakers,
        CALL_TRACKERS: trackers,
    }


def load(wh, data: dict) -> None:
    for schema, rows in data.items():
        wh.merge(schema, pd.DataFrame(rows, columns=schema.column_names))


def features(wh, snap=SNAP, horizon=90) -> pd.DataFrame:
    df = wh.query(F.features_sql(wh.dialect), F.features_params(wh.dialect, snap, horizon))
    return df.sort_values("account_id").reset_index(drop=True)


def assert_same(a: pd.DataFrame, b: pd.DataFrame, columns) -> None:
    assert a["account_id"].tolist() == b["account_id"].tolist()
    for c in columns:
        x, y = a[c], b[c]
        if c in ("segment", "plan", "billing_frequency", "snapshot_date"):
            assert [str(v) for v in x] == [str(v) for v in y], c
        else:
            pd.testing.assert_series_equal(
                x.astype("float64"), y.astype("float64"), check_names=False, rtol=1e-9, atol=1e-9, obj=c
            )


def test_firebolt_rendering_matches_duckdb(tmp_path, standin):
    data = world(until=dt.date(2025, 12, 31))
    duck = DuckDBWarehouse(path=str(tmp_path / "d.duckdb"))
    fire = FireboltWarehouse(database="revops", url=standin.url)
    load(duck, data)
    load(fire, data)
    assert "DATE_DIFF('day'" in F.features_sql("firebolt") and "::" not in F.features_sql("firebolt")
    assert "ARG_MIN" not in F.features_sql("firebolt") and "REGR_SLOPE" not in F.features_sql("firebolt")
    assert "p.snap - " not in F.features_sql("firebolt")  # window starts arrive as parameters
    for snap in (dt.date(2025, 1, 1), SNAP):
        d, f = features(duck, snap), features(fire, snap)
        assert len(d) >= 5
        assert d["usage_slope_90d"].notna().sum() > 0 and d["tickets_90d"].sum() > 0
        assert d["customer_talk_ratio_90d"].notna().sum() > 0 and d["competitor_mentions_90d"].sum() > 0
        if snap == SNAP:  # renewals are created in April 2025
            assert d["meddpicc_completeness"].notna().sum() > 0 and d["overdue_invoices"].sum() > 0
        assert_same(d, f, [c for c in F.FEATURES.column_names if c != "account_id"])
    # the Firebolt rendering is also plain SQL DuckDB runs: same answer on the same file
    fb_on_duck = duck.query(F.features_sql("firebolt"), F.features_params("firebolt", SNAP, 90))
    assert_same(
        features(duck), fb_on_duck.sort_values("account_id").reset_index(drop=True), F.FEATURE_COLUMNS
    )


def test_no_leakage_after_the_snapshot(warehouse):
    """Everything dated after the snapshot (usage, calls, tickets, payments, opportunities, churn)
    is added; the snapshot's features (all but the label, which looks ahead by design) stay put."""
    load(warehouse, world(until=SNAP))
    before = features(warehouse)
    load(warehouse, world(until=dt.date(2025, 12, 31)))  # same history, plus the months after
    assert warehouse.scalar("SELECT MAX(usage_date) FROM raw_product_usage") == dt.date(2025, 12, 31)
    after = features(warehouse)
    # the account record now says 26 seats and 1.3x the ARR for account 3 (an expansion after SNAP)
    a3 = "SELECT seats, arr FROM raw_sf_accounts WHERE account_id = '001A3'"
    assert tuple(warehouse.query(a3).iloc[0]) == (26, 5200.0)
    a7 = "SELECT arr FROM raw_sf_accounts WHERE account_id = '001A7'"
    assert warehouse.scalar(a7) == 9000.0  # and account 7 was repriced after SNAP
    assert_same(before, after, F.FEATURE_COLUMNS)
    assert before["churned_in_horizon"].isna().all()  # not observable yet on the snapshot
    assert after["churned_in_horizon"].notna().all()  # observable later, as the label


@pytest.mark.parametrize("dialect", ["duckdb", "firebolt"])
def test_params_cut_windows_at_the_snapshot(dialect):
    p = F.features_params(dialect, SNAP, 90)
    assert p[0] == SNAP
    if dialect == "firebolt":
        assert p[1:] == [dt.date(2025, 5, 2), dt.date(2025, 3, 3), dt.date(2024, 12, 3), dt.date(2025, 8, 30)]
    with pytest.raises(ValueError):
        F.features_sql("postgres")


def test_seats_and_arr_are_the_values_in_force_on_the_snapshot(tmp_path):
    """Seats (and so ARR) move with the seat changes dated on or before each snapshot, never with
    the account record's current values (Firebolt: the rendering test compares every column)."""
    warehouse = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    load(warehouse, world(until=dt.date(2025, 12, 31)))
    by = {
        s: features(warehouse, s).set_index("account_id")
        for s in (dt.date(2025, 1, 1), SNAP, dt.date(2025, 9, 1), dt.date(2025, 10, 1))
    }
    assert by[dt.date(2025, 1, 1)].loc["001A4", "seats"] == 20  # before its expansion
    assert by[SNAP].loc["001A4", "seats"] == 25
    assert by[SNAP].loc["001A4", "arr"] == pytest.approx(5000.0 * 25 / 20)
    assert by[SNAP].loc["001A3", "seats"] == 20 and by[SNAP].loc["001A3", "arr"] == pytest.approx(4000.0)
    assert by[dt.date(2025, 9, 1)].loc["001A3", "seats"] == 26  # after its expansion
    assert by[dt.date(2025, 9, 1)].loc["001A3", "arr"] == pytest.approx(5200.0)
    # the price of a seat is the last won booking's by each snapshot, not the record's (450 today)
    assert by[SNAP].loc["001A7", "arr"] == pytest.approx(7000.0)
    assert by[dt.date(2025, 10, 1)].loc["001A7", "arr"] == pytest.approx(9000.0)


def test_conversation_features_come_from_the_calls_in_the_window(tmp_path):
    """Customer talk ratio, customer sentiment and tracker mentions equal their recomputation from
    the calls started in the 90 days up to the snapshot (Firebolt: the rendering test compares them)."""
    warehouse = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    data = world(until=dt.date(2025, 12, 31))
    load(warehouse, data)
    got = features(warehouse).set_index("account_id")
    lo, hi = SNAP - dt.timedelta(days=90), SNAP
    speakers = pd.DataFrame(data[SPEAKER_STATS])
    speakers = speakers[(speakers["started"].dt.date > lo) & (speakers["started"].dt.date <= hi)]
    trackers = pd.DataFrame(data[CALL_TRACKERS])
    trackers = trackers[(trackers["started"].dt.date > lo) & (trackers["started"].dt.date <= hi)]
    checked = 0
    for account, g in speakers.groupby("account_id"):
        if account not in got.index:
            continue  # churned before the snapshot
        cust = g[g["affiliation"] == "external"]
        assert got.loc[account, "customer_talk_ratio_90d"] == pytest.approx(
            cust["talk_ratio"].sum() / g["call_id"].nunique()
        )
        weighted = (cust["sentiment"] * cust["sentences"]).sum() / cust["sentences"].sum()
        assert got.loc[account, "customer_sentiment_90d"] == pytest.approx(weighted)
        t = trackers[trackers["account_id"] == account]
        assert got.loc[account, "competitor_mentions_90d"] == t.loc[t["name"] == "Competitors", "count"].sum()
        assert got.loc[account, "pricing_mentions_90d"] == t.loc[t["name"] == "Pricing", "count"].sum()
        checked += 1
    assert checked >= 4
    silent = [a for a in got.index if a not in set(speakers["account_id"])]
    for account in silent:  # no call in the window: no ratio or sentiment, zero mentions
        assert (
            pd.isna(got.loc[account, "customer_talk_ratio_90d"])
            and got.loc[account, "pricing_mentions_90d"] == 0
        )


def test_usage_depth_features_are_ratios_of_sums_in_their_windows(tmp_path):
    """Events per session and sessions per active user equal their recomputation from the usage rows
    of each window up to the snapshot (Firebolt: the rendering test compares them)."""
    warehouse = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    data = world(until=dt.date(2025, 12, 31))
    load(warehouse, data)
    got = features(warehouse).set_index("account_id")
    use = pd.DataFrame(data[USAGE])
    use = use[use["usage_date"] <= SNAP]
    windows = {
        "events_per_session_30d": ("events", "sessions", SNAP - dt.timedelta(days=30), SNAP),
        "events_per_session_prev_60d": (
            "events",
            "sessions",
            SNAP - dt.timedelta(days=90),
            SNAP - dt.timedelta(days=30),
        ),
        "events_per_session_180d": ("events", "sessions", SNAP - dt.timedelta(days=180), SNAP),
        "sessions_per_user_30d": ("sessions", "active_users", SNAP - dt.timedelta(days=30), SNAP),
    }
    for account in got.index:
        rows = use[use["account_id"] == account]
        for col, (num, den, lo, hi) in windows.items():
            w = rows[(rows["usage_date"] > lo) & (rows["usage_date"] <= hi)]
            assert got.loc[account, col] == pytest.approx(w[num].sum() / w[den].sum()), (account, col)


def test_snapshot_day_features_compare_that_day_with_the_weeks_before(tmp_path):
    """The snapshot day's utilisation against the same weekday of the four weeks before, and its sessions
    per user and events per session against the 28 days before, as log-ratios with + 0.5 per count;
    null when the day has no seats, no active user or no session (Firebolt: the rendering test
    compares them)."""
    import math

    data = world(until=dt.date(2025, 12, 31))
    for r in data[USAGE]:  # on the snapshot day: one account without users, one without sessions
        if r["usage_date"] == SNAP and r["account_id"] == "001A0":
            r["active_users"] = 0
        if r["usage_date"] == SNAP and r["account_id"] == "001A4":
            r["active_users"], r["sessions"] = 3, 0
    warehouse = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    load(warehouse, data)
    got = features(warehouse).set_index("account_id")
    use = pd.DataFrame(data[USAGE])
    checked = 0
    for account in got.index:
        rows = use[use["account_id"] == account].set_index("usage_date")
        day = rows.loc[SNAP]
        ago = [(SNAP - d).days for d in rows.index]
        prev = rows[[1 <= a <= 28 for a in ago]]
        same = rows[[a in (7, 14, 21, 28) for a in ago]]
        util = (same["active_users"] / same["seats"].where(same["seats"] != 0)).mean()

        def lr(num: str, den: str, day=day, prev=prev) -> float:
            return math.log((day[num] + 0.5) / (day[den] + 0.5)) - math.log(
                (prev[num].sum() + 0.5) / (prev[den].sum() + 0.5)
            )

        want = {
            "util_last_day_vs_4w": math.log((day["active_users"] + 0.5) / day["seats"])
            - math.log(util + 0.5 / day["seats"])
            if day["seats"] > 0
            else None,
            "sessions_per_user_last_day_vs_28d": lr("sessions", "active_users")
            if day["active_users"] > 0
            else None,
            "events_per_session_last_day_vs_28d": lr("events", "sessions") if day["sessions"] > 0 else None,
        }
        for col, v in want.items():
            if v is None:
                assert pd.isna(got.loc[account, col]), (account, col)
            else:
                assert got.loc[account, col] == pytest.approx(v), (account, col)
                checked += 1
    assert pd.isna(got.loc["001A0", "sessions_per_user_last_day_vs_28d"])
    assert pd.isna(got.loc["001A4", "events_per_session_last_day_vs_28d"])
    assert pd.isna(got.loc["001A5", "util_last_day_vs_4w"])  # no seats
    assert checked >= 12
