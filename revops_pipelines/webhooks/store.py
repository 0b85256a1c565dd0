"""The durable event store: every accepted webhook event, written before its 2xx goes out.

One SQLite file (default ``$REVOPS_HOME/state/events.sqlite``) in WAL mode with ``synchronous=FULL``:
a transaction that has returned from COMMIT is on disk (fsynced), so an acknowledged event survives a
killed process and a power cut.

* ``events`` — one row per ``(source, event_id)`` (a duplicate delivery is acknowledged and not stored
  again), in arrival order (``seq``), with ``status``: ``received`` → ``submitted`` (the sensor emitted
  its run requests) → ``processed`` (the runs exist), or ``dead_letter`` with a ``reason``.
* ``nonces`` — nonces of the generic/Gong scheme, per source, kept for twice the timestamp window;
  a nonce seen before is a replay and the whole request is refused.

:class:`GroupCommitWriter` is the one writer the receiver uses: requests queue their events, a thread
commits everything queued in one transaction (group commit) and only then resolves each request's
future, so no acknowledgement precedes durability and a burst costs one fsync per batch, not per event.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import queue
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from revops_pipelines.sqlite_store import SqliteStore

STATUSES = ("received", "submitted", "processed", "dead_letter")
NONCE_TTL_S = 600  # twice the signature window: an older nonce's timestamp is refused anyway
_JSON = json.JSONEncoder(separators=(",", ":"))

_DDL = (
    """CREATE TABLE IF NOT EXISTS events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        source TEXT NOT NULL, event_id TEXT NOT NULL, event_type TEXT NOT NULL,
        entity_type TEXT, entity_id TEXT, occurred_at TEXT, payload TEXT NOT NULL,
        received_at TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'received', reason TEXT,
        run_keys TEXT, run_ids TEXT, attempts INTEGER NOT NULL DEFAULT 0, updated_at TEXT NOT NULL,
        UNIQUE (source, event_id))""",
    "CREATE INDEX IF NOT EXISTS events_status_seq ON events (status, seq)",
    """CREATE TABLE IF NOT EXISTS nonces (
        source TEXT NOT NULL, nonce TEXT NOT NULL, seen_at REAL NOT NULL, PRIMARY KEY (source, nonce))""",
)


def _now() -> str:
    return datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")


def default_path() -> Path:
    from revops_pipelines.settings import load_settings

    return load_settings().events_path


@dataclass(frozen=True)
class NewEvent:
    source: str
    event_id: str
    event_type: str
    entity_type: str | None
    entity_id: str | None
    occurred_at: str | None
    payload: dict[str, Any]
    payload_json: str | None = None  # the payload as received, when it is stored verbatim


@dataclass
class Submission:
    """One request's events (a HubSpot delivery may carry up to 100) and its nonce, if any."""

    source: str
    events: list[NewEvent]
    nonce: str | None = None


@dataclass
class Outcome:
    replayed_nonce: bool = False
    stored: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class EventRecord:
    seq: int
    source: str
    event_id: str
    event_type: str
    entity_type: str | None
    entity_id: str | None
    occurred_at: str | None
    payload: dict[str, Any]
    received_at: str
    status: str
    reason: str | None
    run_keys: list[str]
    run_ids: list[str]
    attempts: int
    updated_at: str

    @property
    def key(self) -> str:
        return f"{self.source}:{self.event_id}"


_COLUMNS = (
    "seq, source, event_id, event_type, entity_type, entity_id, occurred_at, payload, received_at, "
    "status, reason, run_keys, run_ids, attempts, updated_at"
)


def _record(row: tuple) -> EventRecord:
    values = list(row)
    values[7] = json.loads(values[7])
    values[11] = json.loads(values[11]) if values[11] else []
    values[12] = json.loads(values[12]) if values[12] else []
    return EventRecord(*values)


