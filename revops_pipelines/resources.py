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
        return DuckDBWarehouse(path=str(settings.duckdb_path), tenant=settings.tenant_id)
    from revops_pipelines.warehouse.firebolt import FireboltWarehouse

    fb = settings.firebolt
    assert fb is not None  # load_settings guarantees it
    if fb.mode == "core":
        return FireboltWarehouse(database=fb.database, url=fb.url, tenant=settings.tenant_id)
    return FireboltWarehouse(
        database=fb.database,
        tenant=settings.tenant_id,
        account_name=fb.account,
        engine_name=fb.engine,
        client_id=dg.EnvVar(fb.client_id_var),
        client_secret=dg.EnvVar(fb.client_secret_var),
    )


def build_resources(settings: Settings) -> dict[str, Any]:
    if settings.tenant_id is not None:  # this process now serves that tenant (see tenancy.check_location)
        from revops_pipelines.tenancy import serve

        serve(settings.tenant_id)
    return {
        "warehouse": warehouse_from_settings(settings),
        "sample_world": SampleWorldSource(
            path=str(settings.sample_dir), seed=settings.sample_seed, accounts=settings.sample_accounts
        ),
        "model_store": ModelStore(uri=settings.model_store_uri, tenant=settings.tenant_id),
        "knowledge_base": _knowledge_base(settings),
        "agents": _agent_runtime(settings),
        **_connectors(settings),
    }


def _connectors(settings: Settings) -> dict[str, Any]:
    from revops_pipelines.connectors.resources import connector_resources

    return connector_resources(settings)


def _knowledge_base(settings: Settings) -> KnowledgeBaseResource:
    if settings.tenant is None:
        return KnowledgeBaseResource(uri=settings.vector_uri)
    return KnowledgeBaseResource(  # the tenant's overlay is merged over kb_assets/ into its own folder
        uri=settings.vector_uri,
        tenant=settings.tenant_id,
        content_root=str(settings.home / "kb_content") if settings.tenant.kb_overlay else None,
        overlay=str(settings.tenant.kb_overlay) if settings.tenant.kb_overlay else None,
        reports_dir=str(settings.home / "reports"),
    )


def _tenant_actions(settings: Settings) -> dict[str, Any]:
    """A tenant's action allow-lists and guardrails (tenant file ``actions:``)."""
    if settings.tenant is None:
        return {}
    actions = settings.tenant.config.actions
    out: dict[str, Any] = {"tenant_id": settings.tenant_id}
    if actions.allowed_channels is not None:
        out["allowed_channels"] = actions.allowed_channels
    if actions.allowed_webhook_hosts:
        out["allowed_webhook_hosts"] = actions.allowed_webhook_hosts
    for name in ("max_actions_per_run", "max_actions_per_account_per_week"):
        if getattr(actions, name) is not None:
            out[name] = getattr(actions, name)
    return out


def _agent_runtime(settings: Settings) -> AgentRuntime:
    common = {
        "dry_run": settings.dry_run,
        "state_path": str(settings.state_dir / "agent_state.sqlite"),
        "kb_uri": settings.vector_uri,
        **_tenant_actions(settings),
    }
    if settings.dry_run:
        return AgentRuntime(**common)
    return AgentRuntime(
        **common,
        slack_token=dg.EnvVar(settings.env_var("SLACK_BOT_TOKEN")),
        crm_token=dg.EnvVar(settings.env_var("HUBSPOT_ACCESS_TOKEN")),
        webhook_secret=dg.EnvVar(settings.env_var("REVOPS_WEBHOOK_SECRET")),
        webhook_url=settings.webhook_url,
    )
