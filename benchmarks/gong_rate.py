"""Gong client throughput against the limit-enforcing stand-in (3 requests/s, like Gong).

The client should sustain close to the allowed rate and never see a 429. ``bench_gong_rate()``
pulls ``pages`` pages of ``/v2/calls`` (synthetic calls, one per page) through the real client and
the shared rate limiter.
"""

from __future__ import annotations

import time

LIMIT = 3.0


def _calls(n: int) -> list[dict]:
    return [
        {"metaData": {"id": str(10_000 + i), "started": f"2025-01-01T00:{i // 60:02d}:{i % 60:02d}Z"}}
        for i in range(n)
    ]


def bench_gong_rate(pages: int = 31) -> dict:
    from revops_pipelines.connectors.base import RateLimiter, RetryPolicy
    from revops_pipelines.connectors.gong import GongClient
    from revops_pipelines.credentials import BasicCredential
    from revops_pipelines.testing.fake_gong import FakeGong

    with FakeGong(_calls(pages), [], page_size=1, rate_limit_per_s=LIMIT) as server:
        auth = BasicCredential(username="gong-key", password="gong-secret").headers()
        limiter = RateLimiter("gong", LIMIT, 10_000)
        with GongClient(server.url, auth, limiter=limiter, retry=RetryPolicy(backoff_s=0.1)) as client:
            t = time.perf_counter()
            n = sum(1 for _ in client.list_calls("2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z"))
            elapsed = time.perf_counter() - t
        assert n == pages
        # n requests span n - 1 intervals: the rate of request starts
        rate = (client.stats.requests - 1) / elapsed
        return {
            "project": rate,
            "baseline": LIMIT,
            "ratio": rate / LIMIT,
            "unit": "requests/s",
            "http_429": server.count(429),
            "requests": client.stats.requests,
            "goal": "ratio >= 0.95 and http_429 == 0",
        }


if __name__ == "__main__":
    print(bench_gong_rate())
