"""Headless Chromium for rendering tests (Debian's ``chromium`` package; no browser download).

Install: ``apt-get install -y chromium``. Tests that need it skip with that instruction when it is absent.
Flags follow this machine's notes: no sandbox (root), no GPU, and no background networking (the
machine's closed network otherwise refuses Chromium's own connections).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def chromium_binary() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def require_chromium() -> str:
    binary = chromium_binary()
    if binary is None:
        pytest.skip("headless Chromium is not installed (apt-get install -y chromium)")
    return binary


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    binary = require_chromium()
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [binary, *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            timeout=timeout,
            check=True,
        )


def dump_dom(page: Path, budget_ms: int = 15_000, timeout: float = 120) -> str:
    """The DOM after the page's scripts ran (``--virtual-time-budget`` waits for them)."""
    result = _run([f"--virtual-time-budget={budget_ms}", "--dump-dom", page.resolve().as_uri()], timeout)
    return result.stdout.decode("utf-8")


def screenshot(page: Path, out: Path, size: str = "1280,2400", timeout: float = 120) -> Path:
    _run(
        [
            "--virtual-time-budget=15000",
            f"--window-size={size}",
            f"--screenshot={out}",
            page.resolve().as_uri(),
        ],
        timeout,
    )
    return out
