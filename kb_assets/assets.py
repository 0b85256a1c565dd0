"""Knowledge-base assets: validated documents and taxonomies, chunked and embedded into LanceDB."""

from pathlib import Path

import dagster as dg

from revops_pipelines.kb.resource import KnowledgeBaseResource

KB_ROOT = Path(__file__).resolve().parent


@dg.asset(
    group_name="knowledge_base",
    kinds={"lancedb"},
    description=(
        "Documents under kb_assets/docs (validated front-matter, taxonomy links checked), chunked along "
        "headings with stable ids and embedded into LanceDB incrementally: only new or changed chunks are "
        "embedded, chunks of deleted documents are removed."
    ),
    code_version="1",
)
def kb_index(
    context: dg.AssetExecutionContext, knowledge_base: KnowledgeBaseResource
) -> dg.MaterializeResult:
    from revops_pipelines.kb.documents import chunk_documents
    from revops_pipelines.kb.taxonomy import validate_kb

    content = validate_kb(KB_ROOT)  # every problem at once, each with file and line
    docs = content.documents
    chunks = chunk_documents(docs)
    kb = knowledge_base.open()
    stats = kb.index(chunks)
    context.log.info(f"kb_index: {stats}")
    collections: dict[str, int] = {}
    for d in docs:
        collections[d.collection] = collections.get(d.collection, 0) + 1
    return dg.MaterializeResult(
        metadata={
            "documents": len(docs),
            "chunks": len(chunks),
            "dagster/row_count": kb.count(),
            "added": stats.added,
            "updated": stats.updated,
            "removed": stats.removed,
            "unchanged": stats.unchanged,
            "embedded": stats.embedded,
            "rebuilt": dg.MetadataValue.text(stats.reason or "no") if stats.rebuilt else "no",
            "lancedb_version": stats.version,
            "taxonomies": dg.MetadataValue.json(content.taxonomies.versions()),
            "collections": dg.MetadataValue.json(collections),
            "embedder": f"{kb.embedder.name}:{kb.embedder.version}",
            "uri": knowledge_base.uri,
        }
    )


@dg.asset_check(asset=kb_index, name="kb_search_finds_playbook", blocking=False)
def kb_search_finds_playbook(knowledge_base: KnowledgeBaseResource) -> dg.AssetCheckResult:
    """A churn-risk query must retrieve a best-practice passage (the Decision Agent relies on it)."""
    hits = knowledge_base.open().search("customer usage dropped and churn risk is rising", k=3)
    top = [f"{h.doc_id}#{h.heading}" for h in hits]
    ok = any("churn" in h.doc_id for h in hits)
    return dg.AssetCheckResult(passed=ok, metadata={"top_hits": dg.MetadataValue.json(top)})


ASSETS = [kb_index]
CHECKS = [kb_search_finds_playbook]
