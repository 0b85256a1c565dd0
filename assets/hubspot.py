"""HubSpot raw tables, loaded by the HubSpot connector (hubspot-api-client CRM v3 search on the
last-modified property, the 10,000-result window slid forward): companies, contacts, deals,
engagements (calls, emails, meetings, notes, tasks) and a quarantine. Deals and engagements carry
their company (``company_id``, read from the v4 associations API; null when HubSpot has none). In
sample mode the same client talks to the loopback stand-in serving the generated world.
"""

import dagster as dg

from revops_pipelines.checks import combine_checks, references_check, sql_check, unique_check
from revops_pipelines.connectors.hubspot import ENGAGEMENTS, HubSpotResource
from revops_pipelines.lazy import pd
from revops_pipelines.raw import checkpoint_result, merge_quarantine, request_metadata, sync_asset
from revops_pipelines.warehouse import Warehouse, table

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


DEALS = table(
    "raw_hs_deals",
    [
        ("deal_id", "TEXT"),
        ("name", "TEXT"),
        ("stage", "TEXT"),
        ("pipeline", "TEXT"),
        ("amount", "DOUBLE"),
        ("close_date", "TIMESTAMP"),
        ("owner_id", "TEXT"),
        ("created_at", "TIMESTAMP"),
        ("updated_at", "TIMESTAMP", False),
        ("archived", "BOOLEAN", False),
        ("sf_opportunity_id", "TEXT"),
        ("company_id", "TEXT"),
    ],
    keys=("deal_id",),
    description="HubSpot deals (sf_opportunity_id: the Salesforce opportunity a synced deal mirrors; "
    "company_id: the deal's primary company, from the associations API).",
)

ENGAGEMENT_TABLE = table(
    "raw_hs_engagements",
    [
        ("engagement_type", "TEXT"),
        ("engagement_id", "TEXT"),
        ("occurred_at", "TIMESTAMP"),
        ("owner_id", "TEXT"),
        ("title", "TEXT"),
        ("body_preview", "TEXT"),
        ("created_at", "TIMESTAMP"),
        ("updated_at", "TIMESTAMP", False),
        ("archived", "BOOLEAN", False),
        ("company_id", "TEXT"),
    ],
    keys=("engagement_type", "engagement_id"),
    description="HubSpot engagements: calls, emails, meetings, notes and tasks, one row each "
    "(company_id: the associated company, from the associations API; null if none).",
)

QUARANTINE = table(
    "raw_hs_quarantine",
    [
        ("object_type", "TEXT"),
        ("record_id", "TEXT"),
        ("reason", "TEXT", False),
        ("raw", "TEXT"),
        ("quarantined_at", "TIMESTAMP", False),
    ],
    keys=("object_type", "record_id"),
    kind="dimension",
    description="HubSpot records that could not be loaded, with the reason (never silently dropped).",
)

TITLE = {
    "calls": "hs_call_title",
    "emails": "hs_email_subject",
    "meetings": "hs_meeting_title",
    "tasks": "hs_task_subject",
}


def _objects(records, props: dict[str, str], numeric: tuple[str, ...] = ()) -> "pd.DataFrame":
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


def _with_id(records: list[dict]) -> list[dict]:
    return [{**r, "properties": {**(r.get("properties") or {}), "hs_object_id": r["id"]}} for r in records]


def company_of(record: dict) -> str | None:
    """The first (primary) company in the record's ``associations.companies.results``, or None."""
    results = (((record.get("associations") or {}).get("companies") or {}).get("results")) or []
    return str(results[0]["id"]) if results else None


def frame(object_type: str, records: list[dict]) -> "pd.DataFrame":
    """Flatten CRM v3 objects (id + string properties) of one type to its raw table's columns."""
    recs = _with_id(records)
    if object_type == "companies":
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
        df = _objects(recs, props, numeric=("employees", "annual_revenue"))
        df["employees"] = df["employees"].astype("Int64")
        return df[COMPANIES.column_names]
    if object_type == "contacts":
        props = {
            "contact_id": "hs_object_id",
            "email": "email",
            "first_name": "firstname",
            "last_name": "lastname",
            "job_title": "jobtitle",
            "company_id": "associatedcompanyid",
        }
        return _objects(recs, props)[CONTACTS.column_names]
    if object_type == "deals":
        props = {
            "deal_id": "hs_object_id",
            "name": "dealname",
            "stage": "dealstage",
            "pipeline": "pipeline",
            "amount": "amount",
            "close_date": "closedate",
            "owner_id": "hubspot_owner_id",
            "sf_opportunity_id": "salesforceopportunityid",
        }
        df = _objects(recs, props, numeric=("amount",))
        df["company_id"] = [company_of(r) for r in recs]
        return df[DEALS.column_names]
    props = {
        "engagement_id": "hs_object_id",
        "occurred_at": "hs_timestamp",
        "owner_id": "hubspot_owner_id",
        "title": TITLE.get(object_type, "hs_title"),
        "body_preview": "hs_body_preview",
    }
    df = _objects(recs, props)
    df["engagement_type"] = object_type
    df["company_id"] = [company_of(r) for r in recs]
    return df[ENGAGEMENT_TABLE.column_names]


