"""The Gong client and sync against the loopback stand-in: every fault, kill + resume, budgets."""

import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from revops_pipelines.connectors.base import (
    AuthenticationFailed,
    BudgetExhausted,
    KeyedStore,
    RateLimiter,
    RequestStats,
    RetryPolicy,
    StateStore,
)
from revops_pipelines.connectors.gong import (
    GongClient,
    GongResource,
    GongSync,
    GongSyncConfig,
    saved_state,
)
from revops_pipelines.credentials import ApiKeyCredential, BasicCredential
from revops_pipelines.sample.generator import GENERATOR_VERSION
from revops_pipelines.testing.fake_gong import FakeGong

from .conftest import read_jsonl

START = datetime(2024, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 1, 1, tzinfo=UTC)


class MemorySink:
    def __init__(self, fail_on=None):
        self.calls: dict[str, dict] = {}
        self.transcripts: dict[str, dict] = {}
        self.call_writes: Counter[str] = Counter()
        self.transcript_writes: Counter[str] = Counter()
        self.quarantine: list[dict] = []
        self.fail_on = fail_on or {}  # method name -> call number that "kills" the run
        self._n: Counter[str] = Counter()

    def _maybe_die(self, name):
        self._n[name] += 1
        if self.fail_on.get(name) == self._n[name]:
            raise KeyboardInterrupt(f"killed in {name}")

    def complete_call_ids(self, ids):
        self._maybe_die("complete_call_ids")
        return {i for i in ids if i in self.calls and i in self.transcripts}

    def write_calls(self, records):
        self._maybe_die("write_calls")
        for r in records:
            self.calls[r["metaData"]["id"]] = r
            self.call_writes[r["metaData"]["id"]] += 1

    def write_transcripts(self, records):
        self._maybe_die("write_transcripts")
        for r in records:
            self.transcripts[r["callId"]] = r
            self.transcript_writes[r["callId"]] += 1

    def write_quarantine(self, rows):
        self.quarantine.extend(rows)


@pytest.fixture
def world(small_world):
    calls = read_jsonl(small_world / "gong/calls.jsonl")
    return {
        "calls": calls,
        "transcripts": read_jsonl(small_world / "gong/transcripts.jsonl"),
        "ids": {c["metaData"]["id"] for c in calls},
    }


@pytest.fixture
def server(world):
    with FakeGong(world["calls"], world["transcripts"], page_size=20, timeout_hold_s=2.5) as s:
        yield s


def fast_limiter(**kw):
    return RateLimiter("gong", kw.pop("per_second", 2000.0), kw.pop("per_day", 100_000), **kw)


def run_sync(server, state_dir, sink, *, limiter=None, auth=None, stats=None, **cfg):
    auth = auth or BasicCredential(username="gong-key", password="gong-secret").headers()
    client = GongClient(
        server.url,
        auth,
        limiter=limiter or fast_limiter(),
        retry=RetryPolicy(max_attempts=4, backoff_s=0.01),
        timeout_s=1.0,  # under the fakes' 2.5 s hold; over a loaded machine's TLS round trip
        stats=stats,
    )
    config = GongSyncConfig(start=START, lookback=timedelta(days=1), batch_size=25, **cfg)
    with client:
        return GongSync(client, StateStore(state_dir, "gong"), config, sink, now=NOW).run()


def assert_exactly_once(sink, world, *, writes_once=True):
    assert set(sink.calls) == world["ids"]
    assert set(sink.transcripts) == world["ids"]
    if writes_once:
        assert set(sink.call_writes.values()) == {1}
        assert set(sink.transcript_writes.values()) == {1}
    assert sink.quarantine == []


def test_full_sync_brings_every_call_and_transcript_once(server, world, tmp_path):
    sink = MemorySink()
    summary = run_sync(server, tmp_path, sink)
    assert_exactly_once(sink, world)
    assert summary.pending_after == 0 and summary.checkpoint["completed_to"] == "2026-01-01T00:00:00Z"
    assert set(server.fetched_extensive.values()) == {1}
    assert set(server.fetched_transcripts.values()) == {1}
    assert sink.calls[next(iter(world["ids"]))]["content"]  # extensive content, not the listing


def test_bearer_token_auth(world, tmp_path):
    with FakeGong(world["calls"], world["transcripts"], bearer_token="tok-123456") as s:
        sink = MemorySink()
        run_sync(s, tmp_path, sink, auth=ApiKeyCredential(token="tok-123456").headers())
        assert_exactly_once(sink, world)


