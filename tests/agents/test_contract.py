"""The common agent contract: typed versioned I/O, standardisation, state, logs, metrics."""

import json
import logging
import threading
from datetime import date

import pytest
from pydantic import ValidationError

from revops_pipelines.agents.decision import Decision, DecisionAgent
from revops_pipelines.agents.standardise import sf_id18
from revops_pipelines.agents.state import AgentState
from revops_pipelines.errors import ValidationFailed
from revops_pipelines.logging import JsonFormatter


def test_invalid_parameters_name_the_field(wh, runtime):
    with pytest.raises(ValidationFailed) as exc:
        DecisionAgent(wh, runtime, knowledge_base=None).run(
            "assess_churn_risk", {"threshold": 3, "colour": "red"}
        )
    msg = str(exc.value)
    assert "threshold" in msg and "colour: unknown field" in msg


def test_unknown_action_is_rejected(wh, runtime):
    with pytest.raises(ValidationFailed, match="unknown action 'launch'"):
        DecisionAgent(wh, runtime).run("launch", {})


def test_invalid_output_never_leaves_the_agent(wh, runtime, monkeypatch):
    from revops_pipelines.agents import decision

    def broken(agent, p, ctx):
        return {"policy": "x", "evaluated": -1, "eligible": 0, "decisions": []}

    spec = decision.DecisionAgent.actions["assess_churn_risk"]
    monkeypatch.setitem(
        decision.DecisionAgent.actions, "assess_churn_risk", spec.__class__(spec.params, spec.output, broken)
    )
    with pytest.raises(ValidationFailed, match="output.*evaluated"):
        DecisionAgent(wh, runtime).run("assess_churn_risk", {})
    m = wh.query("SELECT status, error, trace_id FROM agent_metrics WHERE action = 'assess_churn_risk'")
    assert (m["status"] == "error").any() and m["trace_id"].notna().all()


def test_input_standardisation_normalises_ids_dates_money_names():
    d = Decision.model_validate(
        {
            "decision_id": "abcdef0123456789",
            "account_id": " 001Aa00000AbCdE ",  # 15-char Salesforce id → 18-char case-safe form
            "account_name": "  Acme   Corp ",
            "arr": "$1,250.50k",
            "currency": " usd ",
            "snapshot_date": "2025-12-01T10:00:00Z",
            "churn_score": 0.5,
            "priority": "high",
            "priority_score": 0.8,
            "rank": 1,
            "confidence": 0.5,
            "situation_summary": "s",
            "key_insights": [],
            "actions": [],
            "human_review_required": False,
            "evidence": [],
            "criteria": {},
            "explanation": "e",
        }
    )
    assert d.account_id == sf_id18("001Aa00000AbCdE") and len(d.account_id) == 18
    assert d.account_name == "Acme Corp"
    assert d.arr == pytest.approx(1_250_500.0) and d.currency == "USD"
    assert d.snapshot_date == date(2025, 12, 1)
    with pytest.raises(ValidationError) as exc:
        Decision.model_validate(
            {**d.model_dump(), "arr": "lots", "colour": "red", "snapshot_date": "soon", "currency": "dollars"}
        )
    text = str(exc.value)
    for field in ("arr", "colour", "snapshot_date", "currency"):
        assert field in text


def test_sf_id18_matches_salesforce():
    # documented example: 001A0000006Vm9r → 001A0000006Vm9rIAC
    assert sf_id18("001A0000006Vm9r") == "001A0000006Vm9rIAC"


def test_state_is_per_agent_and_entity_and_concurrent_safe(tmp_path, state_backend):
    st = state_backend(AgentState, tmp_path / "s.sqlite")  # SQLite file and Postgres

    def bump(_):
        for _ in range(25):
            st.update("a", "acc1", lambda v: {"n": (v or {"n": 0})["n"] + 1})

    threads = [threading.Thread(target=bump, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert st.get("a", "acc1") == {"n": 100}
    assert st.version("a", "acc1") == 100
    assert st.get("b", "acc1") is None  # another agent's state is separate
    again = state_backend(AgentState, tmp_path / "s.sqlite")  # survives across invocations
    assert again.get("a", "acc1") == {"n": 100}


def test_structured_logs_carry_trace_id(wh, runtime, kb, caplog):
    caplog.set_level(logging.INFO, logger="revops.agents")
    DecisionAgent(wh, runtime, knowledge_base=kb).run("assess_churn_risk", {}, {"run_id": "run-1"})
    rec = next(r for r in caplog.records if "assess_churn_risk ok" in r.getMessage())
    assert rec.trace_id  # set by the RedactingFilter on the logger while the call ran
    payload = json.loads(JsonFormatter().format(rec))
    assert payload["trace_id"] and payload["run_id"] == "run-1"
    assert payload["fields"]["agent"] == "decision" and payload["fields"]["items_out"] >= 1
    m = wh.query("SELECT agent, agent_version, status, items_out, latency_ms FROM agent_metrics")
    assert m.iloc[0]["status"] == "ok" and m.iloc[0]["latency_ms"] > 0
