"""Training-data assets: classification sets and decision-model examples, labelled through the
knowledge-base taxonomies, written to the warehouse with lineage to their sources.

The derivations live in :mod:`revops_pipelines.kb.training` (free of Dagster, unit-tested); these
assets read the sources, call them and write the result. Each table is rebuilt in full on every run
(``replace_table``): it is derived entirely from its sources, so a source row deleted upstream — or a
label changed by a taxonomy edit — must not survive in the training data, which a merge would allow.
"""

import dagster as dg
from pydantic import Field

from revops_pipelines.checks import combine_checks, sql_check
from revops_pipelines.kb.resource import KnowledgeBaseResource
from revops_pipelines.kb.training import CALL_TOPICS, DECISION_EXAMPLES, REVENUE_EVENTS, TICKETS
from revops_pipelines.raw import merge_metadata, table_asset
from revops_pipelines.run_config import RunConfig
from revops_pipelines.warehouse import Warehouse

GROUP = "training_data"
TAXONOMY_LABELLED = [TICKETS.name, CALL_TOPICS.name, REVENUE_EVENTS.name, DECISION_EXAMPLES.name]


class SplitConfig(RunConfig):
    test_fraction: float = Field(default=0.2, ge=0, lt=1, description="Latest share of rows used as test.")
    valid_fraction: float = Field(
        default=0.1, ge=0, lt=1, description="Share before the test rows used as validation."
    )


def _taxonomies(knowledge_base: KnowledgeBaseResource):
    from revops_pipelines.kb.taxonomy import load_taxonomies

    return load_taxonomies(knowledge_base.root() / "taxonomies")


def _result(result, notes: dict, extra: dict | None = None) -> dg.MaterializeResult:
    meta = {**merge_metadata(result)}
    for k, v in notes.items():
        meta[k] = dg.MetadataValue.json(v) if isinstance(v, dict | list) else v
    meta.update(extra or {})
    return dg.MaterializeResult(metadata=meta)


@table_asset(
    TICKETS,
    kinds={"python"},
    deps=["raw_sf_cases", "kb_content"],
    description=TICKETS.description + " Text = subject + description; time-based train/valid/test split.",
)
def training_ticket_labels(
    config: SplitConfig, knowledge_base: KnowledgeBaseResource, warehouse: Warehouse
) -> dg.MaterializeResult:
    from revops_pipelines.kb.training import ticket_examples

    cases = warehouse.query(
        "SELECT case_id, account_id, created_at, subject, description, type, priority, product_feature "
        "FROM raw_sf_cases WHERE NOT is_deleted"
    )
    df, notes = ticket_examples(
        cases, _taxonomies(knowledge_base)["product_features"],
        test_fraction=config.test_fraction, valid_fraction=config.valid_fraction,
    )  # fmt: skip
    return _result(warehouse.replace_table(TICKETS, df), notes)


@table_asset(
    CALL_TOPICS,
    kinds={"python"},
    deps=["raw_gong_calls", "raw_gong_transcripts", "kb_content"],
    description=CALL_TOPICS.description + " Text = title, brief, key points and transcript.",
)
def training_call_topics(
    config: SplitConfig, knowledge_base: KnowledgeBaseResource, warehouse: Warehouse
) -> dg.MaterializeResult:
    from revops_pipelines.kb.training import call_topic_examples

    calls = warehouse.query(
        "SELECT call_id, account_id, started, purpose, title, brief, key_points, topics FROM raw_gong_calls"
    )
    transcripts = warehouse.query("SELECT call_id, seq, text FROM raw_gong_transcripts")
    df, notes = call_topic_examples(
        calls, transcripts, _taxonomies(knowledge_base)["call_topics"],
        test_fraction=config.test_fraction, valid_fraction=config.valid_fraction,
    )  # fmt: skip
    return _result(warehouse.replace_table(CALL_TOPICS, df), notes)