def test_bad_credentials_fail_fast_with_a_clear_error_naming_gong(server, tmp_path):
    bad = BasicCredential(username="gong-key", password="wrong-secret").headers()
    with pytest.raises(AuthenticationFailed) as e:
        run_sync(server, tmp_path, MemorySink(), auth=bad)
    assert str(e.value).startswith("gong: authentication failed (HTTP 401")
    assert "wrong-secret" not in str(e.value)
    assert len(server.log) == 1  # never retried


@pytest.mark.parametrize(
    "fault,path,counter",
    [
        ("429", "/v2/calls", "http_429"),
        ("429_no_retry_after", "/v2/calls/extensive", "http_429"),
        ("500", "/v2/calls", "http_5xx"),
        ("503", "/v2/calls/transcript", "http_5xx"),
        ("timeout", "/v2/calls/extensive", "timeouts"),
        ("truncated", "/v2/calls", "bad_bodies"),
        ("malformed", "/v2/calls/transcript", "bad_bodies"),
    ],
)
def test_transport_faults_are_retried_and_nothing_is_lost_or_duplicated(
    server, world, tmp_path, fault, path, counter
):
    server.faults.add(fault, path=path, times=2)
    sink, stats = MemorySink(), RequestStats()
    run_sync(server, tmp_path, sink, stats=stats)
    assert_exactly_once(sink, world)
    assert server.faults.pending() == 0
    assert getattr(stats, counter) == 2 and stats.retries == 2


def test_expired_cursor_relists_the_window_without_duplicates(server, world, tmp_path):
    server.faults.add("expired_cursor", path="/v2/calls")
    sink = MemorySink()
    summary = run_sync(server, tmp_path, sink)
    assert summary.cursor_restarts == 1
    assert_exactly_once(sink, world)


def test_duplicate_records_across_pages_are_merged(server, world, tmp_path):
    server.faults.add("duplicates", path="/v2/calls", times=3)
    sink = MemorySink()
    summary = run_sync(server, tmp_path, sink)
    assert summary.listed == len(world["ids"]) + 3
    assert_exactly_once(sink, world)


def test_kill_mid_window_resumes_from_the_checkpointed_cursor(server, world, tmp_path):
    with pytest.raises(KeyboardInterrupt):
        run_sync(server, tmp_path, MemorySink(fail_on={"complete_call_ids": 4}))
    state = saved_state(StateStore(tmp_path, "gong"))
    assert state["window"]["cursor"] and not state["window"]["done"] and len(state["pending"]) == 60
    n_before = len(server.requests_to("/v2/calls"))
    sink = MemorySink()
    run_sync(server, tmp_path, sink)
    resumed = server.requests_to("/v2/calls")[n_before:]
    assert "cursor" in resumed[0].query  # continued mid-window, not from the first page
    assert len(resumed) == 9 - 3
    assert_exactly_once(sink, world)


def test_kill_while_writing_details_resumes_without_gaps(server, world, tmp_path):
    sink = MemorySink(fail_on={"write_transcripts": 2})
    with pytest.raises(KeyboardInterrupt):
        run_sync(server, tmp_path, sink)
    sink.fail_on = {}
    run_sync(server, tmp_path, sink)
    assert_exactly_once(sink, world, writes_once=False)
    assert max(sink.transcript_writes.values()) == 1  # the killed batch was never written
    assert set(server.fetched_extensive.values()) == {1}  # finished calls are not fetched again


def test_calls_not_processed_yet_are_fetched_on_a_later_run(server, world, tmp_path):
    ids = sorted(world["ids"])
    server.not_ready_extensive = {ids[0]: 1, ids[1]: 1}
    server.not_ready_transcript = {ids[2]: 2}
    sink = MemorySink()
    first = run_sync(server, tmp_path, sink)
    assert first.pending_after == 3 and ids[2] not in sink.transcripts
    run_sync(server, tmp_path, sink)
    assert saved_state(StateStore(tmp_path, "gong"))["pending"] == {
        ids[2]: {"need": ["transcript"], "failures": 0, "last_error": None}
    }
    last = run_sync(server, tmp_path, sink)
    assert last.pending_after == 0
    assert_exactly_once(sink, world)
    refetched = {i for i, n in server.fetched_extensive.items() if n > 1}
    assert refetched == {ids[0], ids[1]}  # complete calls were never fetched twice


