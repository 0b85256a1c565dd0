import textwrap

import pytest

from revops_pipelines.agents.base import AgentRuntime
from revops_pipelines.warehouse.duckdb import DuckDBWarehouse


@pytest.fixture
def flow_wh(tmp_path):
    """A warehouse with a tiny ``flow_accounts`` table (entity selection reads it)."""
    w = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    w.execute(
        "CREATE TABLE flow_accounts (account_id TEXT, account_name TEXT, arr DOUBLE, score DOUBLE, "
        "days_to_renewal INTEGER)"
    )
    w.execute(
        "INSERT INTO flow_accounts VALUES ('001A0', 'Acme 0', 250000, 0.62, 30), "
        "('001A1', 'Acme 1', 8000, 0.10, 200), ('001A2', 'Acme 2', 60000, 0.31, 45)"
    )
    return w


@pytest.fixture
def agents(tmp_path):
    return AgentRuntime(
        state_path=str(tmp_path / "state" / "agent_state.sqlite"), kb_uri=str(tmp_path / "no_kb")
    )


@pytest.fixture
def write_flow(tmp_path):
    def _write(text: str, name: str = "flow.yaml"):
        p = tmp_path / "flows" / name
        p.parent.mkdir(exist_ok=True)
        p.write_text(textwrap.dedent(text))
        return p

    return _write
