"""Used as users use it: the real ``dagster dev`` (webserver + daemon) on a loopback port, driven only
through its GraphQL API and a headless browser.

One ``dagster dev`` process group serves a temporary DAGSTER_HOME and REVOPS_HOME (a 100-account
sample world). The test materialises every asset by launching the jobs in the order the demo uses,
backfills three monthly partitions of the retraining assets, sees a schedule tick (a test-only flow
with an every-minute cron) and a sensor tick (the renewal flow's asset sensor), and takes a
screenshot of the asset graph. The process group is stopped at the end whatever happened.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import SMALL_WORLD
from tests.platform.chromium import devtools_page, require_chromium

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
LOCATION = "revops"  # workspace.yaml
# the demo's order (revops_pipelines/demo.py); build_features gets the whole partition range
JOBS = (
    "ingest_sample_world",
    "build_features",
    "train_and_score",
    "refresh_knowledge_base",
    "build_training_data",
    "classify_and_segment",
    "flow_churn_prevention",
    "evaluate_decisions",
    "build_dashboard",
)
RETRAINING = ("account_features", "churn_model_snapshots")
TICK_FLOW = """\
flow_id: e2e_tick
version: 1
owner: tests
description: Every minute, so the end-to-end test sees the scheduler tick.
trigger:
  type: schedule
  cron: "* * * * *"
steps:
  - id: note
    type: action
    parameters:
      type: slack_message
      priority: low
      reasoning: scheduler tick in the end-to-end test
      parameters:
        channel: "#revops-alerts"
        text: tick
"""
DONE = {"SUCCESS", "FAILURE", "CANCELED"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Dagster:
    """The GraphQL API of one running ``dagster dev``: the dagster-graphql client for what it covers,
    raw GraphQL over httpx for the rest (backfills, ticks, asset state)."""

    def __init__(self, port: int, log: Path) -> None:
        from dagster_graphql import DagsterGraphQLClient

        self.url = f"http://127.0.0.1:{port}"
        self.client = DagsterGraphQLClient("127.0.0.1", port_number=port)
        self.log = log
        self.repository = "__repository__"

    def log_tail(self, n: int = 40) -> str:
        lines = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        return "\n".join(lines[-n:])

    def gql(self, query: str, **variables) -> dict:
        reply = httpx.post(f"{self.url}/graphql", json={"query": query, "variables": variables}, timeout=60)
        reply.raise_for_status()
        body = reply.json()
        assert "errors" not in body, body["errors"]
        return body["data"]

    def selector(self, **extra: str) -> dict:
        return {"repositoryLocationName": LOCATION, "repositoryName": self.repository, **extra}

    def wait(self, what: str, probe, timeout: float, interval: float = 1.0, detail=None):
        """Poll ``probe`` until truthy; on timeout, fail with ``detail()`` (what was seen) and the log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = probe()
            if value:
                return value
            time.sleep(interval)
        seen = f"\nlast seen: {detail()}" if detail else ""
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{seen}\n{self.log_tail()}")

    def run(self, run_id: str) -> dict:
        return self.gql(
            """query($id: ID!) { runOrError(runId: $id) { __typename ... on Run {
                 runId jobName status tags { key value } assetSelection { path } } } }""",
            id=run_id,
        )["runOrError"]

    def wait_run(self, run_id: str, timeout: float = 240) -> dict:
        run = self.wait(
            f"run {run_id}", lambda: (r := self.run(run_id))["status"] in DONE and r, timeout, 0.5
        )
        if run["status"] != "SUCCESS":
            failures = self.gql(
                """query($id: ID!) { logsForRun(runId: $id) { ... on EventConnection { events {
                     __typename ... on ExecutionStepFailureEvent { stepKey error { message } } } } } }""",
                id=run_id,
            )["logsForRun"]["events"]
            steps = [(e["stepKey"], e["error"]["message"][:300]) for e in failures if e.get("stepKey")]
            raise AssertionError(f"run of {run['jobName']} ended {run['status']}: {steps}\n{self.log_tail()}")
        return run


