"""Knowledge-base assets: validated content, the document and entity indexes, the taxonomy table,
the health report, training data — plus the jobs, the content sensor and the maintenance schedule.

Lineage::

    kb_assets/ files ──► kb_content ──[kb_content_valid, blocking]──► kb_index ──[kb_search_quality,
                             │                                          │        blocking]
                             │                                          └──► kb_health_report (markdown)
                             ├──► kb_taxonomy_nodes (warehouse)
                             └──► kb_entity_index ◄── account_features, raw_sf_accounts, raw_gong_*
                                  training_* (warehouse) ◄── raw tables + the taxonomies (see training.py)

Importing this module is cheap: LanceDB, numpy and pandas are imported inside the assets.
"""

import json
from pathlib import Path

import dagster as dg
from pydantic import Field

from kb_assets import training
from kb_assets.sensors import build_content_sensor
from revops_pipelines.kb.resource import KnowledgeBaseResource
from revops_pipelines.raw import column_schema
from revops_pipelines.run_config import RunConfig
from revops_pipelines.signature import pinned
from revops_pipelines.warehouse import Warehouse, table

KB_ROOT = Path(__file__).resolve().parent
GROUP = "knowledge_base"

TAXONOMY_NODES = table(
    "kb_taxonomy_nodes",
    [
        ("taxonomy_id", "TEXT"),
        ("node_id", "TEXT"),
        ("taxonomy_version", "TEXT", False),
        ("name", "TEXT", False),
        ("parent_id", "TEXT"),
        ("root_id", "TEXT", False),
        ("depth", "INTEGER", False),
        ("description", "TEXT"),
        ("keywords", "TEXT"),
    ],
    keys=("taxonomy_id", "node_id"),
    kind="dimension",
    description="Every node of every knowledge-base taxonomy (segments, features, revenue events, call topics, actions).",
    group=GROUP,
)


def _md_list(items: list[str], limit: int = 50) -> dg.MetadataValue:
    shown = "\n".join(f"- `{p}`" for p in items[:limit])
    more = f"\n- … and {len(items) - limit} more" if len(items) > limit else ""
    return dg.MetadataValue.md(shown + more if items else "None.")


def _git_commit(root: Path) -> str | None:
    """The last commit that touched the content folder, when it is a git checkout (else None)."""
    import subprocess

    try:
        out = subprocess.run(
            ["git", "log", "-1", "--format=%H", "--", "."],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


# -- content ---------------------------------------------------------------------------------------
@dg.asset(
    group_name=GROUP,
    kinds={"markdown", "yaml"},
    description=(
        "The knowledge-base content under kb_assets/: documents (front-matter, collections, headings), "
        "taxonomies (unique ids, parents, no cycles), taxonomy links, internal links, duplicate sections "
        "and the labelled query set — validated together. Any problem fails the blocking kb_content_valid "
        "check, so nothing downstream indexes invalid content."
    ),
    check_specs=[
        dg.AssetCheckSpec(
            "kb_content_valid",
            asset="kb_content",
            blocking=True,
            description="No validation problem (each reported as file:line: message).",
        )
    ],
)
@pinned
def kb_content(
    context: dg.AssetExecutionContext, knowledge_base: KnowledgeBaseResource
) -> dg.MaterializeResult:
    from revops_pipelines.kb.maintenance import validate_content

    root = knowledge_base.root()
    report = validate_content(root)
    for p in report.problems:
        context.log.error(p)
    summary = report.summary()
    return dg.MaterializeResult(
        metadata={
            "documents": summary["documents"],
            "collections": dg.MetadataValue.json(summary["collections"]),
            "taxonomies": dg.MetadataValue.json(summary["taxonomies"]),
            "labelled_queries": summary["labelled_queries"],
            "links_checked": summary["links_checked"],
            "content_fingerprint": report.fingerprint,
            "git_commit": _git_commit(root) or "n/a",
            "root": str(root),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="kb_content_valid",
                passed=report.ok,
                metadata={
                    "problems": len(report.problems),
                    "warnings": len(report.warnings),
                    "problem_list": _md_list(report.problems),
                    "warning_list": _md_list(report.warnings),
                },
            )
        ],
        data_version=dg.DataVersion(report.fingerprint),
    )


class IndexConfig(RunConfig):
    rebuild: bool = Field(
        default=False, description="Re-embed every chunk (e.g. after changing the embedder)."
    )
    rollback_on_quality_failure: bool = Field(
        default=True,
        description="When search quality falls below the floor, restore the previous table version so the "
        "degraded index never serves searches.",
    )


