"""Headless Chromium for rendering tests (Debian's ``chromium`` package; no browser download).

Install: ``apt-get install -y chromium``. Tests that need it skip with that instruction when it is absent.
Flags follow this machine's notes: no sandbox (root), no GPU, and no background networking (the
machine's closed network otherwise refuses Chromium's own connections).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
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
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        return subprocess.run(
            [binary, *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            timeout=timeout,
            check=True,
        )


def dump_dom(page: Path | str, budget_ms: int = 15_000, timeout: float = 120) -> str:
    """The DOM after the page's scripts ran (``--virtual-time-budget`` waits for them); a file or a URL."""
    result = _run([f"--virtual-time-budget={budget_ms}", "--dump-dom", _page_target(page)], timeout)
    return result.stdout.decode("utf-8")


def screenshot(page: Path | str, out: Path, size: str = "1280,2400", timeout: float = 120) -> Path:
    _run(
        [
            "--virtual-time-budget=15000",
            f"--window-size={size}",
            f"--screenshot={out}",
            _page_target(page),
        ],
        timeout,
    )
    return out


def _page_target(page: Path | str) -> str:
    """A file path becomes a file:// URI; an http(s) URL is used as it is."""
    return page if isinstance(page, str) else page.resolve().as_uri()


class DevToolsPage:
    """One tab of a headless Chromium, driven over the DevTools protocol (a websocket; no driver binary)."""

    def __init__(self, ws) -> None:
        self._ws = ws
        self._next = 0

    def send(self, method: str, timeout: float = 60, **params) -> dict:
        import json
        import time

        self._next += 1
        call = self._next
        self._ws.send(json.dumps({"id": call, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:  # events interleave with replies; skip them
            message = json.loads(self._ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("id") == call:
                if "error" in message:
                    raise RuntimeError(f"DevTools {method}: {message['error']}")
                return message.get("result", {})

    def navigate(self, url: str) -> None:
        self.send("Page.navigate", url=url)

    def evaluate(self, expression: str):
        """The value of a JavaScript expression (promises awaited); a thrown error raises here."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            detail = result["exceptionDetails"]
            raise RuntimeError(f"JavaScript error: {detail.get('exception', {}).get('description', detail)}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30, interval: float = 0.2):
        """Poll until ``expression`` is truthy; its value. Times out with the last value in the message."""
        import time

        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            try:
                value = self.evaluate(expression)
            except RuntimeError as err:  # e.g. the page is still loading
                value = err
            if value and not isinstance(value, RuntimeError):
                return value
            time.sleep(interval)
        raise TimeoutError(f"waited {timeout:.0f} s for {expression!r}; last value {value!r}")

    def screenshot(self, out: Path) -> Path:
        import base64

        out.write_bytes(base64.b64decode(self.send("Page.captureScreenshot", format="png")["data"]))
        return out


@contextmanager
def devtools_page(size: str = "1280,900", timeout: float = 30) -> Iterator[DevToolsPage]:
    """A headless Chromium with one blank tab under DevTools control; the browser is stopped on exit."""
    import json
    import time
    import urllib.request

    from websockets.sync.client import connect

    binary = require_chromium()
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        proc = subprocess.Popen(
            [
                binary,
                *FLAGS,
                f"--user-data-dir={profile}",
                f"--window-size={size}",
                "--remote-debugging-port=0",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            port_file = Path(profile) / "DevToolsActivePort"  # Chromium writes its chosen port here
            deadline = time.monotonic() + timeout
            while not (port_file.exists() and port_file.read_text().strip()):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("headless Chromium did not open its DevTools port")
                time.sleep(0.1)
            port = int(port_file.read_text().split()[0])
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=timeout) as reply:
                tabs = [t for t in json.load(reply) if t.get("type") == "page"]
            with connect(tabs[0]["webSocketDebuggerUrl"], max_size=None, open_timeout=timeout) as ws:
                page = DevToolsPage(ws)
                page.send("Page.enable")
                page.send("Runtime.enable")
                yield page
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