def test_rerun_relists_the_lookback_but_refetches_nothing(server, world, tmp_path):
    sink = MemorySink()
    run_sync(server, tmp_path, sink)
    before = (sum(server.fetched_extensive.values()), sum(server.fetched_transcripts.values()))
    second = run_sync(server, tmp_path, sink)
    assert (sum(server.fetched_extensive.values()), sum(server.fetched_transcripts.values())) == before
    assert second.checkpoint["from"] == "2025-12-31T00:00:00Z"  # one day of lookback overlap
    assert_exactly_once(sink, world)


def test_malformed_record_is_quarantined_with_its_reason(server, world, tmp_path):
    bad = sorted(world["ids"])[5]
    server.malformed = {bad: "started"}
    sink = MemorySink()
    summary = run_sync(server, tmp_path, sink)
    assert summary.quarantined == 1
    [q] = sink.quarantine
    assert q["call_id"] == bad and q["stage"] == "extensive"
    assert "metaData.started is not an ISO-8601 timestamp" in q["reason"] and "not-a-date" in q["raw"]
    assert set(sink.calls) == world["ids"] - {bad}
    assert set(sink.transcripts) == world["ids"]


def test_a_call_that_keeps_failing_is_quarantined_not_dropped(server, world, tmp_path):
    bad = sorted(world["ids"])[7]
    server.failing = {bad}
    sink = MemorySink()
    for _ in range(2):
        run_sync(server, tmp_path, sink, max_failures=2)
    [q] = sink.quarantine
    assert q["call_id"] == bad and "failed in 2 runs" in q["reason"] and "HTTP 500" in q["reason"]
    assert set(sink.calls) == world["ids"] - {bad}
    assert saved_state(StateStore(tmp_path, "gong"))["pending"] == {}


def test_daily_budget_stops_cleanly_and_the_next_day_resumes(server, world, tmp_path):
    day = ["2026-01-01"]
    limiter = fast_limiter(per_day=12, today=lambda: day[0])
    sink = MemorySink()
    with pytest.raises(BudgetExhausted, match=r"^gong: daily request budget of 12 is spent"):
        run_sync(server, tmp_path, sink, limiter=limiter)
    assert len(server.log) == 12
    day[0] = "2026-01-02"
    run_sync(server, tmp_path, sink, limiter=limiter)
    assert_exactly_once(sink, world)


def test_sample_mode_resource_uses_the_real_client_through_the_stand_in(small_world, world, tmp_path):
    res = GongResource(sample_path=str(small_world), state_dir=str(tmp_path), requests_per_second=1000)
    sink = MemorySink()
    summary, stats = res.sync(sink)
    assert_exactly_once(sink, world)
    assert stats.requests == 2 + 2 * 2 and stats.http_429 == 0  # 175 calls: 2 list pages, 2+2 batches
    assert (tmp_path / f"gong-sample-7-30-v{GENERATOR_VERSION}.json").exists()


def test_backfill_window_is_separate_from_the_incremental_checkpoint(server, world, tmp_path):
    sink = MemorySink()
    run_sync(server, tmp_path, sink)
    state = saved_state(StateStore(tmp_path, "gong"))
    client = GongClient(
        server.url,
        BasicCredential(username="gong-key", password="gong-secret").headers(),
        limiter=fast_limiter(),
    )
    window = (datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 2, 1, tzinfo=UTC))
    config = GongSyncConfig(start=START)
    with client:
        summary = GongSync(client, StateStore(tmp_path, "gong"), config, sink, now=NOW, backfill=window).run()
    in_window = [c for c in world["calls"] if "2025-01-01" <= c["metaData"]["started"] < "2025-02-01"]
    assert summary.listed == len(in_window) > 0 and summary.calls_written == 0  # complete: not re-fetched
    after = saved_state(StateStore(tmp_path, "gong"))
    assert after["completed_to"] == state["completed_to"] and after["window"] == state["window"]
    assert after["backfills"]["2025-01-01T00:00:00Z/2025-02-01T00:00:00Z"]["done"]


def test_listed_calls_without_an_id_are_counted_not_silently_skipped(tmp_path):
    class Stub:
        def list_calls(self, start, end, cursor=None):
            yield [{"id": "1"}, {"title": "no id"}], None

        def extensive(self, ids):
            return []

        def transcripts(self, ids):
            return []

    logs = []
    sync = GongSync(
        Stub(),
        StateStore(tmp_path, "gong"),
        GongSyncConfig(start=START),
        MemorySink(),
        now=NOW,
        log=logs.append,
    )
    summary = sync.run()
    assert summary.listed == 1 and summary.listed_without_id == 1 and summary.pending_after == 1
    assert "1 listed call(s) without an id" in logs[0]


