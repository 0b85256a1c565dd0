"""Decision quality against the sample world's truth.

On snapshots the oracle covers (``sample_oracle``: true churn probability and realised churn within
the horizon), rank every current customer with the decision policy and compare the policy's top ``k``
with the oracle's top ``k`` by true churn probability, at several ``k`` (default 25, 50, 100 and 10 %
of the accounts):

* ``expected_precision_at_k`` — mean *true* churn probability of the top ``k``: the expected share of
  churners, without the noise of one realisation. **The goal is graded on this one.**
* ``precision_at_k`` — share of the top ``k`` that actually churned within the horizon. With ~2-3 %
  of accounts churning per quarter the oracle's own top-50 holds about 11 churners per snapshot, so
  one realisation moves this ratio by ±0.15 or more (the report gives a 90 % Wilson interval); it is
  reported, never graded.
* ``arr_recall`` / ``expected_arr_recall`` — ARR of the (expected) churners in the top ``k`` over the
  ARR of all (expected) churners;
* ``confidence_gap_top_k`` — mean confidence (calibrated churn score) the policy shows for its top ``k``
  minus their mean true probability: calibration where the team acts (> 0: over-confident).

Each is reported for the policy, for the model score alone (what the policy starts from) and for
the oracle, with ``ratio_to_oracle`` = policy / oracle. Given the sample world's manifest (``world``),
also for the **informed ceiling**: the exact churn probability given the latent state at the end of
the month *before* the snapshot (``E[oracle | mu, x_(k-1)]``, from the generator's own process, see
:func:`informed_probabilities`). The oracle knows the health of the month that starts on the snapshot
date, which no data dated before it reveals; the informed ceiling knows everything up to the previous
month exactly (no noise, no estimation), so it bounds what a model of the vendor data can reach,
apart from what the snapshot day itself (the new month's first day) shows
(``informed_ratio_to_oracle``; it is reported, not graded). The goal (policy ≥ 0.9 × oracle expected
precision@k) is met only if it holds at **every** ``k`` reported (``goal_met``), so it cannot be met
by choosing ``k``.

Snapshots: the serving model's held-out evaluation snapshots (``split.eval`` in its metadata), so the
grade is out of sample; without a model (given ``scores``) the latest ``snapshots`` oracle snapshots.
Churn scores come from ``churn_scores`` when it holds the snapshot, else from scoring
``account_features`` with the serving model (``model_store``). Every account with features and an
oracle row is ranked (the policy's churn-score gate and ``max_accounts`` are selection rules of the
live run, not of the ranking being graded). The graded ranking is the policy's priority (risk ×
value), the order the team acts in, not its risk alone: a value weighting (ARR) that departs from the
probability order costs graded precision by design, which is why the churn-prevention policy keeps it
mild; the model-alone ranking is reported beside it.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Any

from revops_pipelines.agents.policy import Policy, load_policy
from revops_pipelines.errors import RevOpsError
from revops_pipelines.lazy import np, pd
from revops_pipelines.warehouse import Warehouse

GOAL = 0.9
GRADED_METRIC = "expected_precision_at_k"
DEFAULT_KS: tuple[int | str, ...] = (25, 50, 100, "10%")
METRICS = ("precision_at_k", "expected_precision_at_k", "arr_recall", "expected_arr_recall")


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


def wilson(successes: int, n: int, z: float = 1.645) -> tuple[float, float]:
    """90 % Wilson score interval of a binomial proportion."""
    if n == 0:
        return (0.0, 0.0)
    p = successes / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (max(0.0, c - h), min(1.0, c + h))


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


def resolve_k(k: int | str, n: int) -> int:
    """``50`` → 50; ``"10%"`` → 10 % of ``n`` (at least 1); never more than ``n``."""
    if isinstance(k, str):
        s = k.strip()
        if not s.endswith("%"):
            try:
                return resolve_k(int(s), n)
            except ValueError:
                raise RevOpsError(f"k: expected an integer or a percentage like '10%', got {k!r}") from None
        try:
            share = float(s[:-1]) / 100
        except ValueError:
            raise RevOpsError(f"k: expected a percentage like '10%', got {k!r}") from None
        if not 0 < share <= 1:
            raise RevOpsError(f"k: percentage must be in (0, 100], got {k!r}")
        return max(1, min(n, int(round(n * share))))
    if int(k) < 1:
        raise RevOpsError(f"k: must be at least 1, got {k}")
    return min(int(k), n)


def _frame(
    warehouse: Warehouse, snap: date, model_store: Any, scores: pd.DataFrame | None
) -> tuple[pd.DataFrame, str]:
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
            scores = score_snapshot(warehouse, _store(model_store), snap)
            source = "serving model"
    df = feats.drop(columns=[c for c in ("churn_score",) if c in feats]).merge(scores, on="account_id")
    df["arr"] = pd.to_numeric(df["arr"], errors="coerce").fillna(0.0)
    return df, source


_SIMS: dict[tuple, Any] = {}


def _simulated(world: dict[str, Any]) -> Any:
    """The sample world's latent process (no records), re-run from its manifest; cached."""
    from revops_pipelines.sample import generator as gen

    key = (
        int(world["seed"]),
        int(world["accounts"]),
        str(world.get("start", "")),
        int(world.get("months", 24)),
    )
    if key not in _SIMS:
        cfg = {"seed": key[0], "accounts": key[1], "months": key[3]}
        if key[2]:
            cfg["start"] = date.fromisoformat(key[2])
        _SIMS.clear()
        _SIMS[key] = gen.simulate(gen.WorldConfig(**cfg))
    return _SIMS[key]


