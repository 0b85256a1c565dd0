"""Flow state per (flow, entity), persisted across invocations, with its history.

One SQLite file beside the agent state (``<state dir>/flow_state.sqlite``). ``flow_state`` holds the
current document per entity — ``{"started_at", "steps": {step_id: {"status", "at", "due_at",
"approved", "output", "error"}}}`` — with a version; ``flow_state_history`` appends one row per status
change. :meth:`FlowState.update` reads, changes and writes the document and its history rows inside one
``BEGIN IMMEDIATE`` transaction, so concurrent invocations (threads or processes) serialise on the
write lock and never lose an update. With ``REVOPS_STATE_URL`` set (see :func:`open_state`) the same
tables live in Postgres, shared by every process, with the same guarantee.

Step statuses: ``done``, ``skipped`` (``when`` was false), ``waiting`` (its ``wait`` has not elapsed),
``awaiting_approval``, ``failed``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from revops_pipelines.sqlite_store import SqliteStore

_DDL = (
    """CREATE TABLE IF NOT EXISTS flow_state (
        flow_id TEXT NOT NULL, entity_id TEXT NOT NULL, version INTEGER NOT NULL,
        value TEXT NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (flow_id, entity_id))""",
    """CREATE TABLE IF NOT EXISTS flow_state_history (
        id INTEGER PRIMARY KEY AUTOINCREMENT, flow_id TEXT NOT NULL, entity_id TEXT NOT NULL,
        step_id TEXT NOT NULL, status TEXT NOT NULL, at TEXT NOT NULL, run_id TEXT, detail TEXT)""",
    "CREATE INDEX IF NOT EXISTS flow_state_history_fe ON flow_state_history (flow_id, entity_id)",
)


def now_iso() -> str:
    return datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="seconds")


def open_state(agents: Any = None) -> FlowState:
    """The flow state of ``agents``' tenant: the SQLite file at :func:`default_path`, or the tenant's
    schema in the Postgres database ``REVOPS_STATE_URL`` names."""
    from revops_pipelines.sqlite_store import connect_state_store

    path, tenant = _location(agents)
    return connect_state_store(FlowState, path, tenant=tenant)


def default_path(agents: Any = None) -> Path:
    """Beside the agent state: the runtime's ``state_path`` folder, else the settings' state dir."""
    return _location(agents)[0]


def _location(agents: Any = None) -> tuple[Path, str | None]:
    from revops_pipelines.tenancy import check_location

    tenant = getattr(agents, "tenant_id", None)
    if agents is not None and getattr(agents, "state_path", None):
        path = Path(agents.state_path).parent / "flow_state.sqlite"
    else:
        from revops_pipelines.settings import load_settings

        settings = load_settings(tenant=tenant)  # REVOPS_TENANT when no runtime says otherwise
        tenant, path = settings.tenant_id, settings.state_dir / "flow_state.sqlite"
    check_location("home", str(path), tenant)  # a tenant's flow state stays in its folder
    return path, tenant


class FlowState(SqliteStore):
    def __init__(self, path: str | Path, *, url: str | None = None, tenant: str | None = None):
        super().__init__(path, _DDL, url=url, tenant=tenant)

    def get(self, flow_id: str, entity_id: str) -> dict[str, Any] | None:
        row = (
            self._conn()
            .execute("SELECT value FROM flow_state WHERE flow_id = ? AND entity_id = ?", (flow_id, entity_id))
            .fetchone()
        )
        return json.loads(row[0]) if row else None

    def entities(self, flow_id: str) -> dict[str, dict[str, Any]]:
        rows = self._conn().execute(
            "SELECT entity_id, value FROM flow_state WHERE flow_id = ? ORDER BY entity_id", (flow_id,)
        )
        return {e: json.loads(v) for e, v in rows}

    def version(self, flow_id: str, entity_id: str) -> int:
        row = (
            self._conn()
            .execute(
                "SELECT version FROM flow_state WHERE flow_id = ? AND entity_id = ?", (flow_id, entity_id)
            )
            .fetchone()
        )
        return int(row[0]) if row else 0

    def update(
        self,
        flow_id: str,
        entity_id: str,
        fn: Callable[[dict[str, Any]], dict[str, Any]],
        *,
        run_id: str | None = None,
    ) -> dict[str, Any]:
        """Atomically replace the entity's document with ``fn(current)``; every step whose status
        changed gets a history row."""
        return self.update_many(flow_id, {entity_id: fn}, run_id=run_id)[entity_id]

    def update_many(
        self,
        flow_id: str,
        fns: dict[str, Callable[[dict[str, Any]], dict[str, Any]]],
        *,
        run_id: str | None = None,
    ) -> dict[str, dict[str, Any]]:
        """:meth:`update` for many entities in one ``BEGIN IMMEDIATE`` transaction (all or none): the
        flow runtime's batch path. Returns the new document per entity."""
        c = self._conn()
        c.execute("BEGIN IMMEDIATE")
        try:
            out = {eid: self._apply(c, flow_id, eid, fn, run_id) for eid, fn in fns.items()}
            c.execute("COMMIT")
            return out
        except BaseException:
            c.execute("ROLLBACK")
            raise

    def _apply(
        self,
        c: Any,
        flow_id: str,
        entity_id: str,
        fn: Callable[[dict[str, Any]], dict[str, Any]],
        run_id: str | None,
    ) -> dict[str, Any]:
        row = c.execute(
            "SELECT value, version FROM flow_state WHERE flow_id = ? AND entity_id = ?",
            (flow_id, entity_id),
        ).fetchone()
        old = json.loads(row[0]) if row else {"steps": {}}
        before = {k: (v.get("status"), v.get("approved")) for k, v in old.get("steps", {}).items()}
        new = fn(json.loads(json.dumps(old)))
        new.setdefault("started_at", now_iso())
        at = now_iso()
        c.execute(
            "INSERT INTO flow_state (flow_id, entity_id, version, value, updated_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (flow_id, entity_id) DO UPDATE SET version = excluded.version, "
            "value = excluded.value, updated_at = excluded.updated_at",
            (flow_id, entity_id, (row[1] + 1) if row else 1, json.dumps(new, default=str), at),
        )
        for step_id, st in new.get("steps", {}).items():
            if (st.get("status"), st.get("approved")) != before.get(step_id):
                status = st.get("status") or ""
                if st.get("approved") and not (before.get(step_id) or (None, None))[1]:
                    status = f"approved ({status})" if status else "approved"
                detail = {k: st[k] for k in ("due_at", "error", "approved_by") if st.get(k)}
                c.execute(
                    "INSERT INTO flow_state_history (flow_id, entity_id, step_id, status, at, run_id, detail) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (flow_id, entity_id, step_id, status, at, run_id, json.dumps(detail) if detail else None),
                )
        return new

    def prune(
        self,
        older_than: timedelta,
        *,
        flow_id: str | None = None,
        keep_latest: bool = True,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        """Retention of the state history: delete ``flow_state_history`` rows older than ``older_than``
        (of one flow, or all). With ``keep_latest`` (default) each (flow, entity, step)'s most recent row
        stays, so the last transition of every step remains queryable. The current documents are never
        deleted: an entity's document is what keeps it from starting its flow again."""
        if older_than.total_seconds() <= 0:
            raise ValueError(f"older_than must be positive, got {older_than}")
        cutoff = ((now or datetime.now(UTC).replace(tzinfo=None)) - older_than).isoformat(timespec="seconds")
        sql = "DELETE FROM flow_state_history WHERE at < ?"
        args: list[Any] = [cutoff]
        if flow_id is not None:
            sql += " AND flow_id = ?"
            args.append(flow_id)
        if keep_latest:
            sql += (
                " AND id NOT IN (SELECT MAX(id) FROM flow_state_history GROUP BY flow_id, entity_id, step_id)"
            )
        c = self._conn()
        c.execute("BEGIN IMMEDIATE")
        try:
            n = c.execute(sql, args).rowcount
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise
        return {"deleted": int(n), "cutoff": cutoff, "flow_id": flow_id, "kept_latest": keep_latest}

    def history(self, flow_id: str, entity_id: str | None = None) -> list[dict[str, Any]]:
        sql = (
            "SELECT entity_id, step_id, status, at, run_id, detail FROM flow_state_history WHERE flow_id = ?"
        )
        args: list[Any] = [flow_id]
        if entity_id is not None:
            sql += " AND entity_id = ?"
            args.append(entity_id)
        rows = self._conn().execute(sql + " ORDER BY id", args).fetchall()
        keys = ("entity_id", "step_id", "status", "at", "run_id", "detail")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def approve(self, flow_id: str, entity_id: str, step_id: str, by: str = "cli") -> dict[str, Any]:
        """Approve a human-approval step; the next invocation runs it. Raises KeyError if not awaiting."""

        def fn(doc: dict[str, Any]) -> dict[str, Any]:
            st = doc.get("steps", {}).get(step_id)
            if not st or st.get("status") != "awaiting_approval":
                raise KeyError(f"{flow_id}/{entity_id}: step {step_id!r} is not awaiting approval")
            st["approved"] = True
            st["approved_by"] = by
            return doc

        if self.get(flow_id, entity_id) is None:
            raise KeyError(f"{flow_id}/{entity_id}: no state")
        return self.update(flow_id, entity_id, fn)
