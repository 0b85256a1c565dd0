"""HubSpot raw tables: companies and contacts (CRM v3 object shapes: id + string properties)."""

from __future__ import annotations

from revops_pipelines.checks import unique_check
from revops_pipelines.lazy import pd
from revops_pipelines.raw import raw_table_asset
from revops_pipelines.sources import SampleWorldSource
from revops_pipelines.warehouse import table

COMPANIES = table(
    "raw_hs_companies",
    [
        ("company_id", "TEXT"),
        ("name", "TEXT"),
        ("domain", "TEXT"),
        ("industry", "TEXT"),
        ("employees", "BIGINT"),
        ("annual_revenue", "DOUBLE"),
        ("lifecycle_stage", "TEXT"),
        ("sf_account_id", "TEXT"),
        ("created_at", "TIMESTAMP"),
        ("updated_at", "TIMESTAMP", False),
        ("archived", "BOOLEAN", False),
    ],
    keys=("company_id",),
    kind="dimension",
)

CONTACTS = table(
    "raw_hs_contacts",
    [
        ("contact_id", "TEXT"),
        ("email", "TEXT"),
        ("first_name", "TEXT"),
        ("last_name", "TEXT"),
        ("job_title", "TEXT"),
        ("company_id", "TEXT"),
        ("created_at", "TIMESTAMP"),
        ("updated_at", "TIMESTAMP", False),
        ("archived", "BOOLEAN", False),
    ],
    keys=("contact_id",),
    kind="dimension",
)


def _objects(records, props: dict[str, str], numeric: tuple[str, ...] = ()) -> pd.DataFrame:
    rows = []
    for r in records:
        p = r.get("properties") or {}
        row = {
            "created_at": r.get("createdAt"),
            "updated_at": r.get("updatedAt"),
            "archived": r.get("archived", False),
        }
        row.update({col: p.get(name) for col, name in props.items()})
        rows.append(row)
    df = pd.DataFrame(rows)
    for col in numeric:  # HubSpot sends every property value as a string
        df[col] = pd.to_numeric(df[col], errors="coerce")
    return df


def _companies(src: SampleWorldSource) -> pd.DataFrame:
    props = {
        "company_id": "hs_object_id",
        "name": "name",
        "domain": "domain",
        "industry": "industry",
        "employees": "numberofemployees",
        "annual_revenue": "annualrevenue",
        "lifecycle_stage": "lifecyclestage",
        "sf_account_id": "salesforceaccountid",
    }
    recs = (
        {**r, "properties": {**r["properties"], "hs_object_id": r["id"]}}
        for r in src.records("hubspot/companies.jsonl")
    )
    df = _objects(recs, props, numeric=("employees", "annual_revenue"))
    df["employees"] = df["employees"].astype("Int64")
    return df[COMPANIES.column_names]


def _contacts(src: SampleWorldSource) -> pd.DataFrame:
    props = {
        "contact_id": "hs_object_id",
        "email": "email",
        "first_name": "firstname",
        "last_name": "lastname",
        "job_title": "jobtitle",
        "company_id": "associatedcompanyid",
    }
    recs = (
        {**r, "properties": {**r["properties"], "hs_object_id": r["id"]}}
        for r in src.records("hubspot/contacts.jsonl")
    )
    return _objects(recs, props)[CONTACTS.column_names]


raw_hs_companies = raw_table_asset(COMPANIES, _companies, source="hubspot", description="HubSpot companies.")
raw_hs_contacts = raw_table_asset(CONTACTS, _contacts, source="hubspot", description="HubSpot contacts.")

ASSETS = [raw_hs_companies, raw_hs_contacts]
TABLES = [COMPANIES, CONTACTS]
CHECKS = [unique_check("raw_hs_companies", ("company_id",), blocking=False)]
