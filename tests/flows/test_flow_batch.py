"""The runtime's batch path: a fan-out step runs many entities in one agent call, with the same
per-entity outputs, state, failures and idempotency as one call per entity."""

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from pydantic import BaseModel

from revops_pipelines.agents.data import DataAgent
from revops_pipelines.flows import runtime
from revops_pipelines.flows.loader import load_flow
from revops_pipelines.flows.plugins import STEP_TYPES, StepContext, register_step_type
from revops_pipelines.flows.runtime import StepFailed, run_entity_step
from revops_pipelines.flows.spec import FlowSpec
from revops_pipelines.flows.state import FlowState
from revops_pipelines.warehouse.duckdb import DuckDBWarehouse
from tests.agents.conftest import seed

ONBOARDING = load_flow(Path(__file__).resolve().parents[2] / "flows_yaml" / "onboarding.yaml")
T0 = datetime(2026, 1, 1, 8)


def _world(path):
    w = DuckDBWarehouse(path=str(path))
    seed(w)  # 001A0..001A3
    w.execute("UPDATE account_features SET tenure_days = 30")
    w.execute("UPDATE account_features SET util_30d = 0.1 WHERE account_id = '001A3'")
    return w


def _onboard(tmp_path, name, agents, batch, skip=None):
    w = _world(tmp_path / f"{name}.duckdb")
    if skip:
        w.execute("UPDATE account_features SET tenure_days = 900 WHERE account_id = ?", [skip])
    state = FlowState(tmp_path / f"{name}.sqlite")
    ents = runtime.select_entities(ONBOARDING, w, agents)
    steps = {s.id: s for s in ONBOARDING.steps}
    counts = {}
    for sid, now in (("kickoff", T0), ("adoption_check", T0 + timedelta(days=8))):
        for s in (sid, "low_adoption_alert") if sid == "adoption_check" else (sid,):
            base = StepContext("onboarding", s, f"run-{s}", w, agents)
            counts[s] = run_entity_step(ONBOARDING, steps[s], base, ents, state, now=now, batch=batch)[
                "counts"
            ]
    return w, state, ents, counts


def _comparable(doc):
    """A state document without what legitimately differs between two runs (timings, query text)."""
    out = {}
    for sid, st in doc["steps"].items():
        o = st.get("output") or {}
        o = {k: v for k, v in o.items() if k != "query"}
        if "summary" in o:
            o["summary"] = {k: v for k, v in o["summary"].items() if k != "time_ms"}
        out[sid] = (st["status"], o)
    return out


def test_batch_path_matches_one_call_per_entity(tmp_path, agents, monkeypatch):
    monkeypatch.setattr(runtime, "BATCH_SIZE", 2)  # 3 entities: a chunk of two, then one
    wb, sb, ents, cb = _onboard(tmp_path, "batch", agents, batch=True, skip="001A1")
    ws, ss, _, cs = _onboard(tmp_path, "single", agents, batch=False, skip="001A1")
    assert [e["_id"] for e in ents] == ["001A0", "001A2", "001A3"]  # by ARR
    assert (
        cb
        == cs
        == {
            "kickoff": {"done": 3},
            "adoption_check": {"done": 3},
            "low_adoption_alert": {"skipped": 2, "done": 1},
        }
    )
    docs_b, docs_s = sb.entities("onboarding"), ss.entities("onboarding")
    assert {e: _comparable(d) for e, d in docs_b.items()} == {e: _comparable(d) for e, d in docs_s.items()}
    assert docs_b["001A3"]["steps"]["adoption_check"]["output"]["metrics"]["util_30d"] == pytest.approx(0.1)
    q = "SELECT step_id, account_id, action_type, status, idempotency_key FROM action_log ORDER BY 1, 2"
    assert wb.query(q).values.tolist() == ws.query(q).values.tolist()
    # the batch path made one Data Agent call per chunk; the other path one per entity
    calls = "SELECT action, COUNT(*) AS n FROM agent_metrics WHERE agent = ? GROUP BY 1 ORDER BY 1"
    assert wb.query(calls, ["data"]).values.tolist() == [["account_metrics", 1], ["account_metrics_many", 1]]
    assert ws.query(calls, ["data"]).values.tolist() == [["account_metrics", 3]]
    assert wb.query(calls, ["execution"])["n"].sum() == 2 + 1  # kickoff: 2 chunks; alert: 1 entity
    assert ws.query(calls, ["execution"])["n"].sum() == 3 + 1
    # history records the same transitions
    hist = lambda st: sorted((h["entity_id"], h["step_id"], h["status"]) for h in st.history("onboarding"))  # noqa: E731
    assert hist(sb) == hist(ss)


def test_batch_rerun_repeats_nothing(tmp_path, agents):
    w, state, ents, _ = _onboard(tmp_path, "b", agents, batch=True)
    n = w.row_count("action_log")
    base = StepContext("onboarding", "kickoff", "run-again", w, agents)
    out = run_entity_step(ONBOARDING, ONBOARDING.steps[0], base, ents, state, now=T0 + timedelta(days=9))
    assert out["counts"] == {"done": 4} and w.row_count("action_log") == n and len(ents) == 4
    # the same kickoff planned for an entity twice (same account) in one batch runs once
    twins = [{**ents[0], "_id": "twin-a"}, {**ents[0], "_id": "twin-b"}]
    w2 = _world(tmp_path / "twins.duckdb")
    base = StepContext("onboarding", "kickoff", "run-twins", w2, agents)
    out = run_entity_step(
        ONBOARDING, ONBOARDING.steps[0], base, twins, FlowState(tmp_path / "t.sqlite"), now=T0
    )
    statuses = sorted(o["status"] for o in out["outputs"].values())
    assert statuses == ["dry_run", "skipped_duplicate"] and w2.row_count("action_log") == 1


