"""Execution Agent: verified, exactly-once, retried, dead-lettered, confirmed actions against loopback
fakes of Slack (slack-sdk) and HubSpot (hubspot-api-client), a signed webhook receiver, and outcomes."""

from datetime import date

import httpx
import pytest

from revops_pipelines.agents.base import AgentRuntime
from revops_pipelines.agents.decision import DecisionAgent
from revops_pipelines.agents.execution import ExecutionAgent
from revops_pipelines.agents.outcomes import track_outcomes
from revops_pipelines.errors import ValidationFailed
from revops_pipelines.testing import fake_crm, fake_slack
from revops_pipelines.testing.fake_crm import FakeHubSpot, WebhookReceiver
from revops_pipelines.testing.fake_slack import FakeSlack

POST = "/api/chat.postMessage"
TASKS = fake_crm.TASKS


@pytest.fixture
def batch(wh, runtime, kb):
    return (
        DecisionAgent(wh, runtime, knowledge_base=kb)
        .run("assess_churn_risk", {"threshold": 0.3})
        .model_dump(mode="json")
    )


@pytest.fixture
def slack():
    with FakeSlack() as s:
        yield s


@pytest.fixture
def hubspot():
    with FakeHubSpot() as h:
        yield h


def _with(rt, **changes):
    """A new AgentRuntime with some fields changed (a fresh resource, as Dagster would build it)."""
    return AgentRuntime(**{**rt.model_dump(), **changes})


@pytest.fixture
def live(runtime, slack, hubspot):
    return _with(
        runtime,
        dry_run=False,
        slack_base_url=slack.url + "/api/",
        slack_token=slack.token,
        crm_base_url=hubspot.url,
        crm_token=hubspot.token,
        retry_base_seconds=0.0,
    )


def _ctx(batch, step="alert", run="r1"):
    return {"flow_id": "f", "step_id": step, "run_id": run, "upstream": {"assess": batch}}


def _statuses(report):
    return [r.status for r in report.action_results]


def test_dry_run_records_and_reruns_repeat_nothing(wh, runtime, batch):
    ex = ExecutionAgent(wh, runtime)
    types = {"action_types": ["slack_message", "crm_task", "email_draft"]}
    first = ex.run("execute_actions", types, _ctx(batch))
    planned = sum(len(d["actions"]) for d in batch["decisions"])
    assert first.execution_summary.successful == planned and set(_statuses(first)) == {"dry_run"}
    assert first.action_results[0].details["would_send"]["channel"] == "#cs-churn-alerts"
    second = ex.run("execute_actions", types, _ctx(batch, run="r2"))
    assert set(_statuses(second)) == {"skipped_duplicate"} and second.execution_summary.skipped == planned
    assert wh.row_count("action_log") == planned


def test_slack_rate_limited_twice_then_ok_posts_exactly_once(wh, live, batch, slack):
    slack.fail_next(POST, fake_slack.RATE_LIMITED, fake_slack.RATE_LIMITED)  # 429 + Retry-After: 0
    out = ExecutionAgent(wh, live).run("execute_actions", {"action_types": ["slack_message"]}, _ctx(batch))
    n = len(batch["decisions"])
    assert _statuses(out) == ["succeeded"] * n
    assert len(slack.posted("#cs-churn-alerts")) == n  # one message per decision, none repeated
    assert len(slack.calls(POST)) == n + 2  # slack-sdk's RateLimitErrorRetryHandler retried the 429s
    req = slack.calls(POST)[0]
    assert req["headers"]["authorization"] == f"Bearer {slack.token}"  # vendor request shape
    msg = slack.posted("#cs-churn-alerts")[0]
    assert msg["metadata"]["event_payload"]["idempotency_key"] == out.action_results[0].action_id
    assert len(slack.calls("/api/conversations.history")) == n  # each post confirmed in the history


