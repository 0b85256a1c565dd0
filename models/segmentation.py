"""Customer segmentation at the latest snapshot: the customer_segmentation taxonomy's rules (size,
plan, behaviour) plus a behavioural clustering that is stable across runs (fixed seed, and clusters
numbered by their mean utilisation, so cluster 0 is always the least engaged)."""

import dagster as dg
from pydantic import Field

from revops_pipelines.kb.resource import KnowledgeBaseResource
from revops_pipelines.lazy import np, pd
from revops_pipelines.raw import column_schema, merge_metadata
from revops_pipelines.run_config import RunConfig
from revops_pipelines.signature import pinned
from revops_pipelines.warehouse import Warehouse, table

CLUSTER_FEATURES = [
    "util_30d",
    "usage_trend",
    "sessions_30d",
    "features_used_30d",
    "days_since_active",
    "tickets_90d",
    "sentiment_90d",
]

SEGMENTS = table(
    "account_segments",
    [
        ("account_id", "TEXT"),
        ("snapshot_date", "DATE"),
        ("size_segment", "TEXT"),
        ("plan_segment", "TEXT"),
        ("behaviour_segments", "TEXT", False),
        ("cluster", "INTEGER", False),
        ("cluster_name", "TEXT", False),
    ],
    keys=("account_id", "snapshot_date"),
    primary_index=("snapshot_date", "account_id"),
    description="Segments per customer at the latest snapshot: taxonomy rules (size, plan, behaviour as a JSON "
    "list of node ids) and a stable behavioural cluster.",
    group="models",
)


class SegmentationConfig(RunConfig):
    clusters: int = Field(default=4, ge=2, le=12)
    seed: int = 7


def rule_record(row) -> dict:
    """The fields the taxonomy's rules read, from one feature row joined to the account."""

    def num(v):
        return None if v is None or pd.isna(v) else float(v)

    trend = num(row.get("usage_trend"))
    return {
        "employee_count": num(row.get("employees")),
        "plan": None if pd.isna(row.get("plan")) else str(row.get("plan")).lower(),
        "active_user_ratio": num(row.get("util_30d")),
        "seat_utilization": num(row.get("util_30d")),
        "usage_trend_90d": None if trend is None else trend - 1.0,  # ratio last 30d / prior 60d -> change
        "days_since_last_login": num(row.get("days_since_active")),
    }


def clusters(df, k: int, seed: int) -> tuple:
    """(cluster per row, centroid table); cluster ids ordered by centroid utilisation."""
    from sklearn.cluster import KMeans

    x = df[CLUSTER_FEATURES].apply(pd.to_numeric, errors="coerce").astype("float64")
    x = x.fillna(x.median()).fillna(0.0)
    z = (x - x.mean()) / x.std(ddof=0).replace(0, 1)
    k = max(1, min(k, len(z)))
    km = KMeans(n_clusters=k, random_state=seed, n_init=10).fit(z.to_numpy())
    centroids = pd.DataFrame(km.cluster_centers_, columns=CLUSTER_FEATURES)
    order = np.argsort(centroids["util_30d"].to_numpy(), kind="stable")
    rank = np.empty(k, dtype=int)
    rank[order] = np.arange(k)
    return rank[km.labels_], centroids.iloc[order].reset_index(drop=True)


def cluster_names(centroids) -> list[str]:
    names = []
    for i, c in centroids.iterrows():
        level = "low" if c["util_30d"] < -0.5 else "high" if c["util_30d"] > 0.5 else "mid"
        trend = "declining" if c["usage_trend"] < -0.5 else "growing" if c["usage_trend"] > 0.5 else "steady"
        names.append(f"c{i}: {level} usage, {trend}")
    return names


@dg.asset(
    group_name="models",
    kinds={"scikitlearn"},
    deps=["account_features", "raw_sf_accounts"],
    description=SEGMENTS.description,
    metadata={"dagster/column_schema": column_schema(SEGMENTS)},
)
@pinned
def account_segments(
    config: SegmentationConfig, warehouse: Warehouse, knowledge_base: KnowledgeBaseResource
) -> dg.MaterializeResult:
    import json

    from models.classification import _taxonomy

    df = warehouse.query(
        "SELECT f.*, a.employees FROM account_features f JOIN raw_sf_accounts a ON a.account_id = f.account_id "
        "WHERE f.snapshot_date = (SELECT MAX(snapshot_date) FROM account_features) ORDER BY f.account_id"
    )
    if df.empty:
        raise dg.Failure("account_features is empty: materialise its partitions first")
    tax = _taxonomy(knowledge_base, "customer_segmentation")
    sizes = {n.id for n in tax.roots() if n.rules}
    plans = {n.id for n in tax.children("segment.plan")}
    behaviours = {n.id for n in tax.children("segment.behaviour")}
    matched = [tax.classify(rule_record(r)) for r in df.to_dict("records")]
    label, centroids = clusters(df, config.clusters, config.seed)
    names = cluster_names(centroids)
    out = pd.DataFrame(
        {
            "account_id": df["account_id"],
            "snapshot_date": df["snapshot_date"],
            "size_segment": [next((m for m in ms if m in sizes), None) for ms in matched],
            "plan_segment": [next((m for m in ms if m in plans), None) for ms in matched],
            "behaviour_segments": [json.dumps([m for m in ms if m in behaviours]) for ms in matched],
            "cluster": label.astype("int64"),
            "cluster_name": [names[i] for i in label],
        }
    )
    result = warehouse.merge(SEGMENTS, out)
    return dg.MaterializeResult(
        metadata={
            **merge_metadata(result),
            "snapshot_date": str(df["snapshot_date"].iloc[0])[:10],
            "size_segments": dg.MetadataValue.json(
                out["size_segment"].fillna("none").value_counts().to_dict()
            ),
            "clusters": dg.MetadataValue.json(out["cluster_name"].value_counts().sort_index().to_dict()),
            "behaviour_segments": dg.MetadataValue.json(
                pd.Series([b for s in out["behaviour_segments"] for b in json.loads(s)])
                .value_counts()
                .to_dict()
            ),
        }
    )


ASSETS = [account_segments]
TABLES = [SEGMENTS]
