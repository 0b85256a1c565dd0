"""Decision quality, measured against ground truth: does the churn-prevention policy put the right
accounts first? Policy top-k vs the oracle's top-k (true churn probability) on the model's held-out
snapshots — precision@k and ARR-weighted recall next to the oracle's. Also tracks the outcomes of
executed actions against later data."""

import dagster as dg
from pydantic import Field

from revops_pipelines.model_store import ModelStore
from revops_pipelines.warehouse import Warehouse


class DecisionQualityConfig(dg.Config):
    k: int = Field(default=50, ge=1, description="How many accounts the team can act on per snapshot.")
    snapshots: int = Field(default=3, ge=1, description="Latest oracle snapshots to average over.")


@dg.asset(
    group_name="agents",
    kinds={"python"},
    deps=["churn_model", "account_features", "sample_oracle"],
    description=(
        "Churn-prevention policy ranking graded against the sample world's oracle: precision@k and "
        "ARR-weighted recall of the policy next to the oracle's (goal: >= 0.9 x oracle precision@k)."
    ),
)
def decision_quality_report(
    config: DecisionQualityConfig, warehouse: Warehouse, model_store: ModelStore
) -> dg.MaterializeResult:
    from revops_pipelines.agents.quality import decision_quality, quality_metadata

    q = decision_quality(warehouse, config.k, snapshots=config.snapshots, model_store=model_store)
    md = quality_metadata(q)
    return dg.MaterializeResult(
        metadata={**md, "churners": q["churners"], "detail": dg.MetadataValue.json(q["ratio_to_oracle"])}
    )


@dg.asset(
    group_name="agents",
    kinds={"python"},
    deps=["account_features"],
    description="Outcome of every executed action against later data (health change, renewed, churned).",
)
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
