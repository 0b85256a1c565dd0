"""A small sample world (400 accounts), ingested and featurised once per session, shared read-only.

Tests that train write into their own model store (``store`` fixture) so they stay independent.
"""

from __future__ import annotations

import dagster as dg
import pytest

from tests.helpers import SMALL_WORLD, use_runtime


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("models_world")
    use_runtime(mp, root, **SMALL_WORLD)
    from assets.features import SNAPSHOTS
    from revops_pipelines.definitions import build_definitions

    defs = build_definitions()
    instance = dg.DagsterInstance.ephemeral()
    keys = SNAPSHOTS.get_partition_keys()
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    for job, tags in (
        ("ingest_sample_world", {}),
        (
            "build_features",
            {"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]},
        ),
    ):
        result = defs.resolve_job_def(job).execute_in_process(instance=instance, tags=tags, run_config=quiet)
        assert result.success, job
    yield {"root": root, "warehouse": defs.resources["warehouse"]}
    mp.undo()


@pytest.fixture
def warehouse(world):
    return world["warehouse"]


@pytest.fixture
def store(tmp_path):
    from revops_pipelines.model_store import ModelStore

    return ModelStore(uri=str(tmp_path / "models"))
