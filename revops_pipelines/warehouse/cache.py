"""Read-query cache, keyed by normalised SQL + parameters + the version tokens of the tables read.

Every write through the warehouse resource (``merge``, ``replace_where``, a writing ``execute``,
migrations) gives the written table a new random token in ``_revops_table_versions`` in the same
transaction (DuckDB) or right after the statement (Firebolt). A lookup reads the current tokens
first (one small query), so an entry computed before a write can never be returned after it —
from this process or any other writing the same warehouse. Hits, misses and evictions are counted.

With ``store_dir`` the results are also kept as Arrow IPC files in that folder (the Data Agent uses
``$REVOPS_HOME/cache/queries``), so every process on the machine shares them: the key holds the
warehouse's identity and the version tokens read from the warehouse itself, so another process
finds an entry only while nothing it read has been written since. Files are written atomically
(temporary file, then rename); the oldest are removed beyond ``max_files`` or ``max_bytes``, and a
result larger than a quarter of ``max_bytes`` stays in memory only.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
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
    file_hits: int = 0  # hits served from the shared file store (counted in ``hits`` too)

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


class FileStore:
    """Query results as Arrow IPC files named by cache key, shared by every process using ``root``."""

    def __init__(self, root: str | Path, max_files: int = 4096, max_bytes: int = 256 * 2**20):
        if max_files < 1 or max_bytes < 1:
            raise ValueError("max_files and max_bytes must be >= 1")
        self.root = Path(root)
        self.max_files = max_files
        self.max_bytes = max_bytes
        self._puts = 0
        self._bytes_since_prune = 0
        self._prune_every = max(1, max_files // 64)  # listing the folder on every put would cost O(files)

    def _path(self, key: str) -> Path:
        if not re.fullmatch(r"[0-9a-f]{64}", key):
            raise ValueError(f"not a cache key: {key!r}")
        return self.root / f"{key}.arrow"

    def get(self, key: str) -> pd.DataFrame | None:
        import pyarrow as pa

        path = self._path(key)
        try:
            with pa.memory_map(str(path)) as src:
                table = pa.ipc.open_file(src).read_all()
        except FileNotFoundError:
            return None
        except (OSError, pa.ArrowInvalid):  # a damaged file is a miss, and goes
            path.unlink(missing_ok=True)
            return None
        return table.to_pandas()

    def put(self, key: str, df: pd.DataFrame) -> bool:
        """Store ``df`` under ``key``; False when its values cannot be stored as Arrow (then the
        entry stays in memory only)."""
        import pyarrow as pa

        try:
            table = pa.Table.from_pandas(df, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
            return False
        if table.nbytes > self.max_bytes // 4:  # one result may not crowd out the rest
            return False
        self.root.mkdir(parents=True, exist_ok=True)
        path = self._path(key)
        tmp = path.with_suffix(f".{uuid.uuid4().hex[:8]}.tmp")
        try:
            with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
                writer.write_table(table)
            os.replace(tmp, path)  # atomic: a reader sees the whole file or none
        finally:
            tmp.unlink(missing_ok=True)
        self._puts += 1
        self._bytes_since_prune += table.nbytes
        if self._puts % self._prune_every == 0 or self._bytes_since_prune > self.max_bytes // 8:
            self._prune()
            self._bytes_since_prune = 0
        return True

    def _prune(self) -> None:
        """Remove the oldest files beyond ``max_files`` or ``max_bytes`` in all (checked every few
        puts or an eighth of ``max_bytes`` written, so the folder can briefly hold a little more)."""
        aged = []
        for f in self.root.glob("*.arrow"):
            try:
                st = f.stat()
            except FileNotFoundError:  # removed by another process meanwhile
                continue
            aged.append((st.st_mtime, st.st_size, f))
        aged.sort()
        total = sum(size for _, size, _ in aged)
        while aged and (len(aged) > self.max_files or total > self.max_bytes):
            _, size, f = aged.pop(0)
            f.unlink(missing_ok=True)
            total -= size

    def clear(self) -> None:
        for f in self.root.glob("*.arrow"):
            f.unlink(missing_ok=True)


class QueryCache:
    """An in-process LRU of read-query results in front of one warehouse resource, optionally
    backed by a :class:`FileStore` that other processes share (``store_dir``)."""

    def __init__(
        self,
        warehouse: Warehouse,
        max_entries: int = 256,
        store_dir: str | Path | None = None,
        max_files: int = 4096,
        max_bytes: int = 256 * 2**20,
    ):
        if max_entries < 1:
            raise ValueError("max_entries must be >= 1")
        self.warehouse = warehouse
        self.max_entries = max_entries
        self.stats = CacheStats()
        self.store = FileStore(store_dir, max_files, max_bytes) if store_dir is not None else None
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
        shared = self.store.get(key) if self.store is not None else None
        if shared is not None:
            with self._lock:
                self.stats.hits += 1
                self.stats.file_hits += 1
                self._remember(key, shared)
            return shared.copy()
        with self._lock:
            self.stats.misses += 1
        df = self.warehouse.query(sql, params)
        if self.store is not None:
            self.store.put(key, df)
        with self._lock:
            self._remember(key, df)
        return df

    def _remember(self, key: str, df: pd.DataFrame) -> None:
        self._entries[key] = df.copy()
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
            self.stats.evictions += 1
        self.stats.entries = len(self._entries)

    def clear(self) -> None:
        """Forget every entry, in memory and in the shared file store."""
        with self._lock:
            self._entries.clear()
            self.stats.entries = 0
        if self.store is not None:
            self.store.clear()
