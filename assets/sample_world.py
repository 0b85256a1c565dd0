"""The sample world: generated vendor-shaped data with ground truth (stand-in for live sources)."""

import dagster as dg

from revops_pipelines.raw import raw_table_asset
from revops_pipelines.signature import pinned
from revops_pipelines.sources import SampleWorldSource
from revops_pipelines.warehouse import table


@dg.asset(
    group_name="sample_world",
    kinds={"python"},
    description=(
        "Deterministic sample RevOps world (Salesforce, HubSpot, Gong, billing, product usage) with the "
        "true churn probability of every account. Regenerated only when seed or size change."
    ),
)
@pinned
def sample_world(context: dg.AssetExecutionContext, sample_world: SampleWorldSource) -> dg.MaterializeResult:
    if sample_world.is_current():
        manifest = sample_world.manifest()
        context.log.info(f"sample world at {sample_world.path} is current (seed {sample_world.seed})")
    else:
        manifest = sample_world.generate()
    counts = manifest.get("row_counts", {})
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(sample_world.path),
            "seed": manifest["seed"],
            "accounts": manifest["accounts"],
            "window": f"{manifest['start']} .. {manifest['end']}",
            "counts": dg.MetadataValue.json(counts),
        }
    )


ORACLE = table(
    "sample_oracle",
    [
        ("account_id", "TEXT"),
        ("snapshot_date", "DATE"),
        ("horizon_days", "INTEGER"),
        ("churn_probability", "DOUBLE", False),
        ("churned_within_horizon", "BOOLEAN", False),
    ],
    keys=("account_id", "snapshot_date", "horizon_days"),
    primary_index=("snapshot_date", "account_id"),
    description="Ground truth of the sample world: true churn probability per account and snapshot.",
    group="ground_truth",
)


def _oracle(src: SampleWorldSource):
    df = src.parquet("truth/churn_oracle.parquet")
    return df[ORACLE.column_names]


sample_oracle = raw_table_asset(
    ORACLE,
    _oracle,
    source="sample",
    description=(
        "Ground truth (sample world only): the generator's true probability that each account churns "
        "within the horizon after each snapshot. Used to grade models, never as a feature."
    ),
)
