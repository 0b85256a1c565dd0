"""Knowledge-base engine: documents, taxonomies, embedders, the LanceDB stores and their upkeep.

Kept import-light: nothing is imported here. Use the submodules directly —

* :mod:`revops_pipelines.kb.documents` — front-matter validation, loading, links, heading-aware chunking;
* :mod:`revops_pipelines.kb.taxonomy` — versioned taxonomies, lookups, rule classification, link checks;
* :mod:`revops_pipelines.kb.embedder` — the pluggable ``Embedder`` protocol, the offline hashing default
  and the optional WordLlama embedder;
* :mod:`revops_pipelines.kb.store` — ``KnowledgeBase``: incremental indexing, ANN index, vector / hybrid /
  full-text search with filters, versions and restore (LanceDB is imported lazily inside its methods);
* :mod:`revops_pipelines.kb.entities` — ``EntityIndex``: account, product and feature vectors,
  ``similar_accounts``;
* :mod:`revops_pipelines.kb.evaluation` — the labelled query set, recall@k and MRR against a floor;
* :mod:`revops_pipelines.kb.maintenance` — full content validation and the health report;
* :mod:`revops_pipelines.kb.training` — training sets labelled through the taxonomies;
* :mod:`revops_pipelines.kb.cli` — the ``revops kb`` command group.
"""