@pytest.fixture(scope="module")
def dagster_dev(tmp_path_factory):
    require_chromium()
    root = tmp_path_factory.mktemp("webserver")
    home = root / "dagster_home"
    home.mkdir()
    # DuckDB allows one writer process: the run queue starts one run at a time
    (home / "dagster.yaml").write_text(
        "telemetry:\n  enabled: false\nconcurrency:\n  runs:\n    max_concurrent_runs: 1\n"
    )
    flows = root / "flows"
    flows.mkdir()
    (flows / "e2e_tick.yaml").write_text(TICK_FLOW)
    # the embedded default and nothing else: no inherited REVOPS_*/DAGSTER_* setting (tenant, warehouse, ...)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REVOPS_", "DAGSTER_"))}
    env.update(SMALL_WORLD)
    env.update(
        REVOPS_SAMPLE_ACCOUNTS="100",
        REVOPS_HOME=str(root / "revops"),
        DAGSTER_HOME=str(home),
        REVOPS_FLOWS_DIR=os.pathsep.join([str(ROOT / "flows_yaml"), str(flows)]),
    )
    port = _free_port()
    log = root / "dagster_dev.log"
    dagster = str(Path(sys.executable).parent / "dagster")
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [dagster, "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: webserver, daemon, code servers, runs
        )
    api = Dagster(port, log)
    try:

        def loaded():
            assert proc.poll() is None, f"dagster dev exited with {proc.returncode}\n{api.log_tail()}"
            try:
                entries = api.gql(
                    """{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus
                         locationOrLoadError { __typename ... on PythonError { message } } } } } }"""
                )["workspaceOrError"]["locationEntries"]
            except httpx.HTTPError:
                return None
            entry = next((e for e in entries if e["name"] == LOCATION), None)
            if entry and entry["loadStatus"] == "LOADED":
                assert entry["locationOrLoadError"]["__typename"] == "RepositoryLocation", entry
                return entry
            return None

        api.wait("the code location to load", loaded, timeout=120, interval=0.5)
        repos = api.gql("{ repositoriesOrError { ... on RepositoryConnection { nodes { name } } } }")
        api.repository = repos["repositoriesOrError"]["nodes"][0]["name"]
        yield api
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass
        with contextlib.suppress(ProcessLookupError):  # anything of the group still alive (a run) goes too
            os.killpg(proc.pid, signal.SIGKILL)


def _start_schedule(api: Dagster, name: str) -> str:
    """Its instigator-state id (what stopping it takes)."""
    out = api.gql(
        """mutation($s: ScheduleSelector!) { startSchedule(scheduleSelector: $s) { __typename
             ... on ScheduleStateResult { scheduleState { id status } } ... on Error { message } } }""",
        s=api.selector(scheduleName=name),
    )["startSchedule"]
    assert out.get("scheduleState", {}).get("status") == "RUNNING", out
    return out["scheduleState"]["id"]


def _stop_schedule(api: Dagster, state_id: str) -> None:
    stopped = api.gql(
        """mutation($id: String!) { stopRunningSchedule(id: $id) { __typename
             ... on ScheduleStateResult { scheduleState { status } } } }""",
        id=state_id,
    )["stopRunningSchedule"]
    assert stopped["scheduleState"]["status"] == "STOPPED", stopped


def _start_sensor(api: Dagster, name: str) -> None:
    out = api.gql(
        """mutation($s: SensorSelector!) { startSensor(sensorSelector: $s) { __typename
             ... on Sensor { sensorState { status } } ... on Error { message } } }""",
        s=api.selector(sensorName=name),
    )["startSensor"]
    assert out.get("sensorState", {}).get("status") == "RUNNING", out


def _ticks(api: Dagster, kind: str, name: str) -> list[dict]:
    field = "schedule" if kind == "schedule" else "sensor"
    state = f"{field}State"
    data = api.gql(
        f"""query($s: {kind.capitalize()}Selector!) {{ {field}OrError({field}Selector: $s) {{
              ... on {kind.capitalize()} {{ {state} {{ status ticks(limit: 10) {{
                tickId status runIds timestamp error {{ message }} }} }} }} }} }}""",
        s=api.selector(**{f"{field}Name": name}),
    )
    return data[f"{field}OrError"][state]["ticks"]


