"""The warehouse seam: one resource interface, two implementations (DuckDB default, Firebolt).

Subclasses provide a DB-API connection (qmark parameters) and a bulk insert of an Arrow table;
everything else — table creation from declared schemas, idempotent merge on keys, windowed
replace for partitions, catalog queries — is written once here against portable SQL.
"""

from __future__ import annotations

import uuid
from abc import abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import dagster as dg
from pydantic import ConfigDict

from revops_pipelines.errors import WarehouseError
from revops_pipelines.warehouse.schema import TableSchema, ident

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa


@dataclass(frozen=True)
class MergeResult:
    table: str
    received: int  # rows handed to merge (after de-duplication on keys)
    inserted: int  # keys that were new
    updated: int  # keys that existed and were replaced
    total: int  # rows in the table afterwards


def _arrow_type(portable: str) -> pa.DataType:
    import pyarrow as pa

    return {
        "TEXT": pa.string(),
        "BIGINT": pa.int64(),
        "INTEGER": pa.int32(),
        "DOUBLE": pa.float64(),
        "BOOLEAN": pa.bool_(),
        "DATE": pa.date32(),
        "TIMESTAMP": pa.timestamp("us"),
    }[portable]


def frame_to_arrow(schema: TableSchema, df: pd.DataFrame) -> pa.Table:
    """Conform a DataFrame to the declared schema: column order, types, NOT NULL — or say what is wrong."""
    import pandas as pd
    import pyarrow as pa

    missing = [c for c in schema.column_names if c not in df.columns]
    if missing:
        raise WarehouseError(f"{schema.name}: frame is missing columns {missing}")
    extra = [c for c in df.columns if c not in schema.column_names]
    if extra:
        raise WarehouseError(f"{schema.name}: frame has undeclared columns {extra}")
    arrays = []
    for col in schema.columns:
        s = df[col.name]
        if col.type == "TIMESTAMP":
            s = pd.to_datetime(s, utc=True).dt.tz_localize(None)
        elif col.type == "DATE":
            s = pd.to_datetime(s).dt.date
        if not col.nullable and s.isna().any():
            raise WarehouseError(
                f"{schema.name}.{col.name} is NOT NULL but {int(s.isna().sum())} rows are null"
            )
        try:
            arrays.append(pa.array(s, type=_arrow_type(col.type), from_pandas=True))
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as err:
            raise WarehouseError(f"{schema.name}.{col.name}: cannot convert to {col.type}: {err}") from None
    return pa.Table.from_arrays(arrays, names=schema.column_names)


