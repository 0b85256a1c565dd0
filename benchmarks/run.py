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
    "flow_fanout",
    "webhook_ack",
    "peak_rss",
]


def _fresh_process_env(pycache: str) -> dict[str, str]:
    """The same interpreter and flags for both sides, with bytecode cached in a private folder.

    Without this the comparison is unfair whenever ``PYTHONDONTWRITEBYTECODE`` is set (as in some
    sandboxes and containers): Dagster's bytecode was compiled by pip at install time, the project's
    would be recompiled from source in every process. A private ``PYTHONPYCACHEPREFIX`` gives both
    sides a warm cache (after one warm-up run each) without writing into the source tree.
    """
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")}
    env["PYTHONPYCACHEPREFIX"] = pycache
    return env


def _fresh_process_seconds(codes: dict[str, str], repeats: int = 9) -> dict[str, dict[str, float]]:
    """Median times of ``python -c <code>`` in fresh processes, for every named code.

    ``load``: from launching the process until ``code`` has run (the child reads the same monotonic
    clock), i.e. interpreter start-up plus the imports; ``exit``: the whole process, including the
    interpreter's teardown (which is not loading, and is dominated by a final pass of the garbage
    collector). One warm-up run each (it compiles the bytecode), then the sides are interleaved so a
    change in machine load during the measurement hits all of them alike."""
    import resource

    done = "; import time as _t; print(_t.monotonic_ns())"
    times: dict[str, dict[str, list[float]]] = {name: {"load": [], "exit": [], "cpu": []} for name in codes}
    with tempfile.TemporaryDirectory() as pycache:
        env = _fresh_process_env(pycache)
        for i in range(repeats + 1):
            for name, code in codes.items():
                used = resource.getrusage(resource.RUSAGE_CHILDREN)
                start = time.monotonic_ns()
                out = subprocess.run(
                    [sys.executable, "-c", code + done],
                    check=True,
                    cwd=HERE.parent,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    text=True,
                ).stdout
                end = time.monotonic_ns()
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                if i:  # the first round is the warm-up
                    times[name]["load"].append((int(out.split()[-1]) - start) / 1e9)
                    times[name]["exit"].append((end - start) / 1e9)
                    # the child's CPU seconds (user + system, whole process): the same work whatever
                    # share of the cores the scheduler gave it on a busy machine
                    times[name]["cpu"].append(after.ru_utime + after.ru_stime - used.ru_utime - used.ru_stime)
    return {name: {k: statistics.median(v) for k, v in t.items()} for name, t in times.items()}


