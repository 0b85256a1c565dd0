"""``revops models``: list registered model versions, promote one to champion, roll back.

Registered in the main CLI as ``"models": "models.cli:models"``. The store is the one the settings
name (``REVOPS_MODEL_STORE_URI``, default ``$REVOPS_HOME/models``), local folder or S3.
"""

from __future__ import annotations

import json
import sys

import click

from revops_pipelines.errors import RevOpsError

DEFAULT_MODEL = "churn_lgbm"


def _store():
    from revops_pipelines.model_store import ModelStore
    from revops_pipelines.settings import load_settings

    settings = load_settings()
    return ModelStore(uri=settings.model_store_uri, tenant=settings.tenant_id)


def _fail(err: Exception) -> None:
    click.echo(f"error: {err}", err=True)
    sys.exit(2)


@click.group("models")
def models() -> None:
    """Model registry: versions, champion/challenger, promotion and rollback."""


@models.command("list")
@click.option("--name", default=DEFAULT_MODEL, show_default=True, help="Model name in the store.")
@click.option("--json", "as_json", is_flag=True, help="Print the records as JSON.")
def list_versions(name: str, as_json: bool) -> None:
    """Every version of NAME, oldest first; * marks the champion."""
    try:
        records = _store().list_versions(name)
    except RevOpsError as err:
        _fail(err)
    if as_json:
        keep = ("version", "champion", "kind", "as_of", "training_window", "data_fingerprint", "code_version")
        rows = [
            {
                **{k: r.get(k) for k in keep},
                "auc": r.get("metrics", {}).get("model", {}).get("auc"),
                "error": r.get("error"),
            }
            for r in records
        ]
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    if not records:
        click.echo(f"no versions of {name}")
        return
    click.echo(
        f"  {'version':<24} {'kind':<17} {'as_of':<11} {'train window':<24} {'AUC':>6} {'oracle':>6}  code"
    )
    for r in records:
        if "error" in r:
            click.echo(f"  {r['version']:<24} UNREADABLE: {r['error']}")
            continue
        m = r.get("metrics", {})
        auc = m.get("model", {}).get("auc")
        oracle = m.get("oracle", {}).get("auc")
        window = " .. ".join(r.get("training_window") or [])
        click.echo(
            f"{'*' if r['champion'] else ' '} {r['version']:<24} {r.get('kind', ''):<17} {r.get('as_of') or '':<11} "
            f"{window:<24} {'' if auc is None else f'{auc:.3f}':>6} {'' if oracle is None else f'{oracle:.3f}':>6}  "
            f"{r.get('code_version', '')}"
        )


@models.command("promote")
@click.argument("version")
@click.option("--name", default=DEFAULT_MODEL, show_default=True)
@click.option("--reason", default="manual promotion", show_default=True)
def promote(version: str, name: str, reason: str) -> None:
    """Make VERSION the champion (the model churn_scores serves)."""
    store = _store()
    try:
        before = store.champion(name)
        store.promote(name, version, reason=reason)
    except RevOpsError as err:
        _fail(err)
    click.echo(f"{name}: champion {before or '(none)'} -> {version}")


@models.command("rollback")
@click.option("--name", default=DEFAULT_MODEL, show_default=True)
def rollback(name: str) -> None:
    """Make the previous champion serve again."""
    store = _store()
    try:
        before = store.champion(name)
        version = store.rollback(name)
    except RevOpsError as err:
        _fail(err)
    click.echo(f"{name}: champion {before} -> {version} (rollback)")
