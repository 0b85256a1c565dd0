"""The performance dashboard: its numbers, its rendering in headless Chromium, the asset and the CLI."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import dagster as dg
from click.testing import CliRunner

from revops_pipelines.model_store import ModelStore
from revops_pipelines.platform.assets import ASSETS, JOBS, performance_dashboard
from revops_pipelines.platform.cli import dashboard
from revops_pipelines.platform.dashboard import build_dashboard
from revops_pipelines.warehouse.duckdb import DuckDBWarehouse
from tests.platform.chromium import dump_dom, require_chromium, screenshot

EXPECTED = {
    "assets_materialised": "2",
    "check_evaluations": "2",
    "check_pass_rate": "50.0%",
    "retrains": "2",
    "latest_auc": "0.860",
    "oracle_auc": "0.900",
    "scored_accounts": "10",
    "high_risk_accounts": "4",
    "accounts_moved_up": "3",
    "flow_runs": "1",
    "flow_runs_succeeded": "1",
    "actions": "4",
    "action_success_rate": "75.0%",
    "median_seconds_to_action": "42.0",
    "accounts_saved": "2",
    "accounts_lost": "1",
    "dead_letters": "1",
    "agent_calls": "4",
    "agent_error_rate": "25.0%",
    "connector_requests": "12",
    "connector_429s": "3",
    "quarantined_rows": "2",
}


def test_numbers_come_from_the_recorded_world(recorded_world, tmp_path):
    wh, instance, store = recorded_world
    path, kpis = build_dashboard(tmp_path / "d.html", wh, instance, store)
    assert path.exists()
    for name, value in EXPECTED.items():
        assert kpis[name] == value, name
    assert int(kpis["charts"]) >= 12


class _Page(HTMLParser):
    """What the browser built: chart containers, their SVG roots and marks, and the KPI elements."""

    def __init__(self) -> None:
        super().__init__()
        self.charts: dict[str, int] = {}  # chart div id -> number of plotly SVG roots inside it
        self.marks = 0
        self.kpis: dict[str, str] = {}
        self._chart: str | None = None
        self._kpi: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "div" and (a.get("id") or "").startswith("chart-"):
            self._chart = a["id"]
            self.charts[self._chart] = 0
        classes = (a.get("class") or "").split()
        if tag == "svg" and "main-svg" in classes and self._chart:
            self.charts[self._chart] += 1
        if tag == "path" and "point" in (a.get("class") or "") or (tag == "g" and "point" in classes):
            self.marks += 1
        if "data-kpi" in a:
            self._kpi = a["data-kpi"]

    def handle_data(self, data):
        if self._kpi:
            self.kpis[self._kpi] = data.strip()
            self._kpi = None


def test_dashboard_renders_in_headless_chromium(recorded_world, tmp_path):
    require_chromium()
    wh, instance, store = recorded_world
    path, kpis = build_dashboard(tmp_path / "dashboard.html", wh, instance, store)
    shipped = _Page()
    shipped.feed(path.read_text())
    assert set(shipped.charts.values()) == {0}  # the file ships empty chart containers: plotly.js draws them

    page = _Page()
    page.feed(dump_dom(path))
    assert len(page.charts) == int(kpis["charts"])
    assert all(n >= 1 for n in page.charts.values()), page.charts  # each chart rendered to SVG
    assert page.marks >= 20  # bars, markers and boxes were drawn, not only empty axes
    for name, value in EXPECTED.items():
        assert page.kpis[name] == value, name

    png = screenshot(path, tmp_path / "dashboard.png")
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def test_an_empty_platform_still_gets_a_report(runtime_env, tmp_path):
    runtime_env.mkdir(parents=True, exist_ok=True)
    wh = DuckDBWarehouse(path=str(runtime_env / "empty.duckdb"))
    path, kpis = build_dashboard(tmp_path / "d.html", wh, None, ModelStore(uri=str(tmp_path / "none")))
    text = path.read_text()
    assert kpis["retrains"] == "0" and kpis["charts"] == "0"
    for note in ("No Dagster instance", "No churn model versions", "churn_scores does not exist yet"):
        assert note in text


def test_asset_records_the_report_path(recorded_world, runtime_env):
    wh, instance, store = recorded_world
    assert [performance_dashboard] == ASSETS and JOBS[0].name == "build_dashboard"
    result = dg.materialize(ASSETS, resources={"warehouse": wh, "model_store": store}, instance=instance)
    md = result.asset_materializations_for_node("performance_dashboard")[0].metadata
    path = md["path"].value
    assert path == str(runtime_env / "reports" / "dashboard.html")
    assert md["kpi/connector_429s"].value == "3"
    with open(path) as fh:
        assert re.search(r"data-kpi='check_pass_rate'>50\.0%<", fh.read())


def test_cli_build(recorded_world, tmp_path):
    out = tmp_path / "cli" / "report.html"
    result = CliRunner().invoke(dashboard, ["build", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert str(out) in result.output and "connector_429s: 3" in result.output
    assert out.exists()


def test_the_dashboard_module_keeps_definitions_light():
    """Registering the asset imports neither plotly nor pandas (tests/test_definitions.py's rule)."""
    import subprocess
    import sys

    code = (
        "import sys, revops_pipelines.platform.assets, revops_pipelines.platform.cli\n"
        "heavy = [m for m in ('plotly', 'pandas', 'numpy', 'duckdb', 'boto3') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_asset_joins_the_code_location(runtime_env):
    from revops_pipelines.definitions import build_definitions

    defs = build_definitions()  # the platform domain is part of the one code location
    dg.Definitions.validate_loadable(defs)
    assert defs.resolve_job_def("build_dashboard").name == "build_dashboard"
    assert dg.AssetKey("performance_dashboard") in defs.resolve_all_asset_keys()
