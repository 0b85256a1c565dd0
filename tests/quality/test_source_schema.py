"""Source schema drift: each raw source against its recorded schema — a new field warns, a removed
field or a changed type fails with the diff in the metadata; the recorded schema lives in the
warehouse (both backends) and changes only when a drift is accepted."""

from __future__ import annotations

import json

import dagster as dg
import pandas as pd
import pytest

from assets import quality
from revops_pipelines.sources import SampleWorldSource
from revops_pipelines.warehouse.source_schema import accept, compare, infer_schema, observe, recorded

ACCOUNTS = [
    {
        "attributes": {"type": "Account", "url": "/x/1"},
        "Id": "001A1",
        "Name": "Acme",
        "Seats__c": 20,
        "ARR__c": 1000.5,
        "Churn_Date__c": None,
        "IsDeleted": False,
    },
    {
        "attributes": {"type": "Account", "url": "/x/2"},
        "Id": "001A2",
        "Name": "Beta",
        "Seats__c": 35,
        "ARR__c": 2000,
        "Churn_Date__c": "2025-03-01",
        "IsDeleted": False,
    },
]


def write_jsonl(root, relpath: str, records: list[dict]) -> None:
    f = root / relpath
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text("".join(json.dumps(r) + "\n" for r in records))


def test_infer_schema_flattens_and_types_fields():
    s = infer_schema(ACCOUNTS)
    assert s["attributes.type"] == "string" and s["Seats__c"] == "integer" and s["IsDeleted"] == "boolean"
    assert s["ARR__c"] == "number"  # 1000.5 and 2000 together
    assert s["Churn_Date__c"] == "string"  # null in one record, a string in the other
    assert infer_schema([{"a": None}]) == {"a": "null"}
    with pytest.raises(ValueError, match="JSON object"):
        infer_schema([["not", "a", "record"]])


def test_compare_names_added_removed_and_retyped_fields():
    base = {"Id": "string", "Seats__c": "integer", "ARR__c": "number", "Churn_Date__c": "string"}
    now = {
        "Id": "string",
        "Seats__c": "string",
        "ARR__c": "integer",
        "Churn_Date__c": "null",
        "Tier__c": "string",
    }
    d = compare(base, {k: v for k, v in now.items()})
    assert d.added == {"Tier__c": "string"}
    assert d.changed == {
        "Seats__c": ("integer", "string")
    }  # whole numbers in a number field, nulls: no change
    assert d.removed == {} and d.breaking
    d = compare(base, {"Id": "string", "Seats__c": "integer", "ARR__c": "number"})
    assert d.removed == {"Churn_Date__c": "string"} and d.breaking
    assert not compare(base, dict(base))


def test_recorded_schema_round_trips_in_the_warehouse(warehouse):
    first = observe(warehouse, "salesforce/Account.jsonl", infer_schema(ACCOUNTS))
    assert first.baseline_recorded and not first.diff
    assert recorded(warehouse, "salesforce/Account.jsonl") == infer_schema(ACCOUNTS)
    drifted = {**infer_schema(ACCOUNTS), "Tier__c": "string"}
    again = observe(warehouse, "salesforce/Account.jsonl", drifted)
    assert not again.baseline_recorded and again.diff.added == {"Tier__c": "string"}
    assert "Tier__c" not in recorded(warehouse, "salesforce/Account.jsonl")  # not accepted yet
    accept(warehouse, "salesforce/Account.jsonl", drifted)
    assert not observe(warehouse, "salesforce/Account.jsonl", drifted).diff
    assert recorded(warehouse, "other/source.jsonl") == {}


def test_the_check_warns_on_a_new_field_and_fails_on_removed_or_retyped_ones(tmp_path):
    from revops_pipelines.warehouse.duckdb import DuckDBWarehouse

    wh = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    src = SampleWorldSource(path=str(tmp_path / "world"))
    relpath = quality.SOURCE_FILES["raw_sf_accounts"]
    check = quality.source_schema_check("raw_sf_accounts", relpath)
    write_jsonl(src.root, relpath, ACCOUNTS)
    first = check(warehouse=wh, sample_world=src)
    assert first.passed and first.metadata["baseline_recorded"].value is True
    assert check(warehouse=wh, sample_world=src).passed  # unchanged source

    write_jsonl(src.root, relpath, [{**r, "Tier__c": "Gold"} for r in ACCOUNTS])
    warned = check(warehouse=wh, sample_world=src)
    assert not warned.passed and warned.severity == dg.AssetCheckSeverity.WARN
    assert warned.metadata["diff"].value["added"] == {"Tier__c": "string"}

    retyped = [
        {k: (str(v) if k == "Seats__c" else v) for k, v in r.items() if k != "ARR__c"} for r in ACCOUNTS
    ]
    write_jsonl(src.root, relpath, retyped)
    failed = check(warehouse=wh, sample_world=src)
    assert not failed.passed and failed.severity == dg.AssetCheckSeverity.ERROR
    diff = failed.metadata["diff"].value
    assert diff["removed"] == {"ARR__c": "number"}
    assert diff["changed"] == {"Seats__c": {"recorded": "integer", "observed": "string"}}
    assert "removed field(s) ['ARR__c']" in failed.metadata["drift"].value


def test_a_parquet_source_is_read_from_its_column_types(tmp_path):
    from revops_pipelines.warehouse.duckdb import DuckDBWarehouse

    wh = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    src = SampleWorldSource(path=str(tmp_path / "world"))
    relpath = quality.SOURCE_FILES["raw_product_usage"]
    check = quality.source_schema_check("raw_product_usage", relpath)
    (src.root / "product").mkdir(parents=True)
    df = pd.DataFrame({"account_id": ["a"], "usage_date": pd.to_datetime(["2025-01-01"]).date, "seats": [3]})
    df.to_parquet(src.root / relpath)
    assert check(warehouse=wh, sample_world=src).passed
    df.rename(columns={"seats": "licensed_seats"}).to_parquet(src.root / relpath)
    result = check(warehouse=wh, sample_world=src)
    assert not result.passed and result.severity == dg.AssetCheckSeverity.ERROR
    assert result.metadata["diff"].value["removed"] == {"seats": "integer"}
    assert result.metadata["diff"].value["added"] == {"licensed_seats": "integer"}


def test_a_missing_source_is_reported_not_raised(tmp_path):
    from revops_pipelines.warehouse.duckdb import DuckDBWarehouse

    check = quality.source_schema_check("raw_gong_calls", quality.SOURCE_FILES["raw_gong_calls"])
    result = check(
        warehouse=DuckDBWarehouse(path=str(tmp_path / "w.duckdb")),
        sample_world=SampleWorldSource(path=str(tmp_path / "nowhere")),
    )
    assert not result.passed and "source not readable" in result.metadata["problem"].value


def test_every_raw_source_has_a_source_schema_check():
    names = {k.name for c in quality.CHECKS for k in c.check_keys}
    for asset in quality.SOURCE_FILES:
        assert f"{asset}_source_schema" in names
    sources = {p.split("/")[0] for p in quality.SOURCE_FILES.values()}
    assert sources == {"salesforce", "hubspot", "gong", "billing", "product"}