TABLE_OF = {
    "companies": COMPANIES,
    "contacts": CONTACTS,
    "deals": DEALS,
    **{e: ENGAGEMENT_TABLE for e in ENGAGEMENTS},
}
TABLES = [COMPANIES, CONTACTS, DEALS, ENGAGEMENT_TABLE, QUARANTINE]


class WarehouseHubSpotSink:
    def __init__(self, warehouse: Warehouse):
        self.wh = warehouse

    def write(self, object_type: str, records: list[dict]) -> None:
        self.wh.merge(TABLE_OF[object_type], frame(object_type, records))

    def mark_archived(self, object_type: str, ids: list[str]) -> None:
        """HubSpot deleted these: keep the rows, flag them (downstream filters ``NOT archived``)."""
        schema = TABLE_OF[object_type]
        key = [k for k in schema.keys if k != "engagement_type"][0]
        marks = ", ".join("?" for _ in ids)
        where, params = f"{key} IN ({marks})", list(ids)
        if schema is ENGAGEMENT_TABLE:
            where, params = f"engagement_type = ? AND {where}", [object_type, *ids]
        self.wh.execute(f"UPDATE {schema.name} SET archived = TRUE WHERE {where}", params)

    def write_quarantine(self, rows: list[dict]) -> None:
        merge_quarantine(self.wh, QUARANTINE, rows)


@sync_asset(
    "hubspot",
    TABLES,
    describe=lambda schema: schema.description or f"HubSpot {schema.name.removeprefix('raw_hs_')}.",
    checkpoint_of=COMPANIES,
    checkpoint_description="every object type's search ran to its end in this run",
)
def hubspot_sync(context: dg.AssetExecutionContext, warehouse: Warehouse, hubspot: HubSpotResource):
    """One incremental HubSpot sync of every object type (search on last-modified, window slid)."""
    for schema in TABLES:
        warehouse.ensure_table(schema)
    summary, stats = hubspot.sync(WarehouseHubSpotSink(warehouse), log=context.log.info)
    context.log.info(f"hubspot: {summary} {stats.as_dict()}")
    common = request_metadata(stats)
    for schema in TABLES:
        types = [t for t, s in TABLE_OF.items() if s is schema]
        md = {**common, "dagster/row_count": dg.MetadataValue.int(warehouse.row_count(schema.name))}
        if types:
            md["records_fetched"] = dg.MetadataValue.int(sum(summary["records"].get(t, 0) for t in types))
            md["window_slides"] = dg.MetadataValue.int(sum(summary["window_slides"].get(t, 0) for t in types))
            md["archived_flagged"] = dg.MetadataValue.int(sum(summary["archived"].get(t, 0) for t in types))
            md["checkpoint"] = dg.MetadataValue.json({t: summary["checkpoint"][t] for t in types})
            if schema in (DEALS, ENGAGEMENT_TABLE):
                for key in ("company_linked", "company_unlinked"):
                    md[f"{key}_this_run"] = dg.MetadataValue.int(sum(summary[key].get(t, 0) for t in types))
        else:
            md["quarantined_this_run"] = dg.MetadataValue.int(summary["quarantined"])
        yield dg.MaterializeResult(asset_key=schema.name, metadata=md)
    yield checkpoint_result(
        COMPANIES,
        passed=set(summary["checkpoint"]) == set(TABLE_OF),
        metadata={"checkpoint": dg.MetadataValue.json(summary["checkpoint"])},
    )


ASSETS = [hubspot_sync]
CHECKS = combine_checks(
    [
        unique_check("raw_hs_companies", ("company_id",), blocking=False),
        unique_check("raw_hs_contacts", ("contact_id",)),
        unique_check("raw_hs_deals", ("deal_id",)),
        references_check(
            "raw_hs_deals", "sf_opportunity_id", "raw_sf_opportunities", "opportunity_id", blocking=False
        ),
        unique_check("raw_hs_engagements", ("engagement_type", "engagement_id")),
        # an engagement's company must be a known company (fails, blocking); one without any company
        # cannot feed account features (a warning: HubSpot allows activities logged on contacts only)
        references_check("raw_hs_engagements", "company_id", "raw_hs_companies", "company_id"),
        sql_check(
            "raw_hs_engagements",
            "raw_hs_engagements_company_linked",
            "SELECT COUNT(*) FROM raw_hs_engagements WHERE company_id IS NULL AND NOT archived",
            description="every live engagement is associated with a company (a warning: unlinked ones "
            "cannot feed account features)",
            severity=dg.AssetCheckSeverity.WARN,
            sample_sql="SELECT engagement_type, engagement_id, occurred_at, title FROM raw_hs_engagements "
            "WHERE company_id IS NULL AND NOT archived ORDER BY occurred_at DESC",
        ),
        references_check("raw_hs_deals", "company_id", "raw_hs_companies", "company_id", blocking=False),
        references_check("raw_hs_contacts", "company_id", "raw_hs_companies", "company_id", blocking=False),
        sql_check(
            "raw_hs_quarantine",
            "raw_hs_quarantine_empty",
            "SELECT COUNT(*) FROM raw_hs_quarantine",
            description="no HubSpot record is waiting in quarantine (a warning: the rows say why)",
            severity=dg.AssetCheckSeverity.WARN,
            sample_sql="SELECT object_type, record_id, reason FROM raw_hs_quarantine ORDER BY quarantined_at DESC",
        ),
    ],
    name="hubspot",
)
