"""Shared agent/flow state (REVOPS_STATE_URL): processes claiming one entity's step, state outliving a
process, tenants kept apart in Postgres, and the URL's password never shown."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from revops_pipelines.agents.state import AgentState
from revops_pipelines.errors import ConfigurationError
from revops_pipelines.flows.state import FlowState
from revops_pipelines.settings import load_settings
from revops_pipelines.sqlite_store import StateStoreError, connect_state_store, redact_url

ROOT = Path(__file__).resolve().parents[2]

# One invocation: waits for the start signal, then claims step "s" of entity "e1" unless another run
# holds it, holding the transaction a while so the two processes overlap. Prints whether it won.
CLAIM = textwrap.dedent(
    """
    import os, sys, time
    from revops_pipelines.flows.state import FlowState
    from revops_pipelines.sqlite_store import connect_state_store

    path, run_id, go = sys.argv[1], sys.argv[2], sys.argv[3]
    st = connect_state_store(FlowState, path)  # REVOPS_STATE_URL decides the backend
    won = []

    def claim(doc):
        steps = doc.setdefault("steps", {})
        if "s" in steps:
            return doc
        time.sleep(0.3)  # inside the transaction: the other process must wait, not claim too
        steps["s"] = {"status": "running", "run_id": run_id, "at": "2026-01-01T00:00:00"}
        won.append(True)
        return doc

    while not os.path.exists(go):
        time.sleep(0.005)
    st.update("conc", "e1", claim, run_id=run_id)
    print("won" if won else "lost", flush=True)
    """
)


def _env(monkeypatch, url):
    if url:
        monkeypatch.setenv("REVOPS_STATE_URL", url)
    else:
        monkeypatch.delenv("REVOPS_STATE_URL", raising=False)
    import os

    return {**os.environ, "PYTHONPATH": str(ROOT)}


def test_two_processes_claiming_one_step_exactly_one_wins(tmp_path, state_backend, monkeypatch):
    env = _env(monkeypatch, state_backend.url)
    path = tmp_path / "state" / "flow_state.sqlite"
    state_backend(FlowState, path)  # tables exist before the race, as after any earlier run
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIM, str(path), f"run{i}", str(go)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    go.touch()
    results = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in results]
    outcomes = sorted(out.strip() for out, _ in results)
    assert outcomes == ["lost", "won"]
    winner = f"run{[out.strip() for out, _ in results].index('won')}"
    again = state_backend(FlowState, path)  # read back by a new store, after both processes ended
    assert again.get("conc", "e1")["steps"]["s"]["run_id"] == winner
    assert [(h["step_id"], h["status"], h["run_id"]) for h in again.history("conc", "e1")] == [
        ("s", "running", winner)
    ]
    assert (path.exists()) == (state_backend.backend == "sqlite")  # Postgres writes no local file


def test_state_survives_into_a_new_process(tmp_path, state_backend, monkeypatch):
    env = _env(monkeypatch, state_backend.url)
    path = tmp_path / "state" / "agent_state.sqlite"
    st = state_backend(AgentState, path)
    st.update("decision", "001A", lambda v: {"n": 1, "note": "first"})
    st.update("decision", "001A", lambda v: {**v, "n": v["n"] + 1})
    script = (
        "import json, sys\n"
        "from revops_pipelines.agents.state import AgentState\n"
        "from revops_pipelines.sqlite_store import connect_state_store\n"
        "st = connect_state_store(AgentState, sys.argv[1])\n"
        "st.update('decision', '001A', lambda v: {**v, 'n': v['n'] + 1})\n"
        "print(json.dumps([st.get('decision', '001A'), st.version('decision', '001A'), st.backend]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(path)], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    value, version, backend = json.loads(out.stdout)
    assert value == {"n": 3, "note": "first"} and version == 3 and backend == state_backend.backend
    assert st.get("decision", "001A") == {"n": 3, "note": "first"}  # the child's write is shared back


def test_tenants_cannot_cross_in_postgres(tmp_path, state_pg_url):
    alpha = AgentState(tmp_path / "a.sqlite", url=state_pg_url, tenant="alpha")
    beta = AgentState(tmp_path / "b.sqlite", url=state_pg_url, tenant="beta")
    default = AgentState(tmp_path / "d.sqlite", url=state_pg_url)
    alpha.update("decision", "001A", lambda v: {"owner": "alpha"})
    beta.update("decision", "001A", lambda v: {"owner": "beta"})
    assert alpha.get("decision", "001A") == {"owner": "alpha"}
    assert beta.get("decision", "001A") == {"owner": "beta"}
    assert default.get("decision", "001A") is None
    assert (alpha.schema, beta.schema, default.schema) == (
        "revops_state_alpha",
        "revops_state_beta",
        "revops_state",
    )
    # even unqualified SQL on a tenant's connection sees only its own schema
    rows = beta._conn().execute("SELECT value FROM agent_state").fetchall()
    assert [json.loads(v) for (v,) in rows] == [{"owner": "beta"}]
    flows = FlowState(tmp_path / "f.sqlite", url=state_pg_url, tenant="alpha")
    flows.update("onboarding", "001A", lambda d: {**d, "steps": {"k": {"status": "done"}}})
    assert FlowState(tmp_path / "g.sqlite", url=state_pg_url, tenant="beta").entities("onboarding") == {}
    with pytest.raises(Exception, match="tenant"):
        AgentState(tmp_path / "x.sqlite", url=state_pg_url, tenant='x"; DROP SCHEMA revops_state; --')


def test_state_url_unset_keeps_sqlite_and_bad_urls_name_the_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("REVOPS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("REVOPS_TENANT", raising=False)
    monkeypatch.delenv("REVOPS_STATE_URL", raising=False)
    assert load_settings().state_url is None
    st = connect_state_store(AgentState, tmp_path / "state" / "agent_state.sqlite")
    assert st.backend == "sqlite" and (tmp_path / "state" / "agent_state.sqlite").exists()
    for bad, problem in (
        ("mysql://revops:hunter2-pw@db/revops", "must be a postgresql:// URL"),
        ("postgresql://revops:hunter2-pw@db:5432", "names no database"),
        ("postgresql://revops:hunter2-pw@db:port/revops", "not a valid URL"),
    ):
        monkeypatch.setenv("REVOPS_STATE_URL", bad)
        with pytest.raises(ConfigurationError, match="REVOPS_STATE_URL") as err:
            load_settings()
        assert problem in str(err.value) and "hunter2-pw" not in str(err.value)
    monkeypatch.setenv("REVOPS_STATE_URL", "postgresql://revops@db.internal:5432/revops")
    assert load_settings().state_url == "postgresql://revops@db.internal:5432/revops"


def test_unreachable_database_error_masks_the_password(tmp_path):
    import socket

    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql://revops:Sekr3t-state-pw@127.0.0.1:{port}/revops"
    with pytest.raises(StateStoreError) as err:
        AgentState(tmp_path / "s.sqlite", url=url)
    text = str(err.value)
    assert "Sekr3t-state-pw" not in text and "revops:***@127.0.0.1" in text and "cannot connect" in text
    assert redact_url(url) == f"postgresql://revops:***@127.0.0.1:{port}/revops"
    assert redact_url("postgresql://revops@db/revops") == "postgresql://revops@db/revops"


def test_agents_and_flows_use_the_configured_backend(tmp_path, state_pg_url, monkeypatch):
    """The places that open state (an agent's ``state``, the flow runtime's ``open_state``) follow
    REVOPS_STATE_URL, each in its tenant's scope."""
    from revops_pipelines.agents.base import AgentRuntime
    from revops_pipelines.agents.decision import DecisionAgent
    from revops_pipelines.flows.state import open_state

    monkeypatch.setenv("REVOPS_STATE_URL", state_pg_url)
    agents = AgentRuntime(state_path=str(tmp_path / "state" / "agent_state.sqlite"))
    agent_state = DecisionAgent(None, agents).state
    flow_state = open_state(agents)
    assert (agent_state.backend, flow_state.backend) == ("postgres", "postgres")
    assert agent_state.schema == flow_state.schema == "revops_state"
    agent_state.update("decision", "001A", lambda v: {"seen": True})
    assert AgentState(tmp_path / "other", url=state_pg_url).get("decision", "001A") == {"seen": True}
    assert not (tmp_path / "state" / "agent_state.sqlite").exists()


