"""Data-quality asset checks, answered in the warehouse.

* rule checks (:func:`sql_check` and its shorthands: unique, not null, accepted values, references):
  a query counts offending rows; zero offenders passes;
* :func:`partition_anomaly_check`: row count and metric distribution of each partition (a snapshot
  date, a month) against the median of the partitions before it;
* :func:`freshness_check`: the latest timestamp of a table against a reference (wall clock or the
  latest timestamp of another table);
* :func:`schema_drift_check`: the table in the warehouse against its declared schema.

Used for raw and feature tables alike; ``blocking=True`` where bad data must not flow downstream
(a failed blocking check stops the run before dependent assets, e.g. the churn model). Every result
carries metadata (offending rows, rule SQL, a sample, per-partition stats) shown in the UI.

The factories return :class:`Check` declarations; a module builds its ``CHECKS`` with
:func:`combine_checks`, which makes one Dagster op per asset holding all of that asset's checks
(each check still its own spec: named, shown and runnable on its own).
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from revops_pipelines.signature import pinned
from revops_pipelines.warehouse import TableSchema, Warehouse, ident


@dataclass(frozen=True, eq=False)
class Check:
    """One declared asset check: what the UI shows (``name`` on ``asset``, ``blocking``,
    ``description``, ``additional_deps``) and how it is answered (``evaluate``, given the resources
    named in ``resources``).

    Not a Dagster definition by itself: :func:`combine_checks` turns a module's checks into one
    ``multi_asset_check`` op per asset (every check still its own spec, shown and runnable alone).
    Building an op costs ~0.45 ms; one per check made ~100 ops and a noticeable part of loading the
    definitions. Calling a check directly (``check(warehouse=wh)``) evaluates it, as invoking an
    ``@asset_check`` op did."""

    asset: str
    name: str
    description: str
    evaluate: Callable[..., dg.AssetCheckResult]
    blocking: bool = False
    additional_deps: tuple[str, ...] = ()
    resources: tuple[str, ...] = ("warehouse",)

    @property
    def key(self) -> dg.AssetCheckKey:
        return dg.AssetCheckKey(dg.AssetKey(self.asset), self.name)

    def spec(self) -> dg.AssetCheckSpec:
        return dg.AssetCheckSpec(
            self.name,
            asset=self.asset,
            description=self.description,
            blocking=self.blocking,
            additional_deps=[dg.AssetKey(d) for d in self.additional_deps],
        )

    def __call__(self, **resources: Any) -> dg.AssetCheckResult:
        missing = [r for r in self.resources if r not in resources]
        if missing:
            raise TypeError(f"check {self.name!r} needs the resource(s) {', '.join(missing)}")
        result = self.evaluate(**{r: resources[r] for r in self.resources})
        return result._replace(asset_key=dg.AssetKey(self.asset), check_name=self.name)


class CheckSet(Sequence):
    """A module's checks as :func:`combine_checks` returns them: a sequence of Dagster check
    definitions, built on first use. :func:`merge_checks` (used by the code location) combines the
    declared checks of all modules at once instead — one op per asset and kind across modules —
    without building each module's ops."""

    def __init__(self, declared: Sequence["Check | dg.AssetChecksDefinition"], name: str):
        ident(name)
        _group(declared, f"combine_checks({name!r})")  # bad input fails here, not at first use
        self.declared, self.name = tuple(declared), name
        self._built: list[dg.AssetChecksDefinition] | None = None

    def definitions(self) -> list[dg.AssetChecksDefinition]:
        if self._built is None:
            self._built = _combine(self.declared, self.name)
        return self._built

    def __getitem__(self, i):  # type: ignore[override]
        return self.definitions()[i]

    def __len__(self) -> int:
        return len(self.definitions())


def merge_checks(
    check_lists: Sequence[Sequence["Check | dg.AssetChecksDefinition"]],
    *,
    nodes: Mapping[str, str] | None = None,
) -> list[dg.AssetChecksDefinition]:
    """All modules' checks as one list of definitions: the declared checks of every :class:`CheckSet`
    combined together (ops ``<asset>_blocking_checks`` / ``<asset>_checks``), other definitions as
    they are.

    ``nodes`` (asset -> the op that materialises it; the code location passes its assets') also
    combines the non-blocking checks of assets materialised by one op (a vendor sync's tables) whose
    checks depend on the same other assets: one op ``<node>_checks`` (``..._after_<assets>`` when they
    depend on others). Such an op gates nothing downstream, so this cannot make a cycle, and each of
    its checks still waits for exactly the steps it waited for alone (its asset's op and the same
    other assets) — ~0.3 ms less to load per op saved."""
    declared: list = []
    for checks in check_lists:
        declared.extend(checks.declared if isinstance(checks, CheckSet) else checks)
    return _combine(declared, "", nodes)


