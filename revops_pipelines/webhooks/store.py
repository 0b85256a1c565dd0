"""The durable event store: every accepted webhook event, written before its 2xx goes out.

One SQLite file (default ``$REVOPS_HOME/state/events.sqlite``) in WAL mode. Every write is on disk
before it is acknowledged — the store's own connections run at ``synchronous=FULL`` (COMMIT returns once
the WAL is fsynced); the receiver's :class:`GroupCommitWriter` syncs the WAL itself before answering — so
an acknowledged event survives a killed process and a power cut.

* ``events`` — one row per ``(source, event_id)`` (a duplicate delivery is acknowledged and not stored
  again), in arrival order (``seq``), with ``status``: ``received`` → ``submitted`` (the sensor emitted
  its run requests) → ``processed`` (the runs exist), or ``dead_letter`` with a ``reason``.
* nonces of the generic/Gong scheme: a nonce seen before within twice the timestamp window is a replay
  and the whole request is refused (409). The store keeps them in memory (:class:`_Nonces`), and each
  stored event keeps its request's nonce (``events.nonce``), from which a restarted store reloads the
  window — so the replay of a request that stored an event is refused across restarts too (one whose
  events were all duplicates leaves no row: replayed after a restart it is acknowledged as the
  duplicate it is, and stores nothing). A nonce lookup is a set probe instead of a
  random insert into an on-disk index, which halves the cost of a commit. One store object per file
  (the receiver is one process): a second process writing the same file would not see this one's
  nonces in memory; the ``(source, event_id)`` key still stores each event once.

:class:`GroupCommitWriter` is the one writer the receiver uses: the requests of one turn of the event
loop are committed in one transaction (group commit) and answered only once a worker thread has synced
the WAL, so no acknowledgement precedes durability and a burst costs one fsync per batch, not per event.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import json
import os
import sqlite3
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from revops_pipelines.logging import get_logger
from revops_pipelines.sqlite_store import SqliteStore

log = get_logger("webhooks")

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
        nonce TEXT, UNIQUE (source, event_id))""",
    "CREATE INDEX IF NOT EXISTS events_status_seq ON events (status, seq)",
    "DROP TABLE IF EXISTS nonces",  # before 0.x the nonces had their own indexed table (see _Nonces)
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
    payload: dict[str, Any] | None  # None when ``payload_json`` carries it
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


class _Nonces:
    """The nonces of the last :data:`NONCE_TTL_S` seconds, per source, in arrival order."""

    def __init__(self) -> None:
        self.seen: set[tuple[str, str]] = set()
        self.order: collections.deque[tuple[float, tuple[str, str]]] = collections.deque()

    def expire(self, now: float) -> None:
        cutoff = now - NONCE_TTL_S
        while self.order and self.order[0][0] < cutoff:
            self.seen.discard(self.order.popleft()[1])

    def add(self, key: tuple[str, str], at: float) -> None:
        self.seen.add(key)
        self.order.append((at, key))


