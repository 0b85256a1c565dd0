"""One SQLite plumbing for the runtime stores (agent state, flow state): a file under
``$REVOPS_HOME/state``, WAL journal, one connection per thread, autocommit (callers take explicit
``BEGIN IMMEDIATE`` transactions where they read-modify-write)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path


class SqliteStore:
    def __init__(self, path: str | Path, ddl: Iterable[str]):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        c = self._conn()
        c.execute("PRAGMA journal_mode=WAL")
        for statement in ddl:
            c.execute(statement)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self._local.conn = conn
        return conn