class EventStore(SqliteStore):
    def __init__(self, path: str | Path | None = None):
        super().__init__(path or default_path(), _DDL)
        self._last_prune = 0.0

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = super()._conn()
            conn.execute("PRAGMA synchronous=FULL")  # per connection: COMMIT returns once fsynced
        return conn

    # ---- writes -------------------------------------------------------------------------------------
    def _existing(self, c: sqlite3.Connection, sql: str, keys: set[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which of ``(source, value)`` keys are already stored (``sql`` selects source, value)."""
        found: set[tuple[str, str]] = set()
        by_source: dict[str, list[str]] = {}
        for source, value in keys:
            by_source.setdefault(source, []).append(value)
        for source, values in by_source.items():
            for i in range(0, len(values), 900):
                chunk = values[i : i + 900]
                marks = ", ".join("?" for _ in chunk)
                found |= set(c.execute(sql.format(marks=marks), (source, *chunk)).fetchall())
        return found

    def submit_many(self, subs: list[Submission]) -> list[Outcome]:
        """Record every submission in ONE transaction (durable when this returns).

        Inside the write transaction (no other writer can interleave) it looks up which nonces and
        event ids exist, decides per submission in Python, then inserts with one ``executemany`` per
        table — a handful of SQLite calls per batch, however large.
        """
        c = self._conn()
        now, now_s = time.time(), _now()
        c.execute("BEGIN IMMEDIATE")
        try:
            seen_nonces = self._existing(
                c,
                "SELECT source, nonce FROM nonces WHERE source = ? AND nonce IN ({marks})",
                {(s.source, s.nonce) for s in subs if s.nonce is not None},
            )
            seen_events = self._existing(
                c,
                "SELECT source, event_id FROM events WHERE source = ? AND event_id IN ({marks})",
                {(e.source, e.event_id) for s in subs for e in s.events},
            )
            outcomes, nonce_rows, event_rows = [], [], []
            for sub in subs:
                out = Outcome()
                if sub.nonce is not None:
                    if (sub.source, sub.nonce) in seen_nonces:
                        out.replayed_nonce = True
                        outcomes.append(out)
                        continue
                    seen_nonces.add((sub.source, sub.nonce))
                    nonce_rows.append((sub.source, sub.nonce, now))
                for e in sub.events:
                    if (e.source, e.event_id) in seen_events:
                        out.duplicates.append(e.event_id)
                        continue
                    seen_events.add((e.source, e.event_id))
                    out.stored.append(e.event_id)
                    payload = e.payload_json or _JSON.encode(e.payload)
                    event_rows.append(
                        (e.source, e.event_id, e.event_type, e.entity_type, e.entity_id, e.occurred_at)
                        + (payload, now_s, now_s)
                    )
                outcomes.append(out)
            if nonce_rows:
                c.executemany("INSERT INTO nonces (source, nonce, seen_at) VALUES (?, ?, ?)", nonce_rows)
            if event_rows:
                c.executemany(
                    "INSERT INTO events (source, event_id, event_type, entity_type, entity_id, "
                    "occurred_at, payload, received_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    event_rows,
                )
            if now - self._last_prune > 60:
                c.execute("DELETE FROM nonces WHERE seen_at < ?", (now - NONCE_TTL_S,))
                self._last_prune = now
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise
        return outcomes

    def submit(self, sub: Submission) -> Outcome:
        return self.submit_many([sub])[0]

    def _set(self, seq: int, **values: Any) -> None:
        cols = ", ".join(f"{k} = ?" for k in values)  # keys are this module's literals, never input
        self._conn().execute(
            f"UPDATE events SET {cols}, updated_at = ? WHERE seq = ?", (*values.values(), _now(), seq)
        )

    def mark_submitted(self, seq: int, run_keys: list[str]) -> None:
        self._set(seq, status="submitted", run_keys=json.dumps(run_keys), reason=None)

    def mark_processed(self, seq: int, run_ids: list[str]) -> None:
        self._set(seq, status="processed", run_ids=json.dumps(run_ids), reason=None)

    def dead_letter(self, seq: int, reason: str) -> None:
        self._set(seq, status="dead_letter", reason=reason[:1000])

    def replay(self, seq: int) -> None:
        """Back to ``received`` (the sensor picks it up again); only dead-lettered or stuck events."""
        c = self._conn()
        cur = c.execute(
            "UPDATE events SET status = 'received', reason = NULL, attempts = attempts + 1, updated_at = ? "
            "WHERE seq = ? AND status IN ('dead_letter', 'submitted')",
            (_now(), seq),
        )
        if cur.rowcount == 0:
            rec = self.get(seq)
            what = "no such event" if rec is None else f"event is {rec.status}"
            raise ValueError(f"cannot replay event {seq}: {what} (only dead_letter or submitted events)")

    # ---- reads --------------------------------------------------------------------------------------
    def list(self, status: str | None = None, after_seq: int = 0, limit: int = 100) -> list[EventRecord]:
        """Events in arrival order (``seq``), optionally of one status."""
        if status is not None and status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
        sql = f"SELECT {_COLUMNS} FROM events WHERE seq > ?"
        args: list[Any] = [after_seq]
        if status:
            sql += " AND status = ?"
            args.append(status)
        rows = self._conn().execute(sql + " ORDER BY seq LIMIT ?", (*args, limit)).fetchall()
        return [_record(r) for r in rows]

    def get(self, ref: int | str) -> EventRecord | None:
        """By ``seq`` or by ``source:event_id``."""
        if isinstance(ref, int) or str(ref).isdigit():
            row = self._conn().execute(f"SELECT {_COLUMNS} FROM events WHERE seq = ?", (int(ref),)).fetchone()
        else:
            source, _, event_id = str(ref).partition(":")
            row = (
                self._conn()
                .execute(
                    f"SELECT {_COLUMNS} FROM events WHERE source = ? AND event_id = ?", (source, event_id)
                )
                .fetchone()
            )
        return _record(row) if row else None

    def counts(self) -> dict[str, int]:
        rows = self._conn().execute("SELECT status, COUNT(*) FROM events GROUP BY status").fetchall()
        return {s: n for s, n in rows}

    def event_ids(self, source: str | None = None) -> set[str]:
        sql, args = "SELECT event_id FROM events", ()
        if source:
            sql, args = sql + " WHERE source = ?", (source,)
        return {r[0] for r in self._conn().execute(sql, args).fetchall()}


def _settle(fut: Any, out: Any) -> None:
    if fut.done():  # an asyncio waiter may have been cancelled (client went away); the row is stored
        return
    if isinstance(out, BaseException):
        fut.set_exception(out)
    else:
        fut.set_result(out)


def _settle_all(pairs: list[tuple[asyncio.Future, Any]]) -> None:
    for fut, out in pairs:
        _settle(fut, out)


class GroupCommitWriter:
    """One writer thread: commits everything queued in one transaction, then resolves the futures."""

    def __init__(self, store: EventStore, max_batch: int = 512):
        self.store, self.max_batch = store, max_batch
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="event-writer", daemon=True)
        self._thread.start()
        self.batches = self.submissions = 0
        self.commit_seconds = 0.0

    def submit(self, sub: Submission) -> concurrent.futures.Future:
        fut: concurrent.futures.Future = concurrent.futures.Future()
        self._q.put((sub, fut))
        return fut

    def submit_async(self, sub: Submission) -> asyncio.Future:
        """For an event loop: the future resolves on it once ``sub`` is committed (one wake-up of the
        loop per committed batch, not per request)."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._q.put((sub, fut))
        return fut

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            batch = [item]
            while len(batch) < self.max_batch:
                try:
                    nxt = self._q.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._q.put(None)
                    break
                batch.append(nxt)
            t = time.perf_counter()
            try:
                outcomes: list[Any] = self.store.submit_many([s for s, _ in batch])
            except Exception as e:  # nothing committed: every request in the batch gets the error
                outcomes = [e] * len(batch)
            else:
                self.commit_seconds += time.perf_counter() - t
                self.batches += 1
                self.submissions += len(batch)
            by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future, Any]]] = {}
            for (_, fut), out in zip(batch, outcomes, strict=True):
                if isinstance(fut, asyncio.Future):
                    by_loop.setdefault(fut.get_loop(), []).append((fut, out))
                else:
                    _settle(fut, out)
            for loop, pairs in by_loop.items():
                loop.call_soon_threadsafe(_settle_all, pairs)

    def close(self) -> None:
        self._q.put(None)
        self._thread.join(timeout=10)