class Warehouse(dg.ConfigurableResource):
    """Abstract warehouse resource. Use :func:`revops_pipelines.resources.warehouse_from_settings`."""

    # validators are built when a class is first instantiated: never for this abstract base (~0.6 ms
    # of loading the definitions); a concrete warehouse's on its first instance, as before
    model_config = ConfigDict(defer_build=True)

    tenant: str | None = None  # set for a tenant: connecting outside its file/database is refused

    @property
    @abstractmethod
    def dialect(self) -> str: ...

    @abstractmethod
    @contextmanager
    def connect(self) -> Iterator[Any]:
        """Yield a DB-API connection (qmark parameters)."""

    @abstractmethod
    def _insert_arrow(self, conn: Any, table: str, data: pa.Table) -> None: ...

    def _begin(self, conn: Any) -> None:  # noqa: B027 - optional hook
        pass

    def _commit(self, conn: Any) -> None:  # noqa: B027 - optional hook
        pass

    def _rollback(self, conn: Any) -> None:  # noqa: B027 - optional hook
        pass

    # ---- statements ---------------------------------------------------------------------------
    def _cursor(self, conn: Any) -> Any:
        return conn.cursor()

    def _run(self, conn: Any, sql: str, params: Sequence[Any] | None = None) -> Any:
        cur = self._cursor(conn)
        try:
            cur.execute(sql, list(params) if params else None)
        except Exception as err:
            first = sql.strip().split("\n", 1)[0][:120]
            raise WarehouseError(f"{self.dialect}: statement failed ({first}): {err}") from err
        return cur

    def _one(self, conn: Any, sql: str, params: Sequence[Any] | None = None) -> Any:
        """First value of the first row; the result is read to the end (DuckDB requires it)."""
        rows = self._run(conn, sql, params).fetchall()
        return rows[0][0] if rows else None

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        """Run one statement. A statement that writes a table bumps that table's version token, so
        cached reads of it (:mod:`revops_pipelines.warehouse.cache`) are never served stale."""
        from revops_pipelines.warehouse.sqltext import written_tables

        written = [t for t in written_tables(sql) if not t.startswith("_revops_")]
        with self.connect() as conn:
            self._run(conn, sql, params)
            if written:
                self._touch(conn, written)

    def target_id(self) -> str:
        """Which database this resource points at (for per-process caches; no credentials)."""
        return f"{self.dialect}:{id(self)}"

    # ---- table version tokens (cache invalidation) -------------------------------------------------
    def _touch(self, conn: Any, tables: Sequence[str]) -> None:
        """Give each of ``tables`` a new version token (inside the caller's transaction on DuckDB)."""
        from revops_pipelines.warehouse.cache import TABLE_VERSIONS, new_token

        self._run(conn, TABLE_VERSIONS.ddl(self.dialect))
        now = datetime.now(UTC).replace(tzinfo=None)
        for t in dict.fromkeys(tables):
            self._run(conn, f"DELETE FROM {TABLE_VERSIONS.name} WHERE table_name = ?", [t])
            self._run(
                conn,
                f"INSERT INTO {TABLE_VERSIONS.name} (table_name, token, changed_at) VALUES (?, ?, ?)",
                [t, new_token(), now],
            )

    def query(self, sql: str, params: Sequence[Any] | None = None) -> pd.DataFrame:
        import pandas as pd

        with self.connect() as conn:
            cur = self._run(conn, sql, params)
            cols = [d[0] for d in cur.description] if cur.description else []
            rows = cur.fetchall() if cols else []
        return pd.DataFrame.from_records(rows, columns=cols)

    def scalar(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        with self.connect() as conn:
            return self._one(conn, sql, params)

    # ---- tables ---------------------------------------------------------------------------------
    def ensure_table(self, schema: TableSchema) -> None:
        """Create the table, or migrate it forward to its declaration (refusing incompatible
        changes with a message saying what to do); see :mod:`revops_pipelines.warehouse.migrations`."""
        from revops_pipelines.warehouse.migrations import ensure_current

        ensure_current(self, schema)

    def table_names(self) -> list[str]:
        df = self.query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ? ORDER BY table_name",
            [self.schema_name],
        )
        return [t for t in df["table_name"].tolist() if "__stage_" not in t and not t.startswith("_revops_")]

    @property
    def schema_name(self) -> str:
        return "main" if self.dialect == "duckdb" else "public"

    def columns(self, table: str) -> list[tuple[str, str]]:
        df = self.query(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            [self.schema_name, table],
        )
        return list(df.itertuples(index=False, name=None))

    def row_count(self, table: str) -> int:
        return int(self.scalar(f"SELECT COUNT(*) FROM {ident(table)}"))

    # ---- loads ----------------------------------------------------------------------------------
    def _stage(self, conn: Any, schema: TableSchema, stage: str, data: pa.Table) -> None:
        """Make ``data`` queryable under the name ``stage`` (default: a real table)."""
        self._run(conn, schema.ddl(self.dialect, name=stage))
        self._insert_arrow(conn, stage, data)

    def _unstage(self, conn: Any, stage: str) -> None:
        self._run(conn, f"DROP TABLE IF EXISTS {stage}")

    def merge(self, schema: TableSchema, df: pd.DataFrame) -> MergeResult:
        """Upsert ``df`` on ``schema.keys``: existing keys are replaced, new keys inserted.

        Loading the same frame twice leaves the same rows (idempotent). Within ``df`` the last row
        of a duplicated key wins.
        """
        if not schema.keys:
            raise WarehouseError(f"{schema.name}: merge needs keys")
        data = frame_to_arrow(schema, df)
        target = ident(schema.name)
        stage = ident(f"{schema.name[:40]}__stage_{uuid.uuid4().hex[:8]}")
        keys = ", ".join(schema.keys)
        on = " AND ".join(f"t.{k} = s.{k}" for k in schema.keys)
        cols = ", ".join(schema.column_names)
        with self.connect() as conn:
            self.ensure_table(schema)  # on this connection where the backend shares it (DuckDB)
            self._stage(conn, schema, stage, data)
            try:
                dupes = self._one(
                    conn,
                    f"SELECT COUNT(*) FROM (SELECT {keys} FROM {stage} GROUP BY {keys} HAVING COUNT(*) > 1) d",
                )
                if dupes:  # rare: resolve in pandas (last row wins) and stage again
                    self._unstage(conn, stage)
                    data = frame_to_arrow(schema, df.drop_duplicates(subset=list(schema.keys), keep="last"))
                    self._stage(conn, schema, stage, data)
                self._begin(conn)
                try:
                    existing = self._one(conn, f"SELECT COUNT(*) FROM {target}")
                    updated = 0
                    if existing:
                        updated = self._one(
                            conn,
                            f"SELECT COUNT(*) FROM {stage} s WHERE EXISTS (SELECT 1 FROM {target} t WHERE {on})",
                        )
                    if updated:
                        self._run(conn, f"DELETE FROM {target} t USING {stage} s WHERE {on}")
                    self._run(conn, f"INSERT INTO {target} ({cols}) SELECT {cols} FROM {stage}")
                    self._touch(conn, [schema.name])
                    self._commit(conn)
                except Exception:
                    self._rollback(conn)
                    raise
            finally:
                self._unstage(conn, stage)
        received = data.num_rows
        updated = int(updated)
        return MergeResult(
            schema.name, received, received - updated, updated, int(existing) + received - updated
        )

    def replace_where(
        self, schema: TableSchema, df: pd.DataFrame, where: str, params: Sequence[Any] = ()
    ) -> MergeResult:
        """Delete the rows matching ``where`` (a partition window), then insert ``df`` — atomically
        on DuckDB. Used by partitioned assets so a re-run or backfill never duplicates."""
        data = frame_to_arrow(schema, df)
        target = ident(schema.name)
        with self.connect() as conn:
            self.ensure_table(schema)
            self._begin(conn)
            try:
                deleted = self._one(conn, f"SELECT COUNT(*) FROM {target} WHERE {where}", params)
                self._run(conn, f"DELETE FROM {target} WHERE {where}", params)
                if data.num_rows:
                    self._insert_arrow(conn, target, data)
                self._touch(conn, [schema.name])
                self._commit(conn)
            except Exception:
                self._rollback(conn)
                raise
            total = self._one(conn, f"SELECT COUNT(*) FROM {target}")
        n = data.num_rows
        return MergeResult(schema.name, n, max(n - int(deleted), 0), min(int(deleted), n), int(total))

    def replace_table(self, schema: TableSchema, df: pd.DataFrame) -> MergeResult:
        """Full refresh of a derived table."""
        return self.replace_where(schema, df, "1 = 1")