def test_production_description_names_the_state_backend_without_its_password(tmp_path, monkeypatch):
    from revops_pipelines.platform import production

    monkeypatch.setenv("REVOPS_HOME", str(tmp_path))
    monkeypatch.delenv("REVOPS_TENANT", raising=False)
    monkeypatch.delenv("REVOPS_STATE_URL", raising=False)
    assert production.describe(load_settings())["state"].startswith(f"sqlite files in {tmp_path / 'state'}")
    monkeypatch.setenv("REVOPS_STATE_URL", "postgresql://revops:Sekr3t-desc-pw@db.internal:5432/revops")
    described = production.describe(load_settings())["state"]
    assert described == "postgres postgresql://revops:***@db.internal:5432/revops, schema revops_state"


def test_missing_driver_names_the_setting_and_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg2", None)  # as if the postgres extra were not installed
    with pytest.raises(ConfigurationError, match=r"REVOPS_STATE_URL.*psycopg2.*\[postgres\]"):
        AgentState(tmp_path / "s.sqlite", url="postgresql://revops@127.0.0.1:1/revops")


def test_a_lost_postgres_connection_is_replaced_on_the_next_call(tmp_path, state_pg_url):
    import psycopg2

    st = AgentState(tmp_path / "s.sqlite", url=state_pg_url)
    st.update("decision", "001A", lambda v: {"n": 1})
    pid = st._conn().raw.get_backend_pid()
    admin = psycopg2.connect(state_pg_url)
    admin.autocommit = True
    with admin.cursor() as cur:  # what a server restart or failover does to the connection
        cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
    admin.close()
    with pytest.raises(psycopg2.OperationalError):
        st.get("decision", "001A")
    assert st.get("decision", "001A") == {"n": 1}  # a new connection, same state
    assert st._conn().raw.get_backend_pid() != pid
