"""``revops warehouse``: migrate, show the schema, show migration history, rebuild a table."""

from __future__ import annotations

import json
import sys

import click

from revops_pipelines.errors import RevOpsError


def _warehouse():
    from revops_pipelines.resources import warehouse_from_settings
    from revops_pipelines.settings import load_settings

    wh = warehouse_from_settings(load_settings())
    return wh.process_config_and_initialize()  # resolves dg.EnvVar fields outside a run


def _fail(err: Exception) -> None:
    click.echo(f"error: {err}", err=True)
    sys.exit(2)


@click.group("warehouse")
def warehouse() -> None:
    """The warehouse: schema versions (migrations), the current schema, table rebuilds."""


@warehouse.command("migrate")
@click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")
def migrate_cmd(dry_run: bool) -> None:
    """Bring every declared table forward to its declaration (additive changes in place).

    Exits 1 when a table needs an incompatible change; the message says what to do."""
    from revops_pipelines.warehouse.migrations import SchemaChangeRefused, migrate

    try:
        wh = _warehouse()
        plans = migrate(wh, dry_run=dry_run)
    except SchemaChangeRefused as err:
        click.echo(str(err), err=True)
        sys.exit(1)
    except RevOpsError as err:
        _fail(err)
    for p in plans:
        before = "-" if p.version_before is None else f"v{p.version_before}"
        after = "-" if p.version_after is None else f"v{p.version_after}"
        note = "" if p.action == "current" else f"  {p.change}"
        click.echo(f"{p.table:<32} {before:>4} -> {after:<4} {p.action}{note}")
        for msg in p.problems if dry_run else []:
            click.echo(f"    {msg}")
    changed = sum(p.action not in ("current", "refused") for p in plans)
    click.echo(f"{'would change' if dry_run else 'changed'} {changed} of {len(plans)} tables ({wh.dialect})")


@warehouse.command("schema")
@click.argument("table", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the catalog as JSON.")
def schema_cmd(table: str | None, as_json: bool) -> None:
    """Print the current schema: tables, version, rows, freshness, columns and drift from the declaration."""
    from revops_pipelines.warehouse.catalog import discover

    try:
        cat = discover(_warehouse())
    except RevOpsError as err:
        _fail(err)
    tables = [t for t in cat.tables if table is None or t.name == table]
    if table and not tables:
        _fail(RevOpsError(f"no table {table!r} (known: {', '.join(t.name for t in cat.tables)})"))
    if as_json:
        click.echo(json.dumps([t.model_dump(mode="json") for t in tables], indent=2))
        return
    for t in tables:
        version = f"v{t.schema_version}" if t.schema_version else "unversioned"
        fresh = f", latest {t.freshness_column}={t.latest_value}" if t.freshness_column else ""
        click.echo(f"{t.name}  [{t.kind or '?'}, {version}, {t.row_count:,} rows{fresh}]")
        click.echo(f"  keys: {', '.join(t.keys) or '-'}   primary index: {', '.join(t.primary_index) or '-'}")
        for c in t.columns:
            declared = f"  (declared {c.declared_type})" if c.declared_type and not t.declared else ""
            null = "" if c.nullable is None else (" NULL" if c.nullable else " NOT NULL")
            click.echo(f"    {c.name:<28} {c.type or c.declared_type}{null}{declared}")
        for d in t.drift:
            click.echo(f"  DRIFT: {d}")


@warehouse.command("history")
@click.argument("table", required=False)
def history_cmd(table: str | None) -> None:
    """Every applied migration step, per table."""
    from revops_pipelines.warehouse.migrations import history

    try:
        df = history(_warehouse(), table)
    except RevOpsError as err:
        _fail(err)
    for r in df.itertuples(index=False):
        click.echo(f"{r.table_name:<32} v{r.version:<3} {r.applied_at}  {r.change}")


@warehouse.command("rebuild")
@click.argument("table")
@click.option("--yes", is_flag=True, help="Confirm: the table's rows are dropped.")
def rebuild_cmd(table: str, yes: bool) -> None:
    """Drop TABLE and create it from its declaration; its asset reloads it on the next materialisation."""
    from revops_pipelines.warehouse.migrations import rebuild
    from revops_pipelines.warehouse.registry import declared

    schema = declared(table)
    if schema is None:
        _fail(RevOpsError(f"no declared table {table!r}"))
    if not yes:
        _fail(RevOpsError(f"rebuilding drops every row of {table}; repeat with --yes"))
    try:
        p = rebuild(_warehouse(), schema)
    except RevOpsError as err:
        _fail(err)
    click.echo(f"{table} rebuilt empty as v{p.version_after}; materialise its asset to reload it")


@warehouse.command("accept-source-schema")
@click.argument("source", required=False)
def accept_source_schema_cmd(source: str | None) -> None:
    """Record SOURCE's current fields and types as its schema (after reviewing a drift), or list
    every source's drift against its recorded schema when SOURCE is omitted."""
    from assets.quality import SOURCE_FILES, observe_source_file
    from revops_pipelines.settings import load_settings
    from revops_pipelines.sources import SampleWorldSource
    from revops_pipelines.warehouse.source_schema import accept, compare, recorded

    sources = sorted(SOURCE_FILES.values())
    if source is not None and source not in sources:
        _fail(RevOpsError(f"unknown source {source!r} (known: {', '.join(sources)})"))
    try:
        wh = _warehouse()
        world = SampleWorldSource(path=str(load_settings().sample_dir))
        if source:
            observed = observe_source_file(world, source)
            accept(wh, source, observed)
            click.echo(f"{source}: recorded {len(observed)} fields")
            return
        for s in sources:
            base = recorded(wh, s)
            try:
                observed = observe_source_file(world, s)
            except (RevOpsError, OSError, ValueError) as err:
                click.echo(f"{s:<32} not readable: {err}")
                continue
            click.echo(f"{s:<32} {compare(base, observed).summary() if base else 'no recorded schema'}")
    except (RevOpsError, OSError, ValueError) as err:
        _fail(err)
