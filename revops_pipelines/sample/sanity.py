"""Sanity report for a sample world: is the oracle good, and is the signal learnable?

* Oracle quality against realized labels: AUC, log-loss, calibration by decile.
* A quick LightGBM on simple features rebuilt *as of each snapshot* from the observed records only
  (usage, tickets, calls and their wording, invoices, renewal-opportunity MEDDPICC, contract dates),
  trained on early snapshots and scored on later ones (time split). It should reach a meaningful
  AUC that stays below (or near) the oracle's on the same rows.
* Churn rates by segment (events per customer-year).

Run: ``python -m revops_pipelines.sample.sanity --accounts 2000 --seed 7``.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd

from revops_pipelines.sample import text as T

FEATURES = [
    "segment", "monthly", "tenure_days", "days_to_renewal", "renewal_in_horizon", "seats",
    "util_30", "util_trend", "features_30", "sessions_per_user", "tickets_90", "severe_90",
    "calls_90", "neg_share_120", "pos_share_120", "overdue_invoices", "late_payments_365",
    "medd_filled", "medd_champion",
]  # fmt: skip


def _ts(values) -> pd.Series:
    return pd.to_datetime(pd.Series(values), utc=True, format="ISO8601").dt.tz_localize(None).astype("M8[s]")


def observed_tables(world) -> dict[str, pd.DataFrame]:
    """Flatten the observed (non-truth) records into small frames."""
    acc = pd.DataFrame(world.salesforce["Account"])
    accounts = pd.DataFrame(
        {
            "account_id": acc["Id"],
            "segment": acc["Segment__c"].map({"Enterprise": 0, "Mid-Market": 1, "SMB": 2}),
            "monthly": (acc["Billing_Frequency__c"] == "Monthly").astype(int),
            "customer_since": pd.to_datetime(acc["Customer_Since__c"]).astype("M8[s]"),
        }
    )
    cases = pd.DataFrame(world.salesforce["Case"])
    cases = pd.DataFrame(
        {
            "account_id": cases["AccountId"],
            "created": _ts(cases["CreatedDate"]),
            "severe": cases["Priority"].isin(["High", "Critical"]).astype(int),
        }
    )
    neg = tuple(T.NEGATIVE_MARKERS)
    pos = tuple(T.POSITIVE_MARKERS)
    rows = []
    for call, tr in zip(world.gong_calls, world.gong_transcripts, strict=True):
        external = {p["speakerId"] for p in call["parties"] if p["affiliation"] == "External"}
        n_s = n_neg = n_pos = 0
        for mono in tr["transcript"]:
            if mono["speakerId"] not in external:
                continue
            for s in mono["sentences"]:
                low = s["text"].lower()
                n_s += 1
                n_neg += any(m in low for m in neg)
                n_pos += any(m in low for m in pos)
        rows.append(
            (call["context"][0]["objects"][0]["objectId"], call["metaData"]["started"], n_s, n_neg, n_pos)
        )
    calls = pd.DataFrame(rows, columns=["account_id", "started", "n", "neg", "pos"])
    calls["started"] = _ts(calls["started"])
    inv = pd.DataFrame(
        {
            "account_id": [r["metadata"]["sf_account_id"] for r in world.invoices],
            "due": pd.to_datetime([r["due_date"] for r in world.invoices], unit="s").astype("M8[s]"),
            "paid_at": pd.to_datetime(
                [r["status_transitions"]["paid_at"] for r in world.invoices], unit="s"
            ).astype("M8[s]"),
        }
    )
    opp = pd.DataFrame(world.salesforce["Opportunity"])
    opp = opp[opp["Type"] == "Renewal"]
    opps = pd.DataFrame(
        {
            "account_id": opp["AccountId"],
            "created": _ts(opp["CreatedDate"]),
            "filled": opp[list(T.MEDDPICC_FIELDS)].notna().sum(axis=1).to_numpy(),
            "champion": opp["MEDDPICC_Champion__c"].notna().astype(int).to_numpy(),
        }
    )
    usage = world.usage[
        ["account_id", "usage_date", "seats", "active_users", "sessions", "features_used"]
    ].copy()
    usage["account_id"] = usage["account_id"].astype("str")
    usage["usage_date"] = usage["usage_date"].astype("M8[s]")
    return {
        "accounts": accounts,
        "cases": cases,
        "calls": calls,
        "invoices": inv,
        "opps": opps,
        "usage": usage,
    }


def build_features(world, horizon: int | None = None) -> pd.DataFrame:
    """One feature row per oracle row (account, snapshot), using only data dated <= snapshot."""
    tabs = observed_tables(world)
    oracle = world.oracle
    if horizon is None:
        horizon = int(oracle["horizon_days"].iloc[0])
    oracle = oracle[oracle["horizon_days"] == horizon]
    out = []
    acc = tabs["accounts"].set_index("account_id")
    for snap, grp in oracle.groupby("snapshot_date", sort=True):
        s = pd.Timestamp(snap)
        f = grp[["account_id", "snapshot_date", "churn_probability", "churned_within_horizon"]].copy()
        f = f.join(acc, on="account_id")
        f["tenure_days"] = (s - f["customer_since"]).dt.days
        # next contract decision after the snapshot, from Customer_Since__c alone
        cs = f["customer_since"]
        step = np.where(f["monthly"] == 1, 1, 12)
        months = (s.year - cs.dt.year) * 12 + (s.month - cs.dt.month)
        k = np.ceil(np.maximum(months, 0) / step) * step
        nxt = [c + pd.DateOffset(months=int(m)) for c, m in zip(cs, k, strict=True)]
        nxt = pd.Series(nxt, index=f.index)
        nxt = np.where(
            nxt <= s,
            [c + pd.DateOffset(months=int(m + st)) for c, m, st in zip(cs, k, step, strict=True)],
            nxt,
        )
        f["days_to_renewal"] = (pd.to_datetime(nxt) - s).days
        f["renewal_in_horizon"] = (f["days_to_renewal"] <= horizon).astype(int)
        u = tabs["usage"]
        u30 = u[(u["usage_date"] > s - pd.Timedelta(days=30)) & (u["usage_date"] <= s - pd.Timedelta(days=1))]
        u90 = u[
            (u["usage_date"] > s - pd.Timedelta(days=90)) & (u["usage_date"] <= s - pd.Timedelta(days=31))
        ]
        g30 = u30.groupby("account_id", observed=True).agg(
            au=("active_users", "sum"), st=("seats", "sum"), fu=("features_used", "mean"), ses=("sessions", "sum"),
            seats=("seats", "last"),
        )  # fmt: skip
        g90 = u90.groupby("account_id", observed=True).agg(au=("active_users", "sum"), st=("seats", "sum"))
        g90 = g90.rename(columns={"au": "au_prev", "st": "st_prev"})
        f = f.join(g30, on="account_id").join(g90, on="account_id")
        f["util_30"] = f["au"] / f["st"]
        f["util_trend"] = f["util_30"] / (f["au_prev"] / f["st_prev"])
        f["features_30"] = f["fu"]
        f["sessions_per_user"] = f["ses"] / f["au"].replace(0, np.nan)
        c = tabs["cases"]
        c90 = c[(c["created"] > s - pd.Timedelta(days=90)) & (c["created"] < s)]
        gc = c90.groupby("account_id").agg(tickets_90=("severe", "size"), severe_90=("severe", "sum"))
        f = f.join(gc, on="account_id")
        cl = tabs["calls"]
        c90 = cl[(cl["started"] > s - pd.Timedelta(days=90)) & (cl["started"] < s)]
        c120 = cl[(cl["started"] > s - pd.Timedelta(days=120)) & (cl["started"] < s)]
        f = f.join(c90.groupby("account_id").size().rename("calls_90"), on="account_id")
        g = c120.groupby("account_id")[["n", "neg", "pos"]].sum()
        f = f.join((g["neg"] / g["n"]).rename("neg_share_120"), on="account_id")
        f = f.join((g["pos"] / g["n"]).rename("pos_share_120"), on="account_id")
        inv = tabs["invoices"]
        overdue = inv[(inv["due"] < s) & (inv["paid_at"].isna() | (inv["paid_at"] > s))]
        late = inv[(inv["paid_at"] <= s) & (inv["paid_at"] > inv["due"] + pd.Timedelta(days=1))]
        late = late[late["paid_at"] > s - pd.Timedelta(days=365)]
        f = f.join(overdue.groupby("account_id").size().rename("overdue_invoices"), on="account_id")
        f = f.join(late.groupby("account_id").size().rename("late_payments_365"), on="account_id")
        op = tabs["opps"]
        op = op[op["created"] <= s].sort_values("created").groupby("account_id").last()
        f = f.join(
            op[["filled", "champion"]].rename(columns={"filled": "medd_filled", "champion": "medd_champion"}),
            on="account_id",
        )
        for col in ("tickets_90", "severe_90", "calls_90", "overdue_invoices", "late_payments_365"):
            f[col] = f[col].fillna(0)
        out.append(f)
    return pd.concat(out, ignore_index=True)


def _calibration(p: np.ndarray, y: np.ndarray, bins: int = 10) -> list[dict]:
    order = np.argsort(p, kind="stable")
    out = []
    for chunk in np.array_split(order, bins):
        out.append(
            {
                "mean_predicted": float(p[chunk].mean()),
                "observed_rate": float(y[chunk].mean()),
                "n": int(chunk.size),
            }
        )
    return out


def churn_rates(world) -> dict[str, float]:
    """Churn events per customer-year, by segment and billing frequency (from the truth table)."""
    tr = world.truth_accounts
    start = pd.Timestamp(world.manifest["start"])
    end = pd.Timestamp(world.manifest["end"]) + pd.Timedelta(days=1)
    since = tr["customer_since"].where(tr["customer_since"] > start, start)
    until = tr["churn_date"].where(tr["churned"], end)
    years = (until - since).dt.days.clip(lower=0) / 365.25
    out = {}
    for (seg, bill), idx in tr.groupby(["segment", "billing_frequency"]).groups.items():
        out[f"{seg}/{bill}"] = round(float(tr.loc[idx, "churned"].sum() / years[idx].sum()), 4)
    for seg, idx in tr.groupby("segment").groups.items():
        out[seg] = round(float(tr.loc[idx, "churned"].sum() / years[idx].sum()), 4)
    out["overall"] = round(float(tr["churned"].sum() / years.sum()), 4)
    return out


def sanity_report(world, test_snapshots: int = 6, seed: int = 0) -> dict:
    import lightgbm as lgb
    from sklearn.metrics import log_loss, roc_auc_score

    feats = build_features(world)
    y = feats["churned_within_horizon"].to_numpy().astype(int)
    p_or = feats["churn_probability"].to_numpy()
    snaps = np.sort(feats["snapshot_date"].unique())
    test_start = snaps[-test_snapshots]
    horizon = int(world.oracle["horizon_days"].iloc[0])
    train = (feats["snapshot_date"] + pd.Timedelta(days=horizon) < test_start).to_numpy()
    test = (feats["snapshot_date"] >= test_start).to_numpy()
    x = feats[FEATURES].astype(float)
    model = lgb.LGBMClassifier(
        n_estimators=300, learning_rate=0.03, num_leaves=15, min_child_samples=40, subsample=0.8,
        subsample_freq=1, colsample_bytree=0.8, reg_lambda=1.0, random_state=seed, verbose=-1, n_jobs=2,
    )  # fmt: skip
    model.fit(x[train], y[train])
    p_m = model.predict_proba(x[test])[:, 1]
    eps = 1e-6
    k = max(1, int(0.05 * test.sum()))
    top_or = np.argsort(-p_or[test], kind="stable")[:k]
    top_m = np.argsort(-p_m, kind="stable")[:k]
    imp = dict(zip(FEATURES, model.booster_.feature_importance("gain").round(1).tolist(), strict=True))
    return {
        "rows": int(len(feats)),
        "base_rate": float(y.mean()),
        "oracle_auc_all": float(roc_auc_score(y, p_or)),
        "oracle_logloss_all": float(log_loss(y, np.clip(p_or, eps, 1 - eps))),
        "oracle_calibration_deciles": _calibration(p_or, y),
        "oracle_mean_predicted": float(p_or.mean()),
        "test_rows": int(test.sum()),
        "train_rows": int(train.sum()),
        "oracle_auc_test": float(roc_auc_score(y[test], p_or[test])),
        "model_auc_test": float(roc_auc_score(y[test], p_m)),
        "oracle_logloss_test": float(log_loss(y[test], np.clip(p_or[test], eps, 1 - eps))),
        "model_logloss_test": float(log_loss(y[test], np.clip(p_m, eps, 1 - eps))),
        "oracle_precision_at_5pct": float(y[test][top_or].mean()),
        "model_precision_at_5pct": float(y[test][top_m].mean()),
        "model_feature_gain": imp,
        "churn_rates_per_customer_year": churn_rates(world),
    }


def main(argv: list[str] | None = None) -> None:
    from revops_pipelines.sample.generator import WorldConfig, generate_world

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args(argv)
    t0 = time.time()
    world = generate_world(WorldConfig(seed=a.seed, accounts=a.accounts))
    t1 = time.time()
    rep = sanity_report(world)
    rep["generate_seconds"] = round(t1 - t0, 2)
    rep["report_seconds"] = round(time.time() - t1, 2)
    print(json.dumps(rep, indent=2))


if __name__ == "__main__":
    main()
