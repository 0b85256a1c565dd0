"""Dagster resource over the knowledge base (LanceDB at a local path or s3:// URI)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field

if TYPE_CHECKING:
    from revops_pipelines.kb.entities import EntityIndex
    from revops_pipelines.kb.store import KnowledgeBase


class KnowledgeBaseResource(dg.ConfigurableResource):
    """Where the knowledge base lives and how it is embedded and indexed.

    The document store (``kb_chunks``) and the entity store (``kb_entities``) share the LanceDB
    location and the embedder. ``content_root`` points at the folder holding ``docs/``,
    ``taxonomies/`` and ``eval/`` (default: the shipped ``kb_assets`` package).
    """

    uri: str = Field(description="LanceDB location: local folder or s3://bucket/prefix.")
    embedder: str = Field(default="hashing", description="Registered embedder name.")
    content_root: str | None = Field(
        default=None, description="Folder with docs/, taxonomies/ and eval/ (default: the kb_assets package)."
    )
    ann_index: str = Field(default="ivf_flat", description="ANN index kind: ivf_flat, ivf_pq or ivf_hnsw_sq.")
    ann_threshold: int = Field(default=5_000, ge=256, description="Rows from which the ANN index is built.")
    reports_dir: str | None = Field(
        default=None, description="Where the health report is written (default: $REVOPS_HOME/reports)."
    )
    tenant: str | None = Field(
        default=None, description="Tenant whose knowledge base this is; a uri outside it is refused."
    )
    overlay: str | None = Field(
        default=None,
        description="A tenant's folder of docs/, taxonomies/, eval/ files merged over kb_assets/ into "
        "content_root.",
    )

    def root(self) -> Path:
        from revops_pipelines.kb.documents import default_kb_root

        if self.overlay:
            from revops_pipelines.tenancy import check_location, merge_kb_overlay

            if not self.content_root:
                raise ValueError("knowledge_base.content_root: required with an overlay (merge target)")
            check_location("home", self.content_root, self.tenant)
            return merge_kb_overlay(default_kb_root(), Path(self.overlay), Path(self.content_root))
        return Path(self.content_root) if self.content_root else default_kb_root()

    def _check(self) -> None:
        from revops_pipelines.tenancy import check_location

        check_location("vectors", self.uri, self.tenant)

    def open(self) -> KnowledgeBase:
        from revops_pipelines.kb.embedder import get_embedder
        from revops_pipelines.kb.store import AnnConfig, KnowledgeBase

        self._check()
        ann = AnnConfig(kind=self.ann_index, threshold=self.ann_threshold)  # type: ignore[arg-type]
        return KnowledgeBase(self.uri, get_embedder(self.embedder), ann=ann)

    def open_entities(self, **config_overrides) -> EntityIndex:
        """The entity index; segment and plan categories are read from the shipped taxonomies."""
        from revops_pipelines.kb.embedder import get_embedder
        from revops_pipelines.kb.entities import EntityConfig, EntityIndex
        from revops_pipelines.kb.taxonomy import load_taxonomies

        self._check()
        config = EntityConfig.from_taxonomies(load_taxonomies(self.root() / "taxonomies"), **config_overrides)
        return EntityIndex(self.uri, get_embedder(self.embedder), config=config)

    def reports_path(self) -> Path:
        if self.reports_dir:
            return Path(self.reports_dir)
        from revops_pipelines.settings import load_settings

        return load_settings().home / "reports"
