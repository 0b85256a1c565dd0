"""The asset factories of revops_pipelines.raw: the vendor syncs (sync_asset, one multi-asset per source over
its raw tables with the blocking checkpoint_fresh check) and the table-writing assets (table_asset)."""

import dagster as dg
import pytest

from assets import gong, hubspot, salesforce
from revops_pipelines.raw import CHECKPOINT_CHECK

SYNCS = [
    (gong, "gong", gong.CALLS),
    (hubspot, "hubspot", hubspot.COMPANIES),
    (salesforce, "salesforce", salesforce.ACCOUNTS),
]


@pytest.mark.parametrize(("module", "source", "checked"), SYNCS)
def test_a_sync_is_one_multi_asset_over_its_raw_tables(module, source, checked):
    (sync,) = module.ASSETS
    assert sync.node_def.name == f"{source}_sync"
    assert sorted(k.to_user_string() for k in sync.keys) == sorted(t.name for t in module.TABLES)
    for spec in sync.specs:
        assert spec.group_name == f"raw_{source}" and spec.kinds == {source}
        assert spec.description
        assert set(spec.metadata) == {"dagster/column_schema", "merge_keys"}
    (check,) = sync.check_specs
    assert (check.name, check.asset_key, check.blocking) == (
        CHECKPOINT_CHECK,
        dg.AssetKey(checked.name),
        True,
    )


def test_gong_is_partitioned_by_day_and_backfills_in_one_run():
    (sync,) = gong.ASSETS
    assert sync.partitions_def == gong.DAILY
    assert sync.backfill_policy == dg.BackfillPolicy.single_run()
    deps = {
        spec.key.to_user_string(): {d.asset_key.to_user_string() for d in spec.deps} for spec in sync.specs
    }
    assert deps == {"raw_gong_calls": {"sample_world"}, **{t.name: set() for t in gong.TABLES[1:]}}
    for module in (hubspot, salesforce):
        assert module.ASSETS[0].partitions_def is None
        assert all(
            {d.asset_key.to_user_string() for d in s.deps} == {"sample_world"} for s in module.ASSETS[0].specs
        )


def test_a_table_asset_is_named_grouped_and_described_after_its_table():
    from kb_assets import training
    from models import classification
    from revops_pipelines.kb import training as kb_training

    for assets, tables, kinds in (
        (training.ASSETS, kb_training.TABLES, {"python"}),
        (classification.ASSETS, classification.TABLES, {"scikitlearn"}),
    ):
        for asset, schema in zip(assets, tables, strict=True):
            (spec,) = asset.specs
            assert spec.key == dg.AssetKey(schema.name) and spec.group_name == schema.group
            assert spec.kinds == kinds and spec.description.startswith(schema.description)
            columns = [c.name for c in spec.metadata["dagster/column_schema"].columns]
            assert columns == schema.column_names
