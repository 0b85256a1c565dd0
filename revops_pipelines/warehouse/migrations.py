"""Schema versioning: every declared table is migrated forward, step by numbered step.

The declarations (:class:`TableSchema` in each domain module's ``TABLES``, see
:mod:`revops_pipelines.warehouse.registry`) are the truth. For each table a migration compares the
declaration with the warehouse (``information_schema``) and the last recorded version in
``_revops_schema_versions``:

* table missing → created (version 1);
* table present but never recorded (a database from before versioning) → adopted as version 1;
* new **nullable** columns → ``ALTER TABLE ... ADD COLUMN`` in place, rows kept (next version);
* an **empty** table with any other difference → dropped and created again (nothing to lose);
* anything else — a column type changed, a column dropped or renamed, a new NOT NULL column, merge
  keys / kind / Firebolt primary index changed — is **refused** with a message that says what to do.
  Nothing is ever dropped implicitly; ``revops warehouse rebuild TABLE`` drops a table on purpose
  (its asset reloads it from the source on the next materialisation).

``Warehouse.ensure_table`` runs :func:`ensure_current` before every load, so a deploy with a new
column is applied on the first write; ``revops warehouse migrate`` applies everything at once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from revops_pipelines.errors import WarehouseError
from revops_pipelines.warehouse.schema import TYPES, TableSchema, ident, table

if TYPE_CHECKING:
    from revops_pipelines.warehouse.base import Warehouse

VERSIONS = table(
    "_revops_schema_versions",
    [
        ("table_name", "TEXT"),
        ("version", "INTEGER"),
        ("applied_at", "TIMESTAMP", False),
        ("change", "TEXT", False),
        ("signature", "TEXT", False),
    ],
    keys=("table_name", "version"),
    kind="dimension",
    description="One row per applied schema migration step of each warehouse table.",
    group="warehouse",
)

# type names as information_schema reports them -> our canonical per-dialect spelling
_TYPE_ALIASES = {
    "double": "double precision",
    "float8": "double precision",
    "int": "integer",
    "int4": "integer",
    "int8": "bigint",
    "long": "bigint",
    "string": "text",
    "bool": "boolean",
    "timestamp without time zone": "timestamp",
    "timestamp_ntz": "timestamp",
}

_VERIFIED: set[tuple[str, str, str]] = set()  # (target, table, signature) checked in this process


class SchemaChangeRefused(WarehouseError):
    """A declared schema differs from the warehouse in a way that cannot be applied in place."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("schema migration refused:\n  - " + "\n  - ".join(problems))


@dataclass
class TablePlan:
    table: str
    action: str  # create | adopt | add_columns | recreate | record | current | refused
    version_before: int | None
    version_after: int | None
    added: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def change(self) -> str:
        if self.action == "add_columns":
            return f"add columns {', '.join(self.added)}"
        return {
            "create": "create table",
            "adopt": "adopt existing table",
            "recreate": "recreate empty table with the new declaration",
            "record": "record declaration change (no DDL needed on this dialect)",
        }.get(self.action, self.action)


def _norm_type(t: str) -> str:
    t = t.strip().lower()
    for suffix in (" not null", " null"):
        if t.endswith(suffix):
            t = t[: -len(suffix)]
    return _TYPE_ALIASES.get(t, t)


def _expected_type(schema: TableSchema, col: str, dialect: str) -> str:
    return _norm_type(TYPES[schema.column(col).type][dialect])


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _ensure_versions_table(wh: Warehouse) -> None:
    wh.execute(VERSIONS.ddl(wh.dialect))


def recorded(wh: Warehouse, table_name: str) -> tuple[int, dict] | None:
    """The last recorded (version, signature) of ``table_name``, or None."""
    df = wh.query(
        f"SELECT version, signature FROM {VERSIONS.name} WHERE table_name = ? ORDER BY version DESC LIMIT 1",
        [table_name],
    )
    if df.empty:
        return None
    return int(df.iloc[0]["version"]), json.loads(df.iloc[0]["signature"])


def history(wh: Warehouse, table_name: str | None = None):
    """Every recorded migration step (a DataFrame), oldest first."""
    _ensure_versions_table(wh)
    where, params = ("WHERE table_name = ?", [table_name]) if table_name else ("", [])
    return wh.query(
        f"SELECT table_name, version, applied_at, change FROM {VERSIONS.name} {where} "
        "ORDER BY table_name, version",
        params,
    )


