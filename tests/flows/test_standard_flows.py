"""The shipped onboarding and renewal flows on a fixed four-account world: the expected actions, state
across invocations (waits, approval) and nothing sent twice."""

from pathlib import Path

import pytest

from revops_pipelines.flows.compiler import AS_OF_TAG, build_job
from revops_pipelines.flows.loader import load_all
from revops_pipelines.flows.state import FlowState, default_path
from revops_pipelines.warehouse.duckdb import DuckDBWarehouse
from tests.agents.conftest import seed

SPECS = {s.flow_id: s for s in load_all(Path(__file__).resolve().parents[2] / "flows_yaml")}


@pytest.fixture
def world(tmp_path):
    w = DuckDBWarehouse(path=str(tmp_path / "world.duckdb"))
    seed(w)  # 001A0..001A3; days to renewal 30, 200, 45, 100; churn scores .62 .55 .31 .05
    w.execute("UPDATE account_features SET tenure_days = 900")
    w.execute("UPDATE account_features SET tenure_days = 30 WHERE account_id = '001A1'")
    w.execute("UPDATE account_features SET tenure_days = 100, util_30d = 0.1 WHERE account_id = '001A3'")
    return w


def run(flow_id, world, agents, as_of):
    result = build_job(SPECS[flow_id]).execute_in_process(
        resources={"warehouse": world, "agents": agents}, tags={AS_OF_TAG: as_of}, raise_on_error=False
    )
    assert result.success
    return result


def actions(world, flow_id):
    df = world.query(
        "SELECT step_id, account_id, action_type, status FROM action_log WHERE flow_id = ? ORDER BY 1, 2",
        [flow_id],
    )
    return list(df.itertuples(index=False, name=None))


def test_renewal_management_windows(world, agents):
    run("renewal_management", world, agents, "2026-01-05T07:00:00")
    assert actions(world, "renewal_management") == [
        ("escalate_30", "001A0", "crm_task", "dry_run"),
        ("prep_120", "001A3", "crm_task", "dry_run"),
        ("risk_60", "001A2", "slack_message", "dry_run"),
    ]
    run("renewal_management", world, agents, "2026-01-06T07:00:00")
    assert len(actions(world, "renewal_management")) == 3  # each window fires once per account
    st = FlowState(default_path(agents)).get("renewal_management", "001A3")["steps"]
    assert st["prep_120"]["status"] == "done" and st["checkin_90"]["status"] == "skipped"


def test_onboarding_over_a_month(world, agents):
    state = FlowState(default_path(agents))
    run("onboarding", world, agents, "2026-01-01T08:00:00")
    assert actions(world, "onboarding") == [
        ("kickoff", "001A1", "crm_task", "dry_run"),
        ("kickoff", "001A3", "crm_task", "dry_run"),
    ]
    run("onboarding", world, agents, "2026-01-09T08:00:00")  # day 8: adoption check, low adoption alert
    assert ("low_adoption_alert", "001A3", "slack_message", "dry_run") in actions(world, "onboarding")
    assert len(actions(world, "onboarding")) == 3
    doc = state.get("onboarding", "001A3")["steps"]
    assert doc["adoption_check"]["output"]["metrics"]["util_30d"] == pytest.approx(0.1)
    assert doc["day30_review"]["status"] == "waiting"
    run("onboarding", world, agents, "2026-02-01T08:00:00")  # day 31: the review needs approval
    assert state.get("onboarding", "001A1")["steps"]["day30_review"]["status"] == "awaiting_approval"
    state.approve("onboarding", "001A1", "day30_review", by="csm")
    run("onboarding", world, agents, "2026-02-02T08:00:00")
    assert actions(world, "onboarding")[0] == ("day30_review", "001A1", "email_draft", "dry_run")
    assert state.get("onboarding", "001A3")["steps"]["day30_review"]["status"] == "awaiting_approval"
    run("onboarding", world, agents, "2026-02-03T08:00:00")
    assert len(actions(world, "onboarding")) == 4