def informed_probabilities(world: dict[str, Any], snapshot: date, horizon_days: int = 90) -> pd.DataFrame:
    """For every customer of the sample world on ``snapshot``: ``churn_probability`` (the oracle,
    given the latent state of the snapshot's month ``k``) and ``informed_probability`` (the same
    expectation given the state at the end of month ``k - 1`` instead: one more step of the segment's
    transition kernel). An account that starts in month ``k`` has no earlier state: both are the
    oracle's. Same backward recursion as :func:`revops_pipelines.sample.latent.oracle_churn_probability`,
    kept as the whole survival vector over the health grid."""
    from revops_pipelines.sample import latent as L

    sim = _simulated(world)
    cal = sim.cal
    starts = [pd.Timestamp(d).date() for d in cal.dates64(cal.month_start[:-1])]
    if snapshot not in starts:
        raise RevOpsError(f"informed ceiling: {snapshot} is not a month start of the sample world")
    k = starts.index(snapshot)
    s = int(cal.month_start[k])
    act = np.flatnonzero((sim.active_start <= s) & (sim.active_end > s) & (sim.cs <= s))
    last_m = int(cal.month_of(np.array([s + horizon_days]))[0])
    raw = sim.plan_day[act, k : last_m + 1]
    ints = np.where((raw > s) & (raw <= s + horizon_days), sim.dec_int[act, k : last_m + 1], np.nan)
    h = sim.mu[act][:, None] + L.GRID[None, :]
    seg = sim.seg[act]
    v = np.ones((act.size, L.G))  # survival through the window's decisions from each grid state
    for j in range(ints.shape[1] - 1, -1, -1):
        if j < ints.shape[1] - 1:
            for g in range(len(L.SEGMENTS)):  # v_n <- K_(segment of n) v_n
                on = seg == g
                v[on] = v[on] @ L.KERNELS[g].T
        a = ints[:, j]
        dec = ~np.isnan(a)
        if dec.any():
            v = np.where(dec[:, None], v * (1.0 - L.churn_prob(np.where(dec, a, 0.0)[:, None], h)), v)
    rows = np.arange(act.size)
    oracle = 1.0 - v[rows, sim.x[act, k].astype(np.int64)]
    prev = sim.x[act, k - 1].astype(np.int64) if k > 0 else np.full(act.size, -1)
    before = L.KERNELS[seg, np.maximum(prev, 0)]  # distribution of x_k given x_(k-1)
    informed = np.where(prev >= 0, 1.0 - (before * v).sum(axis=1), oracle)
    return pd.DataFrame(
        {
            "account_id": [str(sim.account_id[i]) for i in act.tolist()],
            "churn_probability": np.clip(oracle, 0.0, 1.0),
            "informed_probability": np.clip(informed, 0.0, 1.0),
        }
    )


