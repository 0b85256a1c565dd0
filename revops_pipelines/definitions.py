"""The one root of the code location: assets, checks, flow jobs, schedules and resources.

Environment (embedded default vs production) is decided by :mod:`revops_pipelines.settings`; a
wrong configuration fails here, at load, with a message naming the setting.
"""

# ruff: noqa: E402 - the domain imports come after pausing the garbage collector (below)
import gc
import os
from pathlib import Path

import dagster as dg

# Loading builds tens of thousands of long-lived objects and next to no garbage: the collector's
# passes during the load free nothing (a full pass right after it finds ~3 objects) but cost ~50 ms,
# a fifth of what loading adds to `import dagster`. Automatic collection is paused from here until
# `defs` is built (below), then resumed.
_GC_WAS_ENABLED = gc.isenabled()
gc.disable()

from assets import conversations, features, gong, hubspot, product, quality, salesforce, sample_world
from kb_assets import assets as kb
from models import churn, classification, decision_quality, segmentation
from revops_pipelines.checks import merge_checks
from revops_pipelines.flows.compiler import compile_flows
from revops_pipelines.flows.loader import load_all
from revops_pipelines.platform import assets as platform_assets
from revops_pipelines.resources import build_resources
from revops_pipelines.settings import Settings, load_settings

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DOMAINS = (
    sample_world,
    salesforce,
    hubspot,
    gong,
    conversations,
    product,
    features,
    quality,
    churn,
    classification,
    segmentation,
    decision_quality,
    kb,
    platform_assets,
)


def flows_dir() -> Path:
    return Path(os.environ.get("REVOPS_FLOWS_DIR") or PROJECT_ROOT / "flows_yaml")


def _nodes(assets: list) -> dict[str, str]:
    """Asset -> the name of the op that materialises it (several assets for a multi-asset)."""
    return {
        key.to_user_string(): a.node_def.name
        for a in assets
        if isinstance(a, dg.AssetsDefinition) and a.is_executable
        for key in a.keys
    }


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    """The code location for ``settings`` (default: from the environment; a tenant's code location
    passes its own, see :mod:`revops_pipelines.tenancy`)."""
    settings = settings or load_settings()
    assets = [sample_world.sample_world, sample_world.sample_oracle]
    checks, jobs, schedules, sensors = [], [], [], []
    for domain in DOMAINS:  # each domain module exposes what it owns; nothing is listed twice
        assets.extend(getattr(domain, "ASSETS", []))
        checks.append(getattr(domain, "CHECKS", []))  # combined below, across modules
        jobs.extend(getattr(domain, "JOBS", []))
        schedules.extend(getattr(domain, "SCHEDULES", []))
        sensors.extend(getattr(domain, "SENSORS", []))
    flow_jobs, flow_schedules, flow_sensors = compile_flows(load_all(settings.flows_path or flows_dir()))

    ingest = dg.define_asset_job(
        "ingest_sample_world",
        selection=dg.AssetSelection.groups("sample_world", "raw_salesforce", "raw_hubspot", "raw_gong")
        | dg.AssetSelection.groups("raw_product", "raw_billing", "conversations")
        | dg.AssetSelection.assets("sample_oracle", "gong_call_sentiment"),
        description="Sync every raw table through the source connectors (sample mode: loopback stand-ins).",
        # Gong's raw tables are daily-partitioned: by default a run targets today's partition, which is
        # the incremental sync; pick an older partition or a range to backfill exactly that window
        tags=gong.current_partition_tags(),
    )
    train = dg.define_asset_job(
        "train_and_score",
        selection=dg.AssetSelection.assets("churn_model", "churn_scores"),
        description="Retrain the churn model on all labelled snapshots and score current customers.",
    )
    features_job = dg.define_asset_job(
        "build_features",
        selection=dg.AssetSelection.assets("account_features"),
        description="Compute account features for a range of snapshot partitions (single-run backfills).",
    )
    kb_job = dg.define_asset_job(
        "refresh_knowledge_base",
        selection=dg.AssetSelection.groups("knowledge_base"),
        description="Validate, chunk and (incrementally) embed the knowledge base into LanceDB.",
    )
    classify_job = dg.define_asset_job(
        "classify_and_segment",
        selection=dg.AssetSelection.assets(
            "ticket_product_features",
            "call_topic_classifications",
            "revenue_event_classifications",
            "account_segments",
        ),
        description="Train and apply the ticket, call-topic and revenue-event classifiers; segment accounts.",
    )
    evaluate_job = dg.define_asset_job(
        "evaluate_decisions",
        selection=dg.AssetSelection.assets("decision_quality_report", "action_outcomes"),
        description="Grade the churn-prevention policy against the oracle; track action outcomes.",
    )
    executor = dg.in_process_executor if settings.executor == "in_process" else dg.multiprocess_executor
    return dg.Definitions(
        assets=quality.with_freshness_policies(assets),
        asset_checks=merge_checks(checks, nodes=_nodes(assets)),
        jobs=[ingest, features_job, train, kb_job, classify_job, evaluate_job, *jobs, *flow_jobs],
        sensors=[*sensors, *flow_sensors],
        schedules=[
            *schedules,
            *flow_schedules,
            dg.ScheduleDefinition(
                name="weekly_retrain",
                job=train,
                cron_schedule="0 3 * * 0",
                default_status=dg.DefaultScheduleStatus.STOPPED,
            ),
        ],
        resources=build_resources(settings),
        executor=executor,
    )


try:
    defs = build_definitions()
finally:
    if _GC_WAS_ENABLED:
        gc.enable()