@dg.asset(
    group_name=GROUP,
    kinds={"lancedb"},
    deps=[kb_content],
    description=(
        "Documents chunked along headings with stable ids and embedded into LanceDB (kb_chunks), "
        "incrementally: only new or changed chunks are embedded, chunks of deleted documents are removed. "
        "An ANN index is built once the table is large. Search quality on the labelled query set "
        "(recall@k, MRR) is checked against its stated floor by the blocking kb_search_quality check."
    ),
    check_specs=[
        dg.AssetCheckSpec(
            "kb_search_quality",
            asset="kb_index",
            blocking=True,
            description="recall@k and MRR on kb_assets/eval/queries.yaml are at or above the file's floor.",
        )
    ],
    code_version="2",
)
@pinned
def kb_index(
    context: dg.AssetExecutionContext, config: IndexConfig, knowledge_base: KnowledgeBaseResource
) -> dg.MaterializeResult:
    from revops_pipelines.kb.documents import chunk_documents
    from revops_pipelines.kb.evaluation import evaluate
    from revops_pipelines.kb.maintenance import validate_content

    root = knowledge_base.root()
    report = validate_content(root)
    report.raise_for_problems()  # also guards a kb_index run without kb_content in the same run
    docs = report.documents
    chunks = chunk_documents(docs)
    kb = knowledge_base.open()
    before = kb.table().version if kb.exists() else None
    stats = kb.index(chunks, rebuild=config.rebuild)
    context.log.info(f"kb_index: {stats}")

    quality = evaluate(kb, report.queries) if report.queries else None
    rolled_back = None
    if (
        quality is not None
        and not quality.passed
        and config.rollback_on_quality_failure
        and before is not None
    ):
        rolled_back = before
        kb.restore(before)
        context.log.error(
            f"search quality {quality.summary()} is below the floor; restored table version {before}"
        )
    info = kb.index_info()
    metadata = {
        "documents": len(docs),
        "chunks": len(chunks),
        "dagster/row_count": info["rows"],
        "added": stats.added,
        "updated": stats.updated,
        "removed": stats.removed,
        "unchanged": stats.unchanged,
        "embedded": stats.embedded,
        "rebuilt": dg.MetadataValue.text(stats.reason or "no") if stats.rebuilt else "no",
        "embedder": f"{kb.embedder.name}:{kb.embedder.version}",
        "embedding_dim": kb.embedder.dim,
        "index_type": info["index_type"],
        "ann_threshold": kb.ann.threshold,
        "ann_action": stats.ann,
        "lancedb_version": info["version"],
        "collections": dg.MetadataValue.json(report.collections()),
        "taxonomies": dg.MetadataValue.json(report.taxonomies.versions() if report.taxonomies else {}),
        "content_fingerprint": report.fingerprint,
        "uri": knowledge_base.uri,
    }
    check_meta: dict = {}
    if quality is not None:
        s = quality.summary()
        metadata.update(
            {
                f"recall_at_{quality.k}": s["recall_at_k"],
                "mrr": s["mrr"],
                "search_mode": quality.mode,
                "labelled_queries": s["queries"],
            }
        )
        check_meta = {
            f"recall_at_{quality.k}": s["recall_at_k"],
            "mrr": s["mrr"],
            "floor_recall_at_k": quality.floor.recall_at_k,
            "floor_mrr": quality.floor.mrr,
            "mode": quality.mode,
            "queries": s["queries"],
            "misses": dg.MetadataValue.json(s["misses"]),
            "per_query": dg.MetadataValue.md(quality.table_markdown()),
        }
    if rolled_back is not None:
        metadata["rolled_back_to_version"] = rolled_back
        check_meta["rolled_back_to_version"] = rolled_back
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[
            dg.AssetCheckResult(
                check_name="kb_search_quality",
                passed=quality.passed if quality is not None else True,
                metadata=check_meta or {"note": "no labelled query set (eval/queries.yaml)"},
            )
        ],
        data_version=dg.DataVersion(f"{report.fingerprint}:{kb.embedder.name}@{kb.embedder.version}"),
    )


