"""``revops insights``: list insights and move them through their lifecycle (see
:mod:`revops_pipelines.agents.insights`)."""

from __future__ import annotations

import json
import sys

import click

from revops_pipelines.errors import RevOpsError


def _warehouse():
    from revops_pipelines.resources import warehouse_from_settings
    from revops_pipelines.settings import load_settings

    return warehouse_from_settings(load_settings()).process_config_and_initialize()


def _fail(err: Exception) -> None:
    click.echo(f"error: {err}", err=True)
    sys.exit(2)


STATUS = click.Choice(["open", "acknowledged", "actioned", "resolved", "dismissed"])


@click.group()
def insights() -> None:
    """Insights behind decisions: list them, update their status (open → acknowledged → actioned →
    resolved/dismissed), show their history."""


@insights.command("list")
@click.option("--status", type=STATUS, default=None, help="Only insights in this status.")
@click.option("--category", default=None, help="e.g. churn_risk, consumption_pattern, deal_quality.")
@click.option("--account", "account_id", default=None, help="Only this account's insights.")
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def list_cmd(
    status: str | None, category: str | None, account_id: str | None, limit: int, as_json: bool
) -> None:
    """Insights, newest snapshot first."""
    from revops_pipelines.agents.insights import list_insights

    try:
        df = list_insights(_warehouse(), status=status, category=category, account_id=account_id, limit=limit)
    except RevOpsError as err:
        _fail(err)
    for r in df.to_dict("records"):
        if as_json:
            click.echo(json.dumps(r, default=str))
        else:
            click.echo(
                f"{r['insight_id']}  {r['status']:<12} {r['category']:<20} {r['account_id']:<12} "
                f"{str(r['snapshot_date'])[:10]}  conf {r['confidence']:.2f} impact {r['impact']} "
                f"urgency {r['urgency']}  {r['text'][:80]}"
            )
    if not as_json:
        click.echo(f"{len(df)} insight(s)")


@insights.command("update")
@click.argument("insight_ids", nargs=-1, required=True)
@click.option("--status", type=STATUS, required=True, help="The new status.")
@click.option("--by", default="cli", show_default=True, help="Who made the change (kept in the history).")
@click.option("--reason", default=None, help="Why (kept in the history).")
def update_cmd(insight_ids: tuple[str, ...], status: str, by: str, reason: str | None) -> None:
    """Move INSIGHT_IDS to a new status; invalid transitions are refused and nothing changes."""
    from revops_pipelines.agents.insights import update_status

    try:
        changes = update_status(_warehouse(), list(insight_ids), status, by=by, reason=reason)
    except RevOpsError as err:
        _fail(err)
    for c in changes:
        click.echo(f"{c['insight_id']}: {c['from']} -> {c['to']}")
    unchanged = len(set(insight_ids)) - len(changes)
    if unchanged:
        click.echo(f"{unchanged} already {status}")


@insights.command("history")
@click.argument("insight_id")
def history_cmd(insight_id: str) -> None:
    """Every status change of one insight."""
    from revops_pipelines.agents.insights import history

    df = history(_warehouse(), insight_id)
    if df.empty:
        click.echo(f"no status changes recorded for {insight_id}")
    for r in df.to_dict("records"):
        click.echo(
            f"{str(r['changed_at'])[:19]}  {r['from_status']} -> {r['to_status']}  by {r['changed_by']} "
            f"({r['source']}){'  ' + r['reason'] if r['reason'] else ''}"
        )
