"""End-to-end run on the configured stack: every asset (all snapshot partitions in one run), its
checks, then the churn-prevention flow job — and a summary a person can read.

Runs use a persistent Dagster instance under ``$REVOPS_HOME/dagster_home`` (unless ``DAGSTER_HOME``
is set), so ``make dev`` afterwards shows the same materialisations and check results in the UI.
"""

from __future__ import annotations

import os
from typing import Any

import dagster as dg

from revops_pipelines.settings import load_settings

FLOW_JOB = "flow_churn_prevention"
# the other standard flows run after churn prevention (their selections leave its accounts to it)
STANDARD_FLOW_JOBS = ("flow_onboarding", "flow_renewal_management")
# the full event log is in the instance (and the UI); the console shows warnings and the summary
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _instance() -> dg.DagsterInstance:
    settings = load_settings()
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        home = str(settings.home / "dagster_home")
        os.environ["DAGSTER_HOME"] = home
    os.makedirs(home, exist_ok=True)  # a DAGSTER_HOME that does not exist yet is created, not an error
    cfg = os.path.join(home, "dagster.yaml")
    if not os.path.exists(cfg):  # a local instance: no telemetry, nothing leaves the machine
        with open(cfg, "w") as fh:
            fh.write("telemetry:\n  enabled: false\n")
    return dg.DagsterInstance.get()


