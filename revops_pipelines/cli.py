"""The ``revops`` command line. Arguments are validated with the project's pydantic models, so
bad input gets the same field-named messages here as in agents and flows."""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from pathlib import Path

import click

from revops_pipelines.errors import RevOpsError


def _fail(err: Exception) -> None:
    click.echo(f"error: {err}", err=True)
    sys.exit(2)


# Command groups owned by other packages, imported only when used: "name": "module:attribute".
SUBCOMMANDS: dict[str, str] = {
    "kb": "revops_pipelines.kb.cli:kb",
    "models": "models.cli:models",
    "warehouse": "revops_pipelines.warehouse.cli:warehouse",
    "dashboard": "revops_pipelines.platform.cli:dashboard",
    "tenants": "revops_pipelines.platform.tenants:tenants",
    "webhook": "revops_pipelines.webhooks.cli:webhook",
    "events": "revops_pipelines.webhooks.cli:events",
    "insights": "revops_pipelines.agents.insights_cli:insights",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *SUBCOMMANDS])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in SUBCOMMANDS:
            import importlib

            module, attr = SUBCOMMANDS[name].split(":")
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="revops-pipelines")
def main() -> None:
    """RevOps AI Framework on Dagster: sample data, flows, demo and (later) warehouse, models, KB."""


# ---- sample -------------------------------------------------------------------------------------
@main.group()
def sample() -> None:
    """The deterministic sample RevOps world (with ground-truth churn probabilities)."""


@sample.command("generate")
@click.option("--seed", type=int, default=7, show_default=True, help="Generator seed (>= 0).")
@click.option("--accounts", type=int, default=1000, show_default=True, help="Number of accounts (1..50000).")
@click.option("--months", type=int, default=24, show_default=True, help="Length of the simulated history.")
@click.option(
    "--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Output folder."
)
def sample_generate(seed: int, accounts: int, months: int, out: Path) -> None:
    """Generate a sample world into OUT (vendor-shaped JSONL/Parquet + truth + manifest.json)."""
    from revops_pipelines.sample.generator import WorldConfig, generate_to_dir

    try:
        manifest = generate_to_dir(WorldConfig(seed=seed, accounts=accounts, months=months), out)
    except RevOpsError as err:
        _fail(err)
    counts = manifest.get("row_counts", {})
    click.echo(f"sample world (seed {seed}, {accounts} accounts) written to {out}")
    for name, n in sorted(counts.items()):
        click.echo(f"  {name:<32} {n:>10,}")


# ---- flows --------------------------------------------------------------------------------------
@main.group()
def flows() -> None:
    """YAML flows: list, validate, show, run, state, approve, export-asl, schema, builder."""


@flows.command("validate")
@click.argument("path", required=False, type=click.Path(exists=True, path_type=Path))
def flows_validate(path: Path | None) -> None:
    """Validate one flow file or every flow in a folder; print every problem as file:line:col."""
    from revops_pipelines.flows.loader import FlowValidationError, load_all, load_flow

    target = path or _default_flows()
    try:
        specs = [load_flow(target)] if Path(target).is_file() else load_all(target)
    except FlowValidationError as err:
        for p in err.problems:
            click.echo(str(p), err=True)
        sys.exit(1)
    for s in specs:
        click.echo(f"ok  {s.flow_id} v{s.version} ({len(s.steps)} steps)")


@flows.command("list")
def flows_list() -> None:
    """List the flows in the registry folders (REVOPS_FLOWS_DIR, os.pathsep-separated)."""
    from revops_pipelines.flows.loader import load_all

    try:
        specs = load_all(_default_flows())
    except RevOpsError as err:
        _fail(err)
    for s in specs:
        trig = {
            "schedule": s.trigger.cron,
            "sensor": f"asset:{s.trigger.asset}",
            "event": f"event:{s.trigger.event}",
        }
        click.echo(
            f"{s.flow_id:<28} v{s.version:<3} {'enabled' if s.enabled else 'disabled':<9} "
            f"{trig.get(s.trigger.type) or s.trigger.type:<22} {s.owner}"
        )


def _spec(flow_id: str):
    from revops_pipelines.flows.loader import load_all

    try:
        specs = {s.flow_id: s for s in load_all(_default_flows())}
    except RevOpsError as err:
        _fail(err)
    if flow_id not in specs:
        _fail(RevOpsError(f"unknown flow {flow_id!r} (one of {sorted(specs)})"))
    return specs[flow_id]