def test_slack_server_errors_twice_then_ok_is_one_action_with_backoff(wh, live, batch, slack):
    sleeps = []
    slack.fail_next(POST, fake_slack.SERVER_ERROR, fake_slack.SERVER_ERROR)
    ex = ExecutionAgent(wh, _with(live, retry_base_seconds=0.5), sleep=sleeps.append)
    out = ex.run("execute_actions", {"action_types": ["slack_message"]}, _ctx(batch))
    first = out.action_results[0]
    assert first.status == "succeeded" and first.attempts == 3
    assert sleeps == [0.5, 1.0]  # exponential backoff
    assert len(slack.posted("#cs-churn-alerts")) == len(batch["decisions"])


def test_lost_reply_is_recovered_not_repeated(wh, live, batch, slack, hubspot):
    slack.lose_replies = 1  # the message is stored, the reply is a 500
    hubspot.lose_replies = 1
    ex = ExecutionAgent(wh, live, sleep=lambda s: None)
    s = ex.run("execute_actions", {"action_types": ["slack_message"]}, _ctx(batch))
    c = ex.run("execute_actions", {"action_types": ["crm_task"]}, _ctx(batch, step="tasks"))
    assert s.action_results[0].details["result"]["recovered"] is True
    assert len(slack.posted("#cs-churn-alerts")) == len(batch["decisions"])
    assert c.action_results[0].details["result"]["recovered"] is True
    assert len(hubspot.tasks) == len(c.action_results)


def test_a_crashed_run_is_resumed_without_repeating(wh, live, batch, slack):
    import pandas as pd

    from revops_pipelines.agents.execution import ACTION_LOG, action_key

    d = batch["decisions"][0]
    key = action_key("f", "alert", d["decision_id"], "slack_message")
    # the crashed run had written 'pending' and Slack had posted the message, then the process died
    row = {c: None for c in ACTION_LOG.column_names} | {
        "idempotency_key": key,
        "flow_id": "f",
        "step_id": "alert",
        "decision_id": d["decision_id"],
        "account_id": d["account_id"],
        "action_type": "slack_message",
        "status": "pending",
        "payload": "{}",
        "created_at": pd.Timestamp.now(),
    }
    wh.merge(ACTION_LOG, pd.DataFrame([row]))
    slack.messages["C00000001"].append(
        {
            "type": "message",
            "ts": "1.000001",
            "text": "x",
            "metadata": {"event_type": "revops_action", "event_payload": {"idempotency_key": key}},
        }
    )
    out = ExecutionAgent(wh, live).run("execute_actions", {"action_types": ["slack_message"]}, _ctx(batch))
    first = out.action_results[0]
    assert first.status == "succeeded" and first.details["result"]["recovered"] is True
    assert len(slack.posted("#cs-churn-alerts")) == len(batch["decisions"])  # not posted twice
    assert len(slack.calls("/api/conversations.list")) == 1  # name → id for the history lookup


def test_crm_task_fails_twice_then_succeeds_exactly_once(wh, live, batch, hubspot):
    hubspot.fail_next(TASKS, fake_crm.RATE_LIMITED, fake_crm.SERVER_ERROR)
    out = ExecutionAgent(wh, live, sleep=lambda s: None).run(
        "execute_actions", {"action_types": ["crm_task"]}, _ctx(batch, step="tasks")
    )
    assert _statuses(out) and set(_statuses(out)) == {"succeeded"}
    assert out.action_results[0].attempts == 3
    assert len(hubspot.tasks) == len(out.action_results)
    task = hubspot.tasks[out.action_results[0].details["result"]["task_id"]]
    props = task["properties"]
    assert (
        props["hs_task_subject"].startswith("Churn-risk review:") and props["hs_task_status"] == "NOT_STARTED"
    )
    assert props["revops_idempotency_key"] == out.action_results[0].action_id
    assert props["hs_timestamp"].endswith("Z")
    # re-running the step performs nothing
    again = ExecutionAgent(wh, live).run(
        "execute_actions", {"action_types": ["crm_task"]}, _ctx(batch, step="tasks")
    )
    assert set(_statuses(again)) == {"skipped_duplicate"} and len(hubspot.tasks) == len(out.action_results)