def _with_informed(df: pd.DataFrame, world: dict[str, Any], snap: date) -> tuple[pd.DataFrame, str]:
    """``df`` with ``informed_probability``, or ``df`` and why not (the re-run must reproduce the
    stored oracle on every account, else the manifest does not describe this warehouse's world)."""
    try:
        inf = informed_probabilities(world, snap)
    except Exception as e:  # no such world or month: report without the ceiling
        return df, f"informed ceiling unavailable: {e}"
    merged = df.merge(inf.rename(columns={"churn_probability": "_rerun"}), on="account_id", how="left")
    gap = (merged["_rerun"] - merged["churn_probability"]).abs()
    if merged["_rerun"].isna().any() or float(gap.max()) > 1e-6:
        return (
            df,
            "informed ceiling unavailable: the sample world's re-run does not reproduce the stored oracle",
        )
    return merged.drop(columns="_rerun"), ""


def _store(model_store: Any) -> Any:
    if model_store is not None:
        return model_store
    from revops_pipelines.model_store import ModelStore
    from revops_pipelines.settings import load_settings

    settings = load_settings()
    return ModelStore(uri=settings.model_store_uri, tenant=settings.tenant_id)


def _rankings(pol: Policy, df: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Full orderings: the policy's (priority score, tie-breaks, id), the model score's, the oracle's."""
    out = {
        "policy_metrics": pol.rank(pol.score(df).assign(eligible=True), limit=len(df)),
        "model_only": df.sort_values(["churn_score", "account_id"], ascending=[False, True]),
        "oracle": df.sort_values(["churn_probability", "account_id"], ascending=[False, True]),
    }
    if "informed_probability" in df:
        out["informed"] = df.sort_values(["informed_probability", "account_id"], ascending=[False, True])
    return out


def _one(df: pd.DataFrame, ranked: dict[str, pd.DataFrame], k: int) -> dict[str, Any]:
    tops = {g: r.head(k) for g, r in ranked.items()}
    out: dict[str, Any] = {g: _metrics(t, df) for g, t in tops.items()}
    out["k"] = int(k)
    out["hits"] = {g: int(t["churned"].sum()) for g, t in tops.items()}
    top = tops["policy_metrics"]
    out["confidence_top_k"] = float(top["churn_score"].mean()) if len(top) else 0.0
    out["overlap_with_oracle_top_k"] = (
        len(set(tops["policy_metrics"]["account_id"]) & set(tops["oracle"]["account_id"])) / k if k else 0.0
    )
    return out


def eval_snapshots(model_store: Any) -> list[date]:
    """The serving model's held-out evaluation snapshots (empty when unknown)."""
    try:
        from models.churn import MODEL_NAME

        store = _store(model_store)
        version = store.champion(MODEL_NAME)
        if version is None:
            return []
        split = store.meta(MODEL_NAME, version).get("split") or {}
        return [pd.Timestamp(s).date() for s in split.get("eval", [])]
    except Exception:  # no store, no model: fall back to the latest oracle snapshots
        return []


def _summarise(per: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"k": int(round(float(np.mean([p["k"] for p in per]))))}
    for group in ("policy_metrics", "model_only", "oracle", "informed"):
        if group in per[0]:
            out[group] = {m: float(np.mean([p[group][m] for p in per])) for m in METRICS}
    out["overlap_with_oracle_top_k"] = float(np.mean([p["overlap_with_oracle_top_k"] for p in per]))
    # calibration where it matters: the confidence the policy shows for its top k vs their true probability
    out["confidence_top_k"] = float(np.mean([p["confidence_top_k"] for p in per]))
    out["confidence_gap_top_k"] = out["confidence_top_k"] - out["policy_metrics"]["expected_precision_at_k"]
    out["ratio_to_oracle"] = {
        m: (out["policy_metrics"][m] / v if v else None) for m, v in out["oracle"].items()
    }
    out["model_ratio_to_oracle"] = {
        m: (out["model_only"][m] / v if v else None) for m, v in out["oracle"].items()
    }
    if "informed" in out:
        out["informed_ratio_to_oracle"] = {
            m: (out["informed"][m] / v if v else None) for m, v in out["oracle"].items()
        }
    n = sum(p["k"] for p in per)
    out["precision_interval_90"] = {
        g: list(wilson(sum(p["hits"][g] for p in per), n)) for g in ("policy_metrics", "oracle")
    }
    return out


def decision_quality(
    warehouse: Warehouse,
    k: int | str = 50,
    *,
    ks: tuple[int | str, ...] | list[int | str] | None = None,
    policy: Policy | str = "churn_prevention",
    snapshots: int = 3,
    snapshot_date: date | None = None,
    model_store: Any = None,
    scores: pd.DataFrame | None = None,
    world: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Policy top-k vs oracle top-k at ``k`` (the headline) and at every ``ks``, averaged over the
    graded snapshots. JSON-ready dict: the headline ``k``'s numbers at the top level (``policy_metrics``,
    ``model_only``, ``oracle``, ``ratio_to_oracle``), all of them under ``by_k``, and ``goal_met``.
    With ``world`` (the sample world's manifest: seed, accounts, start, months) the informed ceiling
    is added (``informed``, ``informed_ratio_to_oracle``) when it reproduces the stored oracle."""
    pol = load_policy(policy) if isinstance(policy, str) else policy
    known = warehouse.query(
        "SELECT DISTINCT o.snapshot_date FROM sample_oracle o "
        "WHERE EXISTS (SELECT 1 FROM account_features f WHERE f.snapshot_date = o.snapshot_date) "
        "ORDER BY 1 DESC"
    )
    available = [pd.Timestamp(v).date() for v in known.iloc[:, 0]]
    basis = "given snapshot"
    if snapshot_date is not None:
        snaps = [snapshot_date] if snapshot_date in available else []
    else:
        held_out = [] if scores is not None else [s for s in eval_snapshots(model_store) if s in available]
        if held_out:
            snaps, basis = held_out, "the serving model's held-out evaluation snapshots"
        else:
            snaps, basis = available[: int(snapshots)], f"latest {int(snapshots)} oracle snapshots"
    if not snaps:
        raise RevOpsError("decision quality needs sample_oracle rows on a snapshot with account_features")
    labels = list(dict.fromkeys([*(ks if ks is not None else DEFAULT_KS), k]))
    per_k: dict[str, list[dict[str, Any]]] = {str(lab): [] for lab in labels}
    sizes, churners, source = [], 0, ""
    informed_note = "no sample world given" if world is None else ""
    for s in sorted(snaps):
        df, source = _frame(warehouse, s, model_store, scores)
        if df.empty:
            raise RevOpsError(f"decision quality: no scored accounts on snapshot {s}")
        if world is not None and not informed_note:
            df, informed_note = _with_informed(df, world, s)
        ranked = _rankings(pol, df)
        sizes.append(len(df))
        churners += int(df["churned"].sum())
        for lab in labels:
            per_k[str(lab)].append({"snapshot_date": str(s), **_one(df, ranked, resolve_k(lab, len(df)))})
    if informed_note:  # every snapshot or none: drop a partial informed ranking
        for per in per_k.values():
            for p in per:
                p.pop("informed", None)
    by_k = {lab: _summarise(per) for lab, per in per_k.items()}
    graded = {lab: v["ratio_to_oracle"][GRADED_METRIC] for lab, v in by_k.items()}
    head = by_k[str(k)]
    worst = min((r for r in graded.values() if r is not None), default=None)
    return {
        "policy": pol.key,
        "k": head["k"],
        "snapshots": [str(s) for s in sorted(snaps)],
        "snapshot_basis": basis,
        "accounts_per_snapshot": sizes,
        "churners": churners,
        "scores_from": source,
        **{g: head[g] for g in ("policy_metrics", "model_only", "oracle", "ratio_to_oracle")},
        "model_ratio_to_oracle": head["model_ratio_to_oracle"],
        "overlap_with_oracle_top_k": head["overlap_with_oracle_top_k"],
        "precision_interval_90": head["precision_interval_90"],
        "confidence_top_k": head["confidence_top_k"],
        "confidence_gap_top_k": head["confidence_gap_top_k"],
        "by_k": by_k,
        "graded_metric": GRADED_METRIC,
        "goal": GOAL,
        "worst_ratio_over_k": worst,
        "goal_met": worst is not None and worst >= GOAL,
        "informed": head.get("informed"),
        "informed_ratio_to_oracle": head.get("informed_ratio_to_oracle"),
        "informed_note": informed_note or "exact, from the sample world's latent process",
        "per_snapshot": per_k[str(k)],
    }


def quality_metadata(q: dict[str, Any]) -> dict[str, float | int | str | bool]:
    """Flat numbers from :func:`decision_quality` for Dagster metadata and the demo summary."""
    out: dict[str, float | int | str | bool] = {
        "decision_quality_k": q["k"],
        "decision_quality_snapshots": ", ".join(q["snapshots"]),
        "decision_quality_graded_metric": q["graded_metric"],
        "decision_quality_goal_met": bool(q["goal_met"]),
        "confidence_gap_top_k": round(q["confidence_gap_top_k"], 4),
        "worst_ratio_over_k": round(q["worst_ratio_over_k"], 4)
        if q["worst_ratio_over_k"] is not None
        else float("nan"),
    }
    if q.get("informed"):
        r = q["informed_ratio_to_oracle"][GRADED_METRIC]
        out[f"informed_{GRADED_METRIC}"] = round(q["informed"][GRADED_METRIC], 4)
        out["informed_ceiling_vs_oracle"] = round(r, 4) if r is not None else float("nan")
    for m in METRICS:
        out[f"policy_{m}"] = round(q["policy_metrics"][m], 4)
        out[f"oracle_{m}"] = round(q["oracle"][m], 4)
        out[f"model_{m}"] = round(q["model_only"][m], 4)
        r = q["ratio_to_oracle"][m]
        out[f"{m}_vs_oracle"] = round(r, 4) if r is not None else float("nan")
    return out


def quality_table(q: dict[str, Any]) -> str:
    """Markdown table: one row per k — policy, model alone and oracle, expected and realised precision,
    ARR-weighted recall and the graded ratio."""
    informed = all("informed_ratio_to_oracle" in v for v in q["by_k"].values())
    rows = [
        "| k | policy E[prec] | model E[prec] | oracle E[prec] | policy/oracle | model/oracle "
        + ("| informed ceiling/oracle " if informed else "")
        + "| policy prec (90% CI) | oracle prec (90% CI) | policy ARR recall | oracle ARR recall |",
        "|---|---|---|---|---|---|" + ("---|" if informed else "") + "---|---|---|---|",
    ]
    for lab, v in q["by_k"].items():
        ir = v.get("informed_ratio_to_oracle", {}).get(GRADED_METRIC) if informed else None
        cell = (f"| {ir:.2f} " if ir is not None else "| n/a ") if informed else ""
        p, m, o = v["policy_metrics"], v["model_only"], v["oracle"]
        ci = v["precision_interval_90"]
        r, mr = v["ratio_to_oracle"][GRADED_METRIC], v["model_ratio_to_oracle"][GRADED_METRIC]
        rows.append(
            f"| {lab} ({v['k']}) | {p[GRADED_METRIC]:.3f} | {m[GRADED_METRIC]:.3f} | {o[GRADED_METRIC]:.3f} "
            f"| {r if r is not None else float('nan'):.2f} | {mr if mr is not None else float('nan'):.2f} "
            f"{cell}| {p['precision_at_k']:.3f} ({ci['policy_metrics'][0]:.2f}-{ci['policy_metrics'][1]:.2f}) "
            f"| {o['precision_at_k']:.3f} ({ci['oracle'][0]:.2f}-{ci['oracle'][1]:.2f}) "
            f"| {p['arr_recall']:.3f} | {o['arr_recall']:.3f} |"
        )
    return "\n".join(rows)
