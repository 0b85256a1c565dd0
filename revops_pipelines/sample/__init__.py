"""Deterministic sample RevOps world with ground truth (see :mod:`.generator` for the hidden process)."""

from revops_pipelines.sample.generator import (
    GENERATOR_VERSION,
    World,
    WorldConfig,
    generate_to_dir,
    generate_world,
    load_world,
    write_world,
)

__all__ = [
    "GENERATOR_VERSION",
    "World",
    "WorldConfig",
    "generate_to_dir",
    "generate_world",
    "load_world",
    "write_world",
]
