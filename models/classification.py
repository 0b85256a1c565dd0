"""Taxonomy classifiers as assets: the product feature a support ticket is about, and the topics of
each customer call. Class labels are the knowledge-base taxonomy node ids (``product_features``,
``call_topics``); each model is registered in the model store with its per-class precision and
recall on the later rows (time split), and every prediction below the confidence threshold is
``unknown`` rather than a guess. Results are written to warehouse tables the agents read.
"""

import dagster as dg
from pydantic import Field

from revops_pipelines.kb.resource import KnowledgeBaseResource
from revops_pipelines.lazy import pd
from revops_pipelines.model_store import ModelStore
from revops_pipelines.raw import merge_metadata, table_asset
from revops_pipelines.run_config import RunConfig
from revops_pipelines.warehouse import Warehouse, table

TICKET_MODEL = "ticket_product_feature_clf"
CALL_TOPIC_MODEL = "call_topic_clf"
REVENUE_EVENT_MODEL = "revenue_event_clf"
REVENUE_NUMERIC = ["previous_arr", "current_arr", "arr_change", "seat_change"]
REVENUE_CATEGORICAL = ["contract_event", "plan_change", "churn_reason", "source"]


class TextClassifierConfig(RunConfig):
    threshold: float = Field(
        default=0.5, gt=0, lt=1, description="Below this top-class probability the outcome is 'unknown'."
    )
    holdout_share: float = Field(default=0.25, gt=0, lt=1, description="Latest share of rows held out.")
    seed: int = 7


TICKETS = table(
    "ticket_product_features",
    [
        ("case_id", "TEXT"),
        ("account_id", "TEXT"),
        ("product_feature_id", "TEXT", False),
        ("confidence", "DOUBLE", False),
        ("model_version", "TEXT", False),
    ],
    keys=("case_id",),
    description="Product feature (product_features taxonomy node, or 'unknown') of each support ticket.",
    group="models",
)

CALL_TOPICS = table(
    "call_topic_classifications",
    [
        ("call_id", "TEXT"),
        ("topic_id", "TEXT"),
        ("account_id", "TEXT"),
        ("sentences", "INTEGER", False),
        ("share", "DOUBLE", False),
        ("model_version", "TEXT", False),
    ],
    keys=("call_id", "topic_id"),
    description="Topics (call_topics taxonomy nodes) of each call: sentences classified per topic and their share.",
    group="models",
)


REVENUE_EVENTS = table(
    "revenue_event_classifications",
    [
        ("event_id", "TEXT"),
        ("account_id", "TEXT", False),
        ("event_date", "DATE", False),
        ("revenue_event_id", "TEXT", False),
        ("confidence", "DOUBLE", False),
        ("model_version", "TEXT", False),
    ],
    keys=("event_id",),
    primary_index=("account_id", "event_date"),
    description="Category (revenue_events taxonomy node, or 'unknown') of each ARR movement.",
    group="models",
)


def _taxonomy(knowledge_base: KnowledgeBaseResource | None, name: str):
    """A taxonomy of the knowledge base in use: a tenant's overlay or content root included, the same
    one the training sets (kb_assets/training.py) label with; the shipped one without a resource."""
    from revops_pipelines.kb.documents import default_kb_root
    from revops_pipelines.kb.taxonomy import load_taxonomies

    root = knowledge_base.root() if knowledge_base is not None else default_kb_root()
    return load_taxonomies(root / "taxonomies")[name]


def _register(
    model_store: ModelStore, name: str, model, metrics: dict, config: TextClassifierConfig, fp: str
):
    from models.churn import _code_version

    return model_store.save(
        name,
        {"model.pkl": model.dumps()},
        {
            "kind": "text_classifier",
            "classes": model.classes,
            "params": {
                "threshold": config.threshold,
                "holdout_share": config.holdout_share,
                "seed": config.seed,
            },
            "metrics": metrics,
            "data_fingerprint": fp,
            "code_version": _code_version(),
        },
    )


def _metadata(metrics: dict, version: str, threshold: float) -> dict:
    from models.text_classifier import metrics_markdown

    return {
        "model_version": version,
        "threshold": threshold,
        "holdout_rows": metrics["rows"],
        "holdout_accuracy": metrics["accuracy"],
        "holdout_coverage": metrics["coverage"],
        "accuracy_when_known": metrics["accuracy_when_known"],
        "per_class": dg.MetadataValue.md(metrics_markdown(metrics)),
    }