@dg.asset(
    group_name=GROUP,
    kinds={"python", "yaml"},
    deps=[kb_content],
    description=TAXONOMY_NODES.description
    + " One source of truth for SQL consumers (models, agents, reports): labels are these node ids.",
    metadata={"dagster/column_schema": column_schema(TAXONOMY_NODES)},
)
@pinned
def kb_taxonomy_nodes(knowledge_base: KnowledgeBaseResource, warehouse: Warehouse) -> dg.MaterializeResult:
    import pandas as pd

    from revops_pipelines.kb.taxonomy import load_taxonomies

    taxonomies = load_taxonomies(knowledge_base.root() / "taxonomies")
    rows = []
    for tax_id in taxonomies:
        tax = taxonomies[tax_id]
        for r in tax.rows():
            rows.append(
                {
                    **r,
                    "root_id": tax.path(r["node_id"])[0].id,
                    "keywords": json.dumps(r["keywords"]),
                }
            )
    df = pd.DataFrame(rows, columns=TAXONOMY_NODES.column_names)
    result = warehouse.replace_table(TAXONOMY_NODES, df)  # nodes can be removed: full refresh
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": result.total,
            "taxonomies": dg.MetadataValue.json(taxonomies.versions()),
        }
    )


class EntityIndexConfig(RunConfig):
    numeric_weight: float = Field(default=0.6, ge=0, le=1, description="Share of similarity from features.")
    calls_per_account: int = Field(
        default=8, ge=0, le=100, description="Latest calls forming the account text."
    )
    rebuild: bool = False


@dg.asset(
    group_name=GROUP,
    kinds={"lancedb"},
    deps=[
        kb_content,
        "account_features",
        "raw_sf_accounts",
        "raw_gong_calls",
        "raw_gong_transcripts",
        "gong_call_sentiment",
    ],
    description=(
        "Entity embeddings in LanceDB (kb_entities): every account from its latest feature snapshot and "
        "its recent call text, plus products (plans) and features from the taxonomies — for 'similar "
        "accounts' and 'which features does this account talk about'."
    ),
    check_specs=[
        dg.AssetCheckSpec(
            "kb_entity_index_complete",
            asset="kb_entity_index",
            blocking=True,
            description="Every account, plan and feature has exactly one vector.",
        )
    ],
)
@pinned
def kb_entity_index(
    context: dg.AssetExecutionContext,
    config: EntityIndexConfig,
    knowledge_base: KnowledgeBaseResource,
    warehouse: Warehouse,
) -> dg.MaterializeResult:
    from revops_pipelines.kb.entities import account_entities, neighbour_agreement, taxonomy_entities
    from revops_pipelines.kb.taxonomy import load_taxonomies

    taxonomies = load_taxonomies(knowledge_base.root() / "taxonomies")
    index = knowledge_base.open_entities(
        numeric_weight=config.numeric_weight, calls_per_account=config.calls_per_account
    )
    accounts, notes = account_entities(warehouse, index.config)
    products_features = taxonomy_entities(taxonomies)
    stats = index.build([*accounts, *products_features], rebuild=config.rebuild)
    context.log.info(f"kb_entity_index: {stats}")
    expected = {"account": len(accounts), **{t: 0 for t in ("product", "feature")}}
    for e in products_features:
        expected[e.entity_type] += 1
    counts = {t: index.count(t) for t in expected}
    sample = [e.entity_id for e in accounts[:: max(1, len(accounts) // 50)]][:50]
    agreement = round(neighbour_agreement(index, sample, k=5), 4) if len(accounts) > 5 else None
    mix: dict[str, int] = {}
    for e in accounts:
        mix[str(e.segment)] = mix.get(str(e.segment), 0) + 1
    chance = round(sum((n / len(accounts)) ** 2 for n in mix.values()), 4) if accounts else None
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": stats.total,
            "entities": dg.MetadataValue.json(counts),
            "added": stats.added,
            "updated": stats.updated,
            "removed": stats.removed,
            "unchanged": stats.unchanged,
            "texts_embedded": stats.embedded,
            "rebuilt": stats.reason or "no",
            "embedder": index.embedder_id,
            "vector_dim": index.dim,
            "numeric_weight": index.config.numeric_weight,
            "accounts_with_features": notes["accounts_with_features"],
            "accounts_with_calls": notes["accounts_with_calls"],
            "missing_sources": dg.MetadataValue.json(notes["missing_sources"]),
            "neighbour_segment_agreement_at_5": agreement,
            "segment_agreement_by_chance": chance,
            "lancedb_version": stats.version,
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="kb_entity_index_complete",
                passed=counts == expected,
                metadata={
                    "expected": dg.MetadataValue.json(expected),
                    "found": dg.MetadataValue.json(counts),
                },
            )
        ],
    )


