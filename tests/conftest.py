import pytest


@pytest.fixture
def runtime_env(tmp_path, monkeypatch):
    """A private REVOPS_HOME (and Dagster home) for one test."""
    home = tmp_path / "revops"
    monkeypatch.setenv("REVOPS_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    (tmp_path / "dagster_home").mkdir()
    for var in (
        "REVOPS_WAREHOUSE",
        "REVOPS_DUCKDB_PATH",
        "REVOPS_VECTOR_URI",
        "REVOPS_MODEL_STORE_URI",
        "REVOPS_EXECUTOR",
    ):
        monkeypatch.delenv(var, raising=False)
    return home
