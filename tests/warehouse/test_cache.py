"""Query cache on both backends: hits when nothing changed, never stale after a write."""

from __future__ import annotations

import pandas as pd
import pytest

from revops_pipelines.errors import WarehouseError
from revops_pipelines.warehouse.cache import QueryCache
from revops_pipelines.warehouse.schema import table

T = table("cached_t", [("id", "TEXT"), ("v", "DOUBLE")], keys=("id",))
OTHER = table("other_t", [("id", "TEXT")], keys=("id",))
SQL = "SELECT SUM(v) AS s FROM cached_t WHERE id <> ?"


def load(wh, values):
    wh.merge(T, pd.DataFrame({"id": [f"k{i}" for i in range(len(values))], "v": values}))


def test_hit_when_unchanged_and_key_normalises_whitespace_and_comments(warehouse):
    load(warehouse, [1.0, 2.0])
    cache = QueryCache(warehouse)
    assert cache.query(SQL, ["zz"])["s"][0] == 3.0
    assert cache.query("SELECT  SUM(v) AS s -- total\nFROM cached_t  WHERE id <> ?;", ["zz"])["s"][0] == 3.0
    assert (cache.stats.hits, cache.stats.misses) == (1, 1)
    cache.query(SQL, ["k0"])  # other parameters: another entry
    assert cache.stats.misses == 2 and cache.stats.as_dict()["hit_rate"] == pytest.approx(1 / 3, abs=1e-3)


@pytest.mark.parametrize(
    "write", ["merge", "replace_where", "execute_insert", "execute_delete", "other_instance"]
)
def test_never_stale_after_a_write(warehouse, write):
    load(warehouse, [1.0, 2.0])
    cache = QueryCache(warehouse)
    assert cache.query(SQL, ["zz"])["s"][0] == 3.0
    if write == "merge":
        load(warehouse, [1.0, 2.0, 4.0])
        expected = 7.0
    elif write == "replace_where":
        warehouse.replace_where(T, pd.DataFrame({"id": ["k0"], "v": [10.0]}), "id = ?", ["k0"])
        expected = 12.0
    elif write == "execute_insert":
        warehouse.execute("INSERT INTO cached_t (id, v) VALUES (?, ?)", ["k9", 5.0])
        expected = 8.0
    elif write == "execute_delete":
        warehouse.execute("DELETE FROM cached_t WHERE id = ?", ["k1"])
        expected = 1.0
    else:  # a second resource instance (another process) writes the same warehouse
        twin = warehouse.model_copy()
        load(twin, [1.0, 2.0, 100.0])
        expected = 103.0
    assert cache.query(SQL, ["zz"])["s"][0] == expected
    assert cache.stats.hits == 0 and cache.stats.misses == 2


def test_write_to_an_unrelated_table_keeps_the_entry(warehouse):
    load(warehouse, [1.0])
    cache = QueryCache(warehouse)
    cache.query(SQL, ["zz"])
    warehouse.merge(OTHER, pd.DataFrame({"id": ["x"]}))
    cache.query(SQL, ["zz"])
    assert cache.stats.hits == 1


def test_results_are_copies_and_lru_evicts(warehouse):
    load(warehouse, [1.0])
    cache = QueryCache(warehouse, max_entries=2)
    df = cache.query(SQL, ["zz"])
    df.loc[0, "s"] = -1
    assert cache.query(SQL, ["zz"])["s"][0] == 1.0
    cache.query(SQL, ["a"])
    cache.query(SQL, ["b"])
    assert cache.stats.evictions == 1 and cache.stats.entries == 2


def test_only_single_reads_are_cached(warehouse):
    cache = QueryCache(warehouse)
    for sql in ("DELETE FROM cached_t", "SELECT 1; SELECT 2"):
        with pytest.raises(WarehouseError, match="single read"):
            cache.query(sql)
