"""assets/quality.py: every check targets a real asset, blocking where the churn model reads."""

import dagster as dg

from assets import features, gong, hubspot, product, quality, salesforce, sample_world
from revops_pipelines.sources import SampleWorldSource
from revops_pipelines.warehouse.duckdb import DuckDBWarehouse


def test_quality_checks_resolve_against_the_asset_graph():
    assets = [a for mod in (salesforce, hubspot, gong, product, features) for a in mod.ASSETS]
    assets += [sample_world.sample_world, sample_world.sample_oracle]
    specs_only = [spec for a in assets for spec in a.specs]  # the graph without the assets' own resources
    graph = dg.Definitions(
        assets=specs_only,
        asset_checks=quality.CHECKS,
        resources={
            "warehouse": DuckDBWarehouse(path=":memory:"),
            "sample_world": SampleWorldSource(path="/nonexistent"),
        },
    ).resolve_asset_graph()
    specs = {k.name: graph.get_check_spec(k) for k in graph.asset_check_keys}
    names = {c.name for chk in quality.CHECKS for c in chk.check_specs}
    assert names <= set(specs)
    assert specs["account_features_partition_anomaly"].blocking
    assert specs["raw_sf_cases_priority_accepted_values"].blocking
    assert {
        "raw_sf_accounts_freshness",
        "raw_product_usage_partition_anomaly",
        "raw_sf_accounts_schema_drift",
        "account_features_schema_drift",
        "raw_sf_accounts_source_schema",
        "raw_gong_calls_source_schema",
    } <= names
    assert not specs["raw_hs_companies_source_schema"].blocking
