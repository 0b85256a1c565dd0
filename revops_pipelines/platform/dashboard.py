"""Performance analytics dashboard: one self-contained static HTML report.

It reads what the platform already records and draws it with plotly (plotly.js is inlined, so the
file opens offline):

- **pipeline health** — materialisations per asset, asset-check pass rates, freshness (hours since
  each asset's last materialisation), from the Dagster instance's event log;
- **model quality over retrains** — AUC / PR-AUC / Brier of every ``churn_lgbm`` version in the model
  store, next to the oracle AUC recorded with it;
- **churn risk** — distribution of the latest ``churn_scores`` and movement between risk bands
  across the two latest scored snapshots;
- **flows and actions** — flow-job run statuses, ``action_log`` statuses and success rate, time to action (flow-run start to
  action), ``action_outcomes`` (accounts saved vs lost), dead letters;
- **agents** — latency percentiles and error rate per agent action from ``agent_metrics``;
- **connectors** — requests, retries and HTTP 429s per source from the sync assets' metadata, and
  quarantined rows from ``raw_*_quarantine``.

A section whose source is missing says so instead of failing: the report is useful from the first run.
Every headline number is also in a ``data-kpi`` element, so the rendered page can be checked.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import dagster as dg
    import pandas as pd

    from revops_pipelines.model_store import ModelStore
    from revops_pipelines.warehouse import Warehouse

CHURN_MODEL = "churn_lgbm"
CONNECTOR_ASSETS = {  # one materialisation of each carries its sync's request statistics
    "salesforce": "raw_salesforce_accounts",
    "hubspot": "raw_hubspot_companies",
    "gong": "raw_gong_calls",
}
RISK_BANDS = ((0.0, 0.1, "low"), (0.1, 0.3, "medium"), (0.3, 1.01, "high"))


@dataclass
class Section:
    id: str
    title: str
    figures: list[Any] = field(default_factory=list)  # plotly figures
    kpis: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)


def _band(score: float) -> str:
    for lo, hi, name in RISK_BANDS:
        if lo <= score < hi:
            return name
    return "high"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


class _Reader:
    """Warehouse reads that tolerate a table not existing yet."""

    def __init__(self, warehouse: Warehouse | None):
        self.warehouse = warehouse
        self.tables = set(warehouse.table_names()) if warehouse is not None else set()

    def has(self, table: str) -> bool:
        return table in self.tables

    def query(self, sql: str) -> pd.DataFrame:
        assert self.warehouse is not None
        return self.warehouse.query(sql)


# ---- sections ---------------------------------------------------------------------------------------
def pipeline_health(instance: dg.DagsterInstance | None, now: datetime) -> Section:
    import dagster as dg
    import pandas as pd
    import plotly.express as px

    sec = Section("pipeline-health", "Pipeline health")
    if instance is None:
        sec.notes.append("No Dagster instance: materialisations and checks are not shown.")
        return sec
    rows = []
    for key in instance.get_asset_keys():
        records = instance.fetch_materializations(key, limit=1000).records
        if not records:
            continue
        last = max(r.timestamp for r in records)
        rows.append(
            {
                "asset": key.to_user_string(),
                "materialisations": len(records),
                "hours_since_last": round((now.timestamp() - last) / 3600, 2),
            }
        )
    mats = pd.DataFrame(rows, columns=["asset", "materialisations", "hours_since_last"])
    sec.kpis["assets_materialised"] = str(len(mats))
    sec.kpis["materialisations"] = str(int(mats["materialisations"].sum()) if len(mats) else 0)
    if len(mats):
        mats = mats.sort_values("asset")
        sec.figures.append(px.bar(mats, x="asset", y="materialisations", title="Materialisations per asset"))
        sec.figures.append(
            px.bar(mats, x="asset", y="hours_since_last", title="Freshness: hours since last materialisation")
        )
        stale = mats[mats["hours_since_last"] > 24 * 7]
        sec.kpis["stale_assets_7d"] = str(len(stale))

    checks = []
    records = instance.get_event_records(
        dg.EventRecordsFilter(event_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION), limit=10_000
    )
    for r in records:
        ev = r.event_log_entry.dagster_event
        data = ev.event_specific_data if ev is not None else None
        if data is None:
            continue
        checks.append(
            {
                "check": f"{data.asset_key.to_user_string()}:{data.check_name}",
                "passed": bool(data.passed),
            }
        )
    cdf = pd.DataFrame(checks, columns=["check", "passed"])
    sec.kpis["check_evaluations"] = str(len(cdf))
    if len(cdf):
        sec.kpis["check_pass_rate"] = _pct(float(cdf["passed"].mean()))
        rates = cdf.groupby("check")["passed"].agg(["mean", "count"]).reset_index()
        rates = rates.rename(columns={"mean": "pass_rate", "count": "evaluations"})
        fig = px.bar(
            rates.sort_values("pass_rate"),
            x="pass_rate",
            y="check",
            orientation="h",
            hover_data=["evaluations"],
            title="Asset-check pass rate",
        )
        fig.update_layout(height=max(360, 18 * len(rates) + 120))
        sec.figures.append(fig)
    else:
        sec.kpis["check_pass_rate"] = "n/a"
    return sec


def model_quality(model_store: ModelStore | None) -> Section:
    import pandas as pd
    import plotly.graph_objects as go

    sec = Section("model-quality", f"Model quality over retrains ({CHURN_MODEL})")
    versions = model_store.list_versions(CHURN_MODEL) if model_store is not None else []
    rows = []
    for m in versions:
        metrics = m.get("metrics") or {}
        model = metrics.get("model") or {}
        oracle = metrics.get("oracle") or {}
        rows.append(
            {
                "version": m["version"],
                "auc": model.get("auc"),
                "pr_auc": model.get("pr_auc"),
                "brier": model.get("brier"),
                "oracle_auc": oracle.get("auc"),
                "champion": bool(m.get("champion")),
            }
        )
    df = pd.DataFrame(rows, columns=["version", "auc", "pr_auc", "brier", "oracle_auc", "champion"])
    sec.kpis["retrains"] = str(len(df))
    if not len(df):
        sec.notes.append("No churn model versions in the model store yet.")
        return sec
    latest = df.iloc[-1]
    sec.kpis["latest_auc"] = f"{latest['auc']:.3f}" if latest["auc"] is not None else "n/a"
    if latest["oracle_auc"] is not None:
        sec.kpis["oracle_auc"] = f"{latest['oracle_auc']:.3f}"
    fig = go.Figure(layout={"title": {"text": "AUC per model version (model vs oracle)"}})
    for col, name in (("auc", "model AUC"), ("oracle_auc", "oracle AUC"), ("pr_auc", "PR-AUC")):
        fig.add_trace(go.Scatter(x=df["version"], y=df[col], mode="lines+markers", name=name))
    sec.figures.append(fig)
    sec.tables.append(("Versions", df))
    return sec


def churn_risk(reader: _Reader) -> Section:
    import plotly.express as px

    sec = Section("churn-risk", "Churn risk distribution and movement")
    if not reader.has("churn_scores"):
        sec.notes.append("churn_scores does not exist yet.")
        return sec
    scores = reader.query("SELECT account_id, snapshot_date, churn_score FROM churn_scores")
    if not len(scores):
        sec.notes.append("churn_scores is empty.")
        return sec
    scores["snapshot_date"] = scores["snapshot_date"].astype(str)
    scores["band"] = scores["churn_score"].astype(float).map(_band)
    snaps = sorted(scores["snapshot_date"].unique())
    latest = scores[scores["snapshot_date"] == snaps[-1]]
    sec.kpis["scored_accounts"] = str(len(latest))
    sec.kpis["high_risk_accounts"] = str(int((latest["band"] == "high").sum()))
    sec.kpis["mean_churn_score"] = f"{latest['churn_score'].astype(float).mean():.3f}"
    sec.figures.append(
        px.histogram(latest, x="churn_score", nbins=40, title=f"Churn score distribution at {snaps[-1]}")
    )
    bands = scores.groupby(["snapshot_date", "band"]).size().reset_index(name="accounts")
    sec.figures.append(
        px.bar(
            bands, x="snapshot_date", y="accounts", color="band", title="Accounts per risk band per snapshot"
        )
    )
    if len(snaps) >= 2:
        prev = scores[scores["snapshot_date"] == snaps[-2]][["account_id", "band"]]
        moved = prev.merge(latest[["account_id", "band"]], on="account_id", suffixes=("_before", "_after"))
        matrix = moved.groupby(["band_before", "band_after"]).size().reset_index(name="accounts")
        sec.figures.append(
            px.density_heatmap(
                matrix,
                x="band_after",
                y="band_before",
                z="accounts",
                title=f"Risk band movement {snaps[-2]} → {snaps[-1]}",
            )
        )
        sec.kpis["accounts_moved_up"] = str(
            int(
                (
                    moved["band_after"].map({"low": 0, "medium": 1, "high": 2})
                    > moved["band_before"].map({"low": 0, "medium": 1, "high": 2})
                ).sum()
            )
        )
    else:
        sec.notes.append(
            f"Only one scored snapshot ({snaps[-1]}): movement appears after the next scoring run."
        )
    return sec


def flows_and_actions(reader: _Reader, instance: dg.DagsterInstance | None) -> Section:
    import dagster as dg
    import pandas as pd
    import plotly.express as px

    sec = Section("flows-actions", "Flow runs and action outcomes")
    if instance is not None:
        runs = [
            {"job": r.job_name, "status": r.status.value}
            for r in instance.get_runs(limit=5000)
            if r.job_name.startswith("flow_")
        ]
        rdf = pd.DataFrame(runs, columns=["job", "status"])
        sec.kpis["flow_runs"] = str(len(rdf))
        sec.kpis["flow_runs_succeeded"] = str(int((rdf["status"] == dg.DagsterRunStatus.SUCCESS.value).sum()))
        if len(rdf):
            counts = rdf.groupby(["job", "status"]).size().reset_index(name="runs")
            sec.figures.append(px.bar(counts, x="job", y="runs", color="status", title="Flow runs by status"))
    if reader.has("action_log"):
        log = reader.query("SELECT action_type, status, created_at, run_id FROM action_log")
        sec.kpis["actions"] = str(len(log))
        if len(log):
            done = log["status"].isin(["succeeded", "dry_run"])
            sec.kpis["action_success_rate"] = _pct(float(done.mean()))
            counts = log.groupby(["action_type", "status"]).size().reset_index(name="actions")
            sec.figures.append(
                px.bar(
                    counts, x="action_type", y="actions", color="status", title="Actions by type and status"
                )
            )
            latency = _seconds_to_action(log, instance)
            if latency is not None:
                sec.kpis["median_seconds_to_action"] = f"{latency.median():.1f}"
                sec.figures.append(
                    px.histogram(
                        latency, nbins=30, title="Time to action: seconds from flow-run start to action"
                    )
                )
    else:
        sec.notes.append("action_log does not exist yet: no flow has acted.")
    if reader.has("action_outcomes"):
        out = reader.query("SELECT account_id, outcome, churned, renewed FROM action_outcomes")
        if len(out):
            per_account = out.groupby("account_id").agg(
                churned=("churned", "max"), renewed=("renewed", "max")
            )
            sec.kpis["accounts_saved"] = str(int((per_account["renewed"] & ~per_account["churned"]).sum()))
            sec.kpis["accounts_lost"] = str(int(per_account["churned"].sum()))
            oc = out.groupby("outcome").size().reset_index(name="actions")
            sec.figures.append(px.bar(oc, x="outcome", y="actions", title="Action outcomes"))
    if reader.has("dead_letter"):
        sec.kpis["dead_letters"] = str(len(reader.query("SELECT idempotency_key FROM dead_letter")))
    return sec


def _seconds_to_action(log: pd.DataFrame, instance: dg.DagsterInstance | None) -> pd.Series | None:
    """Seconds from the start of the flow run that decided to the action being recorded."""
    import pandas as pd

    if instance is None:
        return None
    starts = {}
    for run_id in log["run_id"].dropna().unique():
        record = instance.get_run_record_by_id(str(run_id))
        if record is not None and record.start_time is not None:
            starts[run_id] = record.start_time
    known = log[log["run_id"].isin(list(starts))]
    if not len(known):
        return None
    created = pd.to_datetime(known["created_at"], utc=True).map(lambda t: t.timestamp())
    seconds = created - known["run_id"].map(starts)
    return seconds.rename("seconds_to_action").reset_index(drop=True)


def agent_metrics(reader: _Reader) -> Section:
    import plotly.express as px

    sec = Section("agents", "Agent latency and errors")
    if not reader.has("agent_metrics"):
        sec.notes.append("agent_metrics does not exist yet.")
        return sec
    m = reader.query("SELECT agent, action, latency_ms, status FROM agent_metrics")
    sec.kpis["agent_calls"] = str(len(m))
    if not len(m):
        return sec
    m["call"] = m["agent"] + "." + m["action"]
    m["error"] = m["status"] != "ok"
    sec.kpis["agent_error_rate"] = _pct(float(m["error"].mean()))
    sec.kpis["agent_p95_latency_ms"] = f"{m['latency_ms'].astype(float).quantile(0.95):.1f}"
    summary = (
        m.groupby("call")
        .agg(
            calls=("latency_ms", "size"),
            p50_ms=("latency_ms", lambda s: s.astype(float).quantile(0.5)),
            p95_ms=("latency_ms", lambda s: s.astype(float).quantile(0.95)),
            error_rate=("error", "mean"),
        )
        .reset_index()
    )
    sec.figures.append(px.box(m, x="call", y="latency_ms", title="Latency per agent action (ms)"))
    sec.figures.append(px.bar(summary, x="call", y="error_rate", title="Error rate per agent action"))
    sec.tables.append(("Per agent action", summary.round(3)))
    return sec


def connectors(reader: _Reader, instance: dg.DagsterInstance | None) -> Section:
    import dagster as dg
    import pandas as pd
    import plotly.express as px

    sec = Section("connectors", "Connector requests and rate limiting")
    rows = []
    if instance is not None:
        for source, asset in CONNECTOR_ASSETS.items():
            for rec in instance.fetch_materializations(dg.AssetKey(asset), limit=1000).records:
                md = rec.asset_materialization.metadata if rec.asset_materialization else {}
                if "requests" not in md:
                    continue
                rows.append(
                    {
                        "source": source,
                        "requests": md["requests"].value,
                        "http_429": md.get("http_429").value if md.get("http_429") else 0,
                        "retries": md.get("retries").value if md.get("retries") else 0,
                    }
                )
    df = pd.DataFrame(rows, columns=["source", "requests", "http_429", "retries"])
    sec.kpis["connector_requests"] = str(int(df["requests"].sum()) if len(df) else 0)
    sec.kpis["connector_429s"] = str(int(df["http_429"].sum()) if len(df) else 0)
    if len(df):
        totals = df.groupby("source")[["requests", "http_429", "retries"]].sum().reset_index()
        long = totals.melt(id_vars="source", var_name="kind", value_name="count")
        sec.figures.append(
            px.bar(
                long, x="source", y="count", color="kind", barmode="group", title="Requests, 429s, retries"
            )
        )
    else:
        sec.notes.append("No connector sync has recorded request statistics yet.")
    quarantine = sorted(t for t in reader.tables if t.startswith("raw_") and t.endswith("_quarantine"))
    if quarantine:
        q = pd.DataFrame(
            [{"table": t, "rows": reader.warehouse.row_count(t)} for t in quarantine]  # type: ignore[union-attr]
        )
        sec.kpis["quarantined_rows"] = str(int(q["rows"].sum()))
        sec.figures.append(px.bar(q, x="table", y="rows", title="Quarantined rows per source table"))
    return sec


# ---- assembly ---------------------------------------------------------------------------------------
def collect(
    warehouse: Warehouse | None,
    instance: dg.DagsterInstance | None,
    model_store: ModelStore | None,
    now: datetime | None = None,
) -> list[Section]:
    now = now or datetime.now(UTC)
    reader = _Reader(warehouse)
    return [
        pipeline_health(instance, now),
        model_quality(model_store),
        churn_risk(reader),
        flows_and_actions(reader, instance),
        agent_metrics(reader),
        connectors(reader, instance),
    ]


_CSS = """
body{font-family:system-ui,sans-serif;margin:24px;color:#1f2933;background:#f7f9fb}
h1{margin-bottom:4px} section{background:#fff;border-radius:8px;padding:16px;margin:16px 0;
box-shadow:0 1px 3px rgba(0,0,0,.1)} .kpis{display:flex;flex-wrap:wrap;gap:12px}
.kpi{border:1px solid #d9e2ec;border-radius:6px;padding:8px 12px;min-width:140px}
.kpi b{display:block;font-size:22px} .kpi span{font-size:12px;color:#52606d}
.note{color:#8a6d3b} table{border-collapse:collapse;font-size:12px} td,th{border:1px solid #d9e2ec;padding:3px 6px}
"""


def render(sections: list[Section], generated_at: datetime | None = None) -> str:
    from plotly.offline import get_plotlyjs

    generated_at = generated_at or datetime.now(UTC)
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>RevOps performance dashboard</title>",
        f"<style>{_CSS}</style><script type='text/javascript'>{get_plotlyjs()}</script></head><body>",
        "<h1>RevOps performance dashboard</h1>",
        f"<p>Generated {html.escape(generated_at.isoformat(timespec='seconds'))}</p>",
    ]
    n = 0
    for sec in sections:
        parts.append(f"<section id='{sec.id}'><h2>{html.escape(sec.title)}</h2><div class='kpis'>")
        for name, value in sec.kpis.items():
            label = html.escape(name.replace("_", " "))
            parts.append(
                f"<div class='kpi'><b data-kpi='{html.escape(name)}'>{html.escape(value)}</b><span>{label}</span></div>"
            )
        parts.append("</div>")
        for note in sec.notes:
            parts.append(f"<p class='note'>{html.escape(note)}</p>")
        for fig in sec.figures:
            n += 1
            fig.update_layout(margin={"t": 50, "b": 40, "l": 50, "r": 20})
            if fig.layout.height is None:
                fig.update_layout(height=360)
            parts.append(
                fig.to_html(
                    full_html=False, include_plotlyjs=False, div_id=f"chart-{n}", config={"staticPlot": True}
                )
            )
        for caption, df in sec.tables:
            parts.append(f"<h3>{html.escape(caption)}</h3>{df.to_html(index=False, na_rep='')}")
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def build_dashboard(
    out: Path | str,
    warehouse: Warehouse | None,
    instance: dg.DagsterInstance | None,
    model_store: ModelStore | None,
) -> tuple[Path, dict[str, str]]:
    """Write the report to ``out``; returns its path and every headline number (for asset metadata)."""
    sections = collect(warehouse, instance, model_store)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(render(sections), encoding="utf-8")
    tmp.replace(out)
    kpis = {k: v for sec in sections for k, v in sec.kpis.items()}
    kpis["charts"] = str(sum(len(s.figures) for s in sections))
    return out, kpis