def plan_table(wh: Warehouse, schema: TableSchema) -> TablePlan:
    """Decide what migrating ``schema`` needs, without changing anything."""
    actual = dict(wh.columns(schema.name))
    last = recorded(wh, schema.name)
    before = last[0] if last else None
    nxt = (before or 0) + 1
    if not actual:
        return TablePlan(schema.name, "create", before, nxt)

    problems: list[str] = []
    rebuild = f"`revops warehouse rebuild {schema.name}` (drops it; its asset reloads it from the source)"
    declared = schema.column_names
    extra = [c for c in actual if c not in declared]
    if extra:
        problems.append(
            f"{schema.name}: the warehouse has column(s) {extra} that the declaration lacks (dropped or "
            f"renamed?). Migrations never drop data: declare them again (nullable), or rebuild with {rebuild}"
        )
    for c in declared:
        if c in actual and _norm_type(actual[c]) != _expected_type(schema, c, wh.dialect):
            problems.append(
                f"{schema.name}.{c}: type is {actual[c]} in the warehouse but declared "
                f"{schema.column(c).type}; type changes are not applied in place. Add a new column "
                f"with the new type instead, or rebuild with {rebuild}"
            )
    added = [c for c in declared if c not in actual]
    not_null = [c for c in added if not schema.column(c).nullable]
    if not_null:
        problems.append(
            f"{schema.name}: new column(s) {not_null} are declared NOT NULL but existing rows have no "
            f"value. Declare them nullable (added in place, filled by the next load), or rebuild with {rebuild}"
        )
    if last:
        old, new = last[1], schema.signature()
        for part in ("keys", "kind") + (("primary_index",) if wh.dialect == "firebolt" else ()):
            if old.get(part) != new[part]:
                problems.append(
                    f"{schema.name}: {part.replace('_', ' ')} changed from {old.get(part)} to {new[part]}; "
                    f"this cannot be altered in place. Rebuild with {rebuild}"
                )
    if problems:
        if wh.row_count(schema.name) == 0:
            return TablePlan(schema.name, "recreate", before, nxt, problems=problems)
        return TablePlan(schema.name, "refused", before, before, problems=problems)
    if added:
        return TablePlan(schema.name, "add_columns", before, nxt, added=added)
    if last is None:
        return TablePlan(schema.name, "adopt", None, 1)
    if last[1] != schema.signature():  # e.g. a primary index change on DuckDB, a description of nullability
        return TablePlan(schema.name, "record", before, nxt)
    return TablePlan(schema.name, "current", before, before)


def apply_plan(wh: Warehouse, schema: TableSchema, plan: TablePlan) -> None:
    if plan.action in ("current", "refused"):
        return
    if plan.action == "recreate":
        wh.execute(f"DROP TABLE IF EXISTS {ident(schema.name)}")
    if plan.action in ("create", "recreate"):
        wh.execute(schema.ddl(wh.dialect))
    for c in plan.added:
        wh.execute(schema.add_column_ddl(wh.dialect, c))
    wh.execute(
        f"INSERT INTO {VERSIONS.name} (table_name, version, applied_at, change, signature) VALUES (?, ?, ?, ?, ?)",
        [schema.name, plan.version_after, _now(), plan.change, schema.signature_json()],
    )


def migrate(
    wh: Warehouse, schemas: Iterable[TableSchema] | None = None, *, dry_run: bool = False
) -> list[TablePlan]:
    """Bring every table forward. Compatible steps are applied (unless ``dry_run``); if any table
    needs an incompatible change, :class:`SchemaChangeRefused` is raised at the end naming each
    one and what to do (the other tables are migrated all the same)."""
    if schemas is None:
        from revops_pipelines.warehouse.registry import declared_schemas

        schemas = declared_schemas()
    _ensure_versions_table(wh)
    plans = []
    for schema in schemas:
        p = plan_table(wh, schema)
        if not dry_run:
            apply_plan(wh, schema, p)
        plans.append(p)
    refused = [msg for p in plans if p.action == "refused" for msg in p.problems]
    if refused and not dry_run:
        raise SchemaChangeRefused(refused)
    return plans


def ensure_current(wh: Warehouse, schema: TableSchema) -> None:
    """Create ``schema``'s table or migrate it forward (once per process per declaration); called
    by ``Warehouse.ensure_table`` before every load."""
    key = (wh.target_id(), schema.name, schema.signature_json())
    if key in _VERIFIED:
        wh.execute(schema.ddl(wh.dialect))  # cheap; survives a table dropped behind our back
        return
    _ensure_versions_table(wh)
    p = plan_table(wh, schema)
    if p.action == "refused":
        raise SchemaChangeRefused(p.problems)
    apply_plan(wh, schema, p)
    _VERIFIED.add(key)


def rebuild(wh: Warehouse, schema: TableSchema) -> TablePlan:
    """Drop ``schema``'s table on purpose and create it from the declaration (rows are lost; the
    table's asset reloads them). Recorded as the next version."""
    _ensure_versions_table(wh)
    last = recorded(wh, schema.name)
    before = last[0] if last else None
    wh.execute(f"DROP TABLE IF EXISTS {ident(schema.name)}")
    wh.execute(schema.ddl(wh.dialect))
    p = TablePlan(schema.name, "rebuild", before, (before or 0) + 1)
    wh.execute(
        f"INSERT INTO {VERSIONS.name} (table_name, version, applied_at, change, signature) VALUES (?, ?, ?, ?, ?)",
        [
            schema.name,
            p.version_after,
            _now(),
            "rebuild (dropped and created empty)",
            schema.signature_json(),
        ],
    )
    _VERIFIED.discard((wh.target_id(), schema.name, schema.signature_json()))
    return p


def forget_verified() -> None:
    """Clear the per-process cache of verified declarations (tests)."""
    _VERIFIED.clear()
