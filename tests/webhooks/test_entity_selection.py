"""An event-triggered run selects just the event's entity, with the event's fields, through either
selection path (the flow's own SELECT or the Data Agent)."""

import pytest

from revops_pipelines.agents.base import AgentRuntime
from revops_pipelines.errors import ValidationFailed
from revops_pipelines.flows.runtime import select_entities
from revops_pipelines.flows.spec import FlowSpec
from revops_pipelines.warehouse.duckdb import DuckDBWarehouse

EVENT = {
    "source": "generic",
    "event_id": "esc-7",
    "event_type": "support_escalation",
    "data": {"severity": "critical", "ticket_id": "T-1", "nested": {"x": 1}, "bad-key": 1},
}


def _spec(via: str, id_column: str = "account_id") -> FlowSpec:
    return FlowSpec.model_validate(
        {
            "flow_id": "esc",
            "version": 1,
            "owner": "cs",
            "trigger": {"type": "event", "event": "support_escalation"},
            "entities": {
                "sql": "SELECT account_id, arr FROM accts WHERE arr > ? ORDER BY arr DESC;",
                "params": [0],
                "id_column": id_column,
                "via": via,
            },
            "steps": [{"id": "s", "type": "action", "parameters": {"type": "crm_task", "parameters": {}}}],
        }
    )


@pytest.fixture
def wh(tmp_path):
    w = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    w.execute("CREATE TABLE accts (account_id TEXT, arr DOUBLE)")
    w.execute("INSERT INTO accts VALUES ('001A0', 10), ('001A1', 20), ('001A2', 30)")
    return w


@pytest.mark.parametrize("via", ["warehouse", "data_agent"])
def test_event_run_selects_only_the_events_entity(wh, tmp_path, via):
    agents = AgentRuntime(state_path=str(tmp_path / "state" / "a.sqlite"), kb_uri=str(tmp_path / "kb"))
    spec = _spec(via)
    assert len(select_entities(spec, wh, agents)) == 3  # the flow's selection, unchanged without an event
    (row,) = select_entities(spec, wh, agents, entity_ids=["001A1"], event=EVENT)
    assert row["account_id"] == "001A1" and row["arr"] == 20
    assert row["_id"] == "001A1@generic:esc-7"  # flow state per event occurrence
    assert (row["event_key"], row["event_severity"], row["event_ticket_id"]) == (
        "generic:esc-7",
        "critical",
        "T-1",
    )
    assert "event_nested" not in row and "event_bad-key" not in row  # scalars with identifier names only
    assert select_entities(spec, wh, agents, entity_ids=["001Z9"]) == []  # not selected by the flow
    assert select_entities(spec, wh, agents, entity_ids=[]) == []


def test_entity_ids_need_a_plain_id_column(wh, tmp_path):
    with pytest.raises(ValidationFailed, match="entities.id_column"):
        select_entities(_spec("warehouse", id_column="account_id; DROP"), wh, entity_ids=["001A1"])
