"""Freshness policies: every raw source table and feature table carries one in the definitions
(in addition to the data-timestamp freshness checks); an asset's own policy is never replaced."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg

from assets import quality


def test_raw_and_feature_assets_carry_freshness_policies(runtime_env):
    from revops_pipelines.definitions import build_definitions

    graph = build_definitions().resolve_asset_graph()
    policies = {k.to_user_string(): graph.get(k).freshness_policy for k in graph.get_all_asset_keys()}
    groups = {k.to_user_string(): graph.get(k).group_name for k in graph.get_all_asset_keys()}
    raw = [
        k
        for k, g in groups.items()
        if g.startswith("raw_") and g != "raw_sample" and not k.endswith("_quarantine")
    ]
    assert {
        "raw_sf_accounts",
        "raw_gong_calls",
        "raw_hs_deals",
        "raw_product_usage",
        "raw_billing_invoices",
    } <= set(raw)
    for key in raw:
        assert policies[key] == quality.RAW_FRESHNESS, key
    for key in ("account_features", "gong_call_sentiment"):
        assert policies[key] == quality.FEATURE_FRESHNESS, key
    assert policies["churn_model"] is None and policies["raw_sf_quarantine"] is None
    assert quality.RAW_FRESHNESS.fail_window.to_timedelta() == timedelta(days=2)
    assert quality.RAW_FRESHNESS.warn_window.to_timedelta() < quality.RAW_FRESHNESS.fail_window.to_timedelta()


def test_an_assets_own_policy_wins():
    own = dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=3))

    @dg.asset(group_name="raw_vendor", freshness_policy=own)
    def raw_vendor_table() -> None: ...

    @dg.asset(group_name="raw_vendor")
    def raw_vendor_other() -> None: ...

    @dg.asset(group_name="models")
    def some_model() -> None: ...

    mapped = {
        a.key.to_user_string(): a
        for a in quality.with_freshness_policies([raw_vendor_table, raw_vendor_other, some_model])
    }
    policy = lambda name: next(iter(mapped[name].specs)).freshness_policy  # noqa: E731
    assert policy("raw_vendor_table") == own
    assert policy("raw_vendor_other") == quality.RAW_FRESHNESS
    assert policy("some_model") is None
