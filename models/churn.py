"""Churn model assets: train (time split, calibrated, graded against the oracle) and score.

``churn_model`` trains LightGBM on past snapshots, calibrates on the next ones and evaluates on
the latest labelled snapshots, then stores the model in the model store with its metrics, training
window and data fingerprint. ``churn_scores`` scores every current customer at the latest snapshot
with per-feature contributions, for the Decision Agent to explain its choices.
"""

import base64
import os
import subprocess

import dagster as dg
from pydantic import Field

from assets.features import CATEGORICAL, FEATURE_COLUMNS
from revops_pipelines import __version__
from revops_pipelines.lazy import np, pd
from revops_pipelines.model_store import ModelStore
from revops_pipelines.raw import column_schema, merge_metadata
from revops_pipelines.warehouse import Warehouse, table

MODEL_NAME = "churn_lgbm"


class ChurnTrainConfig(dg.Config):
    horizon_days: int = Field(default=90, description="Must match the label horizon of account_features.")
    eval_months: int = Field(
        default=3, ge=1, description="Latest labelled snapshots held out for evaluation."
    )
    num_leaves: int = Field(default=15, ge=2)
    learning_rate: float = Field(default=0.05, gt=0, le=1)
    num_boost_round: int = Field(default=300, ge=10)
    min_data_in_leaf: int = Field(default=40, ge=1)
    seed: int = 7
    num_threads: int = Field(default=0, ge=0, description="0 = auto: 1 thread below 50k rows, else all cores.")
    precision_k_share: float = Field(
        default=0.05, gt=0, le=1, description="k for precision@k as a share of rows"
    )


def _code_version() -> str:
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5
        )
        return f"{__version__}+{sha.stdout.strip()}" if sha.returncode == 0 else __version__
    except (OSError, subprocess.SubprocessError):
        return __version__


def _md_table(metrics: dict[str, dict[str, float]]) -> str:
    keys = list(next(iter(metrics.values())))
    lines = ["| metric | " + " | ".join(metrics) + " |", "|---|" + "---|" * len(metrics)]
    for k in keys:
        lines.append(
            f"| {k} | " + " | ".join(f"{metrics[m].get(k, float('nan')):.4f}" for m in metrics) + " |"
        )
    return "\n".join(lines)


