"""A throwaway PostgreSQL cluster on loopback for tests (Debian's ``postgresql`` package's binaries).

Used by the Dagster-instance tests (tests/platform) and the shared agent/flow state tests."""

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

SKIP_REASON = "PostgreSQL server is not installed (apt-get install -y postgresql)"


def pg_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


@contextmanager
def local_postgres(user: str = "dagster", database: str = "dagster") -> Iterator[int]:
    """Start a cluster (trust auth, loopback only) with ``database`` owned by ``user``; yields its port.
    Skips the calling test when the server is not installed."""
    bin_dir = pg_bin()
    if bin_dir is None:
        pytest.skip(SKIP_REASON)
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    root = Path(tempfile.mkdtemp(prefix="revops-pg-"))
    if as_user:
        shutil.chown(root, "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = root / "data"
    run = lambda *args: subprocess.run([*as_user, *args], check=True, capture_output=True, timeout=60)  # noqa: E731
    run(str(bin_dir / "initdb"), "-D", str(data), "-U", user, "--auth=trust")
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    run(str(bin_dir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w", "start")
    try:
        run(str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", user, database)
        yield port
    finally:
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)
