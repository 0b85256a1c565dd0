"""Decision quality against the sample world's truth.

On a snapshot the oracle covers (``sample_oracle``: true churn probability and realised churn within
the horizon), rank every current customer with the decision policy and compare the policy's top ``k``
with the oracle's top ``k`` by true churn probability:

* ``precision_at_k`` — share of the top ``k`` that actually churned within the horizon;
* ``expected_precision_at_k`` — mean *true* churn probability of the top ``k`` (same quantity without
  the noise of one realisation; the better number for small worlds);
* ``arr_recall`` — ARR of the churners in the top ``k`` over the ARR of all churners;
* ``expected_arr_recall`` — the same with true probabilities as weights.

Each is reported for the policy, for the model score alone and for the oracle, with
``ratio_to_oracle`` = policy / oracle. Churn scores for the snapshot come from ``churn_scores`` when it
holds that snapshot, else from scoring ``account_features`` with the serving model (``model_store``).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from revops_pipelines.agents.policy import Policy, load_policy
from revops_pipelines.errors import RevOpsError
from revops_pipelines.lazy import np, pd
from revops_pipelines.warehouse import Warehouse


def score_snapshot(warehouse: Warehouse, model_store: Any, snapshot: date) -> pd.DataFrame:
    """Churn scores of the serving model for one feature snapshot: account_id, churn_score."""
    from models import churn as churn_assets
    from models import churn_lib as lib

    _, booster, enc, cal, meta = churn_assets.load_champion(model_store)
    df = warehouse.query(
        "SELECT * FROM account_features WHERE snapshot_date = CAST(? AS DATE) ORDER BY account_id", [snapshot]
    )
    if hasattr(lib, "derive_features"):
        df = lib.derive_features(df, int(meta.get("horizon_days", 90)))
    return pd.DataFrame(
        {"account_id": df["account_id"], "churn_score": cal(booster.predict(enc.transform(df)))}
    )


def _metrics(top: pd.DataFrame, all_rows: pd.DataFrame) -> dict[str, float]:
    churned_arr = float((all_rows["arr"] * all_rows["churned"]).sum())
    expected_arr = float((all_rows["arr"] * all_rows["churn_probability"]).sum())
    return {
        "precision_at_k": float(top["churned"].mean()) if len(top) else 0.0,
        "expected_precision_at_k": float(top["churn_probability"].mean()) if len(top) else 0.0,
        "arr_recall": float((top["arr"] * top["churned"]).sum()) / churned_arr if churned_arr else 0.0,
        "expected_arr_recall": float((top["arr"] * top["churn_probability"]).sum()) / expected_arr
        if expected_arr
        else 0.0,
    }


def _one(
    warehouse: Warehouse, pol: Policy, k: int, snap: date, model_store: Any, scores: pd.DataFrame | None
) -> dict[str, Any]:
    feats = warehouse.query(
        "SELECT f.*, o.churn_probability, CAST(o.churned_within_horizon AS INTEGER) AS churned "
        "FROM account_features f JOIN sample_oracle o "
        "ON o.account_id = f.account_id AND o.snapshot_date = f.snapshot_date "
        "WHERE f.snapshot_date = CAST(? AS DATE) ORDER BY f.account_id",
        [snap],
    )
    source = "given"
    if scores is None:
        scores = warehouse.query(
            "SELECT account_id, churn_score FROM churn_scores WHERE snapshot_date = CAST(? AS DATE)", [snap]
        )
        source = "churn_scores"
        if scores.empty:
            if model_store is None:
                from revops_pipelines.model_store import ModelStore
                from revops_pipelines.settings import load_settings

                model_store = ModelStore(uri=load_settings().model_store_uri)
            scores = score_snapshot(warehouse, model_store, snap)
            source = "serving model"
    df = feats.drop(columns=[c for c in ("churn_score",) if c in feats]).merge(scores, on="account_id")
    df["arr"] = pd.to_numeric(df["arr"], errors="coerce").fillna(0.0)
    k = min(k, len(df))
    ranked = pol.rank(pol.score(df).assign(eligible=True), limit=k)
    by_model = df.sort_values(["churn_score", "account_id"], ascending=[False, True]).head(k)
    by_oracle = df.sort_values(["churn_probability", "account_id"], ascending=[False, True]).head(k)
    p = df["churn_score"].to_numpy(dtype=float)
    return {
        "snapshot_date": str(snap),
        "k": int(k),
        "accounts": int(len(df)),
        "churners": int(df["churned"].sum()),
        "scores_from": source,
        "policy_metrics": _metrics(ranked, df),
        "model_only": _metrics(by_model, df),
        "oracle": _metrics(by_oracle, df),
        "overlap_with_oracle_top_k": len(set(ranked["account_id"]) & set(by_oracle["account_id"])) / k
        if k
        else 0.0,
        "confidence_brier": float(np.mean((p - df["churned"].to_numpy(dtype=float)) ** 2)),
        "confidence_mae_vs_true_probability": float(
            np.mean(np.abs(p - df["churn_probability"].to_numpy(dtype=float)))
        ),
    }


def decision_quality(
    warehouse: Warehouse,
    k: int = 50,
    *,
    policy: Policy | str = "churn_prevention",
    snapshots: int = 3,
    snapshot_date: date | None = None,
    model_store: Any = None,
    scores: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Policy top-k vs oracle top-k, averaged over the latest ``snapshots`` oracle snapshots (the
    model's held-out evaluation months) or on ``snapshot_date``. JSON-ready dict; the headline is
    ``ratio_to_oracle`` (policy / oracle per metric)."""
    pol = load_policy(policy) if isinstance(policy, str) else policy
    if snapshot_date is not None:
        snaps = [snapshot_date]
    else:
        df = warehouse.query(
            "SELECT DISTINCT o.snapshot_date FROM sample_oracle o "
            "WHERE EXISTS (SELECT 1 FROM account_features f WHERE f.snapshot_date = o.snapshot_date) "
            "ORDER BY 1 DESC LIMIT ?",
            [int(snapshots)],
        )
        snaps = [pd.Timestamp(v).date() for v in df.iloc[:, 0]]
    if not snaps:
        raise RevOpsError("decision quality needs sample_oracle rows on a snapshot with account_features")
    per = [_one(warehouse, pol, k, s, model_store, scores) for s in sorted(snaps)]
    out: dict[str, Any] = {
        "policy": pol.key,
        "k": int(k),
        "snapshots": [p["snapshot_date"] for p in per],
        "churners": sum(p["churners"] for p in per),
        "scores_from": per[-1]["scores_from"],
    }
    for group in ("policy_metrics", "model_only", "oracle"):
        out[group] = {m: float(np.mean([p[group][m] for p in per])) for m in per[0][group]}
    for m in ("overlap_with_oracle_top_k", "confidence_brier", "confidence_mae_vs_true_probability"):
        out[m] = float(np.mean([p[m] for p in per]))
    out["ratio_to_oracle"] = {
        m: (out["policy_metrics"][m] / v if v else None) for m, v in out["oracle"].items()
    }
    out["per_snapshot"] = per
    return out


def quality_metadata(q: dict[str, Any]) -> dict[str, float | int | str]:
    """Flat numbers from :func:`decision_quality` for Dagster metadata and the demo summary."""
    out: dict[str, float | int | str] = {
        "decision_quality_k": q["k"],
        "decision_quality_snapshots": ", ".join(q["snapshots"]),
    }
    for m in ("precision_at_k", "expected_precision_at_k", "arr_recall", "expected_arr_recall"):
        out[f"policy_{m}"] = round(q["policy_metrics"][m], 4)
        out[f"oracle_{m}"] = round(q["oracle"][m], 4)
        r = q["ratio_to_oracle"][m]
        out[f"{m}_vs_oracle"] = round(r, 4) if r is not None else float("nan")
    return out
