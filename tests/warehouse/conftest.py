"""Fixtures for the warehouse seam: one suite, both backends (DuckDB, Firebolt via its stand-in)."""

from __future__ import annotations

import socket

import pytest

from revops_pipelines.testing.firebolt_server import firebolt_standin
from revops_pipelines.warehouse.duckdb import DuckDBWarehouse
from revops_pipelines.warehouse.firebolt import FireboltWarehouse

_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


@pytest.fixture(autouse=True)
def blocked_hosts(monkeypatch: pytest.MonkeyPatch, tmp_path) -> list[str]:
    """No test here may reach anything but loopback: name resolution of any other host fails at
    once (before a packet leaves), and the refused host names are returned for assertions.

    The SDK's token cache (ClientCredentials) lives under ``$XDG_DATA_HOME``: kept in tmp_path."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    refused: list[str] = []
    real_getaddrinfo = socket.getaddrinfo

    def guarded(host, *args, **kwargs):  # type: ignore[no-untyped-def]
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in _LOOPBACK:
            refused.append(name)
            raise socket.gaierror(socket.EAI_NONAME, f"network disabled in tests: {name}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)
    return refused


@pytest.fixture
def standin():
    with firebolt_standin() as server:
        yield server


@pytest.fixture(params=["duckdb", "firebolt"])
def warehouse(request: pytest.FixtureRequest, tmp_path):
    if request.param == "duckdb":
        return DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    server = request.getfixturevalue("standin")
    return FireboltWarehouse(database="revops", url=server.url)


@pytest.fixture(autouse=True)
def fresh_migration_cache():
    """Each test starts with no 'already verified' declarations (a stand-in port can be reused)."""
    from revops_pipelines.warehouse.migrations import forget_verified

    forget_verified()
    yield
    forget_verified()
