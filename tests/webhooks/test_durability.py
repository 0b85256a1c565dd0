"""Every acknowledged event survives kill -9: a real `revops webhook serve` (uvicorn) on a loopback
port takes a concurrent burst, is SIGKILLed mid-burst, restarts, and holds every event it said 200 to."""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from revops_pipelines.settings import load_settings
from revops_pipelines.webhooks.store import EventStore
from tests.webhooks.conftest import SECRETS, escalation, generic_request

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(port: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "REVOPS_WEBHOOK_SECRET_GENERIC": SECRETS["generic"],
        "REVOPS_WEBHOOK_RATE_SOURCE": "100000",
        "REVOPS_WEBHOOK_RATE_CLIENT": "100000",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "revops_pipelines.cli", "webhook", "serve", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
        if proc.poll() is not None:
            raise RuntimeError(proc.stderr.read().decode())
    proc.kill()
    raise RuntimeError("receiver did not start")


async def _burst(url: str, n: int, concurrency: int, kill_after: int, proc: subprocess.Popen) -> set[str]:
    acked: set[str] = set()
    queue: asyncio.Queue = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(f"burst-{i:05d}")

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            event_id = queue.get_nowait()
            body, headers = generic_request(escalation(event_id))
            try:
                r = await client.post(url, content=body, headers=headers)
            except httpx.TransportError:  # not acknowledged (a real sender retries later)
                if proc.poll() is not None:
                    return  # the receiver is gone: stop this sender
                continue
            if r.status_code == 200:
                acked.add(event_id)
                if len(acked) == kill_after and proc.poll() is None:
                    os.kill(proc.pid, signal.SIGKILL)  # mid-burst: other requests are in flight

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=5) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return acked


@pytest.mark.slow
def test_events_acknowledged_before_kill_9_are_all_there_after_restart(runtime_env):
    port = _free_port()
    url = f"http://127.0.0.1:{port}/webhooks/generic"
    proc = _serve(port)
    try:
        acked = asyncio.run(_burst(url, n=2000, concurrency=32, kill_after=300, proc=proc))
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
    assert 300 <= len(acked) < 2000  # killed mid-burst

    proc = _serve(port)  # restart on the same store
    try:
        stored = EventStore(load_settings().events_path).event_ids("generic")
        assert acked <= stored, f"lost {len(acked - stored)} acknowledged events"
        body, headers = generic_request(escalation("burst-00000"))  # a redelivery after restart
        r = httpx.post(url, content=body, headers=headers)
        assert r.status_code == 200 and r.json()["event_ids"] == ["burst-00000"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
