"""Knowledge-base engine: documents, taxonomies, embedders and the LanceDB-backed store.

Kept import-light: nothing is imported here. Use the submodules directly —

* :mod:`revops_pipelines.kb.documents` — front-matter validation, loading and heading-aware chunking;
* :mod:`revops_pipelines.kb.taxonomy` — versioned taxonomies, lookups, document-link checks;
* :mod:`revops_pipelines.kb.embedder` — the pluggable ``Embedder`` protocol and the offline default;
* :mod:`revops_pipelines.kb.store` — ``KnowledgeBase``: incremental indexing and search (LanceDB is
  imported lazily inside its methods).
"""
