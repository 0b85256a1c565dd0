"""Insight lifecycle (open → acknowledged → actioned → resolved/dismissed) with history, automatic
updates from executed actions and tracked outcomes, the `revops insights` CLI; and the Decision Agent
reading its context through the Data Agent."""

import json
from datetime import date

import pytest
from click.testing import CliRunner

from revops_pipelines.agents.decision import DecisionAgent
from revops_pipelines.agents.execution import ExecutionAgent
from revops_pipelines.agents.insights import history, list_insights, update_status
from revops_pipelines.agents.outcomes import track_outcomes
from revops_pipelines.cli import main
from revops_pipelines.errors import ValidationFailed


@pytest.fixture
def decided(wh, runtime, kb):
    return DecisionAgent(wh, runtime, knowledge_base=kb).run("assess_churn_risk", {"threshold": 0.3})


def _status(wh):
    df = wh.query("SELECT insight_id, account_id, category, status FROM agent_insights ORDER BY insight_id")
    return {r.insight_id: r.status for r in df.itertuples()}, df


def test_manual_lifecycle_with_history_and_refused_transitions(wh, decided):
    statuses, df = _status(wh)
    assert set(statuses.values()) == {"open"}
    a, b = df["insight_id"][0], df["insight_id"][1]
    assert update_status(wh, [a], "acknowledged", by="maria", reason="looking") == [
        {"insight_id": a, "from": "open", "to": "acknowledged"}
    ]
    update_status(wh, [a], "actioned", by="maria")
    with pytest.raises(ValidationFailed) as exc:  # one bad id or transition: nothing changes
        update_status(wh, [b, a, "nope"], "open")
    msg = str(exc.value)
    assert f"{a} cannot go from actioned to open" in msg and "insight_id: no insight 'nope'" in msg
    assert _status(wh)[0][b] == "open"
    with pytest.raises(ValidationFailed, match="status: 'closed' is not one of"):
        update_status(wh, [a], "closed")
    update_status(wh, [a], "resolved", by="maria", reason="renewed")
    update_status(wh, [a], "open", by="maria", reason="risk is back")  # reopened
    h = history(wh, a)
    assert list(zip(h["from_status"], h["to_status"], strict=True)) == [
        ("open", "acknowledged"),
        ("acknowledged", "actioned"),
        ("actioned", "resolved"),
        ("resolved", "open"),
    ]
    assert set(h["changed_by"]) == {"maria"} and h["reason"].tolist()[0] == "looking"
    assert update_status(wh, [a], "open") == []  # already there: no history row
    assert len(history(wh, a)) == 4
    assert list_insights(wh, status="open")["insight_id"].tolist() == sorted(statuses)
    assert list_insights(wh, status="acknowledged").empty


def test_executed_actions_and_outcomes_move_insights(wh, runtime, decided, seed_snapshot):
    statuses, df = _status(wh)
    dismissed = df[df["account_id"] == "001A2"]["insight_id"].tolist()
    update_status(wh, dismissed, "dismissed", by="maria", reason="known issue")
    batch = decided.model_dump(mode="json")
    ctx = {"flow_id": "f", "step_id": "alert", "run_id": "r1", "upstream": {"assess": batch}}
    ExecutionAgent(wh, runtime).run("execute_actions", {"action_types": ["slack_message"]}, ctx)
    statuses, _ = _status(wh)
    assert {statuses[i] for i in dismissed} == {"dismissed"}  # a person's decision is not overridden
    others = [i for i in statuses if i not in dismissed]
    assert {statuses[i] for i in others} == {"actioned"}
    h = history(wh, others[0])
    assert h["source"].tolist() == ["execution"] and "dry-run" in h["reason"][0]
    # later data: 001A0 improves, 001A1 churns, 001A2 renews
    wh.execute("UPDATE account_features SET days_to_renewal = 200 WHERE account_id = '001A0'")
    seed_snapshot(wh, snap=date(2026, 2, 1))
    wh.execute(
        "UPDATE account_features SET util_30d = 0.95, usage_trend = 1.3, open_tickets = 0 "
        "WHERE account_id = '001A0' AND snapshot_date = DATE '2026-02-01'"
    )
    wh.execute("UPDATE raw_sf_accounts SET churn_date = DATE '2025-12-20' WHERE account_id = '001A1'")
    res = track_outcomes(wh)
    statuses, df = _status(wh)
    assert {statuses[i] for i in dismissed} == {"dismissed"}
    assert {statuses[i] for i in others} == {"resolved"} and res["insights_resolved"] == len(others)
    reasons = {
        r.account_id: history(wh, r.insight_id)["reason"].tolist()[-1]
        for r in df.itertuples()
        if r.insight_id in others
    }
    assert "churned" in reasons["001A1"] and "improved" in reasons["001A0"]
    assert track_outcomes(wh)["insights_resolved"] == 0  # idempotent


def test_insights_cli_list_update_history(tmp_path, monkeypatch, runtime, kb):
    from revops_pipelines.warehouse.duckdb import DuckDBWarehouse

    from .conftest import seed

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("REVOPS_HOME", str(home))
    monkeypatch.delenv("REVOPS_DUCKDB_PATH", raising=False)
    monkeypatch.delenv("REVOPS_WAREHOUSE", raising=False)
    monkeypatch.delenv("REVOPS_TENANT", raising=False)
    w = DuckDBWarehouse(path=str(home / "warehouse.duckdb"))
    seed(w)
    DecisionAgent(w, runtime, knowledge_base=kb).run("assess_churn_risk", {"threshold": 0.3})
    ids = w.query("SELECT insight_id FROM agent_insights WHERE category = 'churn_risk' ORDER BY 1")[
        "insight_id"
    ]
    del w
    r = CliRunner()
    out = r.invoke(main, ["insights", "list", "--category", "churn_risk", "--json"])
    assert out.exit_code == 0, out.output
    rows = [json.loads(line) for line in out.output.splitlines()]
    assert [x["insight_id"] for x in rows] == sorted(ids) and {x["status"] for x in rows} == {"open"}
    out = r.invoke(main, ["insights", "update", ids[0], "--status", "acknowledged", "--by", "maria"])
    assert out.exit_code == 0 and f"{ids[0]}: open -> acknowledged" in out.output
    out = r.invoke(main, ["insights", "update", ids[0], "--status", "open"])
    assert out.exit_code == 2 and "cannot go from acknowledged to open" in out.output
    out = r.invoke(main, ["insights", "list", "--status", "acknowledged"])
    assert ids[0] in out.output and "1 insight(s)" in out.output
    out = r.invoke(main, ["insights", "history", ids[0]])
    assert "open -> acknowledged  by maria (manual)" in out.output


def test_decision_agent_reads_through_the_data_agent(wh, runtime, kb):
    from revops_pipelines.agents.data import DataAgent

    reads = []

    class Recording(DataAgent):
        def read_frame(self, action, sql, params):
            reads.append(action)
            return super().read_frame(action, sql, params)

    out = DecisionAgent(wh, runtime, knowledge_base=kb, data_agent=Recording(wh, runtime)).run(
        "assess_churn_risk", {"threshold": 0.3}
    )
    assert reads == ["decision_context"] and out.decisions
    DecisionAgent(wh, runtime, knowledge_base=kb).run("assess_churn_risk", {"threshold": 0.3})
    log = wh.query("SELECT action, tables FROM data_agent_query_log WHERE action = 'decision_context'")
    assert len(log) == 2  # both runs, the default path too, read through a Data Agent (guarded, logged)
    assert set(json.loads(log["tables"][0])) == {"churn_scores", "raw_sf_accounts", "account_features"}