def combine_checks(checks: Sequence["Check | dg.AssetChecksDefinition"], *, name: str) -> CheckSet:
    """The Dagster definitions of ``checks``: the :class:`Check` objects of each asset become one
    ``multi_asset_check`` op for its blocking checks (``<asset>_<name>_blocking_checks``) and one for
    the others (``<asset>_<name>_checks``), with a spec per check, subsettable, so
    each check keeps its name, blocking flag and description, shows up on its own in the UI and can
    be run alone; its result carries its own severity and metadata. A failed blocking check fails
    the op's step, so downstream assets do not run. Ready-made asset check definitions
    (``@asset_check``) pass through unchanged."""
    return CheckSet(checks, name)


def _group(
    checks: Sequence["Check | dg.AssetChecksDefinition"], label: str
) -> tuple[dict[tuple[str, bool], list[Check]], list[dg.AssetChecksDefinition]]:
    # blocking and non-blocking checks of an asset get separate ops: the asset's downstream waits for
    # its blocking checks, and must not wait for a non-blocking one (whose additional deps may well
    # be downstream of the asset: that would be a cycle)
    groups: dict[tuple[str, bool], list[Check]] = {}
    ready: list[dg.AssetChecksDefinition] = []
    for c in checks:
        if isinstance(c, Check):
            groups.setdefault((c.asset, c.blocking), []).append(c)
        elif isinstance(c, dg.AssetChecksDefinition):
            ready.append(c)
        else:
            raise TypeError(f"{label}: expected a Check or AssetChecksDefinition, got {c!r}")
    for asset in dict.fromkeys(a for a, _ in groups):
        names = [c.name for b in (True, False) for c in groups.get((asset, b), [])]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"{label}: check name(s) {', '.join(dupes)} twice on {asset}")
    return groups, ready


def _combine(
    checks: Sequence["Check | dg.AssetChecksDefinition"],
    name: str,
    nodes: Mapping[str, str] | None = None,
) -> list[dg.AssetChecksDefinition]:
    groups, out = _group(checks, f"combine_checks({name!r})" if name else "merge_checks")
    ops: dict[str, list[Check]] = {}
    shared: dict[tuple[str, frozenset[str]], list[str]] = {}  # (node, other assets waited for) -> ops
    for (asset, blocking), group in groups.items():
        op_name = "_".join(p for p in (ident(asset), name, "blocking_checks" if blocking else "checks") if p)
        ops[op_name] = group
        if nodes and not blocking and asset in nodes:
            node = nodes[asset]
            others = frozenset(d for c in group for d in c.additional_deps if nodes.get(d) != node)
            shared.setdefault((node, others), []).append(op_name)
    for (node, others), names in shared.items():
        if len(names) > 1:  # the non-blocking checks of several assets of one node: one op
            after = f"_after_{'_'.join(sorted(others))}" if others else ""
            ops[f"{ident(node)}_checks{after}"] = [c for n in names for c in ops.pop(n)]
    for op_name, group in ops.items():
        out.append(_multi_check(", ".join(dict.fromkeys(c.asset for c in group)), group, op_name))
    return out


def _multi_check(asset: str, group: list[Check], op_name: str) -> dg.AssetChecksDefinition:
    by_key = {c.key: c for c in group}
    resource_keys = {r for c in group for r in c.resources}

    def _checks(context: dg.AssetCheckExecutionContext):
        selected = context.selected_asset_check_keys
        errors: list[Exception] = []
        for key, check in by_key.items():
            if key in selected:
                try:
                    result = check(**{r: getattr(context.resources, r) for r in check.resources})
                except Exception as err:  # the op's other checks still run; the step fails below
                    context.log.error(f"check {check.name} on {check.asset} raised {err!r}")
                    errors.append(err)
                    continue
                yield result
        if errors:
            raise errors[0]

    return dg.multi_asset_check(
        specs=[c.spec() for c in group],
        name=op_name,
        description=f"{len(group)} check(s) of {asset}: {', '.join(c.name for c in group)}",
        can_subset=True,
        required_resource_keys=resource_keys,
    )(pinned(_checks))


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
    params: Sequence[Any] = (),
) -> Check:
    """``offenders_sql`` returns one number: how many rows break the rule (``params`` bind its
    ``?`` placeholders, and those of ``sample_sql``)."""

    def _evaluate(warehouse: Warehouse) -> dg.AssetCheckResult:
        bad = int(warehouse.scalar(offenders_sql, list(params)) or 0)
        metadata: dict = {
            "offending_rows": dg.MetadataValue.int(bad),
            "rule_sql": dg.MetadataValue.md(f"```sql\n{offenders_sql}\n```"),
        }
        if bad and sample_sql:
            metadata["sample"] = dg.MetadataValue.md(
                warehouse.query(sample_sql, list(params)).head(10).to_markdown(index=False)
            )
        return dg.AssetCheckResult(passed=bad == 0, severity=severity, metadata=metadata)

    return Check(
        evaluate=_evaluate,
        asset=asset,
        name=name,
        blocking=blocking,
        description=description,
        additional_deps=tuple(additional_deps),
    )


