"""Retention of flow state history: `FlowState.prune` and `revops flows prune`."""

from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from revops_pipelines.cli import main, parse_age
from revops_pipelines.errors import RevOpsError
from revops_pipelines.flows.state import FlowState


def _step(status):
    def fn(doc):
        doc.setdefault("steps", {})["s"] = {"status": status}
        return doc

    return fn


def _age(st, days, flow_id=None):
    """Backdate history rows by ``days`` (what time would do)."""
    old = (datetime.now(UTC).replace(tzinfo=None) - timedelta(days=days)).isoformat(timespec="seconds")
    sql = "UPDATE flow_state_history SET at = ?" + (" WHERE flow_id = ?" if flow_id else "")
    st._conn().execute(sql, [old, flow_id] if flow_id else [old])


def _fill(st):
    for flow in ("a", "b"):
        for status in ("waiting", "running", "done"):
            st.update(flow, "e1", _step(status))
    st.update("a", "e2", _step("waiting"))


def test_prune_keeps_each_steps_latest_row_and_current_state(tmp_path, state_backend):
    st = state_backend(FlowState, tmp_path / "fs.sqlite")  # SQLite file and Postgres
    _fill(st)
    assert len(st.history("a")) == 4
    assert st.prune(timedelta(days=30))["deleted"] == 0  # nothing old yet
    _age(st, 200)
    out = st.prune(timedelta(days=180), flow_id="a")
    assert out["deleted"] == 2 and out["kept_latest"]  # e1's waiting and running rows
    assert [h["status"] for h in st.history("a", "e1")] == ["done"]
    assert [h["status"] for h in st.history("a", "e2")] == ["waiting"]
    assert len(st.history("b")) == 3  # another flow untouched
    assert st.get("a", "e1")["steps"]["s"]["status"] == "done"  # current state is never pruned
    assert st.prune(timedelta(days=180), keep_latest=False)["deleted"] == 2 + 3
    assert st.history("a") == [] and st.history("b") == []
    assert st.get("b", "e1") is not None
    st.update("a", "e1", _step("failed"))  # history goes on after a prune
    assert [h["status"] for h in st.history("a")] == ["failed"]
    with pytest.raises(ValueError, match="positive"):
        st.prune(timedelta(0))


def test_flows_prune_cli_uses_the_retention_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("REVOPS_HOME", str(tmp_path))
    monkeypatch.delenv("REVOPS_TENANT", raising=False)
    from revops_pipelines.flows.state import default_path

    st = FlowState(default_path())
    _fill(st)
    _age(st, 100, flow_id="a")
    r = CliRunner()
    out = r.invoke(main, ["flows", "prune"])  # default 180 days: nothing that old
    assert out.exit_code == 0 and "pruned 0 history row(s)" in out.output
    monkeypatch.setenv("REVOPS_FLOW_STATE_RETENTION_DAYS", "90")
    out = r.invoke(main, ["flows", "prune"])
    assert out.exit_code == 0 and "pruned 2 history row(s)" in out.output
    out = r.invoke(main, ["flows", "prune", "--older-than", "12w", "--all-rows", "--flow", "a"])
    assert "pruned 2 history row(s)" in out.output and st.history("a") == []
    assert len(st.history("b")) == 3
    out = r.invoke(main, ["flows", "prune", "--older-than", "soon"])
    assert out.exit_code == 2 and "--older-than: expected a positive age like 180d" in out.output


def test_parse_age():
    assert parse_age("180d") == timedelta(days=180) and parse_age("12h") == timedelta(hours=12)
    assert parse_age("4w") == timedelta(weeks=4) and parse_age("7") == timedelta(days=7)
    for bad in ("0d", "-3d", "3m", ""):
        with pytest.raises(RevOpsError):
            parse_age(bad)
