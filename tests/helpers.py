"""Shared test plumbing."""

from pathlib import Path

import pytest

OVERRIDES = (
    "REVOPS_WAREHOUSE",
    "REVOPS_DUCKDB_PATH",
    "REVOPS_VECTOR_URI",
    "REVOPS_MODEL_STORE_URI",
    "REVOPS_EXECUTOR",
)


def use_runtime(mp: pytest.MonkeyPatch, root: Path, **env: str) -> Path:
    """Point REVOPS_HOME and DAGSTER_HOME at ``root`` (embedded default, no overrides) plus ``env``."""
    home = root / "revops"
    mp.setenv("REVOPS_HOME", str(home))
    mp.setenv("DAGSTER_HOME", str(root / "dagster_home"))
    (root / "dagster_home").mkdir(exist_ok=True)
    for var in OVERRIDES:
        mp.delenv(var, raising=False)
    for k, v in env.items():
        mp.setenv(k, v)
    return home


SMALL_WORLD = {"REVOPS_SAMPLE_ACCOUNTS": "400", "REVOPS_SAMPLE_SEED": "11"}
