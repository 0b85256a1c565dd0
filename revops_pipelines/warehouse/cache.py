"""Read-query cache, keyed by normalised SQL + parameters + the version tokens of the tables read.

Every write through the warehouse resource (``merge``, ``replace_where``, a writing ``execute``,
migrations) gives the written table a new random token in ``_revops_table_versions`` in the same
transaction (DuckDB) or right after the statement (Firebolt). A lookup reads the current tokens
first (one small query), so an entry computed before a write can never be returned after it —
from this process or any other writing the same warehouse. Hits, misses and evictions are counted.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from revops_pipelines.errors import WarehouseError
from revops_pipelines.warehouse.schema import table
from revops_pipelines.warehouse.sqltext import mask_sql, normalise, statements

if TYPE_CHECKING:
    import pandas as pd

    from revops_pipelines.warehouse.base import Warehouse

TABLE_VERSIONS = table(
    "_revops_table_versions",
    [("table_name", "TEXT"), ("token", "TEXT", False), ("changed_at", "TIMESTAMP", False)],
    keys=("table_name",),
    kind="dimension",
    description="A fresh random token per table on every write (cache invalidation, freshness).",
    group="warehouse",
)

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_READ_START = re.compile(r"^\s*(SELECT|WITH|VALUES|\()", re.I)


def new_token() -> str:
    return uuid.uuid4().hex


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    evictions: int = 0
    entries: int = 0

    @property
    def hit_rate(self) -> float:
        n = self.hits + self.misses
        return self.hits / n if n else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "hit_rate": round(self.hit_rate, 4)}


def table_tokens(wh: Warehouse) -> dict[str, tuple[str, Any]]:
    """``{table: (token, changed_at)}`` for every table written through the resource."""
    wh.execute(TABLE_VERSIONS.ddl(wh.dialect))
    df = wh.query(f"SELECT table_name, token, changed_at FROM {TABLE_VERSIONS.name}")
    return {r.table_name: (r.token, r.changed_at) for r in df.itertuples(index=False)}


class QueryCache:
    """An in-process LRU of read-query results in front of one warehouse resource."""

    def __init__(self, warehouse: Warehouse, max_entries: int = 256):
        if max_entries < 1:
            raise ValueError("max_entries must be >= 1")
        self.warehouse = warehouse
        self.max_entries = max_entries
        self.stats = CacheStats()
        self._entries: OrderedDict[str, pd.DataFrame] = OrderedDict()
        self._lock = threading.Lock()

    def key(self, sql: str, params: Sequence[Any] | None, tokens: dict[str, tuple[str, Any]]) -> str:
        norm = normalise(sql)
        words = {w.lower() for w in _WORD.findall(mask_sql(norm))}
        versions = sorted((t, tok) for t, (tok, _) in tokens.items() if t.lower() in words)
        payload = json.dumps(
            [self.warehouse.target_id(), norm, list(params or []), versions], default=str, sort_keys=True
        )
        return hashlib.sha256(payload.encode()).hexdigest()

    def query(self, sql: str, params: Sequence[Any] | None = None) -> pd.DataFrame:
        """The result of the read query ``sql`` (a copy), from the cache when nothing it reads has
        been written since it was computed."""
        parts = statements(sql)
        if len(parts) != 1 or not _READ_START.match(mask_sql(parts[0])):
            raise WarehouseError("the query cache serves single read statements (SELECT / WITH) only")
        key = self.key(sql, params, table_tokens(self.warehouse))
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None:
                self._entries.move_to_end(key)
                self.stats.hits += 1
                return hit.copy()
            self.stats.misses += 1
        df = self.warehouse.query(sql, params)
        with self._lock:
            self._entries[key] = df.copy()
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
                self.stats.evictions += 1
            self.stats.entries = len(self._entries)
        return df

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.stats.entries = 0
