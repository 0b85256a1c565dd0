import pytest

from tests.helpers import use_runtime


@pytest.fixture
def runtime_env(tmp_path, monkeypatch):
    """A private REVOPS_HOME (and Dagster home) for one test."""
    return use_runtime(monkeypatch, tmp_path)


@pytest.fixture(scope="session")
def state_pg_cluster():
    """One throwaway Postgres cluster per session for the shared-state tests (tests/pg_cluster.py);
    yields its base URL (no database). Skips when the server is not installed."""
    from tests.pg_cluster import local_postgres

    with local_postgres("revops", "revops") as port:
        yield f"postgresql://revops@127.0.0.1:{port}"


@pytest.fixture
def state_pg_url(state_pg_cluster):
    """A fresh database in the session's cluster for one test: ``postgresql://revops@host:port/db``."""
    import uuid

    import psycopg2

    name = f"t{uuid.uuid4().hex[:12]}"
    conn = psycopg2.connect(f"{state_pg_cluster}/revops")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    return f"{state_pg_cluster}/{name}"


@pytest.fixture(params=["sqlite", "postgres"])
def state_backend(request):
    """Opens agent/flow state stores on each backend: ``open(StoreClass, path, tenant=None)``. SQLite: the
    file at ``path``; Postgres: one fresh database per test (every ``open`` is a new connection set, as a
    new invocation would have)."""
    from revops_pipelines.sqlite_store import connect_state_store

    url = request.getfixturevalue("state_pg_url") if request.param == "postgres" else None

    def open_store(cls, path, tenant=None):
        return connect_state_store(cls, path, tenant=tenant, url=url) if url else cls(path, tenant=tenant)

    open_store.backend = request.param
    open_store.url = url
    return open_store