@pytest.fixture(scope="module")
def session(dagster_dev):
    """Everything a user would do in one sitting; returns what the tests check."""
    api = dagster_dev
    started = time.monotonic()
    schedule_id = _start_schedule(api, "flow_e2e_tick_schedule")  # its first tick comes within the minute

    runs: dict[str, dict] = {}
    backfill_id = tick = None
    for job in JOBS:
        tags = {}
        if job == "build_features":
            keys = _partition_keys(api, "account_features")
            tags = {
                "dagster/asset_partition_range_start": keys[0],
                "dagster/asset_partition_range_end": keys[-1],
            }
        run_id = api.client.submit_job_execution(job, repository_location_name=LOCATION, tags=tags)
        if job == JOBS[-1]:  # churn_scores has materialised: the renewal sensor's first tick requests a run
            _start_sensor(api, "flow_renewal_management_sensor")
        runs[job] = api.wait_run(run_id)
        print(f"{job}: done at {time.monotonic() - started:.0f} s")
        # stop the every-minute schedule after its first tick: one extra run, not one a minute
        if tick is None:
            tick = next((t for t in _ticks(api, "schedule", "flow_e2e_tick_schedule") if t["runIds"]), None)
            if tick:
                _stop_schedule(api, schedule_id)
        if job == "ingest_sample_world":  # the raw data exists: the retraining backfill can queue now
            backfill_id = _launch_retraining_backfill(api)

    backfill = api.wait(
        "the retraining backfill",
        lambda: (
            (b := _backfill(api, backfill_id))["status"] not in ("REQUESTED", "CANCELING", "FAILING") and b
        ),
        timeout=150,
        detail=lambda: _backfill(api, backfill_id),
    )

    if tick is None:  # the scheduler tick (started above, so it has usually fired by now)
        tick = api.wait(
            "a schedule tick",
            lambda: next((t for t in _ticks(api, "schedule", "flow_e2e_tick_schedule") if t["runIds"]), None),
            timeout=100,
            interval=2,
            detail=lambda: _ticks(api, "schedule", "flow_e2e_tick_schedule"),
        )
        _stop_schedule(api, schedule_id)
    scheduled_run = api.wait_run(tick["runIds"][0], timeout=120)

    sensor_tick = api.wait(
        "a sensor tick",
        lambda: next(
            (t for t in _ticks(api, "sensor", "flow_renewal_management_sensor") if t["runIds"]), None
        ),
        timeout=90,
        detail=lambda: _ticks(api, "sensor", "flow_renewal_management_sensor"),
    )
    print(f"webserver session: {time.monotonic() - started:.0f} s after the code location loaded")
    return {
        "runs": runs,
        "backfill": backfill,
        "schedule_tick": tick,
        "scheduled_run": scheduled_run,
        "sensor_tick": sensor_tick,
        "sensor_run": api.run(sensor_tick["runIds"][0]),
        "seconds": time.monotonic() - started,
    }


def _partition_keys(api: Dagster, asset: str) -> list[str]:
    node = api.gql(
        """query($k: AssetKeyInput!) { assetNodeOrError(assetKey: $k) { ... on AssetNode { partitionKeys } } }""",
        k={"path": [asset]},
    )["assetNodeOrError"]
    return node["partitionKeys"]


def _launch_retraining_backfill(api: Dagster) -> str:
    keys = _partition_keys(api, "churn_model_snapshots")[-4:-1]  # three fully labelled months
    out = api.gql(
        """mutation($p: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $p) { __typename
             ... on LaunchBackfillSuccess { backfillId } ... on Error { message } } }""",
        p={"assetSelection": [{"path": [k]} for k in RETRAINING], "partitionNames": keys},
    )["launchPartitionBackfill"]
    assert out["__typename"] == "LaunchBackfillSuccess", out
    return out["backfillId"]


