"""Data-quality checks across sources and the feature table (beyond each source module's own rules).

Accepted values on the categorical fields models and agents branch on; data freshness of every
source against the latest product usage (so a stalled connector is caught even in a replayed
world); per-partition row-count and distribution anomalies of the monthly usage and of each
feature snapshot; schema drift of every raw table against its declaration. Checks guarding what
the churn model reads are blocking.
"""

from datetime import timedelta

import dagster as dg

from assets import features, gong, hubspot, product, salesforce
from revops_pipelines.checks import (
    Check,
    accepted_values_check,
    combine_checks,
    freshness_check,
    partition_anomaly_check,
    schema_drift_check,
)
from revops_pipelines.errors import RevOpsError
from revops_pipelines.sources import SampleWorldSource
from revops_pipelines.warehouse import Warehouse

USAGE_REF = ("raw_product_usage", "usage_date")

# Freshness policies (Dagster's, evaluated from materialisation times and shown in the UI), in
# addition to the freshness checks below, which compare the data's own timestamps. Sources sync
# daily; features and conversation tables are rebuilt at least weekly (the retrain schedule).
RAW_FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=timedelta(days=2), warn_window=timedelta(hours=26))
FEATURE_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(days=8), warn_window=timedelta(days=2)
)
FEATURE_GROUPS = ("features", "conversations")


def freshness_policy_for(spec: dg.AssetSpec) -> dg.FreshnessPolicy | None:
    """Raw tables (groups ``raw_*``, but not the quarantine tables, written only when a record is
    refused) get :data:`RAW_FRESHNESS`; feature tables :data:`FEATURE_FRESHNESS`; others none."""
    group = spec.group_name or ""
    if (
        group.startswith("raw_")
        and group != "raw_sample"
        and not spec.key.to_user_string().endswith("_quarantine")
    ):
        return RAW_FRESHNESS
    if group in FEATURE_GROUPS:
        return FEATURE_FRESHNESS
    return None


def with_freshness_policies(assets):
    """``assets`` (asset definitions, multi-assets, specs) with :func:`freshness_policy_for` applied
    to every spec that has none of its own (an asset's own policy wins)."""

    def apply(spec: dg.AssetSpec) -> dg.AssetSpec:
        policy = freshness_policy_for(spec)
        return spec if policy is None else dg.apply_freshness_policy(spec, policy, overwrite_existing=False)

    def needs_policy(a) -> bool:
        specs = a.specs if isinstance(a, dg.AssetsDefinition) else [a]
        return any(freshness_policy_for(s) is not None for s in specs)

    # a definition none of whose specs gets a policy passes as it is (mapping it would rebuild it)
    return [dg.map_asset_specs(apply, [a])[0] if needs_policy(a) else a for a in assets]


DOMAINS = (salesforce, hubspot, gong, product, features)


def _tables_with_assets():
    """Declared tables that are also asset keys (a check needs its asset in the definitions)."""
    keys = {k.to_user_string() for mod in DOMAINS for a in getattr(mod, "ASSETS", []) for k in a.keys}
    return [t for mod in DOMAINS for t in getattr(mod, "TABLES", []) if t.name in keys]


# Every raw source and the raw table it feeds first (the stand-ins serve these files; derived
# objects such as opportunity history, tasks, deals or call parties come from the same files).
SOURCE_FILES = {
    "raw_sf_accounts": "salesforce/Account.jsonl",
    "raw_sf_contacts": "salesforce/Contact.jsonl",
    "raw_sf_opportunities": "salesforce/Opportunity.jsonl",
    "raw_sf_cases": "salesforce/Case.jsonl",
    "raw_sf_tasks": "salesforce/Task.jsonl",
    "raw_hs_companies": "hubspot/companies.jsonl",
    "raw_hs_contacts": "hubspot/contacts.jsonl",
    "raw_hs_deals": "hubspot/deals.jsonl",
    "raw_gong_calls": "gong/calls.jsonl",
    "raw_gong_transcripts": "gong/transcripts.jsonl",
    "raw_billing_invoices": "billing/invoices.jsonl",
    "raw_product_usage": "product/usage_daily.parquet",
}


def observe_source_file(src: SampleWorldSource, relpath: str) -> dict[str, str]:
    """Field -> type of one source file: a Parquet file's column types (read without its rows),
    or the flattened JSON records of a ``.jsonl`` file (the first records)."""
    from revops_pipelines.warehouse.source_schema import arrow_schema, infer_schema

    if relpath.endswith(".parquet"):
        import pyarrow.parquet as pq

        return arrow_schema(pq.read_schema(src.root / relpath))
    return infer_schema(src.records(relpath))


