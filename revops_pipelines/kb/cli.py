"""``revops kb``: manage the knowledge base from the command line.

Registered lazily in :mod:`revops_pipelines.cli` (``"kb": "revops_pipelines.kb.cli:kb"``). Every
command works on the configured LanceDB location (``REVOPS_VECTOR_URI``, default
``$REVOPS_HOME/lancedb``) and the shipped content (``kb_assets/``) unless ``--uri`` / ``--root`` say
otherwise. Exit codes: 0 ok, 1 content problems or a failed quality/health gate, 2 usage or runtime
errors.
"""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

import click

from revops_pipelines.errors import RevOpsError


def _fail(err: Exception | str, code: int = 2) -> None:
    click.echo(f"error: {err}", err=True)
    sys.exit(code)


def _uri(uri: str | None) -> str:
    if uri:
        return uri
    from revops_pipelines.settings import load_settings

    return load_settings().vector_uri


def _root(root: Path | None) -> Path:
    from revops_pipelines.kb.documents import default_kb_root

    return root or default_kb_root()


def _kb(uri: str | None, embedder: str):
    from revops_pipelines.kb.embedder import get_embedder
    from revops_pipelines.kb.store import KnowledgeBase

    return KnowledgeBase(_uri(uri), get_embedder(embedder))


def _entities(uri: str | None, embedder: str, root: Path | None):
    from revops_pipelines.kb.embedder import get_embedder
    from revops_pipelines.kb.entities import EntityConfig, EntityIndex
    from revops_pipelines.kb.taxonomy import load_taxonomies

    config = EntityConfig.from_taxonomies(load_taxonomies(_root(root) / "taxonomies"))
    return EntityIndex(_uri(uri), get_embedder(embedder), config=config)


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


