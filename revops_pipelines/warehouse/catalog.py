"""Schema discovery: what is in the warehouse, next to what is declared.

:func:`discover` reads ``information_schema`` (tables, columns, types; on Firebolt also table kind
and primary index), counts rows, reads freshness (the latest value of the table's time column and
the last write recorded in ``_revops_table_versions``) and the schema version, and compares each
table with its declaration (drift). Used by ``revops warehouse schema`` and the Data Agent.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from revops_pipelines.warehouse.schema import TYPES, TableSchema, ident, table

if TYPE_CHECKING:
    from revops_pipelines.warehouse.base import Warehouse

# columns that say how recent a table's data is, most telling first
FRESHNESS_COLUMNS = (
    "system_modstamp",
    "updated_at",
    "snapshot_date",
    "usage_date",
    "started",
    "changed_at",
    "created_at",
    "scored_at",
    "decided_at",
)


class ColumnInfo(BaseModel):
    name: str
    type: str
    declared_type: str | None = None
    nullable: bool | None = None


class TableInfo(BaseModel):
    name: str
    declared: bool
    kind: str | None = None
    keys: list[str] = Field(default_factory=list)
    primary_index: list[str] = Field(default_factory=list)
    columns: list[ColumnInfo]
    row_count: int
    schema_version: int | None = None
    last_write: datetime | None = None
    freshness_column: str | None = None
    latest_value: str | None = None
    drift: list[str] = Field(default_factory=list)
    description: str = ""


class Catalog(BaseModel):
    dialect: str
    discovered_at: datetime
    tables: list[TableInfo]

    def table(self, name: str) -> TableInfo | None:
        return next((t for t in self.tables if t.name == name), None)


def drift(schema: TableSchema, actual: list[tuple[str, str]], dialect: str) -> list[str]:
    """Differences between a declaration and the table as it is (empty: none)."""
    from revops_pipelines.warehouse.migrations import _norm_type

    found = dict(actual)
    problems = []
    missing = [c for c in schema.column_names if c not in found]
    extra = [c for c in found if c not in schema.column_names]
    if missing:
        problems.append(f"declared but missing in the warehouse: {missing}")
    if extra:
        problems.append(f"in the warehouse but not declared: {extra}")
    for c in schema.columns:
        if c.name in found and _norm_type(found[c.name]) != _norm_type(TYPES[c.type][dialect]):
            problems.append(f"{c.name}: warehouse type {found[c.name]}, declared {c.type}")
    return problems


def _index(reported: str | None, schema: TableSchema | None) -> list[str]:
    if reported:
        return [p.strip() for p in reported.split(",")]
    return list(schema.primary_index or schema.keys) if schema else []


def _safe_scalar(wh: Warehouse, sql: str, params: list[Any] | None = None) -> Any:
    try:
        return wh.scalar(sql, params)
    except Exception:  # a table can vanish between listing and reading; discovery reports what it can
        return None


def discover(
    wh: Warehouse, declared: list[TableSchema] | None = None, *, include_declared_only: bool = True
) -> Catalog:
    """Discover every table of the warehouse (internal ``_revops_*`` tables excluded)."""
    from revops_pipelines.warehouse.cache import table_tokens
    from revops_pipelines.warehouse.migrations import VERSIONS

    if declared is None:
        from revops_pipelines.warehouse.registry import declared_schemas

        declared = declared_schemas()
    by_name = {s.name: s for s in declared}
    tokens = table_tokens(wh)
    wh.execute(VERSIONS.ddl(wh.dialect))
    versions = wh.query(f"SELECT table_name, MAX(version) AS v FROM {VERSIONS.name} GROUP BY table_name")
    version_of = {r.table_name: int(r.v) for r in versions.itertuples(index=False)}
    fb_meta: dict[str, tuple[str, str]] = {}
    if wh.dialect == "firebolt":
        meta = wh.query(
            "SELECT table_name, table_kind, primary_index FROM information_schema.tables WHERE table_schema = ?",
            [wh.schema_name],
        )
        fb_meta = {r.table_name: (r.table_kind, r.primary_index) for r in meta.itertuples(index=False)}

    tables = []
    for name in wh.table_names():
        actual = wh.columns(name)
        schema = by_name.get(name)
        cols = [
            ColumnInfo(
                name=c,
                type=t,
                declared_type=schema.column(c).type if schema and c in schema.column_names else None,
                nullable=schema.column(c).nullable if schema and c in schema.column_names else None,
            )
            for c, t in actual
        ]
        names = [c for c, _ in actual]
        fresh_col = next((c for c in FRESHNESS_COLUMNS if c in names), None)
        latest = _safe_scalar(wh, f"SELECT MAX({fresh_col}) FROM {ident(name)}") if fresh_col else None
        kind, pi = fb_meta.get(name, (None, None))
        tables.append(
            TableInfo(
                name=name,
                declared=schema is not None,
                kind=str(kind).lower() if kind else (schema.kind if schema else None),
                keys=list(schema.keys) if schema else [],
                primary_index=_index(pi, schema),
                columns=cols,
                row_count=int(_safe_scalar(wh, f"SELECT COUNT(*) FROM {ident(name)}") or 0),
                schema_version=version_of.get(name),
                last_write=tokens[name][1] if name in tokens else None,
                freshness_column=fresh_col,
                latest_value=None if latest is None else str(latest),
                drift=drift(schema, actual, wh.dialect) if schema else [],
                description=schema.description if schema else "",
            )
        )
    if include_declared_only:
        present = {t.name for t in tables}
        for s in declared:
            if s.name not in present:
                tables.append(
                    TableInfo(
                        name=s.name,
                        declared=True,
                        kind=s.kind,
                        keys=list(s.keys),
                        primary_index=list(s.primary_index or s.keys),
                        columns=[ColumnInfo(name=c.name, type="", declared_type=c.type) for c in s.columns],
                        row_count=0,
                        drift=["declared but not created yet (run `revops warehouse migrate`)"],
                        description=s.description,
                    )
                )
    return Catalog(
        dialect=wh.dialect,
        discovered_at=datetime.now(UTC).replace(tzinfo=None),
        tables=sorted(tables, key=lambda t: t.name),
    )


# ---- the catalog as a warehouse table (for the UI and other processes) -------------------------------
CATALOG_TABLE = table(
    "schema_catalog",
    [
        ("table_name", "TEXT"),
        ("declared", "BOOLEAN", False),
        ("kind", "TEXT"),
        ("keys", "TEXT"),
        ("primary_index", "TEXT"),
        ("columns_json", "TEXT", False),
        ("row_count", "BIGINT", False),
        ("schema_version", "INTEGER"),
        ("last_write", "TIMESTAMP"),
        ("freshness_column", "TEXT"),
        ("latest_value", "TEXT"),
        ("drift_json", "TEXT", False),
        ("description", "TEXT"),
        ("dialect", "TEXT", False),
        ("discovered_at", "TIMESTAMP", False),
    ],
    keys=("table_name",),
    kind="dimension",
    description="The Data Agent's schema catalog as last discovered: one row per table (columns, "
    "keys, primary index, rows, schema version, freshness, drift). Replaced on every discovery.",
    group="agents",
)


def save_catalog(wh: Warehouse, cat: Catalog) -> int:
    """Replace :data:`CATALOG_TABLE` with ``cat`` (every table it lists); returns the rows written."""
    import json

    import pandas as pd

    rows = [
        {
            "table_name": t.name,
            "declared": t.declared,
            "kind": t.kind,
            "keys": ",".join(t.keys),
            "primary_index": ",".join(t.primary_index),
            "columns_json": json.dumps([c.model_dump() for c in t.columns]),
            "row_count": t.row_count,
            "schema_version": t.schema_version,
            "last_write": t.last_write,
            "freshness_column": t.freshness_column,
            "latest_value": t.latest_value,
            "drift_json": json.dumps(t.drift),
            "description": t.description,
            "dialect": cat.dialect,
            "discovered_at": cat.discovered_at,
        }
        for t in cat.tables
    ]
    df = pd.DataFrame(rows, columns=CATALOG_TABLE.column_names)
    wh.replace_table(CATALOG_TABLE, df)
    return len(df)


def load_catalog(wh: Warehouse) -> Catalog | None:
    """The catalog last saved by :func:`save_catalog` (any process), or None if none was saved."""
    import json

    import pandas as pd

    if CATALOG_TABLE.name not in wh.table_names():
        return None
    df = wh.query(f"SELECT * FROM {CATALOG_TABLE.name} ORDER BY table_name")
    if df.empty:
        return None

    def opt(v: Any) -> Any:
        return None if v is None or (not isinstance(v, str) and pd.isna(v)) else v

    tables = [
        TableInfo(
            name=r["table_name"],
            declared=bool(r["declared"]),
            kind=opt(r["kind"]),
            keys=[k for k in (opt(r["keys"]) or "").split(",") if k],
            primary_index=[k for k in (opt(r["primary_index"]) or "").split(",") if k],
            columns=[ColumnInfo(**c) for c in json.loads(r["columns_json"])],
            row_count=int(r["row_count"]),
            schema_version=None if opt(r["schema_version"]) is None else int(r["schema_version"]),
            last_write=opt(r["last_write"]),
            freshness_column=opt(r["freshness_column"]),
            latest_value=opt(r["latest_value"]),
            drift=json.loads(r["drift_json"]),
            description=opt(r["description"]) or "",
        )
        for r in df.to_dict("records")
    ]
    return Catalog(dialect=str(df["dialect"].iloc[0]), discovered_at=df["discovered_at"].max(), tables=tables)