def unique_check(asset: str, keys: tuple[str, ...], blocking: bool = True) -> Check:
    cols = ", ".join(keys)
    return sql_check(
        asset,
        f"{asset}_unique_{'_'.join(keys)}",
        f"SELECT COUNT(*) FROM (SELECT {cols} FROM {asset} GROUP BY {cols} HAVING COUNT(*) > 1) d",
        description=f"({cols}) is unique in {asset}",
        blocking=blocking,
    )


def not_null_check(asset: str, columns: tuple[str, ...], blocking: bool = True) -> Check:
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
) -> Check:
    return sql_check(
        asset,
        f"{asset}_{column}_references_{parent}",
        f"SELECT COUNT(*) FROM {asset} c WHERE c.{column} IS NOT NULL AND NOT EXISTS "
        f"(SELECT 1 FROM {parent} p WHERE p.{parent_column} = c.{column})",
        description=f"every {asset}.{column} exists in {parent}.{parent_column}",
        blocking=blocking,
        additional_deps=(parent,),
    )


def accepted_values_check(
    asset: str, column: str, values: Sequence[str], *, blocking: bool = True, allow_null: bool = True
) -> Check:
    ident(column)
    marks = ", ".join("?" for _ in values)
    null = "" if allow_null else f" OR {column} IS NULL"
    where = f"({column} NOT IN ({marks}){null})"
    return sql_check(
        asset,
        f"{asset}_{column}_accepted_values",
        f"SELECT COUNT(*) FROM {ident(asset)} WHERE {where}",
        description=f"{asset}.{column} is one of {', '.join(values)}"
        + ("" if allow_null else " (never null)"),
        blocking=blocking,
        sample_sql=f"SELECT {column}, COUNT(*) AS n FROM {ident(asset)} WHERE {where} GROUP BY {column} "
        "ORDER BY n DESC LIMIT 10",
        params=tuple(values),
    )


def _relative_change(value: float | None, baseline: float | None) -> float | None:
    if value is None or baseline is None:
        return None
    if baseline == 0:
        return 0.0 if value == 0 else float("inf")
    return abs(value - baseline) / abs(baseline)


def evaluate_partitions(
    rows: list[dict[str, Any]], limits: dict[str, float], window: int = 3, min_history: int = 2
) -> list[dict[str, Any]]:
    """Flag each partition whose metric moved more than ``limits[metric]`` (relative) from the
    median of the ``window`` partitions before it. ``rows`` are ordered by partition."""
    import statistics

    out = []
    for i, row in enumerate(rows):
        history = rows[max(0, i - window) : i]
        flags = []
        if len(history) >= min_history:
            for metric, limit in limits.items():
                prev = [h[metric] for h in history if h[metric] is not None]
                if not prev:
                    continue
                change = _relative_change(row[metric], statistics.median(prev))
                if change is not None and change > limit:
                    flags.append(f"{metric} {row[metric]:.4g} vs median {statistics.median(prev):.4g}")
                elif row[metric] is None:
                    flags.append(f"{metric} is null (was {statistics.median(prev):.4g})")
        out.append({**row, "anomalies": flags})
    return out