class _P(BaseModel):
    value: int


CALLS: list[str] = []


def _one(p, ctx):
    CALLS.append(f"one:{ctx.entity_id}")
    if p.value < 0:
        raise ValueError(f"negative value for {ctx.entity_id}")
    return {"double": 2 * p.value}


def _many(items):
    CALLS.append(f"many:{len(items)}")
    if any(p.value == 99 for p, _ in items):
        raise RuntimeError("the whole batch call failed")
    if any(p.value == 98 for p, _ in items):
        return []  # a broken batch path: too few results
    return [
        ValueError(f"negative value for {c.entity_id}") if p.value < 0 else {"double": 2 * p.value}
        for p, c in items
    ]


@pytest.fixture
def doubler():
    CALLS.clear()
    register_step_type("doubler", _one, _P, batch_fn=_many)
    yield
    STEP_TYPES.pop("doubler", None)


def _spec():
    return FlowSpec.model_validate(
        {
            "flow_id": "dbl",
            "version": 1,
            "owner": "x",
            "entities": {"sql": "SELECT 1 AS account_id"},
            "steps": [{"id": "s", "type": "doubler", "parameters": {"value": "${entity.v}"}}],
        }
    )


def test_failures_stay_per_entity_and_retries_run_only_those(tmp_path, doubler):
    spec, state = _spec(), FlowState(tmp_path / "s.sqlite")
    ents = [{"_id": f"e{i}", "v": v} for i, v in enumerate([1, -1, 3, "x"])]
    base = StepContext("dbl", "s", "r1", None, None)
    with pytest.raises(StepFailed, match="2 entities failed") as exc:
        run_entity_step(spec, spec.steps[0], base, ents, state, now=T0)
    assert "e1: ValueError: negative value for e1" in str(exc.value) and "e3" in str(exc.value)
    assert CALLS == ["many:3"]  # e3's parameters fail validation before the call; one batch call
    docs = state.entities("dbl")
    assert docs["e0"]["steps"]["s"] == {**docs["e0"]["steps"]["s"], "status": "done", "output": {"double": 2}}
    assert docs["e1"]["steps"]["s"]["status"] == "failed" and "negative" in docs["e1"]["steps"]["s"]["error"]
    assert "value" in docs["e3"]["steps"]["s"]["error"]  # names the field
    CALLS.clear()
    ents[1]["v"], ents[3]["v"] = 5, 6
    out = run_entity_step(spec, spec.steps[0], StepContext("dbl", "s", "r2", None, None), ents, state, now=T0)
    assert CALLS == ["many:2"] and out["counts"] == {"done": 4}  # done entities are not run again
    assert out["outputs"]["e1"] == {"double": 10}


def test_a_failed_batch_call_falls_back_to_one_call_per_entity(tmp_path, doubler):
    spec, state = _spec(), FlowState(tmp_path / "s.sqlite")
    ents = [{"_id": "a", "v": 99}, {"_id": "b", "v": 2}]
    out = run_entity_step(spec, spec.steps[0], StepContext("dbl", "s", "r", None, None), ents, state, now=T0)
    assert CALLS == ["many:2", "one:a", "one:b"]
    assert out["outputs"] == {"a": {"double": 198}, "b": {"double": 4}}
    CALLS.clear()
    ents = [{"_id": "c", "v": 98}, {"_id": "d", "v": 1}]
    out = run_entity_step(spec, spec.steps[0], StepContext("dbl", "s", "r", None, None), ents, state, now=T0)
    assert CALLS == ["many:2", "one:c", "one:d"] and out["counts"] == {"done": 2}


def test_account_metrics_many_matches_account_metrics(tmp_path, agents):
    from datetime import date

    w = _world(tmp_path / "w.duckdb")
    seed(w, snap=date(2026, 1, 1))
    w.execute("UPDATE account_features SET util_30d = 0.9 WHERE snapshot_date = DATE '2026-01-01'")
    agent = DataAgent(w, agents)
    reqs = [
        {"account_id": "001A0", "metrics": ["util_30d", "open_tickets"]},
        {"account_id": "001A2", "metrics": ["util_30d", "open_tickets"], "snapshot_date": "2025-12-01"},
        {"account_id": "nope", "metrics": ["util_30d"]},
        {"account_id": "001A3"},
    ]
    many = agent.run("account_metrics_many", {"requests": reqs}).results
    one = [agent.run("account_metrics", r) for r in reqs]
    assert [m.model_dump(exclude={"query"}) for m in many] == [m.model_dump(exclude={"query"}) for m in one]
    assert many[0].metrics["util_30d"] == pytest.approx(0.9) and many[1].metrics["util_30d"] == pytest.approx(
        0.5
    )
    assert not many[2].found and many[0].query.row_count == 1
