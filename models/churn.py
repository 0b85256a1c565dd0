"""Churn model assets: train (time split, calibrated, graded against the oracle) and score.

``churn_model`` trains on past snapshots (by default, ``model_type="auto"``, both LightGBM and a
decision-hazard model — the churn hazard at each contract decision in the label window, linear in the
account's signals — keeping the one with the higher PR-AUC (average precision) on the calibration snapshots, which precede the
held-out ones, for fits on the snapshots a label horizon before them; ``"lgbm"`` or ``"hazard_glm"``
trains only that one), calibrates on the next ones and evaluates on the latest labelled snapshots, then registers the model (a challenger) in the model store with its
metrics, training window, data fingerprint, params and code version. The blocking check
``churn_model_not_worse_than_champion`` scores champion and challenger on the challenger's holdout
and promotes the challenger only if it is not worse; otherwise ``churn_scores`` does not run and the
champion keeps serving. ``churn_scores`` scores every current customer at the latest snapshot with
per-feature contributions, for the Decision Agent to explain its choices.

Retraining: ``churn_model_snapshots`` retrains as of each monthly snapshot partition (a backfill is
one run, one registered version per snapshot), on the ``monthly_snapshot_retrain`` schedule
(stopped by default); the ``churn_feature_drift`` sensor proposes retraining when a feature's
distribution at the newest snapshot drifts from the champion's training data.
"""

import base64
import os
import subprocess

import dagster as dg
from pydantic import Field

from assets.features import CATEGORICAL, FEATURE_COLUMNS, SNAPSHOTS
from revops_pipelines import __version__
from revops_pipelines.lazy import np, pd
from revops_pipelines.model_store import ModelStore
from revops_pipelines.raw import column_schema, merge_metadata
from revops_pipelines.run_config import RunConfig
from revops_pipelines.signature import pinned
from revops_pipelines.warehouse import Warehouse, table

MODEL_NAME = "churn_lgbm"
# a challenger whose holdout AUC is below the champion's by more than this is refused
AUC_TOLERANCE = 0.005


class ChurnTrainConfig(RunConfig):
    model_type: str = Field(
        default="auto",
        pattern="^(auto|hazard_glm|lgbm)$",
        description="auto: train both below on the same snapshots and keep the one with the higher "
        "validation PR-AUC (average precision) on the calibration snapshots (before the held-out ones; "
        "realised labels only; "
        "fitted for this on the snapshots whose label window closes before them); "
        "hazard_glm: churn hazard at each contract decision in the window, linear in the "
        "signals (models.churn_lib.HazardModel; ranks the riskiest accounts better with few churners); "
        "lgbm: LightGBM on the same features (the num_*/learning_rate/lambda_l2/seed settings below).",
    )
    hazard_l2: float = Field(
        default=100.0, ge=0, description="L2 penalty on the hazard model's standardised weights."
    )
    horizon_days: int = Field(default=90, description="Must match the label horizon of account_features.")
    eval_months: int = Field(
        default=3, ge=1, description="Latest labelled snapshots held out for evaluation."
    )
    calib_months: int = Field(
        default=2, ge=1, description="Snapshots before the holdout used for calibration."
    )
    num_leaves: int = Field(default=7, ge=2)
    learning_rate: float = Field(default=0.03, gt=0, le=1)
    num_boost_round: int = Field(default=600, ge=10)
    min_data_in_leaf: int = Field(default=200, ge=1)
    lambda_l2: float = Field(default=30.0, ge=0, description="Strong L2: few churners per snapshot.")
    seed: int = 7
    num_threads: int = Field(
        default=0, ge=0, description="0 = auto: 1 thread below 50k rows, else all cores."
    )
    precision_k_share: float = Field(
        default=0.05, gt=0, le=1, description="k for precision@k as a share of rows"
    )


