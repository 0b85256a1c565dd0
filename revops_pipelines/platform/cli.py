"""``revops dashboard``: build the performance dashboard from the command line.

Registered lazily in :mod:`revops_pipelines.cli` (``"dashboard": "revops_pipelines.platform.cli:dashboard"``).
It reads the configured warehouse and model store (``revops_pipelines.settings``) and the Dagster
instance in ``$DAGSTER_HOME`` (default ``$REVOPS_HOME/dagster_home``, the one ``revops demo`` and
``make dev`` use). Exit codes: 0 ok, 2 configuration or runtime errors.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from revops_pipelines.errors import RevOpsError


@click.group()
def dashboard() -> None:
    """Performance analytics dashboard (static HTML)."""


@dashboard.command("build")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the report (default: $REVOPS_HOME/reports/dashboard.html).",
)
def build(out: Path | None) -> None:
    """Write the static HTML report and print its path and headline numbers."""
    import dagster as dg

    from revops_pipelines.model_store import ModelStore
    from revops_pipelines.platform.assets import dashboard_path
    from revops_pipelines.platform.dashboard import build_dashboard
    from revops_pipelines.resources import warehouse_from_settings
    from revops_pipelines.settings import load_settings

    try:
        settings = load_settings()
        home = os.environ.get("DAGSTER_HOME") or str(settings.home / "dagster_home")
        instance = None
        if Path(home, "dagster.yaml").exists() or Path(home, "history").exists():
            os.environ["DAGSTER_HOME"] = home
            instance = dg.DagsterInstance.get()
        else:
            click.echo(f"note: no Dagster instance at {home}; pipeline health is left out", err=True)
        path, kpis = build_dashboard(
            out or dashboard_path(),
            warehouse_from_settings(settings),
            instance,
            ModelStore(uri=settings.model_store_uri, tenant=settings.tenant_id),
        )
    except RevOpsError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(2)
    click.echo(str(path))
    for k, v in kpis.items():
        click.echo(f"  {k}: {v}")