@flows.command("show")
@click.argument("flow_id")
def flows_show(flow_id: str) -> None:
    """Show a flow: trigger, entity selection, steps with dependencies, conditions, waits, retries."""
    spec = _spec(flow_id)
    click.echo(
        f"{spec.flow_id} v{spec.version}  owner {spec.owner}  {'enabled' if spec.enabled else 'disabled'}"
    )
    if spec.description:
        click.echo(f"  {spec.description}")
    click.echo(f"trigger: {spec.trigger.model_dump(exclude_none=True)}")
    if spec.entities:
        click.echo(f"entities: {' '.join(spec.entities.sql.split())}  params={spec.entities.params}")
    handlers = spec.failure_handlers()
    click.echo("steps:")
    for s in spec.steps:
        eh = spec.step_errors(s)
        kind = f"{s.agent}.{s.action}" if s.agent else f"type {s.type}"
        extra = []
        if s.depends_on:
            extra.append(f"after {', '.join(s.depends_on)}")
        if s.when:
            extra.append(f"when {s.when}")
        if s.wait:
            extra.append(f"wait {s.wait.days:g} d after {s.wait.after}")
        if s.approval:
            extra.append("needs approval")
        if s.id in handlers:
            extra.append("on-failure handler")
        else:
            extra.append(f"retries {eh.retry_count} ({eh.backoff} {eh.backoff_seconds:g} s)")
            if eh.on_failure:
                extra.append(f"on failure {eh.on_failure}")
        click.echo(f"  {s.id:<22} {kind:<28} {'; '.join(extra)}")


@flows.command("run")
@click.argument("flow_id")
@click.option("--as-of", default=None, help="Clock for waits (ISO date/time), e.g. to replay day 30.")
def flows_run(flow_id: str, as_of: str | None) -> None:
    """Run a flow's job locally (no UI) on the configured stack; the run shows in `make dev` later."""
    from revops_pipelines.definitions import build_definitions
    from revops_pipelines.demo import QUIET, _instance
    from revops_pipelines.flows.compiler import AS_OF_TAG

    spec = _spec(flow_id)
    job = build_definitions().resolve_job_def(f"flow_{spec.flow_id}")
    tags = {AS_OF_TAG: as_of} if as_of else {}
    result = job.execute_in_process(instance=_instance(), tags=tags, raise_on_error=False, run_config=QUIET)
    for node in job.graph.node_names():
        try:
            out = result.output_for_node(node)
        except Exception:
            click.echo(f"  {node:<40} (no output: skipped or failed)")
            continue
        if isinstance(out, dict) and "counts" in out:
            info = out["counts"]
        elif isinstance(out, dict) and "execution_summary" in out:
            info = {k: v for k, v in out["execution_summary"].items() if k != "time_ms"}
        elif isinstance(out, dict) and "decisions" in out:
            info = {"decisions": len(out["decisions"])}
        elif isinstance(out, list):
            info = {"entities": len(out)}
        else:
            info = "ok"
        click.echo(f"  {node:<40} {info}")
    click.echo(f"run {result.run_id}: {'success' if result.success else 'FAILED'}")
    sys.exit(0 if result.success else 1)


def _state():
    from revops_pipelines.flows.state import open_state

    return open_state()


@flows.command("state")
@click.argument("flow_id")
@click.argument("entity", required=False)
@click.option("--history", is_flag=True, help="Print the status changes too.")
def flows_state(flow_id: str, entity: str | None, history: bool) -> None:
    """Where each entity is in a flow (or one entity, with its history)."""
    st = _state()
    docs = {entity: st.get(flow_id, entity)} if entity else st.entities(flow_id)
    if entity and docs[entity] is None:
        _fail(RevOpsError(f"no state for {flow_id}/{entity}"))
    for eid, doc in docs.items():
        steps = ", ".join(
            f"{k}={v['status']}{' (due ' + v['due_at'][:16] + ')' if v.get('status') == 'waiting' else ''}"
            for k, v in doc["steps"].items()
        )
        click.echo(f"{eid:<20} started {doc['started_at'][:16]}  {steps}")
    if entity or history:
        for h in st.history(flow_id, entity):
            click.echo(
                f"  {h['at']}  {h['entity_id']:<20} {h['step_id']:<22} {h['status']}  {h['detail'] or ''}"
            )


def parse_age(text: str) -> timedelta:
    """``180d``, ``12h``, ``4w`` or a plain number of days."""
    import re as _re

    m = _re.fullmatch(r"\s*(\d+)\s*([dhw]?)\s*", text or "")
    if not m or int(m.group(1)) < 1:
        raise RevOpsError(f"--older-than: expected a positive age like 180d, 12h or 4w, got {text!r}")
    n, unit = int(m.group(1)), m.group(2) or "d"
    return {"d": timedelta(days=n), "h": timedelta(hours=n), "w": timedelta(weeks=n)}[unit]


