"""Durable webhook acknowledgements per second: the real receiver vs a bare uvicorn endpoint.

Both servers run as uvicorn processes on loopback with the same uvicorn defaults (uvloop/httptools when
installed, no access log). The project is ``revops webhook serve`` with a fresh runtime folder: every
200 it sends means the event is committed and its WAL synced to disk (SQLite WAL, group commit,
fdatasync before the answer) after signature, schema, rate-limit and nonce checks. The baseline is a raw ASGI app that reads the body and answers 200. The
same kind of pre-built, signed requests (unique event ids and nonces) go to each through the same client:
``CONCURRENCY`` keep-alive connections of a raw asyncio HTTP/1.1 client, so the client is not the limit.
The per-client and per-source rate limits are raised for the run (this measures acknowledgement, not
throttling). After the project's run the store is checked to hold every acknowledged event.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-secret-0123456789"
REQUESTS = int(os.environ.get("BENCH_WEBHOOK_REQUESTS", "4000"))
ROUNDS = 3
WARMUP = 4000  # a receiver's steady state: its WAL file has grown to size and is reused
CONCURRENCY = int(os.environ.get("BENCH_WEBHOOK_CONCURRENCY", "64"))

_BARE = """
import uvicorn

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            await send({"type": msg["type"] + ".complete"})
            if msg["type"] == "lifespan.shutdown":
                return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"14")]})
    await send({"type": "http.response.body", "body": b'{"accepted":1}'})

uvicorn.run(app, host="127.0.0.1", port=int(__import__("sys").argv[1]), log_level="warning", access_log=False)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


def _requests(n: int, port: int, prefix: str) -> list[bytes]:
    from revops_pipelines.webhooks.signatures import sign_generic

    out = []
    for i in range(n):
        doc = {
            "event_id": f"{prefix}-{i:07d}",
            "event_type": "support_escalation",
            "occurred_at": "2026-01-05T09:30:00Z",
            "entity": {"type": "account", "id": f"001B{i % 5000:04d}"},
            "data": {"ticket_id": f"T-{i}", "severity": "high", "subject": "Sync failing since the upgrade"},
        }
        body = json.dumps(doc).encode()
        headers = {
            "Host": f"127.0.0.1:{port}",
            "Content-Type": "application/json",
            "Content-Length": str(len(body)),
            **sign_generic(SECRET, body),
        }
        head = "POST /webhooks/generic HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        out.append(head.encode() + b"\r\n" + body)
    return out


async def _drive(port: int, requests: list[bytes]) -> tuple[float, list[float], dict[int, int]]:
    """Send every request over CONCURRENCY keep-alive connections; (seconds, latencies, status counts)."""
    it = iter(requests)
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def conn() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for raw in it:
                t = time.perf_counter()
                writer.write(raw)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head[9:12])
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - t)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(conn() for _ in range(CONCURRENCY)))
    return time.perf_counter() - t0, latencies, statuses


def _run(port: int, requests: list[bytes]) -> tuple[float, list[float], dict[int, int]]:
    try:
        import uvloop

        return uvloop.run(_drive(port, requests))
    except ImportError:
        return asyncio.run(_drive(port, requests))


def _start(cmd: list[str], env: dict[str, str], port: int) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _wait(port, proc)
    return proc


def _round(port: int, prefix: str) -> dict:
    seconds, lat, statuses = _run(port, _requests(REQUESTS, port, prefix))
    lat.sort()
    return {
        "rate": statuses.get(200, 0) / seconds,
        "ok": statuses.get(200, 0),
        "p50_ms": 1000 * statistics.median(lat),
        "p99_ms": 1000 * lat[int(0.99 * (len(lat) - 1))],
    }


def bench_webhook_ack() -> dict:
    """``ROUNDS`` alternating rounds (project, baseline) against both servers running side by side, so
    a change in machine load hits both; the median round of each is reported."""
    from revops_pipelines.webhooks.store import EventStore

    with tempfile.TemporaryDirectory() as home:
        env = {
            **os.environ,
            "REVOPS_HOME": home,
            "REVOPS_WEBHOOK_SECRET_GENERIC": SECRET,
            "REVOPS_WEBHOOK_RATE_SOURCE": "1000000",
            "REVOPS_WEBHOOK_RATE_CLIENT": "1000000",
        }
        pp, bp = _free_port(), _free_port()
        cmd = [sys.executable, "-m", "revops_pipelines.cli", "webhook", "serve", "--port", str(pp)]
        servers = [_start(cmd, env, pp), _start([sys.executable, "-c", _BARE, str(bp)], env, bp)]
        try:
            for port in (pp, bp):
                _run(port, _requests(WARMUP, port, f"warm{port}"))
            project, baseline = [], []
            for r in range(ROUNDS):
                project.append(_round(pp, f"p{r}"))
                baseline.append(_round(bp, f"b{r}"))
        finally:
            for proc in servers:
                proc.terminate()
                proc.wait(timeout=15)
        stored = EventStore(Path(home) / "state" / "events.sqlite").event_ids("generic")
    expected = {f"p{r}-{i:07d}" for r in range(ROUNDS) for i in range(REQUESTS)}
    durable = len(expected & stored)
    assert sum(p["ok"] for p in project) == len(expected) == durable, (project, durable)
    mid = lambda rounds: sorted(rounds, key=lambda x: x["rate"])[len(rounds) // 2]  # noqa: E731
    p, b = mid(project), mid(baseline)
    return {
        "project": p["rate"],
        "baseline": b["rate"],
        "ratio": p["rate"] / b["rate"],
        "unit": "acks/s",
        "goal": "ratio >= 0.3 and >= 1,000 req/s",
        "requests_per_round": REQUESTS,
        "rounds": ROUNDS,
        "concurrency": CONCURRENCY,
        "durable_acks": durable,
        "project_rounds": [round(x["rate"]) for x in project],
        "baseline_rounds": [round(x["rate"]) for x in baseline],
        "project_p50_ms": round(p["p50_ms"], 2),
        "project_p99_ms": round(p["p99_ms"], 2),
        "baseline_p99_ms": round(b["p99_ms"], 2),
    }


if __name__ == "__main__":
    print(json.dumps(bench_webhook_ack(), indent=2))
