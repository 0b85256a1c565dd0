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


@pytest.fixture
def checkpoint_sizes(monkeypatch) -> list[int]:
    """The byte size of every connector checkpoint saved during the test, in order."""
    from revops_pipelines.connectors.base import StateStore

    sizes: list[int] = []
    save = StateStore.save

    def recording_save(self, state):
        save(self, state)
        sizes.append(self.last_save_bytes)

    monkeypatch.setattr(StateStore, "save", recording_save)
    return sizes
