"""``revops tenants``: list and validate tenant files, and write one Dagster code location per tenant.

Registered lazily in :mod:`revops_pipelines.cli`. Exit codes: 0 ok, 1 a tenant is invalid, 2 usage or
configuration errors.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import click

from revops_pipelines.errors import RevOpsError


def _fail(err: Exception) -> None:
    click.echo(f"error: {err}", err=True)
    sys.exit(2)


def _ids(selected: tuple[str, ...]) -> list[str]:
    from revops_pipelines.tenancy import known_tenants, tenants_dir, validate_tenant_id

    known = known_tenants()
    if not selected:
        if not known:
            raise click.UsageError(f"no tenant files in {tenants_dir()} (REVOPS_TENANTS_DIR)")
        return known
    for tenant_id in selected:
        validate_tenant_id(tenant_id, "tenant")
        if tenant_id not in known:
            raise click.UsageError(
                f"unknown tenant {tenant_id!r} (known: {', '.join(known) or 'none'} in {tenants_dir()})"
            )
    return list(selected)


@click.group()
def tenants() -> None:
    """Multi-tenant deployments: one tenants/<id>.yaml per tenant, one code location each."""


@tenants.command("list")
def tenants_list() -> None:
    """Each tenant with its sources and where its data lives."""
    from revops_pipelines.settings import load_settings

    try:
        ids = _ids(())
        rows = [load_settings(env=_without_tenant(), tenant=t) for t in ids]
    except RevOpsError as err:
        _fail(err)
    for s in rows:
        assert s.tenant is not None
        cfg = s.tenant.config
        where = str(s.duckdb_path) if s.warehouse == "duckdb" else f"firebolt:{s.firebolt.database}"
        click.echo(f"{s.tenant_id}  {cfg.display_name}".rstrip())
        click.echo(f"  sources    {s.source_mode}: {', '.join(cfg.sources)}")
        click.echo(f"  sample     seed {s.sample_seed}, {s.sample_accounts} accounts")
        click.echo(f"  warehouse  {where}")
        click.echo(f"  vectors    {s.vector_uri}")
        click.echo(f"  models     {s.model_store_uri}")
        click.echo(f"  state      {s.state_dir}")
        click.echo(f"  flows      {s.flows_path or '(shared flows_yaml/)'}")
        click.echo(f"  kb overlay {s.tenant.kb_overlay or '-'}")


def _without_tenant() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "REVOPS_TENANT"}


def tenant_problems(tenant_id: str) -> list[str]:
    """Every problem of one tenant: its file and settings, its flows, its merged knowledge base."""
    from revops_pipelines.flows.loader import load_all
    from revops_pipelines.kb.documents import default_kb_root
    from revops_pipelines.kb.maintenance import validate_content
    from revops_pipelines.settings import load_settings
    from revops_pipelines.tenancy import merge_kb_overlay

    try:
        settings = load_settings(env=_without_tenant(), tenant=tenant_id)
    except RevOpsError as err:
        return [str(err)]
    assert settings.tenant is not None
    problems: list[str] = []
    if settings.flows_path:
        try:
            load_all(settings.flows_path)
        except RevOpsError as err:
            problems.append(str(err))
    if settings.tenant.kb_overlay:
        with tempfile.TemporaryDirectory(prefix="revops-kb-") as tmp:
            merged = merge_kb_overlay(default_kb_root(), settings.tenant.kb_overlay, Path(tmp) / "kb")
            problems.extend(f"knowledge_base.overlay: {p}" for p in validate_content(merged).problems)
    return problems


@tenants.command("validate")
@click.argument("tenant_ids", nargs=-1)
def tenants_validate(tenant_ids: tuple[str, ...]) -> None:
    """Validate tenant files (all by default): settings, credential names, flows, KB overlay, and that
    no two tenants share a warehouse database."""
    from revops_pipelines.settings import tenant_env
    from revops_pipelines.tenancy import load_tenant

    try:
        ids = _ids(tenant_ids)
    except RevOpsError as err:
        _fail(err)
    bad = 0
    databases: dict[str, str] = {}
    for tenant_id in ids:
        problems = tenant_problems(tenant_id)
        if not problems:
            database = tenant_env(_without_tenant(), load_tenant(tenant_id))["FIREBOLT_DATABASE"]
            if database in databases:
                problems.append(
                    f"warehouse.firebolt_database: {database!r} is also tenant {databases[database]!r}'s"
                )
            databases.setdefault(database, tenant_id)
        if problems:
            bad += 1
            click.echo(f"FAIL {tenant_id}")
            for p in problems:
                click.echo(f"  {p}")
        else:
            click.echo(f"ok   {tenant_id}")
    sys.exit(1 if bad else 0)


@tenants.command("workspace")
@click.argument("tenant_ids", nargs=-1)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the workspace file here (default: print it).",
)
@click.option("--include-default", is_flag=True, help="Also load the default (single-tenant) location.")
@click.option(
    "--working-directory",
    default=None,
    help="working_directory of each location (default: this project's folder, absolute; Dagster "
    "resolves a relative one against the current directory, not the workspace file).",
)
def tenants_workspace(
    tenant_ids: tuple[str, ...], out: Path | None, include_default: bool, working_directory: str | None
) -> None:
    """A workspace.yaml with one python_module code location per tenant (location name = tenant id)."""
    from revops_pipelines.tenancy import PROJECT_ROOT, workspace_yaml

    try:
        ids = _ids(tenant_ids)
        text = workspace_yaml(
            ids, working_directory=working_directory or str(PROJECT_ROOT), include_default=include_default
        )
    except RevOpsError as err:
        _fail(err)
    if out is None:
        click.echo(text, nl=False)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    click.echo(f"wrote {out} ({len(ids)} tenant location(s))")