@flows.command("prune")
@click.option(
    "--older-than",
    default=None,
    help="Age like 180d, 12h, 4w (default: REVOPS_FLOW_STATE_RETENTION_DAYS, 180 days).",
)
@click.option("--flow", "flow_id", default=None, help="Only this flow's history (default: every flow).")
@click.option(
    "--all-rows", is_flag=True, help="Also drop each step's latest history row (default: it is kept)."
)
def flows_prune(older_than: str | None, flow_id: str | None, all_rows: bool) -> None:
    """Retention: delete flow state history older than an age. Current state is never deleted."""
    from revops_pipelines.settings import load_settings

    try:
        age = (
            parse_age(older_than) if older_than else timedelta(days=load_settings().flow_state_retention_days)
        )
    except RevOpsError as err:
        _fail(err)
    out = _state().prune(age, flow_id=flow_id, keep_latest=not all_rows)
    click.echo(
        f"pruned {out['deleted']} history row(s) before {out['cutoff']}"
        + (f" of flow {flow_id}" if flow_id else "")
        + ("" if all_rows else " (each step's latest row kept)")
    )


@flows.command("approve")
@click.argument("target", nargs=-1, required=True)
@click.option("--by", default="cli", show_default=True, help="Who approved (kept in the history).")
def flows_approve(target: tuple[str, ...], by: str) -> None:
    """Approve a step awaiting human approval: FLOW/ENTITY STEP (or FLOW ENTITY STEP).

    The flow's next invocation runs the approved step."""
    parts = [*target[0].split("/", 1), *target[1:]] if target and "/" in target[0] else list(target)
    if len(parts) != 3:
        _fail(RevOpsError("usage: revops flows approve FLOW/ENTITY STEP"))
    flow_id, entity, step = parts
    try:
        _state().approve(flow_id, entity, step, by=by)
    except KeyError as err:
        _fail(RevOpsError(str(err.args[0])))
    click.echo(f"approved {flow_id}/{entity} {step}")


@flows.command("export-asl")
@click.argument("flow_id")
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="File (default stdout)."
)
def flows_export_asl(flow_id: str, out: Path | None) -> None:
    """Write the flow as Amazon States Language (validated with statelint when installed)."""
    from revops_pipelines.flows.asl import to_asl, validate

    doc = to_asl(_spec(flow_id))
    try:
        problems = validate(doc)
    except ImportError:
        problems = []
        click.echo("note: statelint not installed; export not validated", err=True)
    if problems:
        _fail(RevOpsError("invalid ASL: " + "; ".join(problems)))
    text = json.dumps(doc, indent=2)
    if out:
        out.write_text(text + "\n", encoding="utf-8")
        click.echo(f"wrote {out}")
    else:
        click.echo(text)


@flows.command("schema")
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="File (default stdout)."
)
def flows_schema(out: Path | None) -> None:
    """The flow language's JSON Schema (flows_yaml/schema.json is this output)."""
    from revops_pipelines.flows.schema import schema_text

    if out:
        out.write_text(schema_text(), encoding="utf-8")
        click.echo(f"wrote {out}")
    else:
        click.echo(schema_text(), nl=False)


@flows.command("builder")
@click.option("--port", type=int, default=8765, show_default=True, help="Port on 127.0.0.1.")
@click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Flows folder to edit and save into (default: the first REVOPS_FLOWS_DIR folder).",
)
def flows_builder(port: int, folder: Path | None) -> None:
    """Serve the flow builder page (form + step graph, live validation, saves YAML) on 127.0.0.1."""
    from revops_pipelines.flows import builder
    from revops_pipelines.flows.loader import folders

    target = folder or folders(_default_flows())[0]
    click.echo(f"flow builder for {target}: http://127.0.0.1:{port}/  (Ctrl-C stops it)")
    builder.serve(target, port=port)


def _default_flows() -> Path:
    import os

    if os.environ.get("REVOPS_TENANT"):  # the tenant's registry (its folder, plus the shared one)
        from revops_pipelines.settings import load_settings

        tenant_flows = load_settings().flows_path
        if tenant_flows:
            return Path(tenant_flows)
    return Path(os.environ.get("REVOPS_FLOWS_DIR") or Path(__file__).resolve().parent.parent / "flows_yaml")


# ---- demo ---------------------------------------------------------------------------------------
@main.command("demo")
@click.option(
    "--json-out", type=click.Path(dir_okay=False, path_type=Path), help="Also write the summary as JSON."
)
def demo(json_out: Path | None) -> None:
    """Materialise every asset on the configured stack, run the churn-prevention flow once, print a summary."""
    from revops_pipelines.demo import print_summary, run_demo

    try:
        summary = run_demo()
    except RevOpsError as err:
        _fail(err)
    print_summary(summary)
    if json_out:
        json_out.write_text(json.dumps(summary, indent=2, default=str))
    if not summary["ok"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
