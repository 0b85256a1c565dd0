"""The query cache shared across processes through its file store: another instance (or process)
finds an entry while nothing it reads has been written, and never a stale one after a write."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from revops_pipelines.warehouse.cache import FileStore, QueryCache
from revops_pipelines.warehouse.duckdb import DuckDBWarehouse
from revops_pipelines.warehouse.schema import table

T = table("shared_t", [("id", "TEXT"), ("v", "DOUBLE"), ("day", "DATE")], keys=("id",))
SQL = "SELECT COUNT(*) AS n, SUM(v) AS s, MAX(day) AS last_day FROM shared_t WHERE id <> ?"


def load(wh, values):
    days = [dt.date(2025, 1, 1) + dt.timedelta(days=i) for i in range(len(values))]
    wh.merge(T, pd.DataFrame({"id": [f"k{i}" for i in range(len(values))], "v": values, "day": days}))


def test_two_instances_on_one_warehouse_share_entries_and_never_see_stale_ones(warehouse, tmp_path):
    store = tmp_path / "cache"
    load(warehouse, [1.0, 2.0])
    twin = warehouse.model_copy()  # another resource instance: what another process holds
    a, b = QueryCache(warehouse, store_dir=store), QueryCache(twin, store_dir=store)
    first = a.query(SQL, ["zz"])
    assert (a.stats.misses, a.stats.hits) == (1, 0)
    shared = b.query(SQL, ["zz"])  # b has never run it: found in the file store
    assert (b.stats.misses, b.stats.file_hits) == (0, 1)
    pd.testing.assert_frame_equal(shared, first)
    assert shared["last_day"][0] == dt.date(2025, 1, 2)

    load(twin, [1.0, 2.0, 40.0])  # b's side writes
    for cache in (a, b):  # neither the memory nor the file entry from before the write is served
        fresh = cache.query(SQL, ["zz"])
        assert (fresh["n"][0], fresh["s"][0]) == (3, 43.0)
    assert a.stats.misses == 2 and b.stats.misses + b.stats.file_hits == 2
    warehouse.execute("DELETE FROM shared_t WHERE id = ?", ["k2"])
    assert b.query(SQL, ["zz"])["s"][0] == 3.0


SCRIPT = textwrap.dedent(
    """
    import json, sys
    from revops_pipelines.warehouse.cache import QueryCache
    from revops_pipelines.warehouse.duckdb import DuckDBWarehouse
    cache = QueryCache(DuckDBWarehouse(path=sys.argv[1]), store_dir=sys.argv[2])
    df = cache.query(sys.argv[3], ["zz"])
    print(json.dumps({"s": float(df["s"][0]), "file_hits": cache.stats.file_hits, "misses": cache.stats.misses}))
    """
)


def _other_process(db, store) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(db), str(store), SQL], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow  # two interpreter start-ups
def test_another_process_shares_the_store_and_sees_writes_at_once(tmp_path):
    db, store = tmp_path / "w.duckdb", tmp_path / "cache"
    wh = DuckDBWarehouse(path=str(db))
    load(wh, [1.0, 2.0])
    mine = QueryCache(wh, store_dir=store)
    assert mine.query(SQL, ["zz"])["s"][0] == 3.0
    assert _other_process(db, store) == {"s": 3.0, "file_hits": 1, "misses": 0}
    load(wh, [1.0, 2.0, 5.0])
    assert _other_process(db, store) == {"s": 8.0, "file_hits": 0, "misses": 1}
    assert mine.query(SQL, ["zz"])["s"][0] == 8.0 and mine.stats.file_hits == 1  # the other's entry


def test_file_store_is_atomic_bounded_and_tolerates_damage(tmp_path):
    store = FileStore(tmp_path / "s", max_files=2)
    keys = [f"{i:064x}" for i in range(3)]
    for i, k in enumerate(keys):
        assert store.put(k, pd.DataFrame({"x": [i]}))
    assert len(list((tmp_path / "s").glob("*.arrow"))) == 2 and not list((tmp_path / "s").glob("*.tmp"))
    (tmp_path / "s" / f"{keys[2]}.arrow").write_bytes(b"not arrow")
    assert store.get(keys[2]) is None and not (tmp_path / "s" / f"{keys[2]}.arrow").exists()
    assert not store.put(keys[0], pd.DataFrame({"x": [object()]}))  # not storable: memory only
    with pytest.raises(ValueError, match="not a cache key"):
        store.get("../escape")


def test_file_store_is_bounded_in_bytes(tmp_path):
    store = FileStore(tmp_path / "s", max_bytes=64_000)
    big = pd.DataFrame({"x": range(4_000)})  # 32 kB of int64: over a quarter of the budget
    assert not store.put(f"{1:064x}", big) and store.get(f"{1:064x}") is None
    for i in range(12):
        assert store.put(f"{i + 10:064x}", pd.DataFrame({"x": range(1_000)}))  # ~8 kB each
    assert sum(f.stat().st_size for f in (tmp_path / "s").glob("*.arrow")) <= 64_000
    assert store.get(f"{21:064x}") is not None and store.get(f"{10:064x}") is None  # oldest went first
