"""The ``revops`` command line. Arguments are validated with the project's pydantic models, so
bad input gets the same field-named messages here as in agents and flows."""

from __future__ import annotations

import json
import sys
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
    """YAML flows: list and validate."""


@flows.command("validate")
@click.argument("path", required=False, type=click.Path(exists=True, path_type=Path))
def flows_validate(path: Path | None) -> None:
    """Validate one flow file or every flow in a folder; print every problem as file:line:col."""
    from revops_pipelines.flows.loader import FlowValidationError, load_all, load_flow

    target = path or _default_flows()
    try:
        specs = [load_flow(target)] if target.is_file() else load_all(target)
    except FlowValidationError as err:
        for p in err.problems:
            click.echo(str(p), err=True)
        sys.exit(1)
    for s in specs:
        click.echo(f"ok  {s.flow_id} v{s.version} ({len(s.steps)} steps)")


@flows.command("list")
def flows_list() -> None:
    """List the flows in the registry folder."""
    from revops_pipelines.flows.loader import load_all

    try:
        specs = load_all(_default_flows())
    except RevOpsError as err:
        _fail(err)
    for s in specs:
        trig = s.trigger.cron if s.trigger.type == "schedule" else s.trigger.type
        click.echo(
            f"{s.flow_id:<28} v{s.version:<3} {'enabled' if s.enabled else 'disabled':<9} {trig:<14} {s.owner}"
        )


def _default_flows() -> Path:
    import os

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