class EventStore(SqliteStore):
    def __init__(self, path: str | Path | None = None):
        super().__init__(path or default_path(), _DDL)
        c = self._conn()
        if "nonce" not in {r[1] for r in c.execute("PRAGMA table_info(events)").fetchall()}:
            c.execute("ALTER TABLE events ADD COLUMN nonce TEXT")  # a file from before the column
        self._nonces: _Nonces | None = None

    def _recent_nonces(self, c: sqlite3.Connection, now: float) -> _Nonces:
        """The in-memory nonce window, loaded once from the newest events (a reverse scan by ``seq``
        that stops at the window's start)."""
        if self._nonces is None:
            nonces = _Nonces()
            cutoff = datetime.fromtimestamp(now - NONCE_TTL_S, UTC).replace(tzinfo=None).isoformat()
            recent = []
            for source, nonce, received in c.execute(
                "SELECT source, nonce, received_at FROM events ORDER BY seq DESC"
            ):
                if received < cutoff:  # received_at grows with seq (one writer stamps each commit)
                    break
                if nonce is not None:
                    recent.append(((source, nonce), received))
            for key, received in reversed(recent):
                nonces.add(key, datetime.fromisoformat(received).replace(tzinfo=UTC).timestamp())
            self._nonces = nonces
        return self._nonces

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

    def submit_many(self, subs: list[Submission], conn: sqlite3.Connection | None = None) -> list[Outcome]:
        """Record every submission in ONE transaction (durable when this returns).

        Inside the write transaction (no other writer can interleave) it looks up which nonces and
        event ids exist, decides per submission in Python, then inserts with one ``executemany`` per
        table — a handful of SQLite calls per batch, however large. ``conn``: the connection to use
        (:class:`GroupCommitWriter` passes its own, which leaves the fsync to it).
        """
        c = conn or self._conn()
        now, now_s = time.time(), _now()
        new_nonces: set[tuple[str, str]] = set()
        c.execute("BEGIN IMMEDIATE")
        try:
            nonces = self._recent_nonces(c, now)
            nonces.expire(now)
            seen_events = self._existing(
                c,
                "SELECT source, event_id FROM events WHERE source = ? AND event_id IN ({marks})",
                {(e.source, e.event_id) for s in subs for e in s.events},
            )
            outcomes, event_rows = [], []
            for sub in subs:
                out = Outcome()
                if sub.nonce is not None:
                    key = (sub.source, sub.nonce)
                    if key in nonces.seen or key in new_nonces:
                        out.replayed_nonce = True
                        outcomes.append(out)
                        continue
                    new_nonces.add(key)
                for e in sub.events:
                    if (e.source, e.event_id) in seen_events:
                        out.duplicates.append(e.event_id)
                        continue
                    seen_events.add((e.source, e.event_id))
                    out.stored.append(e.event_id)
                    payload = e.payload_json or _JSON.encode(e.payload)
                    event_rows.append(
                        (e.source, e.event_id, e.event_type, e.entity_type, e.entity_id, e.occurred_at)
                        + (payload, now_s, now_s, sub.nonce)
                    )
                outcomes.append(out)
            if event_rows:
                c.executemany(
                    "INSERT INTO events (source, event_id, event_type, entity_type, entity_id, "
                    "occurred_at, payload, received_at, updated_at, nonce) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    event_rows,
                )
            for key in new_nonces:  # before COMMIT, so no other thread's transaction can miss them
                nonces.add(key, now)
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            if self._nonces is not None:
                self._nonces.seen.difference_update(new_nonces)  # a rolled-back request may come again
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


def _settle(fut: asyncio.Future, out: Any) -> None:
    if fut.done():  # the waiter was cancelled (client went away); the row is stored all the same
        return
    if isinstance(out, BaseException):
        fut.set_exception(out)
    else:
        fut.set_result(out)


def _answer(loop: asyncio.AbstractEventLoop, fut: asyncio.Future, out: Any) -> None:
    if fut.get_loop() is loop:
        _settle(fut, out)
    else:  # a request of another event loop (thread) joined this batch
        fut.get_loop().call_soon_threadsafe(_settle, fut, out)


