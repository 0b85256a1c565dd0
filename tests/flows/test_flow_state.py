"""Flow state: survives a restart, keeps a history, and concurrent updates lose nothing — on each backend
(SQLite file, Postgres: the ``state_backend`` fixture)."""

import threading

import pytest

from revops_pipelines.flows.state import FlowState


def test_state_survives_a_restart_with_history(tmp_path, state_backend):
    path = tmp_path / "flow_state.sqlite"
    st = state_backend(FlowState, path)

    def mark(status):
        def fn(doc):
            doc["steps"]["kickoff"] = {"status": status, "at": "2026-01-01T00:00:00"}
            return doc

        return fn

    st.update("onboarding", "001A", mark("waiting"), run_id="r1")
    st.update("onboarding", "001A", mark("done"), run_id="r2")
    st.update("onboarding", "001A", mark("done"), run_id="r3")  # no change → no history row
    del st
    again = state_backend(FlowState, path)  # a new process would see the same
    assert again.get("onboarding", "001A")["steps"]["kickoff"]["status"] == "done"
    assert again.version("onboarding", "001A") == 3
    hist = again.history("onboarding", "001A")
    assert [(h["step_id"], h["status"], h["run_id"]) for h in hist] == [
        ("kickoff", "waiting", "r1"),
        ("kickoff", "done", "r2"),
    ]
    assert list(again.entities("onboarding")) == ["001A"]


def test_concurrent_updates_lose_nothing(tmp_path, state_backend):
    path = tmp_path / "flow_state.sqlite"
    state_backend(FlowState, path)
    n_threads, n_each = 8, 25

    def worker(i):
        st = state_backend(FlowState, path)  # own connection, as a separate invocation would have
        for j in range(n_each):

            def fn(doc, i=i, j=j):
                doc["steps"][f"s{i}_{j}"] = {"status": "done", "at": "x"}
                doc["counter"] = doc.get("counter", 0) + 1
                return doc

            st.update("f", "e1", fn, run_id=f"t{i}")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    st = state_backend(FlowState, path)
    doc = st.get("f", "e1")
    assert doc["counter"] == n_threads * n_each
    assert len(doc["steps"]) == n_threads * n_each
    assert st.version("f", "e1") == n_threads * n_each
    assert len(st.history("f", "e1")) == n_threads * n_each


def test_a_failing_update_changes_nothing(tmp_path, state_backend):
    st = state_backend(FlowState, tmp_path / "s.sqlite")
    st.update("f", "e", lambda d: {**d, "steps": {"a": {"status": "done"}}})

    def boom(doc):
        doc["steps"]["a"]["status"] = "failed"
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        st.update("f", "e", boom)
    assert st.get("f", "e")["steps"]["a"]["status"] == "done"


def test_approve_only_what_awaits_approval(tmp_path, state_backend):
    st = state_backend(FlowState, tmp_path / "s.sqlite")
    with pytest.raises(KeyError, match="no state"):
        st.approve("f", "e", "review")
    st.update("f", "e", lambda d: {**d, "steps": {"review": {"status": "awaiting_approval"}}})
    with pytest.raises(KeyError, match="not awaiting"):
        st.approve("f", "e", "other")
    st.approve("f", "e", "review", by="maria")
    assert st.get("f", "e")["steps"]["review"]["approved"] is True
    assert st.history("f", "e")[-1]["status"].startswith("approved")


def test_concurrent_invocations_run_each_entity_step_once(tmp_path, state_backend):
    import time

    from pydantic import BaseModel

    from revops_pipelines.flows.plugins import STEP_TYPES, StepContext, register_step_type
    from revops_pipelines.flows.runtime import run_entity_step
    from revops_pipelines.flows.spec import FlowSpec

    calls = []

    class P(BaseModel):
        pass

    def slow(p, ctx):
        calls.append(ctx.entity_id)
        time.sleep(0.05)
        return {"ok": True}

    register_step_type("slow", slow, P)
    try:
        spec = FlowSpec.model_validate(
            {
                "flow_id": "conc",
                "version": 1,
                "owner": "x",
                "entities": {"sql": "SELECT 1 AS account_id"},
                "steps": [{"id": "s", "type": "slow"}],
            }
        )
        entities = [{"_id": f"e{i}", "account_id": f"e{i}"} for i in range(10)]
        path = tmp_path / "fs.sqlite"
        state_backend(FlowState, path)
        from datetime import datetime

        def invoke(run_id):
            base = StepContext("conc", "s", run_id, None, None)
            run_entity_step(
                spec, spec.steps[0], base, entities, state_backend(FlowState, path), now=datetime(2026, 1, 1)
            )

        threads = [threading.Thread(target=invoke, args=(f"run{i}",)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(calls) == sorted(e["_id"] for e in entities)  # each exactly once
        st = state_backend(FlowState, path)
        assert all(d["steps"]["s"]["status"] == "done" for d in st.entities("conc").values())
    finally:
        STEP_TYPES.pop("slow", None)
