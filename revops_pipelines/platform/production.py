"""Production deployment modes: which Dagster instance configuration each uses and what it needs.

The RevOps side of production (Firebolt, S3 model store and LanceDB, multiprocess executor, secrets)
is decided by :mod:`revops_pipelines.settings` from environment variables. The Dagster side (where
runs, event logs and schedules are stored, how runs are launched) is ``$DAGSTER_HOME/dagster.yaml``;
``deploy/<mode>/dagster.yaml`` holds one example per mode:

==========  ==========================  =======================  ==============================
mode        instance storage            run launcher             pairs with
==========  ==========================  =======================  ==============================
local       SQLite under $DAGSTER_HOME  in-process subprocess    DuckDB, local stores (default)
postgres    Postgres (dagster-postgres) DefaultRunLauncher       Firebolt, S3 stores
ecs         Postgres (RDS)              dagster-aws EcsRunLauncher  Firebolt, S3 stores, S3 logs
==========  ==========================  =======================  ==============================

Every credential in those files is an ``env:`` reference; :func:`missing_env` lists the variables a
mode needs that are not set, so a deployment can fail early with their names.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from revops_pipelines.settings import Settings

DEPLOY_DIR = Path(__file__).resolve().parents[2] / "deploy"
MODES = ("local", "postgres", "ecs")


def instance_yaml(mode: str) -> Path:
    """The example ``dagster.yaml`` of a deployment mode."""
    if mode not in MODES:
        raise ValueError(f"unknown deployment mode {mode!r}; expected one of {', '.join(MODES)}")
    return DEPLOY_DIR / mode / "dagster.yaml"


def _env_refs(node: Any) -> set[str]:
    if isinstance(node, Mapping):
        if set(node) == {"env"} and isinstance(node["env"], str):
            return {node["env"]}
        return set().union(*(_env_refs(v) for v in node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*(_env_refs(v) for v in node)) if node else set()
    return set()


def env_vars(mode: str) -> list[str]:
    """Every environment variable the mode's ``dagster.yaml`` reads through ``env:``."""
    import yaml

    return sorted(_env_refs(yaml.safe_load(instance_yaml(mode).read_text())))


def missing_env(mode: str, env: Mapping[str, str] | None = None) -> list[str]:
    env = os.environ if env is None else env
    return [var for var in env_vars(mode) if not env.get(var)]


def describe(settings: Settings) -> dict[str, str]:
    """The effective production configuration, safe to print or log: no secret values, only where
    secrets come from."""
    out = {
        "warehouse": settings.warehouse,
        "model_store": settings.model_store_uri,
        "vector_store": settings.vector_uri,
        "executor": settings.executor,
        "dry_run": str(settings.dry_run).lower(),
        "source_mode": settings.source_mode,
    }
    if settings.state_url:  # agent and flow state shared by every process (password masked)
        from revops_pipelines.sqlite_store import redact_url, schema_for

        out["state"] = f"postgres {redact_url(settings.state_url)}, schema {schema_for(settings.tenant_id)}"
    else:
        out["state"] = f"sqlite files in {settings.state_dir} (one copy per process host)"
    fb = settings.firebolt
    if fb is not None:
        out["firebolt"] = (
            f"core at {fb.url}, database {fb.database}"
            if fb.mode == "core"
            else f"cloud account {fb.account}, engine {fb.engine}, database {fb.database}, "
            f"credentials from ${fb.client_id_var} / ${fb.client_secret_var}"
        )
    return out