def lgbm_params(config: ChurnTrainConfig, n_rows: int) -> dict:
    return {
        "objective": "binary",
        "num_leaves": config.num_leaves,
        "learning_rate": config.learning_rate,
        "min_data_in_leaf": config.min_data_in_leaf,
        "lambda_l2": config.lambda_l2,
        "feature_fraction": 0.9,
        "bagging_fraction": 0.9,
        "bagging_freq": 1,
        "seed": config.seed,
        "deterministic": True,
        # small matrices train faster on one thread (OpenMP spin-up dominates, worse under load)
        "num_threads": config.num_threads or (1 if n_rows < 50_000 else (os.cpu_count() or 1)),
        "verbose": -1,
    }


def model_features() -> list[str]:
    from models.churn_lib import DERIVED_FEATURES

    return [*FEATURE_COLUMNS, *DERIVED_FEATURES]


def _code_version() -> str:
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5
        )
        return f"{__version__}+{sha.stdout.strip()}" if sha.returncode == 0 else __version__
    except (OSError, subprocess.SubprocessError):
        return __version__


def _selection_table(selection: dict) -> str:
    cols = list(next(iter(selection["candidates"].values())))
    lines = ["| model | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for m, row in selection["candidates"].items():
        mark = " (chosen)" if m == selection["chosen"] else ""
        lines.append(f"| {m}{mark} | " + " | ".join(f"{row[c]:.4f}" for c in cols) + " |")
    return "\n".join(lines)


def _md_table(metrics: dict[str, dict[str, float]]) -> str:
    keys = list(next(iter(metrics.values())))
    lines = ["| metric | " + " | ".join(metrics) + " |", "|---|" + "---|" * len(metrics)]
    for k in keys:
        lines.append(
            f"| {k} | " + " | ".join(f"{metrics[m].get(k, float('nan')):.4f}" for m in metrics) + " |"
        )
    return "\n".join(lines)


def load_labelled(warehouse: Warehouse, as_of: str | None = None, horizon_days: int = 90):
    """Labelled feature rows; with ``as_of``, only rows whose label window closed by that date."""
    sql = "SELECT * FROM account_features WHERE churned_in_horizon IS NOT NULL"
    params: list = []
    if as_of is not None:
        sql += " AND snapshot_date + CAST(? AS INTEGER) <= CAST(? AS DATE)"
        params = [horizon_days, as_of]
    df = warehouse.query(sql + " ORDER BY snapshot_date, account_id", params)
    df["snapshot_date"] = pd.to_datetime(df["snapshot_date"]).dt.date.astype(str)
    return df


def load_oracle(warehouse: Warehouse, horizon_days: int):
    if "sample_oracle" not in warehouse.table_names():
        return None
    return warehouse.query(
        "SELECT account_id, CAST(snapshot_date AS VARCHAR) AS snapshot_date, churn_probability "
        "FROM sample_oracle WHERE horizon_days = ?",
        [horizon_days],
    )


def train_and_save(
    df, oracle, config: ChurnTrainConfig, model_store: ModelStore, extra_meta: dict | None = None
) -> tuple[str, object, bytes]:
    """Fit on ``df`` and register the result; returns (version, fit, calibration png). Nothing is promoted."""
    from models import churn_lib as lib

    params = lgbm_params(config, len(df))
    features = model_features()
    fit = lib.fit_churn(
        df,
        features=features,
        categorical=list(CATEGORICAL),
        params=params,
        num_boost_round=config.num_boost_round,
        horizon_days=config.horizon_days,
        eval_months=config.eval_months,
        calib_months=config.calib_months,
        k_share=config.precision_k_share,
        oracle=oracle,
        model=config.model_type,
        hazard_l2=config.hazard_l2,
    )
    png = lib.calibration_png(lib.calibration_table(fit.y_eval, fit.p_eval), fit.oracle_table)
    split = fit.split
    meta = {
        "model_type": fit.model_type,
        "requested_model_type": config.model_type,
        "selection": fit.selection,
        "params": {**params, "hazard_l2": config.hazard_l2} if fit.model_type == "hazard_glm" else params,
        "num_boost_round": config.num_boost_round,
        "horizon_days": config.horizon_days,
        "split": {
            "train": split.train_snapshots,
            "calib": split.calib_snapshots,
            "eval": split.eval_snapshots,
        },
        "training_window": [split.train_snapshots[0], split.train_snapshots[-1]],
        "rows": fit.rows,
        "metrics": fit.metrics,
        "data_fingerprint": fit.data_fingerprint,
        "code_version": _code_version(),
        "encoder": fit.encoder.to_dict(),
        "calibrator": {"a": fit.calibrator.a, "b": fit.calibrator.b},
        "top_features": [n for n, _ in fit.importance[:10]],
        "drift_reference": fit.reference,
        **(extra_meta or {}),
    }
    version = model_store.save(
        MODEL_NAME,
        {"model.txt": fit.booster.model_to_string().encode(), "calibration.png": png},
        meta,
    )
    return version, fit, png


@dg.asset(
    group_name="models",
    kinds={"lightgbm"},
    deps=["account_features", "sample_oracle"],
    description="Churn model (challenger; by default LightGBM and a decision-hazard model are both trained and "
    "the better on validation snapshots before the holdout is kept): time-split, "
    "Platt-calibrated, graded against the sample world's oracle. It serves only once the blocking check shows it is not worse than the champion.",
)
@pinned
def churn_model(
    context: dg.AssetExecutionContext, config: ChurnTrainConfig, warehouse: Warehouse, model_store: ModelStore
) -> dg.MaterializeResult:
    df = load_labelled(warehouse)
    if df.empty:
        raise dg.Failure("account_features has no labelled rows: materialise its partitions first")
    oracle = load_oracle(warehouse, config.horizon_days)
    version, fit, png = train_and_save(df, oracle, config, model_store, {"kind": "train_and_score"})
    metrics, split = fit.metrics, fit.split
    has_oracle = "oracle" in metrics
    if not has_oracle:
        context.log.warning("no oracle for the evaluation rows: metrics are reported without the oracle")
    m = metrics["model"]
    md: dict = {
        "version": version,
        "model_type": fit.model_type,
        "champion_before": model_store.champion(MODEL_NAME) or "",
        "auc": m["auc"],
        "pr_auc": m["pr_auc"],
        "log_loss": m["log_loss"],
        "brier": m["brier"],
        "precision_at_k": m["precision_at_k"],
        "k": fit.k,
        "metrics_vs_oracle": dg.MetadataValue.md(_md_table(metrics)),
        "top_features": dg.MetadataValue.md(
            "\n".join(f"{i + 1}. `{n}` (gain {g:,.0f})" for i, (n, g) in enumerate(fit.importance[:10]))
        ),
        "calibration_plot": dg.MetadataValue.md(
            f"![calibration](data:image/png;base64,{base64.b64encode(png).decode()})"
        ),
        "train_snapshots": f"{split.train_snapshots[0]} .. {split.train_snapshots[-1]}",
        "eval_snapshots": ", ".join(split.eval_snapshots),
        "data_fingerprint": fit.data_fingerprint,
        "code_version": _code_version(),
    }
    if fit.selection is not None:
        sel = fit.selection
        md.update(
            {
                "selection_reason": f"{sel['chosen']}: {sel['reason']} ({sel['criterion']})",
                "candidates": dg.MetadataValue.md(_selection_table(sel)),
                "validation_snapshots": ", ".join(sel["validation_snapshots"]),
                "validation_train_snapshots": f"{sel['validation_train_snapshots'][0]} .. "
                f"{sel['validation_train_snapshots'][-1]}",
                "validation_gap_days": sel["validation_gap_days"],
            }
        )
        context.log.info(f"model_type=auto chose {sel['chosen']}: {sel['reason']}")
    if has_oracle:
        o = metrics["oracle"]
        md.update(
            {
                "oracle_auc": o["auc"],
                "auc_over_oracle": m["auc"] / o["auc"],
                "oracle_pr_auc": o["pr_auc"],
                "oracle_log_loss": o["log_loss"],
                "oracle_brier": o["brier"],
                "oracle_precision_at_k": o["precision_at_k"],
            }
        )
    context.log.info(
        f"churn model {version}: AUC {m['auc']:.3f}"
        + (f" (oracle {md['oracle_auc']:.3f})" if has_oracle else "")
    )
    return dg.MaterializeResult(metadata=md)


def load_version(model_store: ModelStore, version: str, name: str = MODEL_NAME):
    """Return (booster, encoder, calibrator, meta) of one stored version, with clear errors."""
    import lightgbm as lgb

    from models import churn_lib as lib
    from revops_pipelines.model_store import ModelCorrupt

    meta = model_store.meta(name, version)
    text = model_store.load(name, version, "model.txt").decode("utf-8", errors="replace")
    try:
        booster = lib.load_model_text(text)
        enc = lib.Encoder.from_dict(meta["encoder"])
        cal = lib.PlattCalibrator(**meta["calibrator"])
    except (lgb.basic.LightGBMError, KeyError, TypeError, ValueError) as err:
        raise ModelCorrupt(f"{name} version {version}: cannot load the model ({err})") from None
    return booster, enc, cal, meta


def load_champion(model_store: ModelStore, name: str = MODEL_NAME):
    """Return (version, booster, encoder, calibrator, meta) of the serving model."""
    version = model_store.champion(name)
    if version is None:
        raise dg.Failure(f"no champion for {name}: materialise churn_model (and its checks) first")
    booster, enc, cal, meta = load_version(model_store, version, name)
    return version, booster, enc, cal, meta


def compare_on_holdout(
    warehouse: Warehouse, model_store: ModelStore, challenger: str, tolerance: float = AUC_TOLERANCE
) -> dict:
    """Score the champion and the challenger on the challenger's holdout rows; the challenger passes
    when there is no champion or its AUC is at least the champion's minus ``tolerance``."""
    from sklearn.metrics import roc_auc_score

    from models import churn_lib as lib

    champion = model_store.champion(MODEL_NAME)
    out: dict = {"challenger": challenger, "champion": champion, "tolerance": tolerance}
    if champion is None:
        return {**out, "passed": True, "reason": "no champion yet"}
    if champion == challenger:
        return {**out, "passed": True, "reason": "challenger already serves"}
    b_new, e_new, c_new, m_new = load_version(model_store, challenger)
    b_old, e_old, c_old, m_old = load_version(model_store, champion)
    horizon = int(m_new["horizon_days"])
    if int(m_old.get("horizon_days", horizon)) != horizon:
        return {**out, "passed": False, "reason": "champion and challenger predict different horizons"}
    snaps = sorted(m_new["split"]["eval"])
    df = warehouse.query(
        "SELECT * FROM account_features WHERE churned_in_horizon IS NOT NULL "
        "AND snapshot_date >= CAST(? AS DATE) AND snapshot_date <= CAST(? AS DATE) "
        "ORDER BY snapshot_date, account_id",
        [snaps[0], snaps[-1]],
    )
    y = df["churned_in_horizon"].astype(int).to_numpy()
    if len(set(y.tolist())) < 2:
        return {**out, "passed": False, "reason": f"holdout {snaps} has one class only"}
    auc_new = float(roc_auc_score(y, lib.score(b_new, e_new, c_new, df, horizon)))
    try:
        auc_old = float(roc_auc_score(y, lib.score(b_old, e_old, c_old, df, horizon)))
    except ValueError as err:  # the champion's features no longer exist: it cannot serve either
        return {**out, "passed": True, "challenger_auc": auc_new, "reason": f"champion unusable: {err}"}
    passed = auc_new >= auc_old - tolerance
    return {
        **out,
        "passed": passed,
        "challenger_auc": auc_new,
        "champion_auc": auc_old,
        "holdout_snapshots": list(snaps),
        "holdout_rows": len(df),
        "reason": "not worse than the champion" if passed else "worse than the champion on the same holdout",
    }


@dg.asset_check(
    asset="churn_model",
    name="churn_model_not_worse_than_champion",
    blocking=True,
    description="Scores champion and challenger on the challenger's holdout; promotes the challenger only "
    f"if its AUC is at least the champion's minus {AUC_TOLERANCE}. A failure blocks churn_scores.",
)
@pinned
def churn_model_not_worse_than_champion(
    context: dg.AssetCheckExecutionContext, warehouse: Warehouse, model_store: ModelStore
) -> dg.AssetCheckResult:
    event = context.instance.get_latest_materialization_event(dg.AssetKey("churn_model"))
    if event is None or event.asset_materialization is None:
        return dg.AssetCheckResult(passed=False, metadata={"reason": "churn_model has no materialisation"})
    challenger = str(event.asset_materialization.metadata["version"].value)
    verdict = compare_on_holdout(warehouse, model_store, challenger)
    if verdict["passed"]:
        model_store.promote(MODEL_NAME, challenger, reason=verdict["reason"])
    metadata = {k: v for k, v in verdict.items() if v is not None and k != "holdout_snapshots"}
    return dg.AssetCheckResult(passed=bool(verdict["passed"]), metadata=metadata)


SCORES = table(
    "churn_scores",
    [
        ("account_id", "TEXT"),
        ("snapshot_date", "DATE"),
        ("churn_score", "DOUBLE", False),
        ("model_version", "TEXT", False),
        ("top_factors", "TEXT", False),
    ],
    keys=("account_id", "snapshot_date"),
    primary_index=("snapshot_date", "account_id"),
    description="Calibrated churn probability per current customer at the latest snapshot, with top factors.",
    group="models",
)


@dg.asset(
    group_name="models",
    kinds={"lightgbm"},
    deps=["churn_model", "account_features"],
    description=SCORES.description,
    metadata={"dagster/column_schema": column_schema(SCORES)},
)
@pinned
def churn_scores(
    context: dg.AssetExecutionContext, warehouse: Warehouse, model_store: ModelStore
) -> dg.MaterializeResult:
    from models import churn_lib as lib

    version, booster, enc, cal, meta = load_champion(model_store)
    df = warehouse.query(
        "SELECT * FROM account_features WHERE snapshot_date = (SELECT MAX(snapshot_date) FROM account_features) "
        "ORDER BY account_id"
    )
    df = lib.derive_features(df, int(meta.get("horizon_days", 90)))
    x = enc.transform(df)
    score = cal(booster.predict(x))
    contrib = lib.contributions(booster, x)
    factors = [
        lib.dumps_factors(lib.top_factors(contrib[i], enc.features, df[enc.features].iloc[i]))
        for i in range(len(df))
    ]
    out = pd.DataFrame(
        {
            "account_id": df["account_id"],
            "snapshot_date": df["snapshot_date"],
            "churn_score": score,
            "model_version": version,
            "top_factors": factors,
        }
    )
    result = warehouse.merge(SCORES, out)
    hist = np.histogram(score, bins=[0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0])[0].tolist()
    context.log.info(f"scored {len(out)} accounts with {version}")
    return dg.MaterializeResult(
        metadata={
            **merge_metadata(result),
            "model_version": version,
            "snapshot_date": str(df["snapshot_date"].iloc[0]) if len(df) else "",
            "mean_score": float(score.mean()) if len(score) else 0.0,
            "score_histogram": dg.MetadataValue.json(
                dict(zip(["<5%", "5-10%", "10-20%", "20-30%", "30-50%", ">=50%"], hist, strict=True))
            ),
            "high_risk_accounts": int((score >= 0.3).sum()),
        }
    )


# ---- retraining: one model version per snapshot partition ----------------------------------------
@dg.asset(
    group_name="models",
    kinds={"lightgbm"},
    partitions_def=SNAPSHOTS,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=["account_features", "sample_oracle"],
    description="Churn model retrained as of each snapshot date, using only rows whose label window had "
    "closed by then. A backfill over many snapshots runs once and registers one version per snapshot; "
    "these versions are candidates (promote one with `revops models promote`), never auto-served.",
)
@pinned
def churn_model_snapshots(
    context: dg.AssetExecutionContext, config: ChurnTrainConfig, warehouse: Warehouse, model_store: ModelStore
) -> dg.MaterializeResult:
    window = context.partition_time_window
    snapshots = pd.date_range(window.start.date(), window.end.date(), freq="MS", inclusive="left")
    oracle = load_oracle(warehouse, config.horizon_days)
    versions: dict[str, str] = {}
    aucs: dict[str, float] = {}
    for snap in snapshots:
        as_of = snap.date().isoformat()
        df = load_labelled(warehouse, as_of=as_of, horizon_days=config.horizon_days)
        try:
            version, fit, _ = train_and_save(
                df, oracle, config, model_store, {"kind": "snapshot_retrain", "as_of": as_of}
            )
        except ValueError as err:
            raise dg.Failure(f"cannot train as of {as_of}: {err}") from None
        versions[as_of] = version
        aucs[as_of] = round(fit.metrics["model"]["auc"], 4)
        context.log.info(f"as of {as_of}: version {version}, holdout AUC {aucs[as_of]:.3f}")
    return dg.MaterializeResult(
        metadata={
            "versions": dg.MetadataValue.json(versions),
            "holdout_auc": dg.MetadataValue.json(aucs),
            "models_trained": len(versions),
        }
    )


retrain_snapshots_job = dg.define_asset_job(
    "retrain_churn_snapshots",
    selection=dg.AssetSelection.assets(churn_model_snapshots),
    partitions_def=SNAPSHOTS,
    description="Retrain the churn model as of snapshot dates (a range backfills in one run).",
)
monthly_snapshot_retrain = dg.build_schedule_from_partitioned_job(
    retrain_snapshots_job,
    name="monthly_snapshot_retrain",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)

PSI_THRESHOLD = 0.25
# features that move with the calendar by construction (account age, contract clock) are not drift
DRIFT_IGNORED = ("tenure_days", "days_to_renewal", "decision_in_window", "first_term")


@dg.sensor(
    name="churn_feature_drift",
    target=dg.AssetSelection.assets("churn_model", "churn_scores"),
    minimum_interval_seconds=3600,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description=f"Once per new feature snapshot: PSI of every numeric feature against the champion's "
    f"training distribution; proposes retraining (churn_model, churn_scores) when one exceeds {PSI_THRESHOLD}.",
)
def churn_feature_drift(
    context: dg.SensorEvaluationContext, warehouse: Warehouse, model_store: ModelStore
) -> dg.SensorResult | dg.SkipReason:
    from models.churn_lib import derive_features
    from models.drift import psi

    if "account_features" not in warehouse.table_names():
        return dg.SkipReason("account_features does not exist yet")
    latest = warehouse.query("SELECT CAST(MAX(snapshot_date) AS VARCHAR) AS s FROM account_features")[
        "s"
    ].iloc[0]
    if latest is None or pd.isna(latest):
        return dg.SkipReason("account_features is empty")
    champion = model_store.champion(MODEL_NAME)
    if champion is None:
        return dg.SkipReason("no champion model yet")
    cursor_key = f"{latest}|{champion}"
    if context.cursor == cursor_key:
        return dg.SkipReason(f"snapshot {latest} already checked against {champion}")
    meta = model_store.meta(MODEL_NAME, champion)
    reference = {k: v for k, v in (meta.get("drift_reference") or {}).items() if k not in DRIFT_IGNORED}
    df = warehouse.query("SELECT * FROM account_features WHERE snapshot_date = CAST(? AS DATE)", [latest])
    scores = psi(reference, derive_features(df, int(meta.get("horizon_days", 90))))
    drifted = {k: round(v, 3) for k, v in sorted(scores.items(), key=lambda t: -t[1]) if v > PSI_THRESHOLD}
    if not drifted:
        return dg.SensorResult(
            skip_reason=f"no feature drifted at {latest} (max PSI {max(scores.values(), default=0):.3f})",
            cursor=cursor_key,
        )
    context.log.info(f"drift at {latest} vs {champion}: {drifted}")
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=f"drift-{latest}-{champion}",
                tags={"revops/trigger": "feature_drift", "revops/drifted_features": ",".join(drifted)[:200]},
            )
        ],
        cursor=cursor_key,
    )


ASSETS = [churn_model, churn_scores, churn_model_snapshots]
CHECKS = [churn_model_not_worse_than_champion]
JOBS = [retrain_snapshots_job]
SCHEDULES = [monthly_snapshot_retrain]
SENSORS = [churn_feature_drift]
TABLES = [SCORES]
