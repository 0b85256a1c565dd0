"""Rate limiting for the receiver: token buckets per source and per (source, client address).

A request takes one token from its source's bucket and one from its client's; if either is empty the
request is refused with 429 and ``Retry-After`` (whole seconds until a token is back, at least 1).
Buckets refill continuously at ``rate`` tokens/s up to ``burst``. Client buckets idle for a minute are
forgotten, so memory stays bounded by the number of recently active clients.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    at: float


class TokenBucket:
    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic):
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate, self.burst, self.clock = rate, burst, clock
        self._b = _Bucket(burst, clock())

    def _refill(self, now: float) -> None:
        self._b.tokens = min(self.burst, self._b.tokens + (now - self._b.at) * self.rate)
        self._b.at = now

    def wait_time(self, now: float | None = None) -> float:
        """Seconds until one token is available (0 if one is)."""
        now = self.clock() if now is None else now
        self._refill(now)
        return 0.0 if self._b.tokens >= 1 else (1 - self._b.tokens) / self.rate

    def take(self, now: float) -> None:
        self._b.tokens -= 1

    @property
    def idle_since(self) -> float:
        return self._b.at


class RateLimiter:
    """Per-source and per-client limits; :meth:`check` returns 0 (admitted) or the Retry-After seconds."""

    def __init__(
        self,
        source_rate: float,
        client_rate: float,
        burst_factor: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.source_rate, self.client_rate, self.factor, self.clock = (
            source_rate,
            client_rate,
            burst_factor,
            clock,
        )
        self._sources: dict[str, TokenBucket] = {}
        self._clients: dict[tuple[str, str], TokenBucket] = {}
        self._lock = threading.Lock()
        self._swept = clock()

    def _bucket(self, table: dict, key, rate: float) -> TokenBucket:
        b = table.get(key)
        if b is None:
            b = table[key] = TokenBucket(rate, max(1.0, rate * self.factor), self.clock)
        return b

    def check(self, source: str, client: str) -> int:
        with self._lock:
            now = self.clock()
            if now - self._swept > 60:
                self._clients = {k: b for k, b in self._clients.items() if now - b.idle_since < 60}
                self._swept = now
            s = self._bucket(self._sources, source, self.source_rate)
            c = self._bucket(self._clients, (source, client), self.client_rate)
            wait = max(s.wait_time(now), c.wait_time(now))
            if wait > 0:
                return max(1, math.ceil(wait))
            s.take(now)
            c.take(now)
            return 0
