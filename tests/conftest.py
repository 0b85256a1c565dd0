import pytest

from tests.helpers import use_runtime


@pytest.fixture
def runtime_env(tmp_path, monkeypatch):
    """A private REVOPS_HOME (and Dagster home) for one test."""
    return use_runtime(monkeypatch, tmp_path)