def bench_defs_load() -> dict:
    t = _fresh_process_seconds(
        {"project": "import revops_pipelines.definitions", "baseline": "import dagster"}
    )
    return {
        "project": t["project"]["load"],
        "baseline": t["baseline"]["load"],
        "ratio": t["project"]["load"] / t["baseline"]["load"],
        "unit": "s",
        "goal": "ratio <= 1.3",
        "project_with_exit": t["project"]["exit"],
        "baseline_with_exit": t["baseline"]["exit"],
        "ratio_with_exit": t["project"]["exit"] / t["baseline"]["exit"],
        "project_cpu": t["project"]["cpu"],
        "baseline_cpu": t["baseline"]["cpu"],
        "ratio_cpu": t["project"]["cpu"] / t["baseline"]["cpu"],
        "method": "median of 9 interleaved fresh processes each (launch until loaded), "
        "same interpreter and flags, bytecode cached in a private folder after a warm-up run",
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
    project_s, baseline_s = [], []
    for _ in range(3):  # interleaved; the best of each side (a single run moves with the machine's load)
        with tempfile.TemporaryDirectory() as d:
            wh = DuckDBWarehouse(path=f"{d}/p.duckdb")
            t = time.perf_counter()
            wh.merge(schema, df)
            project_s.append(time.perf_counter() - t)
            arrow = pa.Table.from_pandas(df, preserve_index=False)
            con = duckdb.connect(f"{d}/b.duckdb")
            con.execute(schema.ddl("duckdb"))
            t = time.perf_counter()
            con.register("a", arrow)
            con.execute("INSERT INTO bench_rows SELECT * FROM a")
            baseline_s.append(time.perf_counter() - t)
            con.close()
    project, baseline = rows / min(project_s), rows / min(baseline_s)
    return {"project": project, "baseline": baseline, "ratio": project / baseline}


def bench_warehouse_load() -> dict:
    scaling = {n: _warehouse_load(n) for n in (10_000, 100_000, 1_000_000)}
    top = scaling[1_000_000]
    return {
        **top,
        "unit": "rows/s",
        "goal": "throughput ratio >= 0.5",
        "method": "best of 3 interleaved runs per side, each into a new file",
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


PEAK_RSS_LAST = HERE / "peak_rss_last.json"  # committed: the last measured figure, with its date

_PEAK_CHILD = """
import resource, subprocess, sys
done = subprocess.run([sys.executable, "-m", "revops_pipelines.cli", "demo"], stdout=subprocess.DEVNULL,
                      stderr=subprocess.PIPE, text=True)
if done.returncode:
    sys.exit("revops demo failed:\\n" + done.stderr[-3000:])
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def measure_peak_rss(accounts: int) -> dict:
    """Peak resident memory of `revops demo` on an ``accounts`` world, in a fresh runtime folder.

    The demo runs under a small wrapper process, so the figure (the largest resident set of any
    process of the demo, ``ru_maxrss`` of the wrapper's children) covers the demo alone and not the
    benchmarks that ran before it in this process."""
    import datetime
    import os

    with tempfile.TemporaryDirectory() as d:
        env = {
            **os.environ,
            "REVOPS_HOME": d,
            "REVOPS_SAMPLE_ACCOUNTS": str(accounts),
            "DAGSTER_HOME": f"{d}/dh",
        }
        os.makedirs(f"{d}/dh")
        t = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", _PEAK_CHILD], env=env, capture_output=True, text=True, cwd=HERE.parent
        )
        if done.returncode:
            raise RuntimeError(f"peak_rss: the demo failed on {accounts} accounts:\n{done.stderr[-3000:]}")
        out = done.stdout
        seconds = time.perf_counter() - t
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE.parent
    )
    return {
        "project": int(out.split()[-1]) / 1024,
        "baseline": None,
        "ratio": None,
        "unit": "MB",
        "goal": "reported",
        "accounts": accounts,
        "seconds": round(seconds, 1),
        "measured_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "commit": commit.stdout.strip() or None,
    }


def bench_peak_rss() -> dict:
    """The whole demo on a 50,000-account world takes far longer than the bench's few-minute budget, so
    it is opt-in: ``BENCH_PEAK_RSS=1 make bench`` or ``python -m benchmarks.run peak_rss`` measures it
    (and records it in ``peak_rss_last.json``); otherwise the last recorded figure is reported, labelled
    with its date as not measured in this run."""
    import os

    if os.environ.get("BENCH_PEAK_RSS") == "1" or "peak_rss" in sys.argv[1:]:
        result = measure_peak_rss(int(os.environ.get("BENCH_PEAK_ACCOUNTS", "50000")))
        PEAK_RSS_LAST.write_text(json.dumps(result, indent=2) + "\n")
        return {**result, "measured_in_this_run": True}
    if not PEAK_RSS_LAST.exists():
        return {"project": None, "baseline": None, "ratio": None, "unit": "MB", "missing": True}
    last = json.loads(PEAK_RSS_LAST.read_text())
    return {
        **last,
        "measured_in_this_run": False,
        "goal": f"reported (last measured {last['measured_at'][:10]} on {last['accounts']:,} accounts, "
        "not in this run: BENCH_PEAK_RSS=1)",
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
    "flow_fanout": "benchmarks.flow_fanout:bench_flow_fanout",
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
    path = HERE / "results.json"
    previous = json.loads(path.read_text()) if only and path.exists() else {}
    # a subset run updates its own keys and keeps the other keys' last figures
    path.write_text(
        json.dumps(
            {k: results.get(k, previous.get(k)) for k in KEYS if k in results or k in previous}, indent=2
        )
    )
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