class GroupCommitWriter:
    """Group commit for an event loop: the inserts on the loop, the fsync off it.

    Every submission made during one turn of the loop is inserted in ONE transaction, committed by a
    dedicated connection with ``synchronous=OFF`` (the WAL frames are written to the file, not yet
    synced: a few hundred microseconds, no thread hand-off). A worker thread then fsyncs the WAL file —
    ``os.fsync`` releases the GIL, so the loop keeps reading requests meanwhile — and only when it returns
    are the submissions of that transaction answered. What arrives during the fsync waits and goes out
    in the next transaction: one fsync per batch, never an acknowledgement before its event is on disk.
    That is SQLite's own ``synchronous=FULL`` guarantee in WAL mode (the WAL is synced at each commit),
    with the sync moved off the event loop.

    Checkpoints: the writer connection never checkpoints (``wal_autocheckpoint=0``: with
    ``synchronous=OFF`` it would copy pages into the database without syncing it before the WAL is
    reused). After about :attr:`checkpoint_bytes` of commits, new commits pause until the syncs in flight
    are done and a worker thread has checkpointed (``PASSIVE``) through its own connection at
    ``synchronous=FULL`` — it syncs the WAL, copies it into the database, then syncs the database file —
    so the whole WAL is copied and the next commit restarts it from the beginning (what SQLite's own
    autocheckpoint does inside the committing writer). Up to :attr:`max_syncs` syncs run at once.
    """

    def __init__(
        self, store: EventStore, max_batch: int = 2048, checkpoint_bytes: int = 16 << 20, max_syncs: int = 1
    ):
        self.store, self.max_batch, self.checkpoint_bytes = store, max_batch, checkpoint_bytes
        self.max_syncs = max_syncs
        self.wal_path = Path(f"{store.path}-wal")
        self._conn: sqlite3.Connection | None = None
        self._pending: list[tuple[Submission, asyncio.Future]] = []
        self._scheduled = False
        self._checkpoint_state: str | None = None  # None | "due" | "running"
        self._since_checkpoint = 0  # approximate WAL bytes written since the last checkpoint
        self._syncing = 0  # syncs in flight
        self._sync_pool = concurrent.futures.ThreadPoolExecutor(max_syncs, thread_name_prefix="event-fsync")
        self.batches = self.submissions = self.checkpoints = 0
        self.commit_seconds = 0.0

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            # used from the loop's callbacks only, one at a time; not tied to the thread that opened it
            # (an app served by successive event loops, as in tests, keeps its writer)
            conn = sqlite3.connect(self.store.path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=OFF")  # this writer syncs the WAL itself (see above)
            conn.execute("PRAGMA wal_autocheckpoint=0")
            self._conn = conn
            _fsync_dir(self.wal_path.parent)  # the WAL file's directory entry, once
        return self._conn

    def submit_async(self, sub: Submission) -> asyncio.Future:
        """The future resolves (on the running loop) once ``sub`` is committed and on disk."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._pending.append((sub, fut))
        self._next(loop)
        return fut

    def _next(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._pending and not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush, loop)

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        self._scheduled = False
        if self._checkpoint_state is not None:  # no commit while a checkpoint is due or running
            self._maybe_checkpoint(loop)
            return
        if self._syncing >= self.max_syncs or not self._pending:
            return  # a sync that finishes calls _next again
        batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
        t = time.perf_counter()
        try:
            outcomes: list[Any] = self.store.submit_many([s for s, _ in batch], conn=self._connection())
        except Exception as e:  # rolled back, nothing stored: every request of the batch gets the error
            for _, fut in batch:
                _answer(loop, fut, e)
            self._next(loop)
            return
        # ~1 kB of index and page overhead per event besides its payload (measured: ~1.5 kB of WAL each)
        self._since_checkpoint += sum(len(e.payload_json or "") + 1000 for s, _ in batch for e in s.events)
        self._syncing += 1
        done = loop.run_in_executor(self._sync_pool, self._sync)
        done.add_done_callback(lambda f: self._synced(loop, batch, outcomes, f, t))

    def _sync(self) -> None:
        fd = os.open(self.wal_path, os.O_RDONLY)
        try:
            # what SQLite itself calls on Linux: the data, and the size if it changed, not the mtime
            # (a reused WAL keeps its size, so most syncs need no filesystem journal commit)
            os.fdatasync(fd)
        finally:
            os.close(fd)

    def _synced(
        self,
        loop: asyncio.AbstractEventLoop,
        batch: list[tuple[Submission, asyncio.Future]],
        outcomes: list[Any],
        done: asyncio.Future,
        started: float,
    ) -> None:
        self._syncing -= 1
        err = done.exception()
        if err is None:
            self.commit_seconds += time.perf_counter() - started
            self.batches += 1
            self.submissions += len(batch)
        for (_, fut), out in zip(batch, outcomes, strict=True):
            # not known to be on disk: an error (500), and the sender's retry is acknowledged as a duplicate
            _answer(loop, fut, err if err is not None else out)
        if self._since_checkpoint > self.checkpoint_bytes and self._checkpoint_state is None:
            self._checkpoint_state = "due"
        if self._checkpoint_state is not None:
            self._maybe_checkpoint(loop)
        else:
            self._next(loop)

    def _maybe_checkpoint(self, loop: asyncio.AbstractEventLoop) -> None:
        """Once the syncs in flight are done, checkpoint with no commit of ours running alongside, so
        it can copy the whole WAL and the next commit restarts it from the beginning."""
        if self._checkpoint_state != "due" or self._syncing:
            return
        self._checkpoint_state = "running"
        done = loop.run_in_executor(self._sync_pool, self._checkpoint)
        done.add_done_callback(lambda f: self._checkpointed(loop, f))

    def _checkpoint(self) -> None:
        self.store._conn().execute("PRAGMA wal_checkpoint(PASSIVE)")  # this thread's FULL connection

    def _checkpointed(self, loop: asyncio.AbstractEventLoop, done: asyncio.Future) -> None:
        self._checkpoint_state = None
        if done.exception() is None:
            self.checkpoints += 1
            self._since_checkpoint = 0
        else:  # e.g. busy: the WAL only grows a little longer; try again after more commits
            self._since_checkpoint //= 2
            log.warning(f"event store checkpoint failed: {done.exception()}")
        self._next(loop)

    def close(self) -> None:
        self._sync_pool.shutdown(wait=True)
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
