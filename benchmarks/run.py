"""Run every benchmark, print a table and write benchmarks/results.json.

A figure whose capability does not exist yet is printed as missing, never faked.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
KEYS = [
    "defs_load",
    "warehouse_load",
    "gong_rate",
    "churn_train",
    "kb_search",
    "embed",
    "decide",
    "flow_compile",
    "webhook_ack",
    "peak_rss",
]


def _fresh_process_seconds(code: str, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, cwd=HERE.parent)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_defs_load() -> dict:
    project = _fresh_process_seconds("import revops_pipelines.definitions")
    baseline = _fresh_process_seconds("import dagster")
    return {
        "project": project,
        "baseline": baseline,
        "ratio": project / baseline,
        "unit": "s",
        "goal": "ratio <= 1.3",
    }


def _warehouse_load(rows: int) -> dict:
    import duckdb
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    from revops_pipelines.warehouse import table
    from revops_pipelines.warehouse.duckdb import DuckDBWarehouse

    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {
            "id": np.arange(rows).astype(str),
            "account_id": rng.integers(0, 10_000, rows).astype(str),
            "value": rng.random(rows),
            "n": rng.integers(0, 1000, rows),
        }
    )
    schema = table(
        "bench_rows",
        [("id", "TEXT"), ("account_id", "TEXT"), ("value", "DOUBLE"), ("n", "BIGINT")],
        keys=("id",),
    )
    with tempfile.TemporaryDirectory() as d:
        wh = DuckDBWarehouse(path=f"{d}/p.duckdb")
        t = time.perf_counter()
        wh.merge(schema, df)
        project = rows / (time.perf_counter() - t)
        arrow = pa.Table.from_pandas(df, preserve_index=False)
        con = duckdb.connect(f"{d}/b.duckdb")
        con.execute(schema.ddl("duckdb"))
        t = time.perf_counter()
        con.register("a", arrow)
        con.execute("INSERT INTO bench_rows SELECT * FROM a")
        baseline = rows / (time.perf_counter() - t)
        con.close()
    return {"project": project, "baseline": baseline, "ratio": project / baseline}


def bench_warehouse_load() -> dict:
    scaling = {n: _warehouse_load(n) for n in (10_000, 100_000, 1_000_000)}
    top = scaling[1_000_000]
    return {
        **top,
        "unit": "rows/s",
        "goal": "throughput ratio >= 0.5",
        "scaling": {str(n): round(v["project"]) for n, v in scaling.items()},
    }


def bench_flow_compile() -> dict:
    import yaml

    from revops_pipelines.flows.compiler import compile_flows
    from revops_pipelines.flows.loader import load_all

    src = yaml.safe_load((HERE.parent / "flows_yaml" / "churn_prevention.yaml").read_text())
    with tempfile.TemporaryDirectory() as d:
        for i in range(100):
            (Path(d) / f"f{i}.yaml").write_text(yaml.safe_dump({**src, "flow_id": f"flow_{i}"}))
        t = time.perf_counter()
        compile_flows(load_all(d))
        project = time.perf_counter() - t
    return {"project": project, "baseline": None, "ratio": None, "unit": "s", "goal": "< 1 s"}


def bench_peak_rss() -> dict:
    """Peak resident memory of `revops demo` on a large world, in a fresh process and runtime folder."""
    import os
    import resource

    accounts = int(os.environ.get("BENCH_PEAK_ACCOUNTS", "50000"))
    with tempfile.TemporaryDirectory() as d:
        env = {
            **os.environ,
            "REVOPS_HOME": d,
            "REVOPS_SAMPLE_ACCOUNTS": str(accounts),
            "DAGSTER_HOME": f"{d}/dh",
        }
        os.makedirs(f"{d}/dh")
        t = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "revops_pipelines.cli", "demo"],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=HERE.parent,
        )
        seconds = time.perf_counter() - t
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {
        "project": peak_mb,
        "baseline": None,
        "ratio": None,
        "unit": "MB",
        "goal": "reported",
        "accounts": accounts,
        "seconds": round(seconds, 1),
    }


BENCHES: dict[str, Callable[[], dict] | str] = {
    "defs_load": bench_defs_load,
    "warehouse_load": bench_warehouse_load,
    "gong_rate": "benchmarks.gong_rate:bench_gong_rate",
    "churn_train": "benchmarks.churn_train:bench_churn_train",
    "kb_search": "benchmarks.kb_search:bench_kb_search",
    "embed": "benchmarks.kb_search:bench_embed",
    "decide": "benchmarks.decide:bench_decide",
    "flow_compile": bench_flow_compile,
    "webhook_ack": "benchmarks.webhook_ack:bench_webhook_ack",
    "peak_rss": bench_peak_rss,
}


def _resolve(entry: Callable[[], dict] | str) -> Callable[[], dict] | None:
    """Benchmarks of capabilities that are not built yet resolve to None (printed as missing)."""
    if callable(entry):
        return entry
    import importlib

    module, attr = entry.split(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError):
        return None


def main() -> None:
    results: dict[str, dict] = {}
    only = set(sys.argv[1:])  # `python -m benchmarks.run defs_load kb_search` runs a subset
    for key in KEYS:
        if only and key not in only:
            continue
        fn = _resolve(BENCHES[key])
        if fn is None:
            results[key] = {"project": None, "baseline": None, "ratio": None, "unit": None, "missing": True}
            continue
        print(f"running {key} ...", file=sys.stderr, flush=True)
        results[key] = fn()
    (HERE / "results.json").write_text(json.dumps(results, indent=2))
    print(f"{'key':<16} {'project':>14} {'baseline':>14} {'ratio':>8}  unit      goal")
    for key, r in results.items():
        if r.get("missing"):
            print(f"{key:<16} {'missing':>14}")
            continue
        fmt = lambda v: "-" if v is None else f"{v:,.3f}" if v < 100 else f"{v:,.0f}"  # noqa: E731
        print(
            f"{key:<16} {fmt(r['project']):>14} {fmt(r['baseline']):>14} {fmt(r['ratio']):>8}  "
            f"{r['unit']:<9} {r.get('goal', '')}"
        )


if __name__ == "__main__":
    main()
