"""Decision quality, measured against ground truth: does the churn-prevention policy put the right
accounts first? Policy top-k vs the oracle's top-k (true churn probability) on the serving model's
held-out snapshots, at several k — expected and realised precision@k and ARR-weighted recall next to
the model alone and the oracle, and the informed ceiling (the exact probability given the sample
world's latent state at the end of the month before the snapshot: what no model of the vendor data can
beat). Also tracks the outcomes of executed actions against later data."""

import dagster as dg
from pydantic import Field

from revops_pipelines.model_store import ModelStore
from revops_pipelines.run_config import RunConfig
from revops_pipelines.signature import pinned
from revops_pipelines.sources import SampleWorldSource
from revops_pipelines.warehouse import Warehouse


class DecisionQualityConfig(RunConfig):
    k: int = Field(default=50, ge=1, description="How many accounts the team can act on per snapshot.")
    ks: list[str] = Field(
        default=["25", "50", "100", "10%"],
        description="Every k graded (integers or a share of the accounts like '10%'); the goal must hold "
        "at all of them.",
    )
    snapshots: int = Field(
        default=3, ge=1, description="Latest oracle snapshots, when the model's held-out ones are unknown."
    )


@dg.asset(
    group_name="agents",
    kinds={"python"},
    deps=["churn_model", "account_features", "sample_oracle"],
    description=(
        "Churn-prevention policy ranking graded against the sample world's oracle at several k: expected "
        "and realised precision@k and ARR-weighted recall of the policy, the model alone and the oracle "
        "(goal: >= 0.9 x oracle expected precision@k at every k)."
    ),
)
@pinned
def decision_quality_report(
    config: DecisionQualityConfig,
    warehouse: Warehouse,
    model_store: ModelStore,
    sample_world: SampleWorldSource,
) -> dg.MaterializeResult:
    from revops_pipelines.agents.quality import decision_quality, quality_metadata, quality_table

    ks = [int(v) if v.strip().isdigit() else v for v in config.ks]
    q = decision_quality(
        warehouse,
        config.k,
        ks=ks,
        snapshots=config.snapshots,
        model_store=model_store,
        world=sample_world.manifest(),
    )
    md = quality_metadata(q)
    return dg.MaterializeResult(
        metadata={
            **md,
            "churners": q["churners"],
            "snapshot_basis": q["snapshot_basis"],
            "informed_ceiling": q["informed_note"],
            "by_k": dg.MetadataValue.md(quality_table(q)),
            "detail": dg.MetadataValue.json({"ratio_to_oracle": q["ratio_to_oracle"], "by_k": q["by_k"]}),
        }
    )


@dg.asset(
    group_name="agents",
    kinds={"python"},
    deps=["account_features"],
    description="Outcome of every executed action against later data (health change, renewed, churned).",
)
@pinned
def action_outcomes(warehouse: Warehouse) -> dg.MaterializeResult:
    from revops_pipelines.agents.outcomes import track_outcomes

    out = track_outcomes(warehouse)
    return dg.MaterializeResult(
        metadata={
            "actions": out.get("actions", 0),
            "outcomes": dg.MetadataValue.json(out.get("outcomes", {})),
        }
    )


ASSETS = [decision_quality_report, action_outcomes]