def _backfill(api: Dagster, backfill_id: str) -> dict:
    return api.gql(
        """query($id: String!) { partitionBackfillOrError(backfillId: $id) { __typename
             ... on PartitionBackfill { status partitionNames
               runs(limit: 20) { runId status tags { key value } assetSelection { path } } } } }""",
        id=backfill_id,
    )["partitionBackfillOrError"]


def _assets(api: Dagster) -> dict[str, dict]:
    nodes = api.gql(
        """{ assetNodes { assetKey { path } isMaterializable isPartitioned
             partitionStats { numMaterialized numPartitions }
             assetMaterializations(limit: 1) { runId } } }"""
    )["assetNodes"]
    return {"/".join(n["assetKey"]["path"]): n for n in nodes if n["isMaterializable"]}


def test_every_job_succeeded_and_every_asset_is_materialised(session, dagster_dev):
    assert {job: r["status"] for job, r in session["runs"].items()} == dict.fromkeys(JOBS, "SUCCESS")
    assets = _assets(dagster_dev)
    assert len(assets) >= 35
    missing = sorted(k for k, n in assets.items() if not n["assetMaterializations"])
    assert not missing, f"never materialised: {missing}"
    features = assets["account_features"]["partitionStats"]
    assert features["numMaterialized"] == features["numPartitions"] > 12


def test_retraining_backfill_ran_three_partitions_in_one_run(session, dagster_dev):
    backfill = session["backfill"]
    assert backfill["status"] == "COMPLETED_SUCCESS", backfill
    assert len(backfill["partitionNames"]) == 3
    (run,) = backfill["runs"]  # BackfillPolicy.single_run(): both assets, all partitions, one run
    assert run["status"] == "SUCCESS"
    assert {p["path"][0] for p in run["assetSelection"]} == set(RETRAINING)
    tags = {t["key"]: t["value"] for t in run["tags"]}
    assert (tags["dagster/asset_partition_range_start"], tags["dagster/asset_partition_range_end"]) == (
        backfill["partitionNames"][0],
        backfill["partitionNames"][-1],
    )
    stats = _assets(dagster_dev)["churn_model_snapshots"]["partitionStats"]
    assert stats["numMaterialized"] == 3


def test_schedule_and_sensor_ticked_and_requested_runs(session):
    assert session["schedule_tick"]["status"] == "SUCCESS"
    assert session["scheduled_run"]["jobName"] == "flow_e2e_tick"
    assert session["scheduled_run"]["status"] == "SUCCESS"
    assert session["sensor_tick"]["status"] == "SUCCESS"
    assert session["sensor_run"]["jobName"] == "flow_renewal_management"


def test_asset_graph_renders_in_headless_chromium(session, dagster_dev, tmp_path):
    url = f"{dagster_dev.url}/locations/{dagster_dev.repository}@{LOCATION}/asset-groups/models"
    with devtools_page(size="1600,1000") as page:
        page.navigate(url)
        text = "(document.body ? document.body.innerText : '')"
        graph = f"{text}.includes('churn_model_snapshots') && {text}.includes('Materialized')"
        page.wait_for(graph, 60)
        # first visit: Dagster's community dialog covers the graph; a user presses Skip
        page.evaluate(
            "[...document.querySelectorAll('button')].filter(b => b.innerText.trim() === 'Skip')"
            ".forEach(b => b.click())"
        )
        page.wait_for(f"!{text}.includes('Join the Dagster community') && {graph}", 30)
        time.sleep(1)  # the graph's zoom-to-fit animation
        rendered = page.evaluate(text)
        shot = page.screenshot(tmp_path / "asset_graph.png")
    # the graph draws the nodes in view: several of the models group's assets, with their state
    models = (
        "churn_model_snapshots",
        "churn_scores",
        "revenue_event_classifications",
        "ticket_product_features",
    )
    assert sum(name in rendered.split() for name in models) >= 3, rendered
    assert "Materialized" in rendered
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width == 1600 and height > 600
    assert len(data) > 50_000  # a drawn graph, not a blank page
