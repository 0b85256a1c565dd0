import json
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def small_world(tmp_path_factory) -> Path:
    """A 30-account sample world (about 175 calls), generated once per session."""
    from revops_pipelines.sample.generator import WorldConfig, generate_to_dir

    root = tmp_path_factory.mktemp("world30")
    generate_to_dir(WorldConfig(seed=7, accounts=30), root)
    return root


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
