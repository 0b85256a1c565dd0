"""The performance dashboard as an asset: a static HTML report whose path is in its metadata.

Registered through ``DOMAINS`` in :mod:`revops_pipelines.definitions` (this module exposes ``ASSETS``
and ``JOBS``). It reads the warehouse, the model store and the Dagster instance's event log; plotly
and pandas are imported only when it runs.
"""

import dagster as dg

from revops_pipelines.model_store import ModelStore
from revops_pipelines.signature import pinned
from revops_pipelines.warehouse import Warehouse


def dashboard_path(tenant: str | None = None):
    from revops_pipelines.settings import load_settings

    return load_settings(tenant=tenant).home / "reports" / "dashboard.html"


@dg.asset(
    name="performance_dashboard",
    group_name="platform",
    kinds={"html", "plotly"},
    description="Static HTML performance report: pipeline health, model quality over retrains, churn "
    "risk, flow runs and action outcomes, agent latency and errors, connector requests and 429s.",
)
@pinned
def performance_dashboard(
    context: dg.AssetExecutionContext, warehouse: Warehouse, model_store: ModelStore
) -> dg.MaterializeResult:
    """Rebuild the report from everything recorded so far; its headline numbers become metadata."""
    from revops_pipelines.platform.dashboard import build_dashboard

    path, kpis = build_dashboard(dashboard_path(model_store.tenant), warehouse, context.instance, model_store)
    context.log.info(f"dashboard written to {path}")
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(path)),
            **{f"kpi/{k}": dg.MetadataValue.text(v) for k, v in kpis.items()},
        }
    )


build_dashboard_job = dg.define_asset_job(
    "build_dashboard",
    selection=dg.AssetSelection.assets("performance_dashboard"),
    description="Rebuild the static performance dashboard.",
)

ASSETS = [performance_dashboard]
JOBS = [build_dashboard_job]
