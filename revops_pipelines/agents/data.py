"""Data Agent: discovers the warehouse schema and answers data requests with read-only SQL.

Actions (pydantic-validated like every agent):

* ``discover_schema`` — tables, columns, types, keys, primary index, row counts, freshness, schema
  version and drift, into a :class:`~revops_pipelines.warehouse.catalog.Catalog`;
* ``account_metrics`` — one account's features at a snapshot (latest by default);
* ``cohort_query`` — accounts grouped by segment / plan / billing frequency with aggregated
  metrics, filtered by snapshot, segment, plan and ARR range;
* ``run_query`` — an analyst's own SELECT, admitted only if it is one read-only statement over
  known tables (see :func:`guard_read_only`);
* ``explain`` — the engine's plan (``EXPLAIN``) with hints: full scans, filters that miss the
  primary index, ``SELECT *``;
* ``suggest_indexes`` — primary-index / partition columns from the filters observed in the
  agent's query log (``data_agent_query_log``).

Every request is answered with parameterised SQL (values travel as ``?`` parameters; identifiers
come from allow-lists), through the query cache, and logged with the tables and filter columns it
used. Nothing the agent runs can write: structured requests build SELECTs only, and free SQL goes
through a lexical check (one statement, no write/DDL/admin keyword outside literals) and a parse
(sqlglot: the root must be a query, no write node anywhere, no table functions, only known tables).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections import Counter
from datetime import UTC, date, datetime
from typing import Any, Literal

from pydantic import Field

from revops_pipelines.agents.base import ActionSpec, Agent
from revops_pipelines.agents.params import (  # noqa: F401 - the Data Agent's parameter models
    NUMERIC_FEATURES,
    AccountMetricsManyParams,
    AccountMetricsParams,
    CohortFilters,
    CohortParams,
    DiscoverParams,
    ExplainParams,
    GroupColumn,
    Metric,
    RunQueryParams,
    SuggestParams,
)
from revops_pipelines.errors import ValidationFailed
from revops_pipelines.lazy import pd
from revops_pipelines.validation import StrictModel
from revops_pipelines.warehouse import table
from revops_pipelines.warehouse.catalog import CATALOG_TABLE, Catalog
from revops_pipelines.warehouse.sqltext import mask_sql, normalise, statements

QUERY_LOG = table(
    "data_agent_query_log",
    [
        ("query_id", "TEXT"),
        ("logged_at", "TIMESTAMP", False),
        ("action", "TEXT", False),
        ("sql_hash", "TEXT", False),
        ("tables", "TEXT", False),
        ("filter_columns", "TEXT", False),
        ("row_count", "INTEGER"),
        ("elapsed_ms", "DOUBLE"),
        ("cached", "BOOLEAN"),
    ],
    keys=("query_id",),
    description="Data Agent queries: tables read and columns filtered on (basis of index suggestions).",
    group="agents",
)
TABLES = [QUERY_LOG, CATALOG_TABLE]  # the catalog table is declared in revops_pipelines.warehouse.catalog

FORBIDDEN_WORDS = (
    "INSERT", "UPDATE", "DELETE", "MERGE", "UPSERT", "DROP", "CREATE", "ALTER", "TRUNCATE",
    "COPY", "ATTACH", "DETACH", "PRAGMA", "INSTALL", "LOAD", "CALL", "EXPORT", "IMPORT", "SET", "RESET",
    "GRANT", "REVOKE", "VACUUM", "CHECKPOINT", "BEGIN", "COMMIT", "ROLLBACK", "USE", "EXECUTE", "PREPARE",
    "INTO",
)  # fmt: skip
_FORBIDDEN = re.compile(r"\b(" + "|".join(FORBIDDEN_WORDS) + r")\b", re.I)

GROUP_COLUMNS = ("segment", "plan", "billing_frequency")
# cohort dimensions: allow-listed expressions over account_features f (and raw_sf_accounts a)
GROUP_EXPRESSIONS = {
    "segment": "f.segment",
    "plan": "f.plan",
    "billing_frequency": "f.billing_frequency",
    "tenure_year": "CAST(FLOOR(f.tenure_days / 365.0) AS INTEGER)",
    "signup_quarter": "DATE_TRUNC('quarter', a.customer_since)",
}


class RefusedQuery(ValidationFailed):
    """A query the Data Agent will not run (it writes, or is not one plain read)."""

    def __init__(self, reason: str):
        super().__init__("read-only query", [reason])


# ---- parameters and outputs ---------------------------------------------------------------------
class QueryResult(StrictModel):
    sql: str
    params: list[Any]
    columns: list[str]
    rows: list[dict[str, Any]]
    row_count: int
    truncated: bool = False
    cached: bool
    elapsed_ms: float = Field(ge=0)
    tables: list[str]
    filter_columns: dict[str, list[str]]


class AccountMetrics(StrictModel):
    account_id: str
    found: bool
    snapshot_date: date | None = None
    metrics: dict[str, float | str | None] = Field(default_factory=dict)
    query: QueryResult


class PlanHint(StrictModel):
    table: str | None = None
    kind: Literal["full_scan", "index_miss", "select_star", "large_result", "info"]
    text: str


class ExplainResult(StrictModel):
    sql: str
    plan: str
    tables: list[str]
    filter_columns: dict[str, list[str]]
    hints: list[PlanHint]


class IndexSuggestion(StrictModel):
    table: str
    current_primary_index: list[str]
    suggested_primary_index: list[str]
    partition_by: str | None = None
    observed_filters: dict[str, int]
    queries: int
    reason: str


class IndexSuggestions(StrictModel):
    queries_seen: int
    suggestions: list[IndexSuggestion]


# ---- read-only guard -----------------------------------------------------------------------------
def _parse_dialect(dialect: str) -> str:
    return "duckdb" if dialect == "duckdb" else "postgres"


def guard_read_only(sql: str, dialect: str, known_tables: set[str]) -> Any:
    """Admit ``sql`` only if it is one read-only query over ``known_tables``; return its parse tree.

    Raises :class:`RefusedQuery` naming the reason otherwise."""
    import sqlglot
    from sqlglot import exp

    parts = statements(sql)
    if len(parts) != 1:
        raise RefusedQuery(f"exactly one statement is allowed, got {len(parts)}")
    masked = mask_sql(parts[0])
    if masked.count("'") % 2 or masked.count('"') % 2:
        raise RefusedQuery("unterminated literal or identifier")
    bad = _FORBIDDEN.search(masked)
    if bad:
        raise RefusedQuery(f"{bad.group(1).upper()} is not allowed: the Data Agent only reads")
    try:
        trees = [t for t in sqlglot.parse(parts[0], read=_parse_dialect(dialect)) if t is not None]
    except sqlglot.errors.SqlglotError as err:
        raise RefusedQuery(f"cannot parse the query: {str(err).splitlines()[0][:200]}") from None
    if len(trees) != 1:
        raise RefusedQuery(f"exactly one statement is allowed, got {len(trees)}")
    tree = trees[0]
    if not isinstance(tree, exp.Query):
        raise RefusedQuery(f"only SELECT queries are allowed, not {type(tree).__name__.upper()}")
    writes = (exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Drop, exp.Create, exp.Alter, exp.Command)
    for node in tree.walk():
        if isinstance(node, writes):
            raise RefusedQuery(f"{type(node).__name__.upper()} is not allowed: the Data Agent only reads")
        if isinstance(node, exp.Into):
            raise RefusedQuery("SELECT ... INTO is not allowed")
        if isinstance(node, exp.Table) and not isinstance(node.this, exp.Identifier):
            raise RefusedQuery("table functions are not allowed (tables only)")
    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    for t in tree.find_all(exp.Table):
        name = t.name.lower()
        if t.args.get("db") and t.args["db"].name.lower() not in ("public", "main"):
            raise RefusedQuery(f"only the warehouse's own schema can be read, not {t.sql()}")
        if name not in ctes and name not in known_tables:
            raise RefusedQuery(f"unknown table {t.name!r}")
    return tree


def tables_and_filters(tree: Any, columns_of: dict[str, set[str]]) -> tuple[list[str], dict[str, list[str]]]:
    """The base tables a parsed query reads, and per table the columns its WHERE/JOIN conditions
    compare (what a primary index or partitioning could prune on)."""
    from sqlglot import exp

    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    alias: dict[str, str] = {}
    tables: list[str] = []
    for t in tree.find_all(exp.Table):
        name = t.name.lower()
        if name in ctes:
            continue
        alias[t.alias_or_name.lower()] = name
        alias[name] = name
        if name not in tables:
            tables.append(name)
    filters: dict[str, list[str]] = {}
    predicates = (exp.EQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.In, exp.Between, exp.NEQ)
    for where in tree.find_all(exp.Where):
        for pred in where.find_all(*predicates):
            for col in pred.find_all(exp.Column):
                q = col.table.lower()
                owners = (
                    [alias[q]]
                    if q in alias
                    else [t for t in tables if col.name.lower() in columns_of.get(t, ())]
                )
                for owner in owners[:1]:
                    lst = filters.setdefault(owner, [])
                    if col.name.lower() not in lst:
                        lst.append(col.name.lower())
    return tables, filters


def _jsonable(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, float) and v != v:
        return None
    if hasattr(v, "item") and not isinstance(v, str | bytes):
        try:
            return _jsonable(v.item())
        except (ValueError, AttributeError):
            pass
    if isinstance(v, datetime | date):
        return v.isoformat()
    return v


# ---- the agent -----------------------------------------------------------------------------------
class DataAgent(Agent):
    name = "data"
    version = "1"

    def __init__(self, warehouse, runtime=None, cache=None):
        super().__init__(warehouse, runtime)
        from revops_pipelines.warehouse.cache import QueryCache

        self.cache = cache or QueryCache(warehouse, store_dir=self.shared_cache_dir())
        self._columns: dict[str, set[str]] | None = None

    def shared_cache_dir(self) -> str | None:
        """Where query results are shared between processes: ``cache/queries`` in the runtime
        folder (beside the agents' ``state/`` folder; without a configured state file, beside the
        DuckDB file); None (this process only) when neither is known."""
        from pathlib import Path

        if self.runtime.state_path:
            return str(Path(self.runtime.state_path).resolve().parent.parent / "cache" / "queries")
        path = getattr(self.warehouse, "path", None)
        if self.warehouse.dialect == "duckdb" and path and path != ":memory:":
            return str(Path(path).resolve().parent / "cache" / "queries")
        return None

    def saved_catalog(self) -> Catalog | None:
        """The schema catalog last saved by ``discover_schema`` (in this or any other process)."""
        from revops_pipelines.warehouse.catalog import load_catalog

        return load_catalog(self.warehouse)

    # -- shared plumbing
    def known_columns(self, refresh: bool = False) -> dict[str, set[str]]:
        if self._columns is None or refresh:
            self._columns = {
                t: {c for c, _ in self.warehouse.columns(t)} for t in self.warehouse.table_names()
            }
        return self._columns

    def admit(self, sql: str) -> tuple[dict[str, set[str]], Any]:
        """Guard ``sql``; a table unknown to the cached column list triggers one re-discovery."""
        cols = self.known_columns()
        try:
            return cols, guard_read_only(sql, self.warehouse.dialect, set(cols))
        except RefusedQuery as err:
            if "unknown table" not in str(err):
                raise
        cols = self.known_columns(refresh=True)
        return cols, guard_read_only(sql, self.warehouse.dialect, set(cols))

    def read(self, action: str, sql: str, params: list[Any], limit: int | None = None) -> QueryResult:
        """Run one admitted read through the cache and log what it touched."""
        cols, tree = self.admit(sql)
        tables, filters = tables_and_filters(tree, cols)
        run_sql = sql if limit is None else f"SELECT * FROM ({normalise(sql)}) AS q LIMIT {int(limit) + 1}"
        hits = self.cache.stats.hits
        started = time.perf_counter()
        df = self.cache.query(run_sql, params)
        elapsed = (time.perf_counter() - started) * 1000
        cached = self.cache.stats.hits > hits
        truncated = limit is not None and len(df) > limit
        if truncated:
            df = df.head(limit)
        rows = [{k: _jsonable(v) for k, v in r.items()} for r in df.to_dict("records")]
        self._log(action, sql, tables, filters, len(rows), elapsed, cached)
        return QueryResult(
            sql=sql, params=[_jsonable(p) for p in params], columns=[str(c) for c in df.columns], rows=rows,
            row_count=len(rows), truncated=truncated, cached=cached, elapsed_ms=elapsed, tables=tables,
            filter_columns=filters,
        )  # fmt: skip

    def read_frame(self, action: str, sql: str, params: list[Any]) -> pd.DataFrame:
        """:meth:`read` for other agents that need many rows as a DataFrame (the Decision Agent's
        context): the same guard, cache and query log, without the JSON round trip of a QueryResult."""
        cols, tree = self.admit(sql)
        tables, filters = tables_and_filters(tree, cols)
        hits = self.cache.stats.hits
        started = time.perf_counter()
        df = self.cache.query(sql, params)
        elapsed = (time.perf_counter() - started) * 1000
        self._log(action, sql, tables, filters, len(df), elapsed, self.cache.stats.hits > hits)
        return df

    def _log(self, action, sql, tables, filters, n, elapsed, cached) -> None:
        now = datetime.now(UTC).replace(tzinfo=None)
        h = hashlib.sha256(normalise(sql).encode()).hexdigest()[:16]
        row = {
            "query_id": f"{now.isoformat()}-{h}-{time.perf_counter_ns() % 1_000_000}",
            "logged_at": now,
            "action": action,
            "sql_hash": h,
            "tables": json.dumps(tables),
            "filter_columns": json.dumps(filters, sort_keys=True),
            "row_count": n,
            "elapsed_ms": elapsed,
            "cached": cached,
        }
        self.warehouse.merge(QUERY_LOG, pd.DataFrame([row], columns=QUERY_LOG.column_names))


def discover_schema(agent: DataAgent, p: DiscoverParams, context: dict[str, Any]) -> Catalog:
    """Discover the schema and save it to ``schema_catalog`` (then filter to ``p.tables``)."""
    from revops_pipelines.warehouse.catalog import discover, save_catalog

    cat = discover(agent.warehouse)
    save_catalog(agent.warehouse, cat)  # the whole catalog, for the UI and other processes
    agent.known_columns(refresh=True)
    if p.tables:
        unknown = sorted(set(p.tables) - {t.name for t in cat.tables})
        if unknown:
            raise ValidationFailed("discover_schema parameters", [f"tables: unknown table(s) {unknown}"])
        cat.tables = [t for t in cat.tables if t.name in p.tables]
    return cat


def _metric_sql(metric: str, agg: str = "avg") -> str:
    if metric == "churn_rate":  # among labelled rows only
        return "AVG(CASE WHEN f.churned_in_horizon THEN 1.0 WHEN NOT f.churned_in_horizon THEN 0.0 END)"
    return f"{agg.upper()}(f.{metric})"


def account_metrics(agent: DataAgent, p: AccountMetricsParams, context: dict[str, Any]) -> AccountMetrics:
    metrics = [m for m in (p.metrics or list(NUMERIC_FEATURES)) if m != "churn_rate"]
    cols = ", ".join(["f.account_id", "f.snapshot_date", "f.segment", "f.plan", *[f"f.{m}" for m in metrics]])
    if p.snapshot_date is None:
        sql = (
            f"SELECT {cols} FROM account_features f WHERE f.account_id = ? "
            "ORDER BY f.snapshot_date DESC LIMIT 1"
        )
        params: list[Any] = [p.account_id]
    else:
        sql = f"SELECT {cols} FROM account_features f WHERE f.account_id = ? AND f.snapshot_date = ?"
        params = [p.account_id, p.snapshot_date]
    res = agent.read("account_metrics", sql, params)
    if not res.rows:
        return AccountMetrics(account_id=p.account_id, found=False, query=res)
    row = res.rows[0]
    return AccountMetrics(
        account_id=p.account_id,
        found=True,
        snapshot_date=row["snapshot_date"],
        metrics={k: row[k] for k in ["segment", "plan", *metrics]},
        query=res,
    )


def cohort_query(agent: DataAgent, p: CohortParams, context: dict[str, Any]) -> QueryResult:
    """Accounts of one snapshot grouped into cohorts (segment, plan, billing frequency, tenure
    year, signup quarter) with aggregated metrics; every value is a parameter."""
    groups = list(dict.fromkeys(p.group_by))
    exprs = [GROUP_EXPRESSIONS[g] for g in groups]
    select = [f"{e} AS {g}" for g, e in zip(groups, exprs, strict=True)] + ["COUNT(*) AS accounts"]
    select += [f"{_metric_sql(m, p.aggregate)} AS {p.aggregate}_{m}" for m in dict.fromkeys(p.metrics)]
    where, params = [], []
    if p.snapshot_date is None:
        where.append("f.snapshot_date = (SELECT MAX(snapshot_date) FROM account_features)")
    else:
        where.append("f.snapshot_date = ?")
        params.append(p.snapshot_date)
    for col in GROUP_COLUMNS:
        values = getattr(p.filters, col)
        if values:
            where.append(f"f.{col} IN ({', '.join('?' for _ in values)})")
            params.extend(values)
    if p.filters.min_arr is not None:
        where.append("f.arr >= ?")
        params.append(p.filters.min_arr)
    if p.filters.max_arr is not None:
        where.append("f.arr <= ?")
        params.append(p.filters.max_arr)
    source = "account_features f"
    if "signup_quarter" in groups:
        source += " JOIN raw_sf_accounts a ON a.account_id = f.account_id"
    g = ", ".join(exprs)
    sql = f"SELECT {', '.join(select)} FROM {source} WHERE {' AND '.join(where)} GROUP BY {g} ORDER BY {g}"
    return agent.read("cohort_query", sql, params, limit=p.limit)


def run_query(agent: DataAgent, p: RunQueryParams, context: dict[str, Any]) -> QueryResult:
    return agent.read("run_query", p.sql, list(p.params), limit=p.limit)


def explain(agent: DataAgent, p: ExplainParams, context: dict[str, Any]) -> ExplainResult:
    cols, tree = agent.admit(p.sql)
    tables, filters = tables_and_filters(tree, cols)
    plan_df = agent.warehouse.query("EXPLAIN " + statements(p.sql)[0], list(p.params))
    plan = "\n".join(str(v) for v in plan_df.iloc[:, -1].tolist()) if not plan_df.empty else ""
    from revops_pipelines.warehouse.catalog import discover

    cat = discover(agent.warehouse, include_declared_only=False)
    hints: list[PlanHint] = []
    from sqlglot import exp

    if any(isinstance(s, exp.Star) for s in tree.find_all(exp.Star)):
        hints.append(PlanHint(kind="select_star", text="select only the columns you need (columnar storage)"))
    for t in tables:
        info = cat.table(t)
        if info is None:
            continue
        used = filters.get(t, [])
        if not used:
            hints.append(
                PlanHint(
                    table=t, kind="full_scan", text=f"reads all {info.row_count:,} rows of {t} (no filter)"
                )
            )
        elif info.primary_index and info.primary_index[0] not in used:
            hints.append(
                PlanHint(
                    table=t,
                    kind="index_miss",
                    text=f"filters on {used} do not include the leading primary-index column "
                    f"{info.primary_index[0]!r} of {t}; Firebolt cannot prune by its index",
                )
            )
    return ExplainResult(sql=p.sql, plan=plan, tables=tables, filter_columns=filters, hints=hints)


def suggest_indexes(agent: DataAgent, p: SuggestParams, context: dict[str, Any]) -> IndexSuggestions:
    from revops_pipelines.warehouse.catalog import discover

    agent.warehouse.ensure_table(QUERY_LOG)
    log = agent.warehouse.query(f"SELECT tables, filter_columns FROM {QUERY_LOG.name}")
    per_table: dict[str, Counter] = {}
    queries: Counter = Counter()
    for r in log.itertuples(index=False):
        for t in json.loads(r.tables):
            queries[t] += 1
        for t, cols in json.loads(r.filter_columns).items():
            per_table.setdefault(t, Counter()).update(cols)
    cat = discover(agent.warehouse, include_declared_only=False)
    out = []
    for t, counts in sorted(per_table.items()):
        info = cat.table(t)
        if info is None:
            continue
        seen = {c: n for c, n in counts.most_common() if n >= p.min_queries}
        if not seen:
            continue
        types = {c.name: (c.declared_type or c.type).upper() for c in info.columns}
        ranked = sorted(seen, key=lambda c: (-seen[c], c))
        suggested = ranked[:3]
        date_cols = [c for c in ranked if types.get(c, "").startswith(("DATE", "TIMESTAMP"))]
        partition = f"DATE_TRUNC('month', {date_cols[0]})" if date_cols and info.kind != "dimension" else None
        current = info.primary_index
        if current[: len(suggested)] == suggested and partition is None:
            continue
        reason = (
            f"{queries[t]} logged queries read {t}; filters: "
            + ", ".join(f"{c} x{n}" for c, n in seen.items())
            + f". Current primary index {current or '-'}"
        )
        out.append(
            IndexSuggestion(
                table=t,
                current_primary_index=current,
                suggested_primary_index=suggested,
                partition_by=partition,
                observed_filters=seen,
                queries=queries[t],
                reason=reason,
            )
        )
    return IndexSuggestions(queries_seen=len(log), suggestions=out)


DataAgent.actions = {
    "discover_schema": ActionSpec(DiscoverParams, Catalog, discover_schema, "Discover the warehouse schema."),
    "account_metrics": ActionSpec(
        AccountMetricsParams, AccountMetrics, account_metrics, "One account's features at a snapshot."
    ),
    "cohort_query": ActionSpec(CohortParams, QueryResult, cohort_query, "Aggregate metrics by cohort."),
    "run_query": ActionSpec(RunQueryParams, QueryResult, run_query, "Run one read-only SELECT."),
    "explain": ActionSpec(ExplainParams, ExplainResult, explain, "Plan and optimisation hints for a SELECT."),
    "suggest_indexes": ActionSpec(
        SuggestParams,
        IndexSuggestions,
        suggest_indexes,
        "Primary-index / partition suggestions from filters.",
    ),
}


# ---- batch reads (added for the flow runtime's batch path) ----------------------------------------
class AccountMetricsMany(StrictModel):
    results: list[AccountMetrics]


_IN_CHUNK = 500  # account ids per IN (...) list


def account_metrics_many(
    agent: DataAgent, p: AccountMetricsManyParams, context: dict[str, Any]
) -> AccountMetricsMany:
    """:func:`account_metrics` for many accounts in one query per (snapshot, metrics) group and 500
    accounts: each result is what ``account_metrics`` would return for its request (latest snapshot
    per account by default), with ``query`` the shared query that read it (its own row only)."""
    groups: dict[tuple[Any, tuple[str, ...]], list[int]] = {}
    for i, r in enumerate(p.requests):
        metrics = tuple(m for m in (r.metrics or list(NUMERIC_FEATURES)) if m != "churn_rate")
        groups.setdefault((r.snapshot_date, metrics), []).append(i)
    out: list[AccountMetrics | None] = [None] * len(p.requests)
    for (snap, metrics), idx in groups.items():
        cols = ", ".join(
            ["f.account_id", "f.snapshot_date", "f.segment", "f.plan", *[f"f.{m}" for m in metrics]]
        )
        for start in range(0, len(idx), _IN_CHUNK):
            part = idx[start : start + _IN_CHUNK]
            ids = list(dict.fromkeys(p.requests[i].account_id for i in part))
            marks = ", ".join("?" for _ in ids)
            if snap is None:
                sql = (
                    f"SELECT {cols} FROM account_features f JOIN (SELECT account_id, MAX(snapshot_date) AS "
                    f"latest FROM account_features WHERE account_id IN ({marks}) GROUP BY account_id) m "
                    "ON m.account_id = f.account_id AND m.latest = f.snapshot_date ORDER BY f.account_id"
                )
                params: list[Any] = list(ids)
            else:
                sql = (
                    f"SELECT {cols} FROM account_features f WHERE f.account_id IN ({marks}) "
                    "AND f.snapshot_date = ? ORDER BY f.account_id"
                )
                params = [*ids, snap]
            res = agent.read("account_metrics", sql, params)
            rows = {str(r["account_id"]): r for r in res.rows}
            for i in part:
                acc = p.requests[i].account_id
                row = rows.get(acc)
                own = res.model_copy(update={"rows": [row] if row else [], "row_count": 1 if row else 0})
                out[i] = (
                    AccountMetrics(account_id=acc, found=False, query=own)
                    if row is None
                    else AccountMetrics(
                        account_id=acc,
                        found=True,
                        snapshot_date=row["snapshot_date"],
                        metrics={k: row[k] for k in ["segment", "plan", *metrics]},
                        query=own,
                    )
                )
    return AccountMetricsMany(results=[r for r in out if r is not None])


DataAgent.actions["account_metrics_many"] = ActionSpec(
    AccountMetricsManyParams,
    AccountMetricsMany,
    account_metrics_many,
    "account_metrics for many accounts in one query (the flow runtime's batch path).",
)
