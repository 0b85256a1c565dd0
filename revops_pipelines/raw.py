"""One way to build a raw-table asset: read source records, flatten them, merge them on keys.

Every raw asset of every source goes through :func:`raw_table_asset`, so idempotent loading,
row-count metadata and the column schema shown in the UI are written once. A vendor connector's
sync, one multi-asset over all of its raw tables, is declared with :func:`sync_asset`.
"""

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import dagster as dg

from revops_pipelines.signature import pinned
from revops_pipelines.sources import SampleWorldSource
from revops_pipelines.warehouse import MergeResult, TableSchema, Warehouse

if TYPE_CHECKING:
    import pandas as pd

Flatten = Callable[[SampleWorldSource], "pd.DataFrame"]


def column_schema(schema: TableSchema) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn(c.name, c.type.lower(), description=c.description or None) for c in schema.columns
        ]
    )


def table_spec(
    schema: TableSchema, *, source: str, description: str, deps: Sequence[str] = ()
) -> dg.AssetSpec:
    """The asset spec of a raw table synced by a vendor's multi-asset: group, kind, column schema."""
    return dg.AssetSpec(
        schema.name,
        group_name=f"raw_{source}",
        kinds={source},
        deps=list(deps),
        description=description,
        metadata={"dagster/column_schema": column_schema(schema), "merge_keys": ", ".join(schema.keys)},
    )


def table_asset(
    schema: TableSchema,
    *,
    deps: Sequence[str],
    kinds: set[str],
    description: str | None = None,
    **asset: Any,
) -> Callable[[Callable[..., Any]], dg.AssetsDefinition]:
    """The decorator of an asset that writes ``schema``'s table: named after the table, in its group,
    with its column schema; ``description`` defaults to the table's. Anything else goes to ``dg.asset``."""
    decorate = dg.asset(
        name=schema.name,
        group_name=schema.group,
        kinds=kinds,
        deps=list(deps),
        description=schema.description if description is None else description,
        metadata={"dagster/column_schema": column_schema(schema)},
        **asset,
    )
    return lambda fn: decorate(pinned(fn))


def request_metadata(stats) -> dict:
    """What a connector's requests cost in a run (the same keys for every vendor)."""
    return {
        "requests": dg.MetadataValue.int(stats.requests),
        "retries": dg.MetadataValue.int(stats.retries),
        "http_429": dg.MetadataValue.int(stats.http_429),
        "http_5xx": dg.MetadataValue.int(stats.http_5xx),
        "timeouts": dg.MetadataValue.int(stats.timeouts),
    }


def merge_quarantine(warehouse: Warehouse, schema: TableSchema, rows: list[dict]) -> None:
    """Merge a connector's quarantine rows (``quarantined_at`` ISO text, UTC) into ``schema``'s table."""
    from revops_pipelines.lazy import pd

    df = pd.DataFrame(rows, columns=schema.column_names)
    df["quarantined_at"] = pd.to_datetime(df["quarantined_at"], utc=True).dt.tz_localize(None)
    warehouse.merge(schema, df)


def merge_metadata(result: MergeResult) -> dict:
    return {
        "dagster/row_count": dg.MetadataValue.int(result.total),
        "rows_received": dg.MetadataValue.int(result.received),
        "rows_inserted": dg.MetadataValue.int(result.inserted),
        "rows_updated": dg.MetadataValue.int(result.updated),
    }


def raw_table_asset(
    schema: TableSchema,
    flatten: Flatten,
    *,
    source: str,
    description: str,
    deps: Sequence[str] = ("sample_world",),
) -> dg.AssetsDefinition:
    """Build the asset that loads ``schema.name`` from the sample-world source via ``flatten``."""

    @dg.asset(
        name=schema.name,
        group_name=f"raw_{source}",
        kinds={source} if source != "sample" else {"python"},
        deps=list(deps),
        description=description,
        metadata={"dagster/column_schema": column_schema(schema), "merge_keys": ", ".join(schema.keys)},
    )
    @pinned
    def _asset(context: dg.AssetExecutionContext, warehouse: Warehouse, sample_world: SampleWorldSource):
        df = flatten(sample_world)
        result = warehouse.merge(schema, df)
        context.log.info(f"{schema.name}: {result.received} rows merged ({result.inserted} new)")
        return dg.MaterializeResult(metadata=merge_metadata(result))

    return _asset


CHECKPOINT_CHECK = "checkpoint_fresh"


def sync_asset(
    source: str,
    tables: Sequence[TableSchema],
    *,
    checkpoint_of: TableSchema,
    checkpoint_description: str,
    describe: Callable[[TableSchema], str | None] = lambda schema: schema.description,
    deps: Callable[[TableSchema], Sequence[str]] = lambda _schema: ("sample_world",),
    **multi_asset: Any,
) -> Callable[[Callable[..., Any]], dg.AssetsDefinition]:
    """The decorator of a vendor's sync, the multi-asset ``{source}_sync`` that writes ``tables``.

    Each table is an asset (:func:`table_spec`: group ``raw_{source}``, kind, column schema, merge
    keys) described by ``describe`` and depending on ``deps``; the sync answers the blocking
    ``checkpoint_fresh`` check on ``checkpoint_of`` with :func:`checkpoint_result`. Anything else
    (``partitions_def``, ``backfill_policy``) goes to ``dg.multi_asset`` as it is.
    """
    decorate = dg.multi_asset(
        name=f"{source}_sync",
        specs=[table_spec(t, source=source, description=describe(t), deps=deps(t)) for t in tables],
        check_specs=[
            dg.AssetCheckSpec(
                CHECKPOINT_CHECK, asset=checkpoint_of.name, blocking=True, description=checkpoint_description
            )
        ],
        **multi_asset,
    )
    return lambda fn: decorate(pinned(fn))


def checkpoint_result(schema: TableSchema, passed: bool, metadata: dict) -> dg.AssetCheckResult:
    """The answer to the ``checkpoint_fresh`` check a :func:`sync_asset` declares on ``schema``."""
    return dg.AssetCheckResult(
        asset_key=schema.name, check_name=CHECKPOINT_CHECK, passed=passed, metadata=metadata
    )