class RecordingStore(StateStore):
    """The checkpoint store, remembering the bytes of every save."""

    def __init__(self, root, name):
        super().__init__(root, name)
        self.saves: list[int] = []

    def save(self, state):
        super().save(state)
        self.saves.append(self.last_save_bytes)


class RecordingPending(KeyedStore):
    def __init__(self, root, name):
        super().__init__(root, name)
        self.applies: list[int] = []

    def apply(self, put=None, delete=()):
        super().apply(put, delete)
        self.applies.append(self.last_apply_bytes)


def test_per_page_checkpoint_cost_does_not_grow_with_the_calls_synced(world, tmp_path):
    # 2 calls a page: ~90 pages. The old layout rewrote every pending call on every page (~110 bytes
    # each with indent=1), so its last page wrote ~90x its first; now each page writes the same
    with FakeGong(world["calls"], world["transcripts"], page_size=2) as server:
        client = GongClient(
            server.url,
            BasicCredential(username="gong-key", password="gong-secret").headers(),
            limiter=fast_limiter(),
            retry=RetryPolicy(max_attempts=2, backoff_s=0.01),
        )
        store = RecordingStore(tmp_path, "gong")
        config = GongSyncConfig(start=START, batch_size=25)
        sink = MemorySink()
        with client:
            sync = GongSync(client, store, config, sink, now=NOW)
            sync.pending = RecordingPending(tmp_path, "gong.pending")
            legacy_sizes = []  # what the old layout (pending ids inside the JSON) would have written
            real_apply = sync.pending.apply

            def apply_and_measure(put=None, delete=()):
                real_apply(put, delete)
                if put and not delete and all(e["need"] == ["extensive", "transcript"] for e in put.values()):
                    whole = {**store.load(), "pending": sync.pending.as_dict()}
                    legacy_sizes.append(len(json.dumps(whole, sort_keys=True, indent=1)))

            sync.pending.apply = apply_and_measure
            sync.list_window()
            pages = len(server.requests_to("/v2/calls"))
            listing_saves = store.saves[1:]  # the first opens the window; then one per page and the close
            listing_applies = list(sync.pending.applies)
            sync.fetch_pending("extensive")
            sync.fetch_pending("transcript")
            sync.pending.close()
    assert_exactly_once(sink, world)
    assert pages >= 80 and len(listing_saves) == pages + 1 and len(listing_applies) == pages
    # the checkpoint file: the same size on the last page as on the first (cursors differ by a digit)
    per_page = listing_saves[:-1]  # the last save closes the window
    assert max(per_page) <= per_page[0] + 16 and max(store.saves) < 1_000
    # the pending rows: each page writes its own two calls, never the ones listed before
    entry = len(json.dumps({"failures": 0, "last_error": None, "need": ["extensive", "transcript"]}))
    assert max(listing_applies) <= 2 * (entry + max(len(i) for i in world["ids"]))
    # the fetch phase: a batch of 25 writes at most its own 25 rows
    assert max(sync.pending.applies[pages:]) <= 25 * (entry + max(len(i) for i in world["ids"]))
    # and what this replaced: the old whole-state checkpoint grew with every page
    assert legacy_sizes[-1] > 50 * legacy_sizes[0] and legacy_sizes[-1] > 50 * max(listing_saves)


def test_a_checkpoint_written_by_the_old_layout_resumes_exactly_once(server, world, tmp_path):
    with pytest.raises(KeyboardInterrupt):
        run_sync(server, tmp_path, MemorySink(fail_on={"complete_call_ids": 4}))
    # rewrite the state as the old code kept it: one JSON document with the pending calls inline
    store = StateStore(tmp_path, "gong")
    old = saved_state(store)
    assert len(old["pending"]) == 60 and old["window"]["cursor"]
    store.save(old)
    for f in tmp_path.glob("gong.pending.sqlite*"):
        f.unlink()
    n_before = len(server.requests_to("/v2/calls"))
    sink = MemorySink()
    run_sync(server, tmp_path, sink)
    resumed = server.requests_to("/v2/calls")[n_before:]
    assert "cursor" in resumed[0].query and len(resumed) == 9 - 3  # the old cursor was kept
    assert_exactly_once(sink, world)  # and so were the 60 pending calls it had listed
    assert "pending" not in store.load() and saved_state(store)["pending"] == {}
