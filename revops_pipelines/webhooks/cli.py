"""``revops webhook serve|openapi`` and ``revops events list|replay``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click


@click.group()
def webhook() -> None:
    """The webhook receiver (Slack, HubSpot, Gong, generic): serve it, or write its OpenAPI document."""


@webhook.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", type=click.IntRange(0, 65535), default=8787, show_default=True, help="TCP port.")
@click.option("--log-level", default="warning", show_default=True, help="uvicorn log level.")
def webhook_serve(host: str, port: int, log_level: str) -> None:
    """Run the receiver under uvicorn (one process; events go to $REVOPS_HOME/state/events.sqlite)."""
    import uvicorn

    from revops_pipelines.settings import WEBHOOK_SOURCES, load_settings, webhook_secret_var
    from revops_pipelines.webhooks.app import create_app, load_secrets

    settings = load_settings()
    configured = sorted(load_secrets())
    missing = [webhook_secret_var(s) for s in WEBHOOK_SOURCES if s not in configured]
    click.echo(f"webhook receiver on http://{host}:{port}/webhooks/{{{'|'.join(WEBHOOK_SOURCES)}}}")
    click.echo(
        f"  configured sources: {', '.join(configured) or 'none'}; event store: {settings.events_path}"
    )
    if missing:
        click.echo(f"  not configured (answer 503): set {', '.join(missing)}")
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=5,
    )


@webhook.command("openapi")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write here (default stdout).")
def webhook_openapi(out: Path | None) -> None:
    """Write the receiver's OpenAPI 3.1 document."""
    from revops_pipelines.webhooks.app import build_openapi

    text = json.dumps(build_openapi(), indent=2)
    if out:
        out.write_text(text + "\n")
        click.echo(f"wrote {out}")
    else:
        click.echo(text)


@click.group()
def events() -> None:
    """Received webhook events: list them, replay dead-lettered ones."""


@events.command("list")
@click.option(
    "--status",
    type=click.Choice(["received", "submitted", "processed", "dead_letter"]),
    help="Only events with this status.",
)
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def events_list(status: str | None, limit: int, as_json: bool) -> None:
    """Events in arrival order, with status and (dead letters) the reason."""
    from revops_pipelines.webhooks.store import EventStore

    store = EventStore()
    rows = store.list(status=status, limit=limit)
    if as_json:
        for r in rows:
            click.echo(
                json.dumps(
                    {
                        "seq": r.seq,
                        "key": r.key,
                        "event_type": r.event_type,
                        "entity": f"{r.entity_type}:{r.entity_id}",
                        "received_at": r.received_at,
                        "status": r.status,
                        "reason": r.reason,
                        "run_ids": r.run_ids,
                    }
                )
            )
        return
    counts = store.counts()
    click.echo("events: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"))
    for r in rows:
        line = (
            f"{r.seq:>6}  {r.received_at[:19]}  {r.key:<40} {r.event_type:<28} "
            f"{r.entity_type}:{r.entity_id}  {r.status}"
        )
        if r.reason:
            line += f"  ({r.reason})"
        click.echo(line)


@events.command("replay")
@click.argument("event", required=False)
@click.option("--dead-letter", "all_dead", is_flag=True, help="Replay every dead-lettered event.")
def events_replay(event: str | None, all_dead: bool) -> None:
    """Send EVENT (seq or source:event_id) back to the sensor, or every dead letter with --dead-letter."""
    from revops_pipelines.webhooks.store import EventStore

    if bool(event) == all_dead:
        click.echo("error: give an event (seq or source:event_id) or --dead-letter", err=True)
        sys.exit(2)
    store = EventStore()
    if all_dead:
        recs = store.list(status="dead_letter", limit=1_000_000)
    else:
        rec = store.get(event)
        if rec is None:
            click.echo(f"error: no event {event!r}", err=True)
            sys.exit(2)
        recs = [rec]
    for rec in recs:
        try:
            store.replay(rec.seq)
        except ValueError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)
        click.echo(f"replayed {rec.key} (was {rec.status}); the webhook_event_sensor picks it up next tick")
    if not recs:
        click.echo("no dead-lettered events")
