"""Fan-out flow throughput: the onboarding flow's kickoff (an Execution Agent action) and day-7
adoption check (Data Agent metrics) over a synthetic book of accounts, batched vs one agent call per
entity.

``project`` is entities per second through both steps on the batch path (the runtime default: chunks of
200, one agent call per chunk); ``baseline`` the same steps with one agent call per entity (measured on
a smaller slice, as it is slow); ``ratio`` = project / baseline. Dry-run, local DuckDB and SQLite state.
"""

from __future__ import annotations

import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

ACCOUNTS = 1000
SINGLE_SLICE = 60


def _world(path: Path, n: int):
    import numpy as np
    import pandas as pd

    from assets.features import FEATURES
    from assets.salesforce import ACCOUNTS as SF_ACCOUNTS
    from revops_pipelines.warehouse.duckdb import DuckDBWarehouse

    w = DuckDBWarehouse(path=str(path))
    rng = np.random.default_rng(0)
    ids = [f"001B{i:05d}" for i in range(n)]
    acc = pd.DataFrame({c: None for c in SF_ACCOUNTS.column_names}, index=range(n)).assign(
        account_id=ids,
        name=[f"Co {i}" for i in range(n)],
        segment="SMB",
        arr=rng.lognormal(10, 1, n),
        customer_since=pd.Timestamp("2025-10-01"),
        system_modstamp=pd.Timestamp("2025-12-01"),
        is_deleted=False,
    )
    w.merge(SF_ACCOUNTS, acc)
    feats = pd.DataFrame({c: None for c in FEATURES.column_names}, index=range(n)).assign(
        account_id=ids,
        snapshot_date=pd.Timestamp("2025-12-01").date(),
        arr=acc["arr"],
        segment="SMB",
        plan="pro",
        tenure_days=60,
        util_30d=rng.uniform(0, 1, n),
        sessions_30d=rng.uniform(0, 20, n),
        features_used_30d=rng.uniform(0, 5, n),
        days_since_active=rng.integers(0, 30, n),
    )
    w.merge(FEATURES, feats)
    return w


def _run(root: Path, n: int, batch: bool) -> float:
    from revops_pipelines.agents.base import AgentRuntime
    from revops_pipelines.flows import runtime as rt
    from revops_pipelines.flows.loader import load_flow
    from revops_pipelines.flows.plugins import StepContext
    from revops_pipelines.flows.state import FlowState

    w = _world(root / "w.duckdb", n)
    agents = AgentRuntime(state_path=str(root / "state" / "agent_state.sqlite"), kb_uri=str(root / "nokb"))
    spec = load_flow(Path(__file__).resolve().parents[1] / "flows_yaml" / "onboarding.yaml")
    state = FlowState(root / "state" / "flow_state.sqlite")
    ents = rt.select_entities(spec, w, agents)
    assert len(ents) == n, len(ents)
    steps = {s.id: s for s in spec.steps}
    t0 = datetime(2026, 1, 1, 8)
    started = time.perf_counter()
    for sid, now in (("kickoff", t0), ("adoption_check", t0 + timedelta(days=8))):
        base = StepContext(spec.flow_id, sid, f"bench-{sid}", w, agents)
        out = rt.run_entity_step(spec, steps[sid], base, ents, state, now=now, batch=batch)
        assert out["counts"] == {"done": n}, out["counts"]
    return n / (time.perf_counter() - started)


def bench_flow_fanout() -> dict:
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        batched = _run(Path(a), ACCOUNTS, batch=True)
        single = _run(Path(b), SINGLE_SLICE, batch=False)
    return {
        "project": batched,
        "baseline": single,
        "ratio": batched / single,
        "unit": "entities/s",
        "goal": f"reported (batch over {ACCOUNTS} accounts vs one call per entity over {SINGLE_SLICE})",
    }


if __name__ == "__main__":
    print(bench_flow_fanout())
