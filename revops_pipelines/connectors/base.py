"""What every source connector shares: errors that name the source, a request budget (rate limiter),
retries with backoff, per-run request statistics, a persisted checkpoint store, and the base of the
connector resources (:class:`ConnectorResource`: mode, state folder, retry settings, the shared
limiter and how a client is opened).

Nothing here imports an HTTP library; the vendor modules do, inside their clients.
"""

import json
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import dagster as dg
from pydantic import ConfigDict, Field

from revops_pipelines.errors import ConfigurationError, RevOpsError

if TYPE_CHECKING:
    import sqlite3  # imported when a store first opens (not while the definitions load)


class SourceError(RevOpsError):
    """A source connector failed; the message starts with the source's name."""

    def __init__(self, source: str, message: str):
        self.source = source
        super().__init__(f"{source}: {message}")


class AuthenticationFailed(SourceError):
    """The source rejected our credentials (HTTP 401/403). Never retried."""


class BudgetExhausted(SourceError):
    """The daily request budget is spent; the run stops and resumes from its checkpoint later."""


class SourceUnavailable(SourceError):
    """A request still failed after every retry (5xx, timeouts, 429s, unreadable bodies)."""


class TransientError(Exception):
    """Raised inside a request attempt to ask for a retry; ``retry_after`` in seconds if the server said."""

    def __init__(self, reason: str, retry_after: float | None = None, kind: str = "other"):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.kind = kind  # "429" | "5xx" | "timeout" | "body" | "other"


@dataclass
class RequestStats:
    """Counted per run and reported as asset metadata."""

    requests: int = 0
    retries: int = 0
    http_429: int = 0
    http_5xx: int = 0
    timeouts: int = 0
    bad_bodies: int = 0
    waited_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


