"""The shared rate limiter: spacing, Retry-After pauses, the daily budget, and zero 429s against a
server that enforces Gong's 3 requests/s."""

import threading

import pytest

from revops_pipelines.connectors.base import BudgetExhausted, RateLimiter, RetryPolicy, shared_limiter
from revops_pipelines.connectors.gong import GongClient
from revops_pipelines.credentials import BasicCredential
from revops_pipelines.testing.fake_gong import FakeGong

from .conftest import read_jsonl


class FakeClock:
    def __init__(self):
        self.t = 0.0
        self.sleeps = []

    def __call__(self):
        return self.t

    def sleep(self, s):
        self.sleeps.append(s)
        self.t += s


def test_requests_are_spaced_and_a_retry_after_pauses_everyone():
    clock = FakeClock()
    lim = RateLimiter("gong", 3, 100, margin=0.0, clock=clock, sleep=clock.sleep)
    for _ in range(4):
        lim.acquire()
    assert clock.t == pytest.approx(1.0)  # four starts at 0, 1/3, 2/3, 1
    lim.pause(5)
    lim.acquire()
    assert clock.t == pytest.approx(6.0)


def test_daily_budget_is_counted_persisted_and_reset_on_a_new_day():
    day, saved = ["2026-01-01"], {}
    lim = RateLimiter(
        "gong",
        1000,
        3,
        used_today=1,
        day="2026-01-01",
        today=lambda: day[0],
        on_count=lambda d, n: saved.update(day=d, used=n),
    )
    lim.acquire()
    lim.acquire()
    assert saved == {"day": "2026-01-01", "used": 3}
    with pytest.raises(BudgetExhausted, match="daily request budget of 3 is spent"):
        lim.acquire()
    day[0] = "2026-01-02"
    lim.acquire()
    assert saved == {"day": "2026-01-02", "used": 1}


def test_one_limiter_is_shared_per_account_across_threads():
    made = []
    lims = []

    def get():
        lims.append(shared_limiter("test-shared", lambda: made.append(1) or RateLimiter("gong", 1000, 10)))

    threads = [threading.Thread(target=get) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == 1 and len({id(x) for x in lims}) == 1


def test_retry_after_is_honoured_and_backoff_grows():
    p = RetryPolicy(backoff_s=1.0, max_backoff_s=8.0, max_retry_after_s=60)
    assert p.delay(1, 7.0) == 7.0 and p.delay(1, 500.0) == 60
    assert 0.5 <= p.delay(1, None) <= 1.0 and 4.0 <= p.delay(5, None) <= 8.0


def test_a_limit_enforcing_server_sees_zero_429s_at_the_documented_rate(small_world):
    calls = read_jsonl(small_world / "gong/calls.jsonl")
    with FakeGong(calls, [], page_size=20, rate_limit_per_s=3) as server:
        auth = BasicCredential(username="gong-key", password="gong-secret").headers()
        lim = RateLimiter("gong", 3, 10_000)
        with GongClient(server.url, auth, limiter=lim, retry=RetryPolicy(max_attempts=1)) as c:
            pages = list(c.list_calls("2024-01-01T00:00:00Z", "2026-01-01T00:00:00Z"))
        assert len(pages) == 9 and sum(len(p) for p, _ in pages) == len(calls)
        assert server.count(429) == 0 and c.stats.http_429 == 0
