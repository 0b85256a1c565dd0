"""DuckDB implementation of the warehouse (the embedded default)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field

from revops_pipelines.errors import WarehouseError
from revops_pipelines.warehouse.base import Warehouse
from revops_pipelines.warehouse.schema import ident

if TYPE_CHECKING:
    import pyarrow as pa


_OPEN = threading.local()  # per thread: path -> the connection an enclosing connect() holds open


class DuckDBWarehouse(Warehouse):
    """A DuckDB file (default ``$REVOPS_HOME/warehouse.duckdb``).

    One process writes a DuckDB file at a time; connections are short-lived and opening retries
    while another process holds the lock (``lock_timeout_s``).
    """

    path: str = Field(description="Path of the DuckDB database file, or ':memory:'.")
    lock_timeout_s: float = Field(default=60.0, description="How long to wait for another process's lock.")

    @property
    def dialect(self) -> str:
        return "duckdb"

    @contextmanager
    def connect(self) -> Iterator[Any]:
        """A connection to the file; inside another ``connect()`` of the same file on this thread, that
        one (an operation's nested steps — e.g. a load's table migration check — share its connection
        instead of opening the file again, ~10 ms each)."""
        open_here = getattr(_OPEN, "conns", None)
        if open_here is None:
            open_here = _OPEN.conns = {}
        if self.path != ":memory:" and self.path in open_here:
            yield open_here[self.path]
            return
        with self._open() as conn:
            if self.path == ":memory:":  # every :memory: connection is its own database
                yield conn
                return
            open_here[self.path] = conn
            try:
                yield conn
            finally:
                del open_here[self.path]

    @contextmanager
    def _open(self) -> Iterator[Any]:
        import duckdb

        if self.path != ":memory:":
            from revops_pipelines.tenancy import check_location

            check_location("home", self.path, self.tenant)
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.lock_timeout_s
        delay = 0.05
        while True:
            try:
                conn = duckdb.connect(self.path)
                break
            except duckdb.IOException as err:
                if "lock" not in str(err).lower() or time.monotonic() > deadline:
                    raise WarehouseError(f"cannot open DuckDB file {self.path}: {err}") from err
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
        try:
            yield conn
        finally:
            conn.close()

    def target_id(self) -> str:
        return "duckdb:" + (self.path if self.path == ":memory:" else str(Path(self.path).resolve()))

    def _insert_arrow(self, conn: Any, table: str, data: pa.Table) -> None:
        conn.register("__revops_frame", data)
        try:
            cols = ", ".join(data.column_names)
            conn.execute(f"INSERT INTO {ident(table)} ({cols}) SELECT {cols} FROM __revops_frame")
        finally:
            conn.unregister("__revops_frame")

    def _cursor(self, conn: Any) -> Any:
        # the connection itself: DuckDB's cursor() opens a sibling connection that would see neither
        # registered Arrow views nor the open transaction
        return conn

    def _stage(self, conn: Any, schema: Any, stage: str, data: pa.Table) -> None:
        conn.register(stage, data)  # a zero-copy view over the Arrow table

    def _unstage(self, conn: Any, stage: str) -> None:
        conn.unregister(stage)

    def _begin(self, conn: Any) -> None:
        conn.execute("BEGIN TRANSACTION")

    def _commit(self, conn: Any) -> None:
        conn.execute("COMMIT")

    def _rollback(self, conn: Any) -> None:
        conn.execute("ROLLBACK")
