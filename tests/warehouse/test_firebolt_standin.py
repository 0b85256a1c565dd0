"""Firebolt-only behaviour: what goes over the wire, how failures surface, configuration errors.

Everything runs against the loopback stand-in through the real firebolt-sdk client; the
``blocked_hosts`` fixture (conftest) makes any non-loopback name resolution fail at once.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from firebolt.utils.exception import FireboltStructuredError

from revops_pipelines.errors import WarehouseError
from revops_pipelines.testing.firebolt_server import firebolt_standin
from revops_pipelines.warehouse.firebolt import FireboltWarehouse
from revops_pipelines.warehouse.schema import table

ACCOUNTS = table(
    "accounts",
    [("account_id", "TEXT"), ("name", "TEXT"), ("arr", "DOUBLE")],
    keys=("account_id",),
    kind="dimension",
)
EVENTS = table(
    "events",
    [("event_id", "TEXT"), ("account_id", "TEXT", False), ("amount", "DOUBLE")],
    keys=("event_id",),
    primary_index=("account_id", "event_id"),
)
SECRET = "s3cr3t-Value-xyz"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, sql: str, **params: str) -> tuple[int, str]:
    query = "&".join(
        f"{k}={v}" for k, v in {"database": "revops", "output_format": "JSON_Compact", **params}.items()
    )
    req = urllib.request.Request(f"{url}/?{query}", data=sql.encode(), method="POST")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_wire_protocol_and_fact_dimension_ddl(standin):
    wh = FireboltWarehouse(database="revops", url=standin.url)
    wh.ensure_table(EVENTS)
    wh.ensure_table(ACCOUNTS)
    ddl = [s for s in standin.statements if s.lstrip().upper().startswith("CREATE") and "_revops_" not in s]
    assert ddl[0].startswith("CREATE FACT TABLE IF NOT EXISTS events (")
    assert ddl[0].rstrip().endswith("PRIMARY INDEX account_id, event_id")
    assert "amount DOUBLE PRECISION NULL" in ddl[0] and "event_id TEXT NOT NULL" in ddl[0]
    assert ddl[1].startswith("CREATE DIMENSION TABLE IF NOT EXISTS accounts (")
    assert ddl[1].rstrip().endswith("PRIMARY INDEX account_id")
    first = standin.received[0]
    assert first.params == {"database": "revops", "output_format": "JSON_Compact"}
    assert first.headers.get("firebolt-protocol-version")
    kinds = wh.query(
        "SELECT table_name, table_kind, primary_index FROM information_schema.tables ORDER BY table_name"
    )
    assert [r for r in kinds.values.tolist() if not r[0].startswith("_revops_")] == [
        ["accounts", "DIMENSION", "account_id"],
        ["events", "FACT", "account_id, event_id"],
    ]


def test_inserts_are_batched(standin):
    wh = FireboltWarehouse(database="revops", url=standin.url, insert_batch_rows=500)
    df = pd.DataFrame({"event_id": [f"e{i}" for i in range(1200)], "account_id": "a1", "amount": 1.5})
    result = wh.merge(EVENTS, df)
    assert result.total == 1200
    inserts = [s for s in standin.statements if s.startswith("INSERT INTO events__stage_")]
    assert len(inserts) == 3  # 500 + 500 + 200 rows
    assert wh.scalar("SELECT SUM(amount) FROM events") == 1800.0


def test_server_error_surfaces_as_warehouse_error(standin):
    wh = FireboltWarehouse(database="revops", url=standin.url)
    before = standin.requests
    standin.fail_next(1, status=500)
    with pytest.raises(WarehouseError, match="injected failure") as info:
        wh.execute("SELECT 1")
    assert "firebolt" in str(info.value)
    assert standin.requests == before + 1
    assert wh.scalar("SELECT 1") == 1  # the fault was consumed


def test_sql_error_is_structured(standin):
    wh = FireboltWarehouse(database="revops", url=standin.url)
    with pytest.raises(WarehouseError, match="missing_table"):
        wh.query("SELECT * FROM missing_table")


def test_multi_statement_body_is_rejected(standin):
    wh = FireboltWarehouse(database="revops", url=standin.url)
    wh.ensure_table(ACCOUNTS)
    with wh.connect() as conn, pytest.raises(FireboltStructuredError, match="multi-statement"):
        conn.cursor().execute("DELETE FROM accounts; DROP TABLE accounts", skip_parsing=True)
    status, body = _post(standin.url, "SELECT 1; SELECT 2")
    assert status == 400 and "errors" in json.loads(body)
    assert wh.table_names() == ["accounts"]  # nothing of the rejected body ran
    # a semicolon inside a literal or a trailing one is still one statement
    assert wh.scalar("SELECT 'a;b';") == "a;b"


def test_hung_server_times_out(standin):
    wh = FireboltWarehouse(database="revops", url=standin.url, query_timeout_s=0.3)
    standin.hang_next(1, seconds=10)
    started = time.monotonic()
    with pytest.raises(WarehouseError, match="timed out"):
        wh.execute("SELECT 1")
    assert time.monotonic() - started < 3


def test_unreachable_core_names_the_url():
    url = f"http://127.0.0.1:{_free_port()}"
    wh = FireboltWarehouse(database="revops", url=url)
    with pytest.raises(WarehouseError, match="cannot reach Firebolt Core at " + url):
        wh.execute("SELECT 1")


def test_standin_is_strict_about_firebolt_ddl(standin):
    wh = FireboltWarehouse(database="revops", url=standin.url)
    for bad, why in [
        ("CREATE FACT TABLE t1 (a HUGEINT NOT NULL)", "non-Firebolt data type"),
        ("CREATE FACT TABLE t2 (a INT NOT NULL PRIMARY KEY)", "PRIMARY KEY"),
        ("CREATE FACT TABLE t3 (a INT NULL) PRIMARY INDEX a", "must be NOT NULL"),
        ("CREATE FACT TABLE t4 (a INT NOT NULL) PRIMARY INDEX b", "not a column"),
        ("CREATE TEMP TABLE t5 (a INT NOT NULL)", "not supported"),
        ("PRAGMA show_tables", "not supported"),
        ("BEGIN TRANSACTION", "transactions"),
    ]:
        with pytest.raises(WarehouseError, match=why):
            wh.execute(bad)
    # plain CREATE TABLE is Firebolt 2.0 syntax; columns are NOT NULL unless declared NULL
    wh.execute("CREATE TABLE plain (a INT, b TEXT NULL)")
    with pytest.raises(WarehouseError, match="NOT NULL"):
        wh.execute("INSERT INTO plain (a, b) VALUES (?, ?)", [None, "x"])
    wh.execute("INSERT INTO plain (a, b) VALUES (?, ?)", [1, None])
    assert wh.columns("plain") == [("a", "integer"), ("b", "text")]


def test_file_backed_standin_keeps_tables(tmp_path: Path):
    db = tmp_path / "standin.duckdb"
    with firebolt_standin(db_path=str(db)) as server:
        FireboltWarehouse(database="revops", url=server.url).ensure_table(EVENTS)
    with firebolt_standin(db_path=str(db)) as server:
        wh = FireboltWarehouse(database="revops", url=server.url)
        assert wh.table_names() == ["events"]
        assert (
            wh.scalar("SELECT primary_index FROM information_schema.tables WHERE table_name = 'events'")
            == "account_id, event_id"
        )


def test_standalone_server(tmp_path: Path):
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "revops_pipelines.testing.firebolt_server", "--port", str(port)],
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "stand-in did not start"
                time.sleep(0.05)
        assert FireboltWarehouse(database="revops", url=url).scalar("SELECT 41 + 1") == 42
    finally:
        proc.terminate()
        proc.wait(timeout=5)


def test_core_mode_refuses_cloud_fields():
    wh = FireboltWarehouse(database="revops", url="http://127.0.0.1:1", account_name="acme")
    with pytest.raises(WarehouseError, match="takes no account_name"):
        wh.execute("SELECT 1")


def test_cloud_mode_missing_fields_is_clear(blocked_hosts):
    wh = FireboltWarehouse(database="revops", account_name="acme", client_id="svc-id", client_secret=SECRET)
    with pytest.raises(WarehouseError, match="needs engine_name") as info:
        wh.execute("SELECT 1")
    assert SECRET not in str(info.value)
    assert SECRET not in repr(wh)
    assert blocked_hosts == []  # refused before any network use


def test_cloud_mode_failure_never_shows_the_secret(blocked_hosts):
    wh = FireboltWarehouse(
        database="revops", account_name="acme", engine_name="etl", client_id="svc-id", client_secret=SECRET
    )
    started = time.monotonic()
    with pytest.raises(WarehouseError, match="Firebolt account 'acme'") as info:
        wh.execute("SELECT 1")
    assert time.monotonic() - started < 5
    chain, err = [], info.value
    while err is not None:
        chain.append(f"{err!s} {err!r}")
        err = err.__cause__ or err.__context__
    assert all(SECRET not in text for text in chain)
    assert blocked_hosts and all(host.endswith("firebolt.io") for host in blocked_hosts)
