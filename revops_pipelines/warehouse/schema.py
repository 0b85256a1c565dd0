"""Table schemas, declared once and rendered per dialect.

A :class:`TableSchema` names its columns (portable types), merge keys, kind (fact / dimension) and
Firebolt primary index. :meth:`TableSchema.ddl` renders ``CREATE TABLE`` for DuckDB and
``CREATE FACT|DIMENSION TABLE ... PRIMARY INDEX`` for Firebolt (whose columns are NOT NULL unless
declared NULL, so nullability is always spelled out there).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

# portable type -> per-dialect type
TYPES: dict[str, dict[str, str]] = {
    "TEXT": {"duckdb": "VARCHAR", "firebolt": "TEXT"},
    "BIGINT": {"duckdb": "BIGINT", "firebolt": "BIGINT"},
    "INTEGER": {"duckdb": "INTEGER", "firebolt": "INTEGER"},
    "DOUBLE": {"duckdb": "DOUBLE", "firebolt": "DOUBLE PRECISION"},
    "BOOLEAN": {"duckdb": "BOOLEAN", "firebolt": "BOOLEAN"},
    "DATE": {"duckdb": "DATE", "firebolt": "DATE"},
    "TIMESTAMP": {"duckdb": "TIMESTAMP", "firebolt": "TIMESTAMP"},
}
DIALECTS = ("duckdb", "firebolt")


def ident(name: str) -> str:
    """Return ``name`` if it is a safe SQL identifier; identifiers are never taken from user input
    unchecked, values always travel as parameters."""
    if not _IDENT.match(name):
        raise ValueError(f"not a safe SQL identifier: {name!r}")
    return name


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    nullable: bool = True
    description: str = ""

    def __post_init__(self) -> None:
        ident(self.name)
        if self.type not in TYPES:
            raise ValueError(f"column {self.name}: unknown type {self.type!r} (one of {sorted(TYPES)})")


@dataclass(frozen=True)
class TableSchema:
    name: str
    columns: tuple[Column, ...]
    keys: tuple[str, ...]
    kind: str = "fact"  # fact | dimension
    primary_index: tuple[str, ...] = ()
    description: str = ""
    group: str = "raw"
    _by_name: dict[str, Column] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        ident(self.name)
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: duplicate column names")
        self._by_name.update({c.name: c for c in self.columns})
        for k in (*self.keys, *self.primary_index):
            if k not in self._by_name:
                raise ValueError(f"{self.name}: key/index column {k!r} is not a column")
            if self._by_name[k].nullable:  # Firebolt refuses nullable primary-index columns
                raise ValueError(f"{self.name}: key/index column {k!r} must be NOT NULL")
        if self.kind not in ("fact", "dimension"):
            raise ValueError(f"{self.name}: kind must be fact or dimension")

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        return self._by_name[name]

    def signature(self) -> dict:
        """What a migration compares: columns (name, type, nullability), keys, kind, primary index."""
        return {
            "columns": [[c.name, c.type, c.nullable] for c in self.columns],
            "keys": list(self.keys),
            "kind": self.kind,
            "primary_index": list(self.primary_index or self.keys),
        }

    def signature_json(self) -> str:
        return json.dumps(self.signature(), sort_keys=True, separators=(",", ":"))

    def add_column_ddl(self, dialect: str, column: str) -> str:
        """``ALTER TABLE ... ADD COLUMN`` for a nullable column (the only in-place change we make)."""
        c = self.column(column)
        return f"ALTER TABLE {ident(self.name)} ADD COLUMN {c.name} {TYPES[c.type][dialect]} NULL"

    def ddl(self, dialect: str, name: str | None = None) -> str:
        if dialect not in DIALECTS:
            raise ValueError(f"unknown dialect {dialect!r}")
        table = ident(name or self.name)
        cols = []
        for c in self.columns:
            null = "NULL" if c.nullable else "NOT NULL"
            cols.append(f"{c.name} {TYPES[c.type][dialect]} {null}")
        body = ",\n  ".join(cols)
        if dialect == "duckdb":
            return f"CREATE TABLE IF NOT EXISTS {table} (\n  {body}\n)"
        kind = "FACT" if self.kind == "fact" else "DIMENSION"
        index = self.primary_index or self.keys
        pi = f"\nPRIMARY INDEX {', '.join(index)}" if index else ""
        return f"CREATE {kind} TABLE IF NOT EXISTS {table} (\n  {body}\n){pi}"


def table(
    name: str,
    columns: list[tuple],
    keys: tuple[str, ...],
    kind: str = "fact",
    primary_index: tuple[str, ...] = (),
    description: str = "",
    group: str = "raw",
) -> TableSchema:
    """Compact constructor: columns as ``(name, type)`` or ``(name, type, nullable)`` tuples."""
    cols = []
    for spec in columns:
        n, t = spec[0], spec[1]
        nullable = spec[2] if len(spec) > 2 else (n not in keys and n not in primary_index)
        cols.append(Column(n, t, nullable))
    return TableSchema(name, tuple(cols), tuple(keys), kind, tuple(primary_index), description, group)
