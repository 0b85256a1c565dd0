"""`revops demo` sets up its Dagster instance wherever DAGSTER_HOME points, even a folder not made yet."""

import dagster as dg

from revops_pipelines import demo


def test_instance_creates_a_missing_dagster_home(tmp_path, monkeypatch):
    home = tmp_path / "fresh" / "dagster_home"  # neither folder exists
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("REVOPS_HOME", str(tmp_path / "revops"))
    instance = demo._instance()
    try:
        assert isinstance(instance, dg.DagsterInstance)
        cfg = (home / "dagster.yaml").read_text()
        assert "telemetry" in cfg and "enabled: false" in cfg
    finally:
        instance.dispose()
