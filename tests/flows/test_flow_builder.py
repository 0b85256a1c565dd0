"""The flow builder: its API (validation with line/column, saving rules) and the page in headless Chromium."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from starlette.testclient import TestClient

from revops_pipelines.flows.builder import create_app
from revops_pipelines.flows.loader import load_flow

FLOWS = Path(__file__).resolve().parents[2] / "flows_yaml"
GOOD = """\
flow_id: tiny
version: 1
owner: tests
steps:
  - id: metrics
    agent: data
    action: account_metrics
    parameters:
      account_id: "001A0"
      metrics: [util_30d]
"""


@pytest.fixture
def folder(tmp_path):
    out = tmp_path / "flows"
    out.mkdir()
    shutil.copy(FLOWS / "onboarding.yaml", out / "onboarding.yaml")
    return out


@pytest.fixture
def client(folder):
    return TestClient(create_app(folder))


def test_page_and_metadata(client):
    page = client.get("/")
    assert page.status_code == 200 and "Flow builder" in page.text
    meta = client.get("/api/meta").json()
    assert "account_metrics" in meta["agents"]["data"]
    assert set(meta["agents"]) >= {"data", "decision", "execution"}
    assert "action" in meta["step_types"]


def test_listing_reads_every_flow_file_and_marks_invalid_ones(client, folder):
    (folder / "broken.yaml").write_text(
        GOOD.replace("agent: data", "agent: oracle").replace("tiny", "broken")
    )
    (folder / "notes.txt").write_text("not a flow")
    listing = {f["file"]: f for f in client.get("/api/flows").json()["flows"]}
    assert set(listing) == {"onboarding.yaml", "broken.yaml"}
    assert listing["onboarding.yaml"] == {
        "file": "onboarding.yaml",
        "flow_id": "onboarding",
        "version": 1,
        "valid": True,
    }
    assert listing["broken.yaml"]["valid"] is False and listing["broken.yaml"]["flow_id"] == "broken"


def test_a_flow_opens_as_yaml_and_form_values(client):
    data = client.get("/api/flows/onboarding.yaml").json()
    assert data["yaml"] == (FLOWS / "onboarding.yaml").read_text()
    form = data["form"]
    original = yaml.safe_load(data["yaml"])
    assert [s["id"] for s in form["steps"]] == [s["id"] for s in original["steps"]]
    # free-form parts are YAML text in the form, and read back to the same values
    for step, source in zip(form["steps"], original["steps"], strict=True):
        assert yaml.safe_load(step["parameters"]) == source["parameters"]
    assert yaml.safe_load(form["entities"]["params"]) == original["entities"]["params"]
    assert client.get("/api/flows/missing.yaml").status_code == 404


def test_validation_reports_every_problem_with_line_and_column(client):
    assert client.post("/api/validate", content=GOOD).json() == {
        "ok": True,
        "problems": [],
        "flow_id": "tiny",
        "version": 1,
    }
    bad = GOOD.replace("agent: data", "agent: oracle").replace("version: 1", "version: 0")
    result = client.post("/api/validate?file=tiny.yaml", content=bad).json()
    assert result["ok"] is False
    by_line = {p["line"]: p for p in result["problems"]}
    assert by_line[2]["message"].startswith("version:")
    assert by_line[2]["column"] == 10
    syntax = client.post("/api/validate", content="flow_id: x\nsteps: [\n").json()
    assert syntax["ok"] is False and "YAML syntax" in syntax["problems"][0]["message"]
    assert syntax["problems"][0]["line"] == 3


def test_unknown_agent_is_located_at_its_line(client):
    bad = GOOD.replace("agent: data", "agent: oracle")
    (problem,) = client.post("/api/validate", content=bad).json()["problems"]
    assert problem["line"] == 6 and problem["column"] == 12  # `    agent: oracle`
    assert "unknown agent 'oracle'" in problem["message"]


def test_saving_a_new_flow_writes_valid_yaml(client, folder):
    reply = client.put("/api/flows/tiny.yaml", json={"yaml": GOOD})
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"saved": "tiny.yaml", "flow_id": "tiny", "version": 1}
    assert load_flow(folder / "tiny.yaml").flow_id == "tiny"
    assert not list(folder.glob(".*"))  # no temporary file left behind


def test_an_existing_file_needs_a_version_bump_or_overwrite(client, folder):
    assert client.put("/api/flows/tiny.yaml", json={"yaml": GOOD}).status_code == 200
    edited = GOOD.replace("owner: tests", "owner: revops")
    same = client.put("/api/flows/tiny.yaml", json={"yaml": edited})
    assert same.status_code == 409 and "version 1" in same.json()["error"]
    assert "owner: tests" in (folder / "tiny.yaml").read_text()
    bumped = client.put("/api/flows/tiny.yaml", json={"yaml": edited.replace("version: 1", "version: 2")})
    assert bumped.status_code == 200 and load_flow(folder / "tiny.yaml").version == 2
    forced = client.put("/api/flows/tiny.yaml", json={"yaml": GOOD, "overwrite": True})
    assert forced.status_code == 200 and load_flow(folder / "tiny.yaml").version == 1


def test_invalid_yaml_is_never_saved(client, folder):
    reply = client.put("/api/flows/tiny.yaml", json={"yaml": GOOD.replace("agent: data", "agent: oracle")})
    assert reply.status_code == 422
    assert reply.json()["problems"][0]["line"] == 6
    assert not (folder / "tiny.yaml").exists()


def test_a_flow_id_belongs_to_one_file(client, folder):
    reply = client.put(
        "/api/flows/copy.yaml", json={"yaml": GOOD.replace("flow_id: tiny", "flow_id: onboarding")}
    )
    assert reply.status_code == 409 and "onboarding.yaml" in reply.json()["error"]
    assert not (folder / "copy.yaml").exists()


@pytest.mark.parametrize(
    "name",
    [
        "../evil.yaml",
        "..%2Fevil.yaml",
        "sub%2Fevil.yaml",
        ".hidden.yaml",
        "evil.txt",
        "Evil.yaml",
        "%2Ftmp%2Fevil.yaml",
    ],
)
def test_file_names_outside_the_folder_are_refused(client, folder, name):
    reply = client.put(f"/api/flows/{name}", json={"yaml": GOOD})
    assert reply.status_code in (400, 404, 405)
    assert sorted(p.name for p in folder.parent.rglob("*.yaml")) == ["onboarding.yaml"]
    assert not Path("/tmp/evil.yaml").exists()


def test_requests_from_another_origin_are_refused(client, folder):
    reply = client.put(
        "/api/flows/tiny.yaml", json={"yaml": GOOD}, headers={"Origin": "https://evil.example"}
    )
    assert reply.status_code == 403
    assert not (folder / "tiny.yaml").exists()
    same = client.put("/api/flows/tiny.yaml", json={"yaml": GOOD}, headers={"Origin": "http://testserver"})
    assert same.status_code == 200


def test_bad_save_body_is_named(client):
    reply = client.put("/api/flows/tiny.yaml", content=b"not json")
    assert reply.status_code == 400 and '"yaml"' in reply.json()["error"]


def test_cli_serves_the_chosen_folder(monkeypatch, folder):
    from revops_pipelines import cli
    from revops_pipelines.flows import builder

    seen = {}
    monkeypatch.setattr(builder, "serve", lambda target, port: seen.update(folder=target, port=port))
    result = CliRunner().invoke(cli.main, ["flows", "builder", "--port", "8799", "--dir", str(folder)])
    assert result.exit_code == 0, result.output
    assert seen == {"folder": folder, "port": 8799}
    assert "http://127.0.0.1:8799/" in result.output


# ---- the page in headless Chromium --------------------------------------------------------------------
@pytest.fixture
def live_builder(folder):
    import uvicorn

    from tests.platform.chromium import require_chromium

    require_chromium()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(folder), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "builder server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _type(page, selector: str, text: str) -> None:
    """What a user does: focus the field, select its text, type over it."""
    page.evaluate(f"(() => {{ const f = document.querySelector({selector!r}); f.focus(); f.select(); }})()")
    page.send("Input.insertText", text=text)


def test_page_edits_validates_and_saves(live_builder, folder):
    from tests.platform.chromium import devtools_page

    original = load_flow(folder / "onboarding.yaml")
    status = "document.getElementById('status').dataset.state"
    with devtools_page() as page:
        page.navigate(f"{live_builder}/?file=onboarding.yaml")
        page.wait_for(f"document.body.dataset.ready === 'true' && {status} === 'ok'", 30)
        assert page.evaluate("document.querySelectorAll('#graph g.node').length") == len(original.steps)

        # a bad edit: an agent that does not exist
        agent = '[data-path="steps.1.agent"]'
        _type(page, agent, "oracle")
        page.wait_for(f"{status} === 'invalid'", 15)
        problems = page.evaluate("[...document.querySelectorAll('#problems li')].map(li => li.textContent)")
        assert any("unknown agent 'oracle'" in p for p in problems), problems
        line = int(page.evaluate("document.querySelector('#problems li').dataset.line"))
        assert page.evaluate(f"document.querySelectorAll('#yaml div')[{line - 1}].textContent").endswith(
            'agent: "oracle"'
        )
        assert page.evaluate(f"document.querySelector('{agent}').classList.contains('invalid')")
        assert page.evaluate("document.querySelector('#yaml div.bad') !== null")

        # fixed, plus a version bump and a new description
        _type(page, agent, "data")
        _type(page, '[data-path="version"]', "2")
        _type(page, '[data-path="description"]', "Edited in the flow builder.")
        page.wait_for(f"{status} === 'ok'", 15)
        assert page.evaluate("document.getElementById('status').textContent") == "valid: onboarding v2"
        page.evaluate("document.getElementById('save').click()")
        page.wait_for("document.getElementById('save-status').dataset.state === 'ok'", 15)

        # saving again without a bump is refused, and the page says why
        page.evaluate("document.getElementById('save').click()")
        page.wait_for("document.getElementById('save-status').dataset.state === 'error'", 15)
        assert "raise version" in page.evaluate("document.getElementById('save-status').textContent")

    saved = load_flow(folder / "onboarding.yaml")
    assert (saved.version, saved.description) == (2, "Edited in the flow builder.")
    # everything else survived the round trip through the form
    same = {"version", "description"}
    assert saved.model_dump(exclude=same) == original.model_dump(exclude=same)