uri_option = click.option(
    "--uri", help="LanceDB location (default: REVOPS_VECTOR_URI or $REVOPS_HOME/lancedb)."
)
root_option = click.option(
    "--root",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Content folder with docs/, taxonomies/, eval/ (default: the kb_assets package).",
)
embedder_option = click.option(
    "--embedder", default="hashing", show_default=True, help="Registered embedder."
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
table_option = click.option(
    "--table",
    type=click.Choice(["chunks", "entities"]),
    default="chunks",
    show_default=True,
    help="Which LanceDB table: document chunks or entity vectors.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def kb() -> None:
    """Knowledge base: validate content, (re)index, search, versions, restore, health."""


def _validated(root: Path):
    from revops_pipelines.kb.maintenance import validate_content

    report = validate_content(root)
    return report


def _print_problems(report) -> None:
    for p in report.problems:
        click.echo(p)
    for w in report.warnings:
        click.echo(f"warning: {w}")


@kb.command("validate")
@root_option
@json_option
def validate_cmd(root: Path | None, as_json: bool) -> None:
    """Check documents, taxonomies, links, duplicate content and the labelled queries.

    Prints every problem as path:line: message and exits 1 when there is any.
    """
    report = _validated(_root(root))
    if as_json:
        _echo_json({**report.summary(), "problem_list": report.problems, "warning_list": report.warnings})
    else:
        _print_problems(report)
        s = report.summary()
        click.echo(
            f"{s['documents']} documents, {len(s['taxonomies'])} taxonomies, {s['labelled_queries']} labelled "
            f"queries, {s['links_checked']} links: {s['problems']} problem(s), {s['warnings']} warning(s)"
        )
    sys.exit(1 if report.problems else 0)


def _index(uri: str | None, root: Path | None, embedder: str, rebuild: bool, as_json: bool) -> None:
    from revops_pipelines.kb.documents import chunk_documents
    from revops_pipelines.kb.evaluation import evaluate

    report = _validated(_root(root))
    if report.problems:
        _print_problems(report)
        _fail(f"{len(report.problems)} content problem(s); nothing was indexed", code=1)
    try:
        store = _kb(uri, embedder)
        stats = store.index(chunk_documents(report.documents), rebuild=rebuild)
        quality = evaluate(store, report.queries) if report.queries else None
    except RevOpsError as err:
        _fail(err)
    out = {
        "stats": stats.as_dict(),
        "index": store.index_info(),
        "quality": quality.summary() if quality else None,
    }
    if as_json:
        _echo_json(out)
    else:
        click.echo(
            f"{'rebuilt' if rebuild else 'indexed'} {stats.total} chunks of {len(report.documents)} documents "
            f"into {store.uri} (version {stats.version}): {stats.added} added, {stats.updated} updated, "
            f"{stats.removed} removed, {stats.unchanged} unchanged, {stats.embedded} embedded; "
            f"index: {out['index']['index_type']}"
        )
        if quality:
            s = quality.summary()
            click.echo(
                f"search quality ({s['mode']}): recall@{s['k']} {s['recall_at_k']}, MRR {s['mrr']} "
                f"(floor {s['floor']['recall_at_k']} / {s['floor']['mrr']}): {'ok' if s['passed'] else 'BELOW FLOOR'}"
            )
    if quality is not None and not quality.passed:
        sys.exit(1)


@kb.command("rebuild")
@uri_option
@root_option
@embedder_option
@json_option
def rebuild_cmd(uri: str | None, root: Path | None, embedder: str, as_json: bool) -> None:
    """Validate the content, then re-embed every chunk into a new table version."""
    _index(uri, root, embedder, True, as_json)


@kb.command("index")
@uri_option
@root_option
@embedder_option
@json_option
def index_cmd(uri: str | None, root: Path | None, embedder: str, as_json: bool) -> None:
    """Validate the content, then sync the index incrementally (only changed chunks are embedded)."""
    _index(uri, root, embedder, False, as_json)


@kb.command("search")
@click.argument("query")
@click.option("-k", "k", type=int, default=5, show_default=True, help="Number of results.")
@click.option(
    "--mode",
    type=click.Choice(["hybrid", "vector", "fts"]),
    default="hybrid",
    show_default=True,
    help="Ranking.",
)
@click.option("--collection", multiple=True, help="Only these collections (repeatable).")
@click.option("--tag", "tags", multiple=True, help="Only chunks carrying all these tags (repeatable).")
@click.option("--taxonomy", multiple=True, help="Only documents linked to any of these taxonomy nodes.")
@uri_option
@embedder_option
@json_option
def search_cmd(
    query: str,
    k: int,
    mode: str,
    collection: tuple[str, ...],
    tags: tuple[str, ...],
    taxonomy: tuple[str, ...],
    uri: str | None,
    embedder: str,
    as_json: bool,
) -> None:
    """Search the knowledge base: QUERY in quotes."""
    try:
        hits = _kb(uri, embedder).search(
            query,
            k=k,
            mode=mode,  # type: ignore[arg-type]
            collection=list(collection) or None,
            tags=list(tags) or None,
            taxonomy=list(taxonomy) or None,
        )
    except RevOpsError as err:
        _fail(err)
    if as_json:
        _echo_json(
            [
                {"rank": i + 1, "score": round(h.score, 4), "doc_id": h.doc_id, "heading": h.heading,
                 "collection": h.collection, "title": h.title, "text": h.text}
                for i, h in enumerate(hits)
            ]
        )  # fmt: skip
        return
    if not hits:
        click.echo("no results")
        return
    for i, h in enumerate(hits, start=1):
        where = f"{h.doc_id} › {h.heading}" if h.heading else h.doc_id
        snippet = " ".join(h.text.split())[:160]
        click.echo(f"{i}. [{h.score:.3f}] {where}  ({h.collection})\n   {snippet}")


@kb.command("versions")
@uri_option
@table_option
@embedder_option
@root_option
@json_option
def versions_cmd(uri: str | None, table: str, embedder: str, root: Path | None, as_json: bool) -> None:
    """List the LanceDB table versions (every index run, restore or index change is one)."""
    try:
        store = _kb(uri, embedder) if table == "chunks" else _entities(uri, embedder, root)
        versions = store.versions()
    except RevOpsError as err:
        _fail(err)
    if as_json:
        _echo_json(versions)
        return
    if not versions:
        click.echo(f"no {table} table at {_uri(uri)} yet")
        return
    latest = versions[-1]["version"]
    for v in versions:
        mark = "  (latest)" if v["version"] == latest else ""
        click.echo(
            f"{v['version']:>5}  {v['timestamp']}  {v['rows'] if v['rows'] is not None else '?':>8} rows{mark}"
        )


@kb.command("restore")
@click.argument("version", type=int)
@uri_option
@table_option
@embedder_option
@root_option
def restore_cmd(version: int, uri: str | None, table: str, embedder: str, root: Path | None) -> None:
    """Make VERSION the latest again (a new version; nothing is deleted)."""
    try:
        store = _kb(uri, embedder) if table == "chunks" else _entities(uri, embedder, root)
        new = store.restore(version)
        rows = store.count()
    except RevOpsError as err:
        _fail(err)
    click.echo(f"restored {table} version {version} as version {new} ({rows} rows)")


@kb.command("health")
@uri_option
@root_option
@embedder_option
@click.option("--today", type=click.DateTime(formats=["%Y-%m-%d"]), help="Judge staleness as of this date.")
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="Also write the markdown report here."
)
@click.option("--strict", is_flag=True, help="Exit 1 when the report finds any issue.")
@json_option
def health_cmd(
    uri: str | None,
    root: Path | None,
    embedder: str,
    today: Any,
    out: Path | None,
    strict: bool,
    as_json: bool,
) -> None:
    """Health report: stale documents, near-duplicates, broken links, uncovered taxonomy terms,
    search quality on the labelled queries."""
    from revops_pipelines.kb.maintenance import build_health_report

    try:
        store = _kb(uri, embedder)
        report = build_health_report(
            _root(root), store if store.exists() else None, today=today.date() if today else date.today()
        )
    except RevOpsError as err:
        _fail(err)
    text = report.to_markdown()
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    if as_json:
        _echo_json(report.as_dict())
    else:
        click.echo(text, nl=False)
    if strict and not report.healthy:
        sys.exit(1)


@kb.command("evaluate")
@uri_option
@root_option
@embedder_option
@click.option("--mode", type=click.Choice(["hybrid", "vector", "fts"]), help="Override the query set's mode.")
@json_option
def evaluate_cmd(uri: str | None, root: Path | None, embedder: str, mode: str | None, as_json: bool) -> None:
    """Search quality on the labelled query set (recall@k, MRR); exits 1 below the floor."""
    from revops_pipelines.kb.evaluation import evaluate, load_queries

    try:
        queries = load_queries(_root(root) / "eval" / "queries.yaml", "eval/queries.yaml")
        quality = evaluate(_kb(uri, embedder), queries, mode=mode)
    except RevOpsError as err:
        _fail(err)
    if as_json:
        _echo_json(quality.as_dict())
    else:
        s = quality.summary()
        click.echo(quality.table_markdown())
        click.echo(
            f"\nrecall@{s['k']} {s['recall_at_k']}, MRR {s['mrr']} ({s['mode']}, {s['queries']} queries); "
            f"floor {s['floor']['recall_at_k']} / {s['floor']['mrr']}: {'ok' if s['passed'] else 'BELOW FLOOR'}"
        )
    sys.exit(0 if quality.passed else 1)


@kb.command("similar")
@click.argument("account_id")
@click.option("-k", "k", type=int, default=5, show_default=True)
@click.option("--same-segment", is_flag=True, help="Only accounts in the same segment.")
@click.option("--churned/--retained", default=None, help="Only churned (or only retained) accounts.")
@uri_option
@root_option
@embedder_option
@json_option
def similar_cmd(
    account_id: str,
    k: int,
    same_segment: bool,
    churned: bool | None,
    uri: str | None,
    root: Path | None,
    embedder: str,
    as_json: bool,
) -> None:
    """Accounts most similar to ACCOUNT_ID (from kb_entity_index)."""
    try:
        hits = _entities(uri, embedder, root).similar_accounts(
            account_id, k, same_segment=same_segment, churned=churned
        )
    except RevOpsError as err:
        _fail(err)
    if as_json:
        _echo_json([{"account_id": h.account_id, "name": h.name, "score": round(h.score, 4), "segment": h.segment,
                     "plan": h.plan, "churned": h.churned, **h.attributes} for h in hits])  # fmt: skip
        return
    for i, h in enumerate(hits, start=1):
        status = "churned" if h.churned else "customer"
        click.echo(f"{i}. [{h.score:.3f}] {h.account_id} {h.name} — {h.segment}, {h.plan}, {status}")