def partition_anomaly_check(
    asset: str,
    partition_expr: str,
    metrics: dict[str, str],
    limits: dict[str, float],
    *,
    name: str | None = None,
    window: int = 3,
    min_history: int = 2,
    blocking: bool = False,
    description: str | None = None,
) -> Check:
    """Row count and metric distribution per partition vs the previous partitions.

    ``metrics`` maps a name to an aggregate SQL expression (``row_count`` is always computed);
    ``limits`` maps a metric name to the largest allowed relative change from the median of the
    ``window`` previous partitions. Every partition with enough history is judged, so a bad
    partition in the middle of a backfill is caught too."""
    for m in metrics:
        ident(m)
    select = ", ".join(
        [f"{partition_expr} AS partition_key", "COUNT(*) AS row_count"]
        + [f"{expr} AS {m}" for m, expr in metrics.items()]
    )
    sql = f"SELECT {select} FROM {ident(asset)} GROUP BY 1 ORDER BY 1"
    check_name = name or f"{asset}_partition_anomaly"

    def _evaluate(warehouse: Warehouse) -> dg.AssetCheckResult:
        df = warehouse.query(sql)
        rows = [
            {
                k: (None if v is None or v != v else (str(v) if k == "partition_key" else float(v)))
                for k, v in r.items()
            }
            for r in df.to_dict("records")
        ]
        judged = evaluate_partitions(rows, limits, window=window, min_history=min_history)
        bad = [r for r in judged if r["anomalies"]]
        table_md = "| partition | " + " | ".join(["row_count", *metrics]) + " | anomalies |\n"
        table_md += "|---" * (len(metrics) + 3) + "|\n"
        for r in judged[-24:]:
            vals = " | ".join("" if r[k] is None else f"{r[k]:.4g}" for k in ["row_count", *metrics])
            table_md += f"| {r['partition_key']} | {vals} | {'; '.join(r['anomalies'])} |\n"
        return dg.AssetCheckResult(
            passed=bool(rows) and not bad,
            metadata={
                "partitions": dg.MetadataValue.int(len(rows)),
                "anomalous_partitions": dg.MetadataValue.json(
                    {r["partition_key"]: r["anomalies"] for r in bad}
                ),
                "per_partition": dg.MetadataValue.md(table_md),
                "rule_sql": dg.MetadataValue.md(f"```sql\n{sql}\n```"),
            },
        )

    return Check(
        evaluate=_evaluate,
        asset=asset,
        name=check_name,
        blocking=blocking,
        description=description
        or f"per-partition {', '.join(limits)} of {asset} within {limits} (relative) of the previous {window}",
    )


def freshness_check(
    asset: str,
    column: str,
    max_lag_days: float,
    *,
    reference: tuple[str, str] | None = None,
    blocking: bool = False,
) -> Check:
    """The latest ``column`` of ``asset`` is at most ``max_lag_days`` behind the reference: the
    wall clock (``reference=None``), or the latest value of ``reference=(table, column)`` — for a
    replayed or sample world, "no source lags the others"."""
    ident(column)
    ref_text = "now" if reference is None else f"latest {reference[0]}.{reference[1]}"
    deps = () if reference is None else (reference[0],)

    def _evaluate(warehouse: Warehouse) -> dg.AssetCheckResult:
        import pandas as pd

        latest = warehouse.scalar(f"SELECT MAX({column}) FROM {ident(asset)}")
        if reference is None:
            ref = datetime.now(UTC).replace(tzinfo=None)
        else:
            ref = warehouse.scalar(f"SELECT MAX({ident(reference[1])}) FROM {ident(reference[0])}")
        if latest is None or ref is None:
            return dg.AssetCheckResult(
                passed=False, metadata={"problem": "no rows" if latest is None else "no reference rows"}
            )
        lag = (pd.Timestamp(ref) - pd.Timestamp(latest)).total_seconds() / 86400
        return dg.AssetCheckResult(
            passed=lag <= max_lag_days,
            metadata={
                "latest": str(latest),
                "reference": f"{ref_text} = {ref}",
                "lag_days": dg.MetadataValue.float(round(lag, 3)),
                "max_lag_days": dg.MetadataValue.float(float(max_lag_days)),
            },
        )

    return Check(
        evaluate=_evaluate,
        asset=asset,
        name=f"{asset}_freshness",
        blocking=blocking,
        description=f"latest {asset}.{column} at most {max_lag_days:g} days behind {ref_text}",
        additional_deps=tuple(d for d in deps if d != asset),
    )


def schema_drift_check(schema: TableSchema, *, blocking: bool = False) -> Check:
    """The table in the warehouse has exactly the declared columns and types."""

    def _evaluate(warehouse: Warehouse) -> dg.AssetCheckResult:
        from revops_pipelines.warehouse.catalog import drift

        actual = warehouse.columns(schema.name)
        problems = drift(schema, actual, warehouse.dialect) if actual else ["table does not exist"]
        return dg.AssetCheckResult(
            passed=not problems,
            metadata={
                "problems": dg.MetadataValue.json(problems),
                "warehouse_columns": dg.MetadataValue.json({c: t for c, t in actual}),
                "declared_columns": dg.MetadataValue.json({c.name: c.type for c in schema.columns}),
            },
        )

    return Check(
        evaluate=_evaluate,
        asset=schema.name,
        name=f"{schema.name}_schema_drift",
        blocking=blocking,
        description=f"{schema.name} in the warehouse matches its declared schema (columns, types)",
    )