class RateLimiter:
    """Client-side budget: at most ``per_second`` request starts per second (evenly spaced, with a
    small safety margin so server-side sliding windows never see one too many) and at most
    ``per_day`` per UTC day. A 429's ``Retry-After`` pauses every user of the limiter.

    Thread-safe; one instance is shared by every asset of a run that talks to the same account
    (see :func:`shared_limiter`). The daily count can be persisted through ``on_count`` so a new
    run on the same day continues from what earlier runs spent.
    """

    def __init__(
        self,
        source: str,
        per_second: float,
        per_day: int,
        *,
        margin: float = 0.03,
        used_today: int = 0,
        day: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        today: Callable[[], str] = _today,
        on_count: Callable[[str, int], None] | None = None,
    ):
        if per_second <= 0 or per_day <= 0:
            raise ValueError("per_second and per_day must be positive")
        self.source = source
        self.per_second = per_second
        self.per_day = per_day
        self.interval = (1.0 / per_second) * (1.0 + margin)
        self._clock, self._sleep, self._today = clock, sleep, today
        self._lock = threading.Lock()
        self._next_at = 0.0
        self._paused_until = 0.0
        self.day = day or today()
        self.used_today = used_today if self.day == today() else 0
        self._on_count = on_count

    def acquire(self, stats: RequestStats | None = None) -> None:
        """Block until a request may start; raise :class:`BudgetExhausted` when the day's budget is spent."""
        with self._lock:
            day = self._today()
            if day != self.day:
                self.day, self.used_today = day, 0
            if self.used_today >= self.per_day:
                raise BudgetExhausted(
                    self.source,
                    f"daily request budget of {self.per_day} is spent ({self.used_today} requests today, "
                    f"UTC {self.day}); stopping cleanly — the next run resumes from the checkpoint",
                )
            now = self._clock()
            start = max(now, self._next_at, self._paused_until)
            self._next_at = start + self.interval
            self.used_today += 1
            used, day = self.used_today, self.day
        if self._on_count:
            self._on_count(day, used)
        wait = start - now
        if wait > 0:
            if stats is not None:
                stats.waited_s += wait
            self._sleep(wait)

    def pause(self, seconds: float) -> None:
        """The server asked everyone to wait (429 Retry-After)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)


_LIMITERS: dict[str, RateLimiter] = {}
_LIMITERS_LOCK = threading.Lock()


def shared_limiter(key: str, factory: Callable[[], RateLimiter]) -> RateLimiter:
    """One limiter per ``key`` (source + account) in this process, so all assets of a run share it."""
    with _LIMITERS_LOCK:
        lim = _LIMITERS.get(key)
        if lim is None:
            lim = _LIMITERS[key] = factory()
        return lim


@dataclass(frozen=True)
class RetryPolicy:
    """Retries for transient failures: exponential backoff with jitter, ``Retry-After`` honoured."""

    max_attempts: int = 6
    backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    max_retry_after_s: float = 120.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after_s)
        base = min(self.backoff_s * (2 ** (attempt - 1)), self.max_backoff_s)
        return base * (0.5 + random.random() / 2)


def call_with_retries(
    source: str,
    what: str,
    attempt_fn: Callable[[], Any],
    *,
    limiter: RateLimiter,
    policy: RetryPolicy,
    stats: RequestStats,
    sleep: Callable[[float], None] = time.sleep,
) -> Any:
    """Run ``attempt_fn`` (one HTTP request) under the limiter, retrying :class:`TransientError`."""
    last: TransientError | None = None
    for attempt in range(1, policy.max_attempts + 1):
        limiter.acquire(stats)
        stats.requests += 1
        try:
            return attempt_fn()
        except TransientError as e:
            last = e
            if e.kind == "429":
                stats.http_429 += 1
            elif e.kind == "5xx":
                stats.http_5xx += 1
            elif e.kind == "timeout":
                stats.timeouts += 1
            elif e.kind == "body":
                stats.bad_bodies += 1
            if attempt == policy.max_attempts:
                break
            stats.retries += 1
            delay = policy.delay(attempt, e.retry_after)
            if e.kind == "429":
                limiter.pause(delay)  # everyone sharing the limiter waits, not just this caller
            else:
                stats.waited_s += delay
                sleep(delay)
    raise SourceUnavailable(
        source,
        f"{what} failed after {policy.max_attempts} attempts; last error: {last.reason if last else '?'}",
    )


@dataclass
class StateStore:
    """Connector state (checkpoints, budget counters) as one small JSON document per source under
    ``$REVOPS_HOME/state/connectors``. Writes are atomic (temp file + rename), so a run killed at any
    moment leaves either the old or the new state, never half of one.

    The document is rewritten whole on every save, so it must only hold what does not grow with the
    records synced (cursors, high-water marks, counters); per-record progress belongs in a
    :class:`KeyedStore`. ``bytes_written`` / ``last_save_bytes`` count what the saves wrote."""

    root: Path
    name: str
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    bytes_written: int = field(default=0, init=False, repr=False)
    last_save_bytes: int = field(default=0, init=False, repr=False)

    @property
    def path(self) -> Path:
        return Path(self.root) / f"{self.name}.json"

    def load(self) -> dict[str, Any]:
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}

    def save(self, state: dict[str, Any]) -> None:
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
            data = json.dumps(state, sort_keys=True, indent=1).encode("utf-8")
            tmp.write_bytes(data)
            os.replace(tmp, self.path)
            self.last_save_bytes = len(data)
            self.bytes_written += len(data)

    def update(self, key: str, value: Any) -> None:
        state = self.load()
        state[key] = value
        self.save(state)


class KeyedStore:
    """Per-record connector progress (e.g. Gong's pending call ids) as rows of a SQLite file next to
    the checkpoint (``<root>/<name>.sqlite``): key → small JSON entry, in insertion order.

    Each :meth:`apply` is one transaction touching only the rows it is given, so a checkpoint costs
    what the page or batch changed, not what was synced before (the whole-document
    :class:`StateStore` would rewrite every entry each time). A run killed at any moment leaves each
    transaction either applied or not. ``bytes_written`` / ``last_apply_bytes`` count the keys and
    entries written (the payload, not SQLite's page overhead)."""

    def __init__(self, root: Path | str, name: str):
        self.path = Path(root) / f"{name}.sqlite"
        self._conn: sqlite3.Connection | None = None
        self.bytes_written = 0
        self.last_apply_bytes = 0

    def _db(self) -> "sqlite3.Connection":
        if self._conn is None:
            import sqlite3

            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a killed process loses nothing
            conn.execute(
                "CREATE TABLE IF NOT EXISTS entries "
                "(seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE, entry TEXT NOT NULL)"
            )
            self._conn = conn
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __len__(self) -> int:
        return self._db().execute("SELECT COUNT(*) FROM entries").fetchone()[0]

    def present(self, keys: list[str]) -> set[str]:
        """The ``keys`` that have an entry."""
        return set(self.get_many(keys))

    def get_many(self, keys: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        db = self._db()
        for lo in range(0, len(keys), 500):
            chunk = keys[lo : lo + 500]
            marks = ",".join("?" * len(chunk))
            for k, e in db.execute(f"SELECT key, entry FROM entries WHERE key IN ({marks})", chunk):
                out[k] = json.loads(e)
        return out

    def items(self) -> Iterator[tuple[str, Any]]:
        """Every entry, oldest first (read in one go: the caller may :meth:`apply` while iterating)."""
        rows = self._db().execute("SELECT key, entry FROM entries ORDER BY seq").fetchall()
        for k, e in rows:
            yield k, json.loads(e)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.items())

    def apply(self, put: dict[str, Any] | None = None, delete: list[str] | tuple[str, ...] = ()) -> None:
        """Upsert ``put`` (an existing key keeps its place) and delete ``delete``, in one transaction."""
        rows = [(k, json.dumps(v, sort_keys=True)) for k, v in (put or {}).items()]
        dels = [(k,) for k in delete]
        if not rows and not dels:
            self.last_apply_bytes = 0
            return
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                "INSERT INTO entries (key, entry) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET entry = excluded.entry",
                rows,
            )
            db.executemany("DELETE FROM entries WHERE key = ?", dels)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        n = sum(len(k) + len(e) for k, e in rows) + sum(len(k) for (k,) in dels)
        self.last_apply_bytes = n
        self.bytes_written += n


def quarantine_row(record: Any, reason: str, **key: Any) -> dict[str, Any]:
    """A record that could not be loaded, as a row of the source's quarantine table: its ``key``
    columns, the reason, the record as received (JSON, at most 10,000 characters) and when (UTC)."""
    return {
        **key,
        "reason": reason,
        "raw": json.dumps(record)[:10_000] if record is not None else None,
        "quarantined_at": datetime.now(UTC).isoformat(),
    }


def screen(
    records: list[dict], reason_of: Callable[[dict], str | None], key_of: Callable[[dict], dict[str, Any]]
) -> tuple[list[dict], list[dict[str, Any]]]:
    """``records`` split into the valid ones and quarantine rows for the others (``reason_of`` says
    why a record is not valid, ``None`` when it is; ``key_of`` gives a row's key columns)."""
    good, bad = [], []
    for rec in records:
        reason = reason_of(rec)
        if reason:
            bad.append(quarantine_row(rec, reason, **key_of(rec)))
        else:
            good.append(rec)
    return good, bad


@dataclass(frozen=True)
class SampleWorld:
    """The generated world a sample-mode resource serves through its loopback stand-in."""

    root: Path
    manifest: dict[str, Any]
    account: str  # names the checkpoint and the limiter; changes when the world is regenerated


class ConnectorResource(dg.ConfigurableResource):
    """What the Gong, Salesforce and HubSpot resources share: live or sample mode, the state folder,
    timeouts and retries, one rate limiter per account and process, and the opening of ``client()``.

    A vendor resource adds its own fields (credentials, URLs, its rate and daily budget) and sets the
    class variables below; field names, defaults and descriptions are part of the run config.
    """

    # validators are built when a class is first instantiated: never for this base (~0.7 ms of
    # loading the definitions); a vendor resource's on its first instance, as before
    model_config = ConfigDict(defer_build=True)

    mode: str = Field(default="sample", description="'sample' (loopback stand-in) or 'live'.")
    sample_path: str | None = None
    state_dir: str = Field(description="Folder of connector state.")
    timeout_s: float = Field(default=30.0, gt=0)
    max_attempts: int = Field(default=6, ge=1)
    backoff_s: float = Field(default=0.5, ge=0)

    source: ClassVar[str]
    rate_field: ClassVar[str] = "requests_per_second"  # the field holding requests per second
    limiter_key: ClassVar[str] = "{source}:{account}:{per_second}"  # what makes two limiters one
    persist_budget: ClassVar[bool] = False  # whether the day's request count survives the process
    # live mode needs every one of these fields set; else ConfigurationError(setting, message)
    live_credentials: ClassVar[tuple[str, ...]] = ()
    missing_credentials: ClassVar[tuple[str, str]] = ("", "")

    def _state(self, name: str) -> StateStore:
        return StateStore(Path(self.state_dir), name)

    def _limiter(self, account: str) -> RateLimiter:
        """The process-wide limiter of ``account`` at this resource's rate and daily budget."""
        per_second, per_day = getattr(self, self.rate_field), self.daily_budget
        key = self.limiter_key.format(
            source=self.source, account=account, per_second=per_second, per_day=per_day
        )
        if not self.persist_budget:
            return shared_limiter(key, lambda: RateLimiter(self.source, per_second, per_day))
        budget = self._state(f"{account}.budget")
        saved = budget.load()

        def factory() -> RateLimiter:
            return RateLimiter(
                self.source,
                per_second,
                per_day,
                used_today=int(saved.get("used", 0)),
                day=saved.get("day"),
                on_count=lambda day, used: budget.save({"day": day, "used": used}),
            )

        return shared_limiter(key, factory)

    def _transport(self, account: str, stats: RequestStats | None) -> dict[str, Any]:
        """The keyword arguments every vendor client takes: limiter, retries, timeout, statistics."""
        return {
            "limiter": self._limiter(account),
            "retry": RetryPolicy(max_attempts=self.max_attempts, backoff_s=self.backoff_s),
            "timeout_s": self.timeout_s,
            "stats": stats,
        }

    def _world(self) -> SampleWorld | None:
        """How ``client()`` opens: ``None`` in live mode (once the live credentials are known to be
        set), else the sample world at ``sample_path``; a wrong mode or a missing path fails here."""
        if self.mode == "live":
            if not all(getattr(self, name) for name in self.live_credentials):
                raise ConfigurationError(*self.missing_credentials)
            return None
        if self.mode != "sample":
            raise ConfigurationError(f"{self.source}.mode", f"must be 'sample' or 'live', got {self.mode!r}")
        if not self.sample_path:
            raise ConfigurationError(
                f"{self.source}.sample_path", "sample mode needs the sample world folder"
            )
        root = Path(self.sample_path)
        manifest = json.loads((root / "manifest.json").read_text())
        # the generator version too: a regenerated world starts from a fresh checkpoint (merges make it safe)
        account = f"{self.source}-sample-{manifest['seed']}-{manifest['accounts']}-v{manifest.get('generator_version', 0)}"
        return SampleWorld(root, manifest, account)