def source_schema_check(asset: str, relpath: str) -> Check:
    """The source feeding ``asset`` against its recorded schema: new fields warn, removed fields and
    changed types fail (severity ERROR), the diff is in the metadata. The first observation is
    recorded as the baseline; ``revops warehouse accept-source-schema`` accepts a drift."""

    def _evaluate(warehouse: Warehouse, sample_world: SampleWorldSource) -> dg.AssetCheckResult:
        from revops_pipelines.warehouse.source_schema import observe

        try:
            observed = observe_source_file(sample_world, relpath)
        except (RevOpsError, OSError, ValueError) as err:
            return dg.AssetCheckResult(
                passed=False,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"source": relpath, "problem": f"source not readable: {err}"},
            )
        obs = observe(warehouse, relpath, observed)
        md = {k: (dg.MetadataValue.json(v) if isinstance(v, dict) else v) for k, v in obs.metadata().items()}
        if not obs.diff:
            return dg.AssetCheckResult(passed=True, metadata=md)
        severity = dg.AssetCheckSeverity.ERROR if obs.diff.breaking else dg.AssetCheckSeverity.WARN
        return dg.AssetCheckResult(passed=False, severity=severity, metadata=md)

    return Check(
        evaluate=_evaluate,
        asset=asset,
        name=f"{asset}_source_schema",
        blocking=False,
        description=f"source {relpath}: fields and types as recorded (new: warning; removed or retyped: error)",
        resources=("warehouse", "sample_world"),
    )


CHECKS = combine_checks(
    [
        # accepted values
        accepted_values_check("raw_sf_accounts", "plan", ("Starter", "Growth", "Scale", "Enterprise")),
        accepted_values_check("raw_sf_accounts", "billing_frequency", ("Monthly", "Annual")),
        accepted_values_check("raw_sf_cases", "priority", ("Low", "Medium", "High", "Critical")),
        accepted_values_check(
            "raw_sf_cases", "status", ("New", "Working", "Escalated", "On Hold", "Closed"), blocking=False
        ),
        accepted_values_check("raw_sf_opportunities", "type", ("New Business", "Renewal", "Expansion")),
        accepted_values_check(
            "raw_billing_invoices",
            "status",
            ("draft", "open", "paid", "uncollectible", "void"),
            blocking=False,
        ),
        # freshness: no source lags the latest product usage
        freshness_check("raw_sf_accounts", "system_modstamp", 7, reference=USAGE_REF),
        freshness_check("raw_sf_cases", "created_at", 14, reference=USAGE_REF),
        freshness_check("raw_gong_calls", "started", 14, reference=USAGE_REF),
        freshness_check("raw_billing_invoices", "created_at", 35, reference=USAGE_REF),
        # row count and distribution per partition vs the previous ones
        partition_anomaly_check(
            "raw_product_usage",
            "DATE_TRUNC('month', usage_date)",
            {
                "rows_per_day": "COUNT(*) * 1.0 / COUNT(DISTINCT usage_date)",
                "mean_utilisation": "AVG(CASE WHEN seats > 0 THEN active_users * 1.0 / seats END)",
            },
            {"rows_per_day": 0.5, "mean_utilisation": 0.5},
            description="monthly usage: rows per day and mean seat utilisation within 50% of the previous 3 months",
        ),
        partition_anomaly_check(
            "account_features",
            "snapshot_date",
            {
                "mean_util_30d": "AVG(util_30d)",
                "mean_arr": "AVG(arr)",
                "mean_tickets_90d": "AVG(tickets_90d)",
            },
            {"row_count": 0.5, "mean_util_30d": 0.5, "mean_arr": 0.5, "mean_tickets_90d": 1.0},
            blocking=True,
            description="each snapshot's row count and feature means within bounds of the previous 3 snapshots "
            "(blocking: an anomalous snapshot must not train or score the churn model)",
        ),
        # schema drift of every raw and feature table
        *[schema_drift_check(t) for t in _tables_with_assets()],
        # source schema drift: every raw source against its recorded schema
        *[source_schema_check(asset, relpath) for asset, relpath in SOURCE_FILES.items()],
    ],
    name="quality",
)
