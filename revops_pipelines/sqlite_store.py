"""One plumbing for the runtime stores (agent state, flow state, webhook events).

By default a SQLite file under ``$REVOPS_HOME/state``: WAL journal, one connection per thread,
autocommit (callers take explicit ``BEGIN IMMEDIATE`` transactions where they read-modify-write).

Agent and flow state can instead live in PostgreSQL (``REVOPS_STATE_URL=postgresql://user@host:port/db``,
see :func:`connect_state_store`), so that every process — e.g. every ECS task — shares one state. The
stores' SQL is written for both dialects; the Postgres connection translates what differs:

* ``?`` placeholders become ``%s``;
* ``BEGIN IMMEDIATE`` (SQLite: take the file's write lock now) becomes ``BEGIN`` plus a
  transaction-scoped advisory lock on the store (``pg_advisory_xact_lock``), so writers of one store
  serialise exactly as on the SQLite file and a read-modify-write (a flow step's claim included) never
  loses an update or runs twice; readers do not wait (MVCC);
* ``INTEGER PRIMARY KEY AUTOINCREMENT`` in DDL becomes ``BIGSERIAL PRIMARY KEY``.

``INSERT ... ON CONFLICT ... DO UPDATE`` upserts run unchanged on both. Each tenant gets its own schema
(``revops_state`` for the default tenant, ``revops_state_<tenant>`` otherwise) and its connections'
``search_path`` names only that schema, so one tenant's statements cannot reach another's tables.
The password (in the URL or ``PGPASSWORD``) is never logged and is masked in every error raised here.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from revops_pipelines.errors import ConfigurationError, RevOpsError

POSTGRES_SCHEMES = ("postgresql", "postgres")
DEFAULT_SCHEMA = "revops_state"


class StateStoreError(RevOpsError):
    """The shared state database could not be reached or set up (the message names it, password masked)."""


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (safe to log or put in an error)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return urlunsplit((parts.scheme, f"{user}:***@{hostport}", parts.path, parts.query, parts.fragment))


def check_state_url(url: str, setting: str = "REVOPS_STATE_URL") -> str:
    """Validate a state URL (``postgresql://user@host:port/db``); the error never echoes a password."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 — raises ValueError on a non-numeric port
    except ValueError as e:
        raise ConfigurationError(setting, f"is not a valid URL ({redact_url(url)}): {e}") from None
    if parts.scheme not in POSTGRES_SCHEMES:
        raise ConfigurationError(
            setting,
            f"must be a postgresql:// URL, got scheme {parts.scheme!r} ({redact_url(url)})",
            "unset it to keep agent and flow state in SQLite files under $REVOPS_HOME/state",
        )
    if not parts.path.strip("/"):
        raise ConfigurationError(
            setting, f"names no database ({redact_url(url)})", "e.g. postgresql://revops@db:5432/revops"
        )
    return url


def schema_for(tenant: str | None) -> str:
    """The Postgres schema holding a tenant's state: one per tenant, never shared."""
    if tenant is None:
        return DEFAULT_SCHEMA
    from revops_pipelines.tenancy import validate_tenant_id

    return f"{DEFAULT_SCHEMA}_{validate_tenant_id(tenant, 'tenant')}"


def _lock_key(*parts: str) -> int:
    """A stable signed 64-bit advisory-lock key (Python's ``hash`` differs between processes)."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _translate(sql: str) -> str:
    return sql.replace("%", "%%").replace("?", "%s")


class _PgConnection:
    """The slice of :class:`sqlite3.Connection` the stores use, over a psycopg2 connection."""

    def __init__(self, raw: Any, lock_key: int):
        self.raw = raw
        self._lock_key = lock_key

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        cur = self.raw.cursor()
        statement = sql.strip().upper()
        if statement == "BEGIN IMMEDIATE":
            cur.execute("BEGIN")
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
            return cur
        cur.execute(_translate(sql), tuple(params))
        return cur

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> Any:
        cur = self.raw.cursor()
        cur.executemany(_translate(sql), [tuple(r) for r in rows])
        return cur


def _pg_ddl(statement: str) -> str:
    return statement.replace("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY")


class SqliteStore:
    """A store's connection plumbing: the SQLite file at ``path``, or — given a ``postgresql://``
    ``url`` — the tenant's schema in that database (``path`` is then only a label)."""

    def __init__(
        self,
        path: str | Path,
        ddl: Iterable[str],
        *,
        url: str | None = None,
        tenant: str | None = None,
    ):
        self.path = Path(path)
        self.url = url
        self.tenant = tenant
        self._local = threading.local()
        ddl = list(ddl)
        if url is None:
            self.backend = "sqlite"
            self.path.parent.mkdir(parents=True, exist_ok=True)
            c = self._conn()
            c.execute("PRAGMA journal_mode=WAL")
            for statement in ddl:
                c.execute(statement)
            return
        check_state_url(url)
        self.backend = "postgres"
        self.schema = schema_for(tenant)
        self._lock = _lock_key(self.schema, type(self).__name__)
        c = self._conn()
        c.execute("BEGIN")
        try:  # one process at a time creates the schema and tables (CREATE ... IF NOT EXISTS races)
            c.execute("SELECT pg_advisory_xact_lock(?)", (_lock_key(self.schema, "ddl"),))
            c.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            for statement in ddl:
                c.execute(_pg_ddl(statement))
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise

    def _conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is not None and self.url and conn.raw.closed:  # lost (server restart, failover): the
            conn = None  # statement in flight failed; the next call gets a new connection
        if conn is None:
            conn = self._connect_pg() if self.url else self._connect_sqlite()
            self._local.conn = conn
        return conn

    def _connect_sqlite(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30, isolation_level=None)

    def _connect_pg(self) -> _PgConnection:
        try:
            import psycopg2
        except ImportError:
            raise ConfigurationError(
                "REVOPS_STATE_URL", "needs the psycopg2 driver", "pip install 'revops-pipelines[postgres]'"
            ) from None

        assert self.url is not None
        try:
            raw = psycopg2.connect(self.url, application_name="revops-state", connect_timeout=10)
        except psycopg2.Error as e:
            raise StateStoreError(
                f"cannot connect to the state database {redact_url(self.url)}: {_mask(str(e), self.url)}"
            ) from None
        raw.autocommit = True  # explicit BEGIN/COMMIT, as on SQLite
        with raw.cursor() as cur:  # this tenant's schema only: other tenants' tables are not reachable
            cur.execute(f'SET search_path TO "{self.schema}"')
        return _PgConnection(raw, self._lock)


def _mask(text: str, url: str) -> str:
    for secret in (urlsplit(url).password, os.environ.get("PGPASSWORD")):
        if secret:
            text = text.replace(secret, "***")
    return text


S = TypeVar("S", bound=SqliteStore)


def connect_state_store(
    store_cls: type[S], path: str | Path, *, tenant: str | None = None, url: str | None = None
) -> S:
    """``store_cls`` (agent or flow state) on the backend ``REVOPS_STATE_URL`` selects: unset, the SQLite
    file at ``path``; a ``postgresql://`` URL, that database (``tenant``'s schema). ``url`` overrides."""
    if url is None:
        from revops_pipelines.settings import state_url

        url = state_url()
    return store_cls(path, url=url, tenant=tenant)
