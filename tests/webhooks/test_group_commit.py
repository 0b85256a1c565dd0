"""The receiver's group-commit writer: no acknowledgement before the WAL is synced, one transaction
per batch, a failed sync answered with an error (and the retry acknowledged once), checkpoints that
keep the WAL bounded."""

import asyncio
import json
import sqlite3
import threading

import pytest

from revops_pipelines.webhooks.store import EventStore, GroupCommitWriter, NewEvent, Submission


def _sub(i: int, nonce: str | None = None) -> Submission:
    body = json.dumps({"event_id": f"e-{i}", "pad": "x" * 400})
    ev = NewEvent("generic", f"e-{i}", "support_escalation", "account", "001A", None, None, body)
    return Submission("generic", [ev], nonce or f"nonce-{i:08d}")


@pytest.fixture
def store(tmp_path):
    return EventStore(tmp_path / "events.sqlite")


def test_acknowledged_only_after_the_wal_sync_returns(store):
    writer = GroupCommitWriter(store)
    release, entered = threading.Event(), threading.Event()
    real_sync = writer._sync

    def slow_sync():
        entered.set()
        release.wait(10)
        real_sync()

    writer._sync = slow_sync

    async def run():
        futs = [writer.submit_async(_sub(i)) for i in range(5)]  # one turn of the loop: one batch
        await asyncio.get_running_loop().run_in_executor(None, entered.wait, 10)
        await asyncio.sleep(0.05)
        assert not any(f.done() for f in futs)  # committed, but not yet known to be on disk
        release.set()
        return await asyncio.gather(*futs)

    outcomes = asyncio.run(run())
    assert [o.stored for o in outcomes] == [[f"e-{i}"] for i in range(5)]
    assert writer.batches == 1 and writer.submissions == 5
    writer.close()
    assert store.event_ids("generic") == {f"e-{i}" for i in range(5)}


def test_a_failed_sync_is_an_error_and_the_retry_is_acknowledged_once(store):
    writer = GroupCommitWriter(store)
    writer._sync = lambda: (_ for _ in ()).throw(OSError(5, "Input/output error"))

    async def first():
        return await writer.submit_async(_sub(1))

    with pytest.raises(OSError, match="Input/output error"):
        asyncio.run(first())
    del writer._sync  # the disk is back

    async def retry():
        return await writer.submit_async(_sub(1, nonce="nonce-retry-1"))  # a redelivery signs afresh

    out = asyncio.run(retry())
    assert out.stored == [] and out.duplicates == ["e-1"]
    writer.close()
    assert store.event_ids("generic") == {"e-1"}


def test_the_writer_never_checkpoints_itself_and_its_checkpoints_bound_the_wal(store):
    writer = GroupCommitWriter(store, checkpoint_bytes=256 << 10)

    async def run():
        for r in range(40):  # ~40 x 20 events x ~0.5 kB = ~400 kB of WAL frames
            await asyncio.gather(*(writer.submit_async(_sub(r * 100 + i)) for i in range(20)))
            await asyncio.sleep(0)

    asyncio.run(run())
    conn = writer._connection()
    assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 0  # OFF: the writer syncs the WAL itself
    writer.close()
    assert writer.checkpoints >= 1
    assert writer.wal_path.stat().st_size < 2 * (256 << 10) + (1 << 20)  # restarted, not grown to the end
    assert len(store.event_ids("generic")) == 800
    # the database file alone (WAL removed) holds what the checkpoints copied
    assert sqlite3.connect(store.path).execute("SELECT COUNT(*) FROM events").fetchone()[0] == 800