class HealthConfig(RunConfig):
    near_duplicate_threshold: float = Field(
        default=0.85, gt=0, le=1, description="Cosine above which two sections are near-duplicates."
    )


@dg.asset(
    group_name=GROUP,
    kinds={"markdown"},
    deps=[kb_index],
    description=(
        "Weekly knowledge-base health: stale documents past their review period, near-duplicate chunks, "
        "broken links, taxonomy terms no document covers, and labelled queries whose ranking dropped since "
        "the previous report — as metadata and as a markdown report under $REVOPS_HOME/reports."
    ),
)
@pinned
def kb_health_report(
    context: dg.AssetExecutionContext, config: HealthConfig, knowledge_base: KnowledgeBaseResource
) -> dg.MaterializeResult:
    from revops_pipelines.kb.maintenance import build_health_report, write_report

    previous: dict[str, float] = {}
    event = context.instance.get_latest_materialization_event(dg.AssetKey("kb_health_report"))
    if event is not None and event.asset_materialization is not None:
        entry = event.asset_materialization.metadata.get("per_query_rr")
        if entry is not None and isinstance(entry.value, dict):
            previous = {str(k): float(v) for k, v in entry.value.items()}
    kb = knowledge_base.open()
    report = build_health_report(
        knowledge_base.root(),
        kb,
        previous_rr=previous,
        near_duplicate_threshold=config.near_duplicate_threshold,
    )
    path = write_report(report, knowledge_base.reports_path())
    context.log.info(f"kb health: {report.counts()} -> {path}")
    return dg.MaterializeResult(
        metadata={
            **report.counts(),
            "issues": report.issues,
            "healthy": report.healthy,
            "report_path": dg.MetadataValue.path(str(path)),
            "report": dg.MetadataValue.md(report.to_markdown()),
            "stale": dg.MetadataValue.json(report.stale),
            "near_duplicates": dg.MetadataValue.json(report.near_duplicates[:20]),
            "uncovered_terms": dg.MetadataValue.json(report.uncovered_terms),
            "quality_drop_list": dg.MetadataValue.json(report.quality_drops),
            "quality": dg.MetadataValue.json(report.quality or {}),
            "per_query_rr": dg.MetadataValue.json(report.per_query_rr),
        }
    )


# -- jobs, sensor, schedule ------------------------------------------------------------------------
CONTENT_ASSETS = [kb_content, kb_index, kb_taxonomy_nodes]

kb_content_job = dg.define_asset_job(
    "kb_content_refresh",
    selection=dg.AssetSelection.assets(*CONTENT_ASSETS),
    description="Validate the content, re-index changed documents and refresh the taxonomy table.",
)
kb_maintenance_job = dg.define_asset_job(
    "kb_maintenance",
    selection=dg.AssetSelection.assets(kb_content, kb_index, kb_health_report),
    description="Validation, incremental re-index, search-quality check and the health report.",
)
training_data_job = dg.define_asset_job(
    "build_training_data",
    selection=dg.AssetSelection.groups(training.GROUP) | dg.AssetSelection.assets(kb_taxonomy_nodes),
    description="Rebuild the decision-model and classification training sets from warehouse history.",
)

kb_content_sensor = build_content_sensor(
    KB_ROOT,
    affected={
        "docs": ["kb_content", "kb_index"],
        "eval": ["kb_content", "kb_index"],
        "taxonomies": [
            "kb_content",
            "kb_index",
            "kb_taxonomy_nodes",
            "kb_entity_index",
            *training.TAXONOMY_LABELLED,
        ],
    },
    initial=["kb_content", "kb_index"],
)

kb_maintenance_schedule = dg.ScheduleDefinition(
    name="kb_weekly_maintenance",
    job=kb_maintenance_job,
    cron_schedule="0 6 * * 1",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Mondays 06:00 UTC: validate, re-index, check search quality, write the health report.",
)

ASSETS = [kb_content, kb_index, kb_taxonomy_nodes, kb_entity_index, kb_health_report, *training.ASSETS]
CHECKS = training.CHECKS
JOBS = [kb_content_job, kb_maintenance_job, training_data_job]
SCHEDULES = [kb_maintenance_schedule]
SENSORS = [kb_content_sensor]
