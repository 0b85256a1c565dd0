"""The sample-world source: vendor-shaped records read from the generated files.

Until the real connectors land (issue 4) the raw assets read Salesforce, HubSpot, Gong, billing and
product-usage records from the deterministic sample world under ``$REVOPS_HOME/sample_world``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field

from revops_pipelines.errors import ConfigurationError

if TYPE_CHECKING:
    import pandas as pd


class SampleWorldSource(dg.ConfigurableResource):
    """Where the sample world lives and how it is generated (seed, size)."""

    path: str = Field(description="Folder of the generated sample world.")
    seed: int = Field(default=7, ge=0, description="Generator seed.")
    accounts: int = Field(default=1000, ge=1, le=50_000, description="Number of accounts to generate.")

    @property
    def root(self) -> Path:
        return Path(self.path)

    def manifest(self) -> dict | None:
        f = self.root / "manifest.json"
        return json.loads(f.read_text()) if f.exists() else None

    def is_current(self) -> bool:
        from revops_pipelines.sample.generator import GENERATOR_VERSION

        m = self.manifest()
        return (
            bool(m)
            and m.get("seed") == self.seed
            and m.get("accounts") == self.accounts
            and m.get("generator_version") == GENERATOR_VERSION
        )

    def generate(self) -> dict:
        """Generate the world (replacing an older one in the same folder) and return its manifest."""
        from revops_pipelines.sample.generator import WorldConfig, generate_to_dir

        return generate_to_dir(WorldConfig(seed=self.seed, accounts=self.accounts), self.root)

    def _file(self, relpath: str) -> Path:
        f = self.root / relpath
        if not f.exists():
            raise ConfigurationError(
                "sample_world.path", f"{f} does not exist", "materialise the sample_world asset first"
            )
        return f

    def records(self, relpath: str) -> Iterator[dict]:
        with self._file(relpath).open(encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    yield json.loads(line)

    def parquet(self, relpath: str) -> pd.DataFrame:
        import pandas as pd

        return pd.read_parquet(self._file(relpath))