@table_asset(
    REVENUE_EVENTS,
    kinds={"python"},
    deps=["raw_sf_opportunities", "raw_billing_invoices", "raw_sf_accounts", "kb_content"],
)
def training_revenue_events(
    config: SplitConfig, knowledge_base: KnowledgeBaseResource, warehouse: Warehouse
) -> dg.MaterializeResult:
    from revops_pipelines.kb.training import revenue_events

    opps = warehouse.query(
        "SELECT opportunity_id, account_id, type, stage_name, amount, close_date, is_closed, is_won, is_deleted "
        "FROM raw_sf_opportunities"
    )
    invoices = warehouse.query(
        "SELECT invoice_id, account_id, amount_due, status, period_start, due_date FROM raw_billing_invoices"
    )
    accounts = warehouse.query(
        "SELECT account_id, seats, arr, billing_frequency FROM raw_sf_accounts WHERE NOT is_deleted"
    )
    df, notes = revenue_events(
        opps, invoices, accounts, _taxonomies(knowledge_base)["revenue_events"],
        test_fraction=config.test_fraction, valid_fraction=config.valid_fraction,
    )  # fmt: skip
    return _result(warehouse.replace_table(REVENUE_EVENTS, df), notes)


class DecisionConfig(SplitConfig):
    action_window_days: int = Field(
        default=30, ge=1, le=180, description="Days after a snapshot in which the next action counts."
    )
    horizon_days: int = Field(
        default=90, ge=7, le=730, description="Days after a snapshot in which outcomes count."
    )


@table_asset(
    DECISION_EXAMPLES,
    kinds={"python"},
    deps=["account_features", "raw_sf_accounts", "raw_gong_calls", "raw_sf_opportunities", "kb_content"],
)
def training_decision_examples(
    config: DecisionConfig, knowledge_base: KnowledgeBaseResource, warehouse: Warehouse
) -> dg.MaterializeResult:
    from revops_pipelines.kb.training import decision_examples

    taxonomies = _taxonomies(knowledge_base)
    features = warehouse.query("SELECT * FROM account_features")
    accounts = warehouse.query("SELECT account_id, employees FROM raw_sf_accounts WHERE NOT is_deleted")
    calls = warehouse.query("SELECT call_id, account_id, started, purpose FROM raw_gong_calls")
    renewals = warehouse.query(
        "SELECT account_id, close_date, is_closed, is_won FROM raw_sf_opportunities "
        "WHERE type = 'Renewal' AND NOT is_deleted"
    )
    df, notes = decision_examples(
        features, accounts, calls, renewals, taxonomies["customer_segmentation"], taxonomies["cs_actions"],
        action_window_days=config.action_window_days, horizon_days=config.horizon_days,
        test_fraction=config.test_fraction, valid_fraction=config.valid_fraction,
    )  # fmt: skip
    return _result(warehouse.replace_table(DECISION_EXAMPLES, df), notes)


def _label_check(asset: str, column: str) -> dg.AssetChecksDefinition:
    return sql_check(
        asset,
        f"{asset}_{column}_in_taxonomy",
        f"SELECT COUNT(*) FROM {asset} t WHERE t.{column} IS NOT NULL AND NOT EXISTS "
        f"(SELECT 1 FROM kb_taxonomy_nodes n WHERE n.node_id = t.{column})",
        description=f"every {asset}.{column} is a node of a knowledge-base taxonomy (kb_taxonomy_nodes)",
        blocking=True,
        additional_deps=("kb_taxonomy_nodes",),
    )


ASSETS = [training_ticket_labels, training_call_topics, training_revenue_events, training_decision_examples]
CHECKS = combine_checks(
    [
        _label_check(TICKETS.name, "label"),
        _label_check(CALL_TOPICS.name, "primary_topic"),
        _label_check(REVENUE_EVENTS.name, "label"),
        _label_check(DECISION_EXAMPLES.name, "action"),
        _label_check(DECISION_EXAMPLES.name, "situation"),
        sql_check(
            DECISION_EXAMPLES.name,
            "training_decision_examples_action_after_snapshot",
            "SELECT COUNT(*) FROM training_decision_examples "
            "WHERE action_date IS NOT NULL AND action_date <= snapshot_date",
            description="the recorded action happened after the situation's snapshot (no leakage)",
            blocking=True,
        ),
    ],
    name="kb_training",
)
