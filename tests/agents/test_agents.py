import json
from datetime import date

import pandas as pd
import pytest

from assets.features import FEATURES
from assets.salesforce import ACCOUNTS
from models.churn import SCORES
from revops_pipelines.agents.base import AgentRuntime
from revops_pipelines.agents.decision import DecisionAgent
from revops_pipelines.agents.execution import ExecutionAgent
from revops_pipelines.errors import ConfigurationError, ValidationFailed
from revops_pipelines.warehouse.duckdb import DuckDBWarehouse

SNAP = date(2025, 12, 1)


def _accounts():
    rows = []
    for i, (seg, arr) in enumerate(
        [("Enterprise", 250_000), ("SMB", 8_000), ("Mid-Market", 60_000), ("SMB", 5_000)]
    ):
        rows.append(
            {c: None for c in ACCOUNTS.column_names}
            | {
                "account_id": f"001A{i}",
                "name": f"Acme {i}",
                "segment": seg,
                "arr": float(arr),
                "customer_since": date(2023, 1, 1),
                "system_modstamp": pd.Timestamp("2025-12-01"),
                "is_deleted": False,
            }
        )
    return pd.DataFrame(rows)


@pytest.fixture
def wh(tmp_path):
    w = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    w.merge(ACCOUNTS, _accounts())
    factors = [
        {"feature": "usage_trend", "value": 0.41, "contribution": 0.9},
        {"feature": "open_tickets", "value": 3.0, "contribution": 0.4},
        {"feature": "tenure_days", "value": 900.0, "contribution": -0.2},
    ]
    scores = pd.DataFrame(
        {
            "account_id": ["001A0", "001A1", "001A2", "001A3"],
            "snapshot_date": [SNAP] * 4,
            "churn_score": [0.62, 0.55, 0.31, 0.05],
            "model_version": "v1",
            "top_factors": json.dumps(factors),
        }
    )
    w.merge(SCORES, scores)
    feats = pd.DataFrame(
        [
            {c: None for c in FEATURES.column_names}
            | {"account_id": a, "snapshot_date": SNAP, "days_to_renewal": d, "usage_trend": 0.5}
            for a, d in [("001A0", 30), ("001A1", 200), ("001A2", 45), ("001A3", 100)]
        ]
    )
    w.merge(FEATURES, feats)
    return w


def test_decisions_are_prioritised_explained_and_deterministic(wh):
    agent = DecisionAgent(wh)
    out = agent.run("assess_churn_risk", {"threshold": 0.3})
    ids = [d.account_id for d in out.decisions]
    assert "001A3" not in ids  # below threshold
    assert ids[0] == "001A0"  # highest risk x ARR x urgent renewal
    top = out.decisions[0]
    assert top.priority == "critical" and top.human_review_required
    assert {a.type for a in top.actions} == {"slack_message", "crm_task"}
    assert top.evidence[0].feature == "usage_trend" and top.evidence[0].contribution == 0.9
    assert "usage in the last 30 days" in top.actions[0].reasoning
    again = agent.run("assess_churn_risk", {"threshold": 0.3})
    assert again.model_dump() == out.model_dump()
    assert wh.row_count("agent_decisions") == len(out.decisions)  # re-run merged, not duplicated


def test_invalid_parameters_name_the_field(wh):
    with pytest.raises(ValidationFailed) as exc:
        DecisionAgent(wh).run("assess_churn_risk", {"threshold": 3, "colour": "red"})
    msg = str(exc.value)
    assert "threshold" in msg and "colour: unknown field" in msg


def test_unknown_action_is_rejected(wh):
    with pytest.raises(ValidationFailed, match="unknown action 'launch'"):
        DecisionAgent(wh).run("launch", {})


def test_invalid_output_never_leaves_the_agent(wh, monkeypatch):
    from revops_pipelines.agents import decision

    def broken(agent, p, ctx):
        return {"policy": "x", "evaluated": -1, "decisions": []}

    spec = decision.DecisionAgent.actions["assess_churn_risk"]
    monkeypatch.setitem(
        decision.DecisionAgent.actions, "assess_churn_risk", spec.__class__(spec.params, spec.output, broken)
    )
    with pytest.raises(ValidationFailed, match="output.*evaluated"):
        DecisionAgent(wh).run("assess_churn_risk", {})
    m = wh.query("SELECT status, error FROM agent_metrics WHERE action = 'assess_churn_risk'")
    assert (m["status"] == "error").any()


def test_execution_is_idempotent_across_reruns(wh):
    batch = DecisionAgent(wh).run("assess_churn_risk", {"threshold": 0.3}).model_dump(mode="json")
    ctx = {"flow_id": "f", "step_id": "alert", "run_id": "r1", "upstream": {"assess": batch}}
    ex = ExecutionAgent(wh, AgentRuntime(dry_run=True))
    first = ex.run("execute_actions", {"action_types": ["slack_message"]}, ctx)
    assert first.execution_summary.successful == len(batch["decisions"])
    assert all(r.status == "dry_run" for r in first.action_results)
    assert first.action_results[0].details["would_send"]["channel"] == "#cs-churn-alerts"
    second = ex.run("execute_actions", {"action_types": ["slack_message"]}, {**ctx, "run_id": "r2"})
    assert second.execution_summary.successful == 0
    assert second.execution_summary.skipped == len(batch["decisions"])
    assert wh.row_count("action_log") == len(batch["decisions"])


def test_guardrail_and_live_mode_refuse_clearly(wh):
    batch = DecisionAgent(wh).run("assess_churn_risk", {"threshold": 0.3}).model_dump(mode="json")
    ctx = {"upstream": {"assess": batch}}
    with pytest.raises(ValidationFailed, match="max_actions_per_run=1"):
        ExecutionAgent(wh, AgentRuntime(max_actions_per_run=1)).run(
            "execute_actions", {"action_types": ["slack_message"]}, ctx
        )
    with pytest.raises(ConfigurationError, match="REVOPS_DRY_RUN"):
        ExecutionAgent(wh, AgentRuntime(dry_run=False)).run(
            "execute_actions", {"action_types": ["slack_message"]}, ctx
        )
    with pytest.raises(ValidationFailed, match="channel"):
        ExecutionAgent(wh).run(
            "execute_actions", {"action_types": ["slack_message"], "channel": "no hash"}, ctx
        )
