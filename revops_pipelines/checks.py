"""SQL asset checks: a rule is a query counting offending rows; zero offenders passes.

Used for raw and feature tables alike. ``blocking=True`` where bad data must not flow downstream.
"""

import dagster as dg

from revops_pipelines.warehouse import Warehouse


def sql_check(
    asset: str,
    name: str,
    offenders_sql: str,
    *,
    description: str,
    blocking: bool = False,
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR,
    sample_sql: str | None = None,
    additional_deps: tuple[str, ...] = (),
) -> dg.AssetChecksDefinition:
    """``offenders_sql`` returns one number: how many rows break the rule."""

    @dg.asset_check(
        asset=asset,
        name=name,
        blocking=blocking,
        description=description,
        additional_deps=[dg.AssetKey(d) for d in additional_deps],
    )
    def _check(warehouse: Warehouse) -> dg.AssetCheckResult:
        bad = int(warehouse.scalar(offenders_sql) or 0)
        metadata: dict = {
            "offending_rows": dg.MetadataValue.int(bad),
            "rule_sql": dg.MetadataValue.md(f"```sql\n{offenders_sql}\n```"),
        }
        if bad and sample_sql:
            metadata["sample"] = dg.MetadataValue.md(
                warehouse.query(sample_sql).head(10).to_markdown(index=False)
            )
        return dg.AssetCheckResult(passed=bad == 0, severity=severity, metadata=metadata)

    return _check


def unique_check(asset: str, keys: tuple[str, ...], blocking: bool = True) -> dg.AssetChecksDefinition:
    cols = ", ".join(keys)
    return sql_check(
        asset,
        f"{asset}_unique_{'_'.join(keys)}",
        f"SELECT COUNT(*) FROM (SELECT {cols} FROM {asset} GROUP BY {cols} HAVING COUNT(*) > 1) d",
        description=f"({cols}) is unique in {asset}",
        blocking=blocking,
    )


def not_null_check(asset: str, columns: tuple[str, ...], blocking: bool = True) -> dg.AssetChecksDefinition:
    cond = " OR ".join(f"{c} IS NULL" for c in columns)
    return sql_check(
        asset,
        f"{asset}_not_null",
        f"SELECT COUNT(*) FROM {asset} WHERE {cond}",
        description=f"{', '.join(columns)} never null in {asset}",
        blocking=blocking,
    )


def references_check(
    asset: str, column: str, parent: str, parent_column: str, blocking: bool = True
) -> dg.AssetChecksDefinition:
    return sql_check(
        asset,
        f"{asset}_{column}_references_{parent}",
        f"SELECT COUNT(*) FROM {asset} c WHERE c.{column} IS NOT NULL AND NOT EXISTS "
        f"(SELECT 1 FROM {parent} p WHERE p.{parent_column} = c.{column})",
        description=f"every {asset}.{column} exists in {parent}.{parent_column}",
        blocking=blocking,
        additional_deps=(parent,),
    )
