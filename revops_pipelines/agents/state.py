"""State that survives across agent invocations, per agent and entity, in the runtime folder.

A small SQLite file (``$REVOPS_HOME/state/agent_state.sqlite`` by default) holds one JSON document per
``(agent, entity_id)`` with a version number. :meth:`AgentState.update` is a read-modify-write inside
``BEGIN IMMEDIATE``, so concurrent callers — threads or processes, e.g. parallel flow steps — serialise
on the file's write lock and no update is lost. SQLite rather than the warehouse because DuckDB allows
one writer process and Firebolt has no row locks; the state is small, local and operational. With
``REVOPS_STATE_URL`` set the same table lives in Postgres instead, shared by every process (see
:mod:`revops_pipelines.sqlite_store`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from revops_pipelines.sqlite_store import SqliteStore

_DDL = """
CREATE TABLE IF NOT EXISTS agent_state (
    agent TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (agent, entity_id)
)
"""


class AgentState(SqliteStore):
    """Versioned JSON state per (agent, entity)."""

    def __init__(self, path: str | Path, *, url: str | None = None, tenant: str | None = None):
        super().__init__(path, [_DDL], url=url, tenant=tenant)

    def get(self, agent: str, entity_id: str) -> dict[str, Any] | None:
        row = (
            self._conn()
            .execute("SELECT value FROM agent_state WHERE agent = ? AND entity_id = ?", (agent, entity_id))
            .fetchone()
        )
        return json.loads(row[0]) if row else None

    def get_many(self, agent: str, entity_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        ids = list(entity_ids)
        out: dict[str, dict[str, Any]] = {}
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            marks = ",".join("?" for _ in part)
            for eid, value in self._conn().execute(
                f"SELECT entity_id, value FROM agent_state WHERE agent = ? AND entity_id IN ({marks})",
                (agent, *part),
            ):
                out[eid] = json.loads(value)
        return out

    def update(
        self, agent: str, entity_id: str, fn: Callable[[dict[str, Any] | None], dict[str, Any]]
    ) -> dict[str, Any]:
        """Atomically replace the entity's state with ``fn(current)`` and return it."""
        c = self._conn()
        c.execute("BEGIN IMMEDIATE")
        try:
            row = c.execute(
                "SELECT value, version FROM agent_state WHERE agent = ? AND entity_id = ?", (agent, entity_id)
            ).fetchone()
            new = fn(json.loads(row[0]) if row else None)
            now = datetime.now(UTC).isoformat()
            c.execute(
                "INSERT INTO agent_state (agent, entity_id, version, value, updated_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (agent, entity_id) DO UPDATE SET version = excluded.version, "
                "value = excluded.value, updated_at = excluded.updated_at",
                (agent, entity_id, (row[1] + 1) if row else 1, json.dumps(new, default=str), now),
            )
            c.execute("COMMIT")
            return new
        except BaseException:
            c.execute("ROLLBACK")
            raise

    def put_many(self, agent: str, values: dict[str, dict[str, Any]]) -> None:
        """Write many entities' states in one transaction (batch mode)."""
        now = datetime.now(UTC).isoformat()
        c = self._conn()
        c.execute("BEGIN IMMEDIATE")
        try:
            c.executemany(
                "INSERT INTO agent_state (agent, entity_id, version, value, updated_at) VALUES (?, ?, 1, ?, ?) "
                "ON CONFLICT (agent, entity_id) DO UPDATE SET version = agent_state.version + 1, "
                "value = excluded.value, updated_at = excluded.updated_at",
                [(agent, k, json.dumps(v, default=str), now) for k, v in values.items()],
            )
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise

    def version(self, agent: str, entity_id: str) -> int:
        row = (
            self._conn()
            .execute("SELECT version FROM agent_state WHERE agent = ? AND entity_id = ?", (agent, entity_id))
            .fetchone()
        )
        return int(row[0]) if row else 0