def run_demo() -> dict[str, Any]:
    from assets.features import SNAPSHOTS
    from revops_pipelines.definitions import build_definitions

    instance = _instance()
    defs = build_definitions()
    keys = SNAPSHOTS.get_partition_keys()
    from revops_pipelines.warehouse.migrations import migrate

    migrate(defs.resources["warehouse"])  # an incompatible schema change stops here, before any job
    checks: list[dict[str, Any]] = []
    steps = [
        ("ingest_sample_world", {}),
        (
            "build_features",
            {"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]},
        ),
        ("train_and_score", {}),
        ("refresh_knowledge_base", {}),
        ("build_training_data", {}),
        ("classify_and_segment", {}),
        (FLOW_JOB, {}),
        ("evaluate_decisions", {}),
        *[(job, {}) for job in STANDARD_FLOW_JOBS],
        ("build_dashboard", {}),
    ]
    ok = True
    for job_name, tags in steps:
        result = defs.resolve_job_def(job_name).execute_in_process(
            instance=instance, tags=tags, raise_on_error=False, run_config=QUIET
        )
        for ev in result.get_asset_check_evaluations():
            checks.append(
                {
                    "asset": ev.asset_key.to_user_string(),
                    "check": ev.check_name,
                    "passed": ev.passed,
                    "severity": ev.severity.value,
                }
            )
        if not result.success:
            ok = False
            failed = [e.step_key for e in result.all_events if e.is_step_failure]
            print(f"job {job_name} failed at {failed}")
            break
    summary = _summarise(defs, instance, checks)
    summary["ok"] = ok and all(c["passed"] for c in checks)
    return summary


def _summarise(defs: dg.Definitions, instance: dg.DagsterInstance, checks: list[dict]) -> dict[str, Any]:
    wh = defs.resources["warehouse"]
    tables = {t: wh.row_count(t) for t in wh.table_names()}
    model: dict[str, Any] = {}
    mat = instance.get_latest_materialization_event(dg.AssetKey("churn_model"))
    if mat and mat.asset_materialization:
        md = mat.asset_materialization.metadata
        for k in ("version", "auc", "oracle_auc", "auc_over_oracle", "pr_auc", "brier", "precision_at_k"):
            if k in md:
                model[k] = md[k].value
    quality: dict[str, Any] = {}
    mat = instance.get_latest_materialization_event(dg.AssetKey("decision_quality_report"))
    if mat and mat.asset_materialization:
        quality = {k: v.value for k, v in mat.asset_materialization.metadata.items() if k != "detail"}
    dashboard = None
    mat = instance.get_latest_materialization_event(dg.AssetKey("performance_dashboard"))
    if mat and mat.asset_materialization and "path" in mat.asset_materialization.metadata:
        dashboard = mat.asset_materialization.metadata["path"].value
    decisions = actions = None
    if "agent_decisions" in tables:
        decisions = wh.query(
            "SELECT priority, COUNT(*) AS n FROM agent_decisions GROUP BY priority ORDER BY priority"
        )
    if "action_log" in tables:
        actions = wh.query(
            "SELECT action_type, status, COUNT(*) AS n FROM action_log GROUP BY 1, 2 ORDER BY 1, 2"
        )
    return {
        "warehouse": wh.dialect,
        "tables": tables,
        "checks": checks,
        "model": model,
        "decision_quality": quality,
        "dashboard": dashboard,
        "decisions": {}
        if decisions is None
        else dict(zip(decisions["priority"], decisions["n"].astype(int), strict=True)),
        "actions": [] if actions is None else actions.to_dict("records"),
        "insights": {}
        if "agent_insights" not in tables
        else {
            str(r.status): int(r.n)
            for r in wh.query(
                "SELECT status, COUNT(*) AS n FROM agent_insights GROUP BY status ORDER BY status"
            ).itertuples()
        },
    }


def print_summary(s: dict[str, Any]) -> None:
    print(f"\n== RevOps demo summary ({s['warehouse']}) ==")
    print("\nRows per table:")
    for t, n in sorted(s["tables"].items()):
        print(f"  {t:<28} {n:>10,}")
    passed = sum(c["passed"] for c in s["checks"])
    print(f"\nAsset checks: {passed}/{len(s['checks'])} passed")
    for c in s["checks"]:
        if not c["passed"]:
            print(f"  FAILED {c['asset']}:{c['check']} ({c['severity']})")
    m = s["model"]
    if m:
        line = f"\nChurn model {m.get('version')}: AUC {m.get('auc', float('nan')):.3f}"
        if "oracle_auc" in m:
            line += f"  vs oracle AUC {m['oracle_auc']:.3f}  (ratio {m['auc_over_oracle']:.3f})"
        print(line)
    q = s.get("decision_quality") or {}
    if q:
        print(
            f"\nPolicy top-{q['decision_quality_k']} precision {q['policy_precision_at_k']:.3f} vs oracle "
            f"{q['oracle_precision_at_k']:.3f} (ratio {q['precision_at_k_vs_oracle']:.2f}); ARR-weighted recall "
            f"{q['policy_arr_recall']:.3f} vs oracle {q['oracle_arr_recall']:.3f}"
        )
        if "policy_expected_precision_at_k" in q:
            print(
                f"  expected precision (true probabilities) {q['policy_expected_precision_at_k']:.3f} vs "
                f"oracle {q['oracle_expected_precision_at_k']:.3f} (ratio "
                f"{q['expected_precision_at_k_vs_oracle']:.2f}; model alone "
                f"{q['model_expected_precision_at_k']:.3f}); worst ratio over k "
                f"{q['worst_ratio_over_k']:.2f} — goal 0.9 "
                + ("met" if q.get("decision_quality_goal_met") else "not met")
            )
        if "informed_ceiling_vs_oracle" in q:
            print(
                f"  informed ceiling: {q['informed_ceiling_vs_oracle']:.2f} of the oracle at "
                f"k={q['decision_quality_k']} for the exact probability given the latent state up to the "
                "month before the snapshot (reported, not graded)"
            )
    print(f"\nDecisions made: {sum(s['decisions'].values())} {s['decisions']}")
    print("Actions taken:")
    for a in s["actions"]:
        print(f"  {a['action_type']:<16} {a['status']:<18} {a['n']}")
    if s.get("insights"):
        print(f"Insights by status: {s['insights']}")
    if s.get("dashboard"):
        print(f"\nPerformance dashboard: {s['dashboard']}")
    print("\nResult:", "OK" if s.get("ok") else "FAILED")
