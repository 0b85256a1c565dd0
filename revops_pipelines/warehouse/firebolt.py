"""Firebolt implementation of the warehouse, through firebolt-sdk's DB-API client.

Two modes:

* **Core** (``url`` set, e.g. ``http://127.0.0.1:3473``): Firebolt Core — or the loopback
  stand-in in :mod:`revops_pipelines.testing.firebolt_server` — with ``FireboltCore()`` auth.
* **Cloud** (no ``url``): ``account_name`` + ``engine_name`` + service-account ``client_id`` /
  ``client_secret`` (pass those as ``dg.EnvVar``; they are never logged or put in an error message).

Firebolt runs every statement on its own (no multi-statement transactions here), so the
``_begin``/``_commit``/``_rollback`` hooks stay no-ops: a merge is stage → delete → insert, each
statement atomic, and a failure part-way is repaired by re-running (merges are idempotent).
Loads go as batched multi-row ``INSERT ... VALUES`` with qmark parameters, which the SDK formats
client-side (escaping strings, rendering dates) — fine for the small and medium loads of this
project; large loads belong to ``COPY FROM`` Parquet on S3, which this class does not do.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from pydantic import Field

from revops_pipelines.errors import WarehouseError
from revops_pipelines.warehouse.base import Warehouse
from revops_pipelines.warehouse.schema import ident

if TYPE_CHECKING:
    import pyarrow as pa

# The SDK formats qmark parameters by parsing the statement with sqlparse, whose grouping refuses
# statements of more than 50,000 tokens; a VALUES row of n placeholders is about 2n + 2 tokens.
_TOKEN_BUDGET = 40_000


class FireboltWarehouse(Warehouse):
    """Firebolt (Core or cloud) through firebolt-sdk."""

    database: str = Field(description="Firebolt database name.")
    url: str | None = Field(
        default=None, description="Firebolt Core URL (e.g. http://127.0.0.1:3473); unset for Firebolt cloud."
    )
    account_name: str | None = Field(default=None, description="Cloud: Firebolt account name.")
    engine_name: str | None = Field(default=None, description="Cloud: engine that runs the queries.")
    client_id: str | None = Field(default=None, description="Cloud: service account id (use dg.EnvVar).")
    client_secret: str | None = Field(
        default=None, repr=False, description="Cloud: service account secret (use dg.EnvVar; never logged)."
    )
    insert_batch_rows: int = Field(default=1000, ge=1, description="Rows per INSERT ... VALUES statement.")
    query_timeout_s: float | None = Field(
        default=None,
        gt=0,
        description="Per-statement timeout in seconds (None: wait as long as the SDK does).",
    )

    @property
    def dialect(self) -> str:
        return "firebolt"

    # ---- connections ------------------------------------------------------------------------------
    def _where(self) -> str:
        """Where we connect, for messages — never the credentials."""
        if self.url:
            return f"Firebolt Core at {self.url} (database {self.database!r})"
        return f"Firebolt account {self.account_name!r} (engine {self.engine_name!r}, database {self.database!r})"

    def target_id(self) -> str:
        return f"firebolt:{self.url or self.account_name}/{self.engine_name or ''}/{self.database}"

    def _scrub(self, text: str) -> str:
        if self.client_secret and self.client_secret in text:
            text = text.replace(self.client_secret, "***")
        return text

    def _fail(self, what: str, err: BaseException) -> WarehouseError:
        detail = str(err) or type(err).__name__
        return WarehouseError(self._scrub(f"{what}: {type(err).__name__}: {detail}"))

    def _open(self) -> Any:
        from firebolt.db import connect

        from revops_pipelines.tenancy import check_location

        check_location("firebolt", self.database, self.tenant)

        if self.url:
            from firebolt.client.auth import FireboltCore

            if self.account_name or self.engine_name:
                raise WarehouseError(
                    f"Firebolt Core mode (url={self.url}) takes no account_name/engine_name; "
                    "unset url to use Firebolt cloud"
                )
            try:
                return connect(auth=FireboltCore(), database=self.database, url=self.url)
            except Exception as err:
                raise self._fail(f"cannot connect to {self._where()}", err) from err

        missing = [
            name
            for name in ("account_name", "engine_name", "client_id", "client_secret")
            if not getattr(self, name)
        ]
        if missing:
            raise WarehouseError(
                f"Firebolt cloud mode needs {', '.join(missing)} "
                "(set account_name, engine_name, client_id and client_secret — or url for Firebolt Core)"
            )
        from firebolt.client.auth import ClientCredentials

        from revops_pipelines.logging import register_secret

        register_secret(self.client_secret)
        try:
            return connect(
                auth=ClientCredentials(self.client_id or "", self.client_secret or ""),
                account_name=self.account_name,
                engine_name=self.engine_name,
                database=self.database,
            )
        except Exception as err:
            wrapped = self._fail(f"cannot connect to {self._where()}", err)
            if self.client_secret and self.client_secret in str(err):
                raise wrapped from None  # the SDK's message would carry the secret along
            raise wrapped from err

    @contextmanager
    def connect(self) -> Iterator[Any]:
        conn = self._open()
        try:
            yield conn
        finally:
            conn.close()

    # ---- statements ----------------------------------------------------------------------------------
    def _run(self, conn: Any, sql: str, params: Sequence[Any] | None = None) -> Any:
        import httpx
        from firebolt.utils.exception import QueryTimeoutError

        cur = conn.cursor()
        first = sql.strip().split("\n", 1)[0][:120]
        try:
            cur.execute(sql, list(params) if params else None, timeout_seconds=self.query_timeout_s)
        except QueryTimeoutError as err:
            raise WarehouseError(
                f"firebolt: statement timed out after {self.query_timeout_s}s ({first}) on {self._where()}"
            ) from err
        except httpx.TransportError as err:
            raise self._fail(f"firebolt: cannot reach {self._where()} ({first})", err) from err
        except Exception as err:
            raise self._fail(f"firebolt: statement failed ({first})", err) from err
        return cur

    # ---- loads ------------------------------------------------------------------------------------------
    def _insert_arrow(self, conn: Any, table: str, data: pa.Table) -> None:
        if data.num_rows == 0:
            return
        names = data.column_names
        for name in names:
            ident(name)
        per_row_tokens = 2 * len(names) + 2
        rows_per_statement = max(1, min(self.insert_batch_rows, _TOKEN_BUDGET // per_row_tokens))
        row_sql = "(" + ",".join("?" * len(names)) + ")"
        head = f"INSERT INTO {ident(table)} ({', '.join(names)}) VALUES "
        for batch in data.to_batches(max_chunksize=rows_per_statement):
            if batch.num_rows == 0:
                continue
            columns = [_python_values(table, name, batch.column(i)) for i, name in enumerate(names)]
            params = [value for row in zip(*columns, strict=True) for value in row]
            self._run(conn, head + ",".join([row_sql] * batch.num_rows), params)


def _python_values(table: str, column: str, array: pa.Array) -> list[Any]:
    """Arrow values as Python values the SDK can format: str, int, float, bool, date, datetime,
    Decimal or None. Timezone-aware timestamps become naive UTC; non-finite floats are refused
    (a Firebolt literal cannot carry them through qmark formatting)."""
    import pyarrow as pa

    kind = array.type
    simple = (
        pa.types.is_integer(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_date(kind)
        or pa.types.is_decimal(kind)
        or (pa.types.is_timestamp(kind) and kind.tz is None)
    )
    values = array.to_pylist()
    if pa.types.is_floating(kind):
        for v in values:
            if v is not None and not math.isfinite(v):
                raise WarehouseError(
                    f"{table}.{column}: non-finite value {v!r} cannot be loaded into Firebolt"
                )
    elif pa.types.is_timestamp(kind) and kind.tz is not None:
        values = [v if v is None else v.astimezone(dt.UTC).replace(tzinfo=None) for v in values]
    elif not simple:
        raise WarehouseError(f"{table}.{column}: Arrow type {kind} is not supported by the Firebolt loader")
    return values
