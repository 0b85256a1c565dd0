"""Replay protection of the event store: nonces held in memory, reloaded from the stored events."""

import json
import sqlite3
import time

from revops_pipelines.webhooks.store import NONCE_TTL_S, EventStore, NewEvent, Submission


def _sub(event_id: str, nonce: str) -> Submission:
    body = json.dumps({"event_id": event_id})
    return Submission(
        "generic",
        [NewEvent("generic", event_id, "support_escalation", "account", "001A", None, None, body)],
        nonce,
    )


def test_a_replayed_nonce_is_refused_in_process_and_after_a_restart(tmp_path):
    path = tmp_path / "events.sqlite"
    store = EventStore(path)
    assert store.submit(_sub("e-1", "nonce-aaaaaaaa")).stored == ["e-1"]
    assert store.submit(_sub("e-2", "nonce-aaaaaaaa")).replayed_nonce  # same nonce, other event
    a, b = store.submit_many([_sub("e-3", "nonce-bbbbbbbb"), _sub("e-4", "nonce-bbbbbbbb")])
    assert a.stored == ["e-3"] and b.replayed_nonce  # within one batch too
    assert store.submit(_sub("e-1", "nonce-cccccccc")).duplicates == ["e-1"]  # redelivery, fresh nonce
    restarted = EventStore(path)  # a new process: the window comes back from the stored events
    assert restarted.submit(_sub("e-5", "nonce-aaaaaaaa")).replayed_nonce
    assert restarted.submit(_sub("e-5", "nonce-bbbbbbbb")).replayed_nonce
    assert restarted.submit(_sub("e-5", "nonce-dddddddd")).stored == ["e-5"]
    assert store.event_ids("generic") == {"e-1", "e-3", "e-5"}


def test_nonces_older_than_the_window_are_forgotten(tmp_path, monkeypatch):
    path = tmp_path / "events.sqlite"
    store = EventStore(path)
    t0 = time.time()
    monkeypatch.setattr(time, "time", lambda: t0 - NONCE_TTL_S - 5)
    assert store.submit(_sub("old-1", "nonce-oldoldold")).stored == ["old-1"]
    monkeypatch.setattr(time, "time", lambda: t0)
    assert store.submit(_sub("new-1", "nonce-oldoldold")).stored == ["new-1"]  # expired in memory
    assert EventStore(path).submit(_sub("new-2", "nonce-newnewnew")).stored == ["new-2"]
    reloaded = EventStore(path)
    assert reloaded.submit(_sub("new-3", "nonce-oldoldold")).replayed_nonce  # new-1's use is recent
    assert len(reloaded._nonces.seen) == 2  # old-1's row is outside the window: not loaded


def test_a_store_file_from_before_the_nonce_column_opens_and_keeps_its_events(tmp_path):
    path = tmp_path / "events.sqlite"
    c = sqlite3.connect(path)
    c.execute(
        "CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, source TEXT NOT NULL, event_id TEXT NOT NULL,"
        " event_type TEXT NOT NULL, entity_type TEXT, entity_id TEXT, occurred_at TEXT, payload TEXT NOT NULL,"
        " received_at TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'received', reason TEXT, run_keys TEXT,"
        " run_ids TEXT, attempts INTEGER NOT NULL DEFAULT 0, updated_at TEXT NOT NULL, UNIQUE (source, event_id))"
    )
    c.execute("CREATE TABLE nonces (source TEXT NOT NULL, nonce TEXT NOT NULL, seen_at REAL NOT NULL)")
    c.execute(
        "INSERT INTO events (source, event_id, event_type, payload, received_at, updated_at) "
        "VALUES ('generic', 'kept', 'support_escalation', '{}', '2026-01-01T00:00:00', '2026-01-01T00:00:00')"
    )
    c.commit()
    c.close()
    store = EventStore(path)
    assert store.submit(_sub("kept", "nonce-12345678")).duplicates == ["kept"]
    assert store.submit(_sub("next", "nonce-12345678")).replayed_nonce
    tables = {
        r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master WHERE type='table'")
    }
    assert "nonces" not in tables