@dg.asset(
    group_name="models",
    kinds={"lightgbm"},
    deps=["account_features", "sample_oracle"],
    description="LightGBM churn model: time-split, Platt-calibrated, graded against the sample world's oracle.",
)
def churn_model(
    context: dg.AssetExecutionContext, config: ChurnTrainConfig, warehouse: Warehouse, model_store: ModelStore
) -> dg.MaterializeResult:
    from models import churn_lib as lib

    df = warehouse.query(
        "SELECT * FROM account_features WHERE churned_in_horizon IS NOT NULL ORDER BY snapshot_date, account_id"
    )
    if df.empty:
        raise dg.Failure("account_features has no labelled rows: materialise its partitions first")
    df["snapshot_date"] = pd.to_datetime(df["snapshot_date"]).dt.date.astype(str)
    split = lib.time_split(df["snapshot_date"].unique().tolist(), config.horizon_days, config.eval_months)
    part = {"train": split.train_snapshots, "calib": split.calib_snapshots, "eval": split.eval_snapshots}
    frames = {k: df[df["snapshot_date"].isin(v)].reset_index(drop=True) for k, v in part.items()}

    enc = lib.Encoder(FEATURE_COLUMNS, list(CATEGORICAL)).fit(frames["train"])
    xs = {k: enc.transform(f) for k, f in frames.items()}
    ys = {k: f["churned_in_horizon"].astype(int).to_numpy() for k, f in frames.items()}
    params = {
        "objective": "binary",
        "num_leaves": config.num_leaves,
        "learning_rate": config.learning_rate,
        "min_data_in_leaf": config.min_data_in_leaf,
        "feature_fraction": 0.9,
        "bagging_fraction": 0.9,
        "bagging_freq": 1,
        "seed": config.seed,
        "deterministic": True,
        # small matrices train faster on one thread (OpenMP spin-up dominates, worse under load)
        "num_threads": config.num_threads or (1 if len(frames["train"]) < 50_000 else (os.cpu_count() or 1)),
        "verbose": -1,
    }
    booster = lib.train_booster(xs["train"], ys["train"], params, config.num_boost_round, list(CATEGORICAL))
    calibrator = lib.PlattCalibrator().fit(booster.predict(xs["calib"]), ys["calib"])
    p_eval = calibrator(booster.predict(xs["eval"]))

    k = max(1, int(len(p_eval) * config.precision_k_share))
    metrics = {"model": lib.classification_metrics(ys["eval"], p_eval, k)}
    oracle = warehouse.query(
        "SELECT account_id, CAST(snapshot_date AS VARCHAR) AS snapshot_date, churn_probability FROM sample_oracle "
        "WHERE horizon_days = ?",
        [config.horizon_days],
    )
    ev = frames["eval"][["account_id", "snapshot_date"]].merge(
        oracle, how="left", on=["account_id", "snapshot_date"]
    )
    has_oracle = bool(len(oracle)) and ev["churn_probability"].notna().all()
    oracle_tbl = None
    if has_oracle:
        p_oracle = ev["churn_probability"].to_numpy()
        metrics["oracle"] = lib.classification_metrics(ys["eval"], p_oracle, k)
        oracle_tbl = lib.calibration_table(ys["eval"], p_oracle)
    else:
        context.log.warning("no oracle for the evaluation rows: metrics are reported without the oracle")
    png = lib.calibration_png(lib.calibration_table(ys["eval"], p_eval), oracle_tbl)

    gain = booster.feature_importance(importance_type="gain")
    importance = sorted(zip(FEATURE_COLUMNS, gain, strict=True), key=lambda t: -t[1])
    fp = lib.fingerprint(
        frames["train"][["account_id", "snapshot_date", *FEATURE_COLUMNS, "churned_in_horizon"]]
    )
    meta = {
        "params": params,
        "num_boost_round": config.num_boost_round,
        "horizon_days": config.horizon_days,
        "split": part,
        "rows": {k2: len(f) for k2, f in frames.items()},
        "metrics": metrics,
        "data_fingerprint": fp,
        "code_version": _code_version(),
        "encoder": enc.to_dict(),
        "calibrator": {"a": calibrator.a, "b": calibrator.b},
        "top_features": [n for n, _ in importance[:10]],
    }
    version = model_store.save(
        MODEL_NAME,
        {"model.txt": booster.model_to_string().encode(), "calibration.png": png},
        meta,
    )
    if model_store.champion(MODEL_NAME) is None:
        model_store.promote(MODEL_NAME, version, reason="first model")
    m = metrics["model"]
    md: dict = {
        "version": version,
        "champion": model_store.champion(MODEL_NAME),
        "auc": m["auc"],
        "pr_auc": m["pr_auc"],
        "log_loss": m["log_loss"],
        "brier": m["brier"],
        "precision_at_k": m["precision_at_k"],
        "k": k,
        "metrics_vs_oracle": dg.MetadataValue.md(_md_table(metrics)),
        "top_features": dg.MetadataValue.md(
            "\n".join(f"{i + 1}. `{n}` (gain {g:,.0f})" for i, (n, g) in enumerate(importance[:10]))
        ),
        "calibration_plot": dg.MetadataValue.md(
            f"![calibration](data:image/png;base64,{base64.b64encode(png).decode()})"
        ),
        "train_snapshots": f"{split.train_snapshots[0]} .. {split.train_snapshots[-1]}",
        "eval_snapshots": ", ".join(split.eval_snapshots),
        "data_fingerprint": fp,
    }
    if has_oracle:
        md["oracle_auc"] = metrics["oracle"]["auc"]
        md["auc_over_oracle"] = m["auc"] / metrics["oracle"]["auc"]
    context.log.info(
        f"churn model {version}: AUC {m['auc']:.3f}"
        + (f" (oracle {md['oracle_auc']:.3f})" if has_oracle else "")
    )
    return dg.MaterializeResult(metadata=md)


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


def load_champion(model_store: ModelStore, name: str = MODEL_NAME):
    """Return (version, booster, encoder, calibrator, meta) of the serving model."""
    import lightgbm as lgb

    from models import churn_lib as lib

    version = model_store.champion(name)
    if version is None:
        raise dg.Failure(f"no champion for {name}: materialise churn_model first")
    meta = model_store.meta(name, version)
    booster = lgb.Booster(model_str=model_store.load(name, version, "model.txt").decode())
    enc = lib.Encoder.from_dict(meta["encoder"])
    cal = lib.PlattCalibrator(**meta["calibrator"])
    return version, booster, enc, cal, meta


@dg.asset(
    group_name="models",
    kinds={"lightgbm"},
    deps=["churn_model", "account_features"],
    description=SCORES.description,
    metadata={"dagster/column_schema": column_schema(SCORES)},
)
def churn_scores(
    context: dg.AssetExecutionContext, warehouse: Warehouse, model_store: ModelStore
) -> dg.MaterializeResult:
    from models import churn_lib as lib

    version, booster, enc, cal, _ = load_champion(model_store)
    df = warehouse.query(
        "SELECT * FROM account_features WHERE snapshot_date = (SELECT MAX(snapshot_date) FROM account_features) "
        "ORDER BY account_id"
    )
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


ASSETS = [churn_model, churn_scores]
TABLES = [SCORES]
