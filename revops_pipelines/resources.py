"""Build every resource from :mod:`revops_pipelines.settings` — the one place where the embedded
default and production differ. Secrets are passed as ``dg.EnvVar`` so they never land in config
snapshots or logs."""

from __future__ import annotations

from typing import Any

import dagster as dg

from revops_pipelines.agents.base import AgentRuntime
from revops_pipelines.kb.resource import KnowledgeBaseResource
from revops_pipelines.model_store import ModelStore
from revops_pipelines.settings import Settings
from revops_pipelines.sources import SampleWorldSource
from revops_pipelines.warehouse import Warehouse
from revops_pipelines.warehouse.duckdb import DuckDBWarehouse


def warehouse_from_settings(settings: Settings) -> Warehouse:
    if settings.warehouse == "duckdb":
        return DuckDBWarehouse(path=str(settings.duckdb_path))
    from revops_pipelines.warehouse.firebolt import FireboltWarehouse

    fb = settings.firebolt
    assert fb is not None  # load_settings guarantees it
    if fb.mode == "core":
        return FireboltWarehouse(database=fb.database, url=fb.url)
    return FireboltWarehouse(
        database=fb.database,
        account_name=fb.account,
        engine_name=fb.engine,
        client_id=dg.EnvVar(fb.client_id_var),
        client_secret=dg.EnvVar(fb.client_secret_var),
    )


def build_resources(settings: Settings) -> dict[str, Any]:
    return {
        "warehouse": warehouse_from_settings(settings),
        "sample_world": SampleWorldSource(
            path=str(settings.sample_dir), seed=settings.sample_seed, accounts=settings.sample_accounts
        ),
        "model_store": ModelStore(uri=settings.model_store_uri),
        "knowledge_base": KnowledgeBaseResource(uri=settings.vector_uri),
        "agents": _agent_runtime(settings),
        **_connectors(settings),
    }


def _connectors(settings: Settings) -> dict[str, Any]:
    from revops_pipelines.connectors.resources import connector_resources

    return connector_resources(settings)


def _agent_runtime(settings: Settings) -> AgentRuntime:
    common = {
        "dry_run": settings.dry_run,
        "state_path": str(settings.state_dir / "agent_state.sqlite"),
        "kb_uri": settings.vector_uri,
    }
    if settings.dry_run:
        return AgentRuntime(**common)
    return AgentRuntime(
        **common,
        slack_token=dg.EnvVar("SLACK_BOT_TOKEN"),
        crm_token=dg.EnvVar("HUBSPOT_ACCESS_TOKEN"),
        webhook_secret=dg.EnvVar("REVOPS_WEBHOOK_SECRET"),
        webhook_url=settings.webhook_url,
    )