@table_asset(
    TICKETS,
    kinds={"scikitlearn"},
    deps=["raw_sf_cases"],
    description=TICKETS.description
    + " Trained on the tickets' recorded feature, graded on the latest tickets.",
)
def ticket_product_features(
    config: TextClassifierConfig,
    warehouse: Warehouse,
    model_store: ModelStore,
    knowledge_base: KnowledgeBaseResource,
) -> dg.MaterializeResult:
    from models.churn_lib import fingerprint
    from models.text_classifier import UNKNOWN, fit_text_classifier
    from revops_pipelines.kb.training import TaxonomyLabels

    cases = warehouse.query(
        "SELECT case_id, account_id, subject || '. ' || COALESCE(description, '') AS text, product_feature, "
        "created_at FROM raw_sf_cases WHERE NOT is_deleted ORDER BY created_at, case_id"
    )
    labels = TaxonomyLabels(_taxonomy(knowledge_base, "product_features"), roots_only=True).series(
        cases["product_feature"]
    )
    labels = labels.fillna(UNKNOWN)
    model, metrics = fit_text_classifier(
        cases["text"],
        labels,
        cases["created_at"],
        threshold=config.threshold,
        holdout_share=config.holdout_share,
        seed=config.seed,
    )
    version = _register(
        model_store, TICKET_MODEL, model, metrics, config, fingerprint(cases[["case_id", "text"]])
    )
    pred, conf = model.predict(cases["text"])
    out = pd.DataFrame(
        {
            "case_id": cases["case_id"],
            "account_id": cases["account_id"],
            "product_feature_id": pred,
            "confidence": conf,
            "model_version": version,
        }
    )
    result = warehouse.replace_table(TICKETS, out)
    return dg.MaterializeResult(
        metadata={**merge_metadata(result), **_metadata(metrics, version, config.threshold)}
    )


@table_asset(
    CALL_TOPICS,
    kinds={"scikitlearn"},
    deps=["raw_gong_transcripts", "raw_gong_calls"],
    description=CALL_TOPICS.description + " Sentence classifier trained on Gong's topic spans; small talk is "
    "'unknown' and not counted.",
)
def call_topic_classifications(
    config: TextClassifierConfig,
    warehouse: Warehouse,
    model_store: ModelStore,
    knowledge_base: KnowledgeBaseResource,
) -> dg.MaterializeResult:
    from models.churn_lib import fingerprint
    from models.text_classifier import UNKNOWN, fit_text_classifier
    from revops_pipelines.kb.training import TaxonomyLabels

    rows = warehouse.query(
        "SELECT t.call_id, t.seq, t.text, t.topic, g.account_id, g.started FROM raw_gong_transcripts t "
        "JOIN raw_gong_calls g ON g.call_id = t.call_id ORDER BY g.started, t.call_id, t.seq"
    )
    labels = (
        TaxonomyLabels(_taxonomy(knowledge_base, "call_topics"), roots_only=True)
        .series(rows["topic"])
        .fillna(UNKNOWN)
    )
    model, metrics = fit_text_classifier(
        rows["text"],
        labels,
        rows["started"],
        threshold=config.threshold,
        holdout_share=config.holdout_share,
        seed=config.seed,
    )
    version = _register(
        model_store, CALL_TOPIC_MODEL, model, metrics, config, fingerprint(rows[["call_id", "seq", "text"]])
    )
    pred, _ = model.predict(rows["text"])
    rows["topic_id"] = pred
    known = rows[rows["topic_id"] != UNKNOWN]
    agg = (
        known.groupby(["call_id", "topic_id", "account_id"], as_index=False)
        .size()
        .rename(columns={"size": "sentences"})
    )
    agg["share"] = agg["sentences"] / agg.groupby("call_id")["sentences"].transform("sum")
    agg["model_version"] = version
    result = warehouse.replace_table(CALL_TOPICS, agg[CALL_TOPICS.column_names])
    return dg.MaterializeResult(
        metadata={**merge_metadata(result), **_metadata(metrics, version, config.threshold)}
    )


@table_asset(
    REVENUE_EVENTS,
    kinds={"scikitlearn"},
    deps=["training_revenue_events"],
    description=REVENUE_EVENTS.description + " Trained on the knowledge base's labelled ARR movements "
    "(training_revenue_events: its 'train'/'valid' rows), graded on its 'test' rows.",
)
def revenue_event_classifications(
    config: TextClassifierConfig,
    warehouse: Warehouse,
    model_store: ModelStore,
    knowledge_base: KnowledgeBaseResource,
) -> dg.MaterializeResult:
    from models.churn_lib import fingerprint
    from models.text_classifier import UNKNOWN, fit_record_classifier

    df = warehouse.query("SELECT * FROM training_revenue_events ORDER BY event_date, event_id")
    known = set(_taxonomy(knowledge_base, "revenue_events").nodes)
    labels = df["label"].where(df["label"].isin(known), UNKNOWN).astype(str)
    model, metrics = fit_record_classifier(
        df, labels, df["split"] != "test", numeric=REVENUE_NUMERIC, categorical=REVENUE_CATEGORICAL,
        threshold=config.threshold, seed=config.seed,
    )  # fmt: skip
    fp = fingerprint(df[["event_id", *REVENUE_NUMERIC, "label"]])
    version = _register(model_store, REVENUE_EVENT_MODEL, model, metrics, config, fp)
    pred, conf = model.predict(df)
    out = pd.DataFrame(
        {"event_id": df["event_id"], "account_id": df["account_id"], "event_date": df["event_date"],
         "revenue_event_id": pred, "confidence": conf, "model_version": version}
    )  # fmt: skip
    result = warehouse.replace_table(REVENUE_EVENTS, out)
    return dg.MaterializeResult(
        metadata={**merge_metadata(result), **_metadata(metrics, version, config.threshold)}
    )


ASSETS = [ticket_product_features, call_topic_classifications, revenue_event_classifications]
TABLES = [TICKETS, CALL_TOPICS, REVENUE_EVENTS]
