"""Dagster resource over the knowledge base (LanceDB at a local path or s3:// URI)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field

if TYPE_CHECKING:
    from revops_pipelines.kb.store import KnowledgeBase


class KnowledgeBaseResource(dg.ConfigurableResource):
    uri: str = Field(description="LanceDB location: local folder or s3://bucket/prefix.")
    embedder: str = Field(default="hashing", description="Registered embedder name.")

    def open(self) -> KnowledgeBase:
        from revops_pipelines.kb.embedder import get_embedder
        from revops_pipelines.kb.store import KnowledgeBase

        return KnowledgeBase(self.uri, get_embedder(self.embedder))