def test_permanent_failures_land_in_the_dead_letter(wh, live, batch, slack, hubspot):
    hubspot.fail_next(TASKS, fake_crm._error(400, "Property values were not valid"))
    ex = ExecutionAgent(wh, live, sleep=lambda s: None)
    out = ex.run("execute_actions", {"action_types": ["crm_task"]}, _ctx(batch, step="tasks"))
    assert out.action_results[0].status == "dead_lettered"
    # a channel on the allow-list that Slack does not know: channel_not_found is permanent
    live2 = _with(live, allowed_channels=["#cs-churn-alerts", "#gone"])
    out2 = ExecutionAgent(wh, live2).run(
        "execute_actions", {"action_types": ["slack_message"], "channel": "#gone"}, _ctx(batch)
    )
    assert set(_statuses(out2)) == {"dead_lettered"} and len(slack.calls(POST)) == len(batch["decisions"])
    # a channel off the allow-list never reaches Slack
    out3 = ExecutionAgent(wh, live).run(
        "execute_actions",
        {"action_types": ["slack_message"], "channel": "#random"},
        _ctx(batch, step="other"),
    )
    assert set(_statuses(out3)) == {"dead_lettered"} and "allow-list" in out3.action_results[0].error
    dl = wh.query("SELECT action_type, reason, attempts FROM dead_letter ORDER BY action_type, reason")
    reasons = " | ".join(dl["reason"])
    assert (
        "HTTP 400" in reasons
        and "channel_not_found" in reasons
        and "channel: #random is not in the allow-list" in reasons
    )
    # dead letters are not retried by a re-run
    calls = len(slack.calls(POST))
    rerun = ExecutionAgent(wh, live2).run(
        "execute_actions", {"action_types": ["slack_message"], "channel": "#gone"}, _ctx(batch, run="r2")
    )
    assert set(_statuses(rerun)) == {"skipped_dead_letter"} and len(slack.calls(POST)) == calls


def test_exhausted_retries_are_dead_lettered_with_the_reason(wh, live, batch, slack):
    slack.fail_next(POST, *[fake_slack.SERVER_ERROR] * 4)
    out = ExecutionAgent(wh, live, sleep=lambda s: None).run(
        "execute_actions", {"action_types": ["slack_message"]}, _ctx(batch)
    )
    r = out.action_results[0]
    assert r.status == "dead_lettered" and r.attempts == 4 and "gave up after 4 attempts" in r.error
    assert wh.scalar("SELECT reason FROM dead_letter WHERE idempotency_key = ?", [r.action_id]).startswith(
        "gave up"
    )


def test_guardrails(wh, runtime, live, batch):
    with pytest.raises(ValidationFailed, match="max_actions_per_run=1"):
        ExecutionAgent(wh, _with(runtime, max_actions_per_run=1)).run(
            "execute_actions", {"action_types": ["slack_message"]}, _ctx(batch)
        )
    with pytest.raises(ValidationFailed, match="channel"):
        ExecutionAgent(wh, runtime).run(
            "execute_actions", {"action_types": ["slack_message"], "channel": "no hash"}, _ctx(batch)
        )
    capped = _with(live, max_actions_per_account_per_week=1)
    ex = ExecutionAgent(wh, capped, sleep=lambda s: None)
    first = ex.run("execute_actions", {"action_types": ["slack_message"]}, _ctx(batch))
    assert set(_statuses(first)) == {"succeeded"}
    second = ex.run("execute_actions", {"action_types": ["crm_task"]}, _ctx(batch, step="tasks"))
    assert set(_statuses(second)) == {"rejected"}
    assert "max_actions_per_account_per_week=1" in second.action_results[0].error


