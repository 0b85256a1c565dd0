"""DuckDB connections: an operation's nested steps share the connection its outer step opened."""

import threading

import pandas as pd

from revops_pipelines.warehouse import table
from revops_pipelines.warehouse.duckdb import DuckDBWarehouse


def test_nested_connect_shares_the_open_connection_per_thread_and_file(tmp_path):
    wh = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    other = DuckDBWarehouse(path=str(tmp_path / "other.duckdb"))
    with wh.connect() as outer:
        with wh.connect() as inner, DuckDBWarehouse(path=wh.path).connect() as same_file:
            assert inner is outer and same_file is outer
        with other.connect() as elsewhere:
            assert elsewhere is not outer
        seen = []
        t = threading.Thread(target=lambda: seen.append(wh.connect().__enter__()))
        t.start()
        t.join()
        assert seen and seen[0] is not outer  # another thread opens its own
        outer.execute("CREATE TABLE t (x INTEGER)")
        wh.execute("INSERT INTO t VALUES (1)")  # a nested step, on the same connection
    with wh.connect() as again:
        assert again is not outer  # closed with its outermost block; the next one is fresh
        assert again.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 1


def test_a_load_opens_the_file_once(tmp_path, monkeypatch):
    wh = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    schema = table("loads", [("id", "TEXT"), ("v", "DOUBLE")], keys=("id",))
    opened = []
    real = DuckDBWarehouse._open

    def counting(self):
        opened.append(self.path)
        return real(self)

    monkeypatch.setattr(DuckDBWarehouse, "_open", counting)
    result = wh.merge(schema, pd.DataFrame({"id": ["a", "b"], "v": [1.0, 2.0]}))
    assert result.inserted == 2 and len(opened) == 1  # table migration check included
    wh.replace_table(schema, pd.DataFrame({"id": ["c"], "v": [3.0]}))
    assert len(opened) == 2  # each load opens the file once