def test_signed_webhook_email_draft_and_writeback(wh, runtime, batch):
    for d in batch["decisions"]:
        d["actions"] += [
            {
                "type": "webhook",
                "parameters": {"account_id": d["account_id"], "data": {"p": d["priority"]}},
                "priority": d["priority"],
                "reasoning": "notify",
            },
            {
                "type": "warehouse_writeback",
                "parameters": {"account_id": d["account_id"], "value": d["priority"]},
                "priority": d["priority"],
                "reasoning": "flag",
            },
        ]
    with WebhookReceiver() as rx:
        rt = _with(
            runtime,
            dry_run=False,
            webhook_url=rx.url + "/hooks/revops",
            webhook_secret=rx.secret,
            allowed_webhook_hosts=["127.0.0.1"],
            max_actions_per_account_per_week=10,
        )
        types = {"action_types": ["webhook", "email_draft", "warehouse_writeback"]}
        out = ExecutionAgent(wh, rt, http_client=httpx.Client()).run("execute_actions", types, _ctx(batch))
        assert set(_statuses(out)) == {"succeeded"}
        assert len(rx.received) == len(batch["decisions"])
        assert rx.received[0]["event"]["event"] == "churn_risk"
        bad = _with(rt, webhook_secret="wrong")
        out2 = ExecutionAgent(wh, bad).run(
            "execute_actions", {"action_types": ["webhook"]}, _ctx(batch, step="w2")
        )
        assert set(_statuses(out2)) == {"dead_lettered"} and "HTTP 401" in out2.action_results[0].error
    assert wh.row_count("email_drafts") == sum(1 for d in batch["decisions"] if d["priority"] == "critical")
    flags = wh.query("SELECT account_id, value FROM account_flags ORDER BY account_id")
    assert dict(zip(flags["account_id"], flags["value"], strict=True)) == {
        d["account_id"]: d["priority"] for d in batch["decisions"]
    }


def test_running_the_same_flow_twice_performs_each_action_once(wh, live, slack, hubspot, tmp_path):
    from pathlib import Path

    from revops_pipelines.flows.compiler import build_job
    from revops_pipelines.flows.loader import load_flow

    spec = load_flow(Path(__file__).resolve().parents[2] / "flows_yaml" / "churn_prevention.yaml")
    job = build_job(spec)
    res = {"warehouse": wh, "agents": live}
    assert job.execute_in_process(resources=res).success
    log1 = wh.query("SELECT action_type, status FROM action_log")
    assert set(log1["status"]) == {"succeeded"}
    n_slack, n_tasks = len(slack.posted("#cs-churn-alerts")), len(hubspot.tasks)
    assert n_slack == (log1["action_type"] == "slack_message").sum() > 0
    assert n_tasks == (log1["action_type"] == "crm_task").sum() > 0
    posts = len(slack.calls(POST))
    assert job.execute_in_process(resources=res).success
    assert len(slack.posted("#cs-churn-alerts")) == n_slack and len(hubspot.tasks) == n_tasks
    assert len(slack.calls(POST)) == posts  # the second run sent nothing
    assert wh.row_count("action_log") == len(log1)


def test_outcomes_are_tracked_against_later_snapshots(wh, runtime, batch, seed_snapshot):
    ExecutionAgent(wh, runtime).run("execute_actions", {"action_types": ["slack_message"]}, _ctx(batch))
    assert set(track_outcomes(wh)["outcomes"]) == {"pending"}  # no later snapshot yet
    wh.execute("UPDATE account_features SET days_to_renewal = 200 WHERE account_id = '001A0'")
    seed_snapshot(wh, snap=date(2026, 2, 1))
    wh.execute(
        "UPDATE account_features SET util_30d = 0.95, usage_trend = 1.3, open_tickets = 0 "
        "WHERE account_id = '001A0' AND snapshot_date = DATE '2026-02-01'"
    )
    wh.execute("UPDATE raw_sf_accounts SET churn_date = DATE '2025-12-20' WHERE account_id = '001A1'")
    res = track_outcomes(wh)
    o = wh.query("SELECT account_id, outcome, health_delta FROM action_outcomes")
    got = dict(zip(o["account_id"], o["outcome"], strict=True))
    assert got == {"001A0": "improved", "001A1": "churned", "001A2": "renewed"}
    assert res["actions"] == 3 and wh.row_count("action_outcomes") == 3
