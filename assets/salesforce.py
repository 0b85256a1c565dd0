"""Salesforce raw tables, loaded by the Salesforce connector (simple-salesforce, incremental on
SystemModstamp, deletes applied as ``is_deleted``): Account, Contact, Opportunity, OpportunityHistory,
Task, Case, plus a quarantine of records that could not be loaded. In sample mode the same client
talks to the HTTPS loopback stand-in serving the generated world.
"""

import dagster as dg

from revops_pipelines.checks import combine_checks, not_null_check, references_check, sql_check, unique_check
from revops_pipelines.connectors.salesforce import SalesforceResource
from revops_pipelines.lazy import pd
from revops_pipelines.raw import checkpoint_result, merge_quarantine, request_metadata, sync_asset
from revops_pipelines.warehouse import Warehouse, table

ACCOUNTS = table(
    "raw_sf_accounts",
    [
        ("account_id", "TEXT"),
        ("name", "TEXT"),
        ("industry", "TEXT"),
        ("type", "TEXT"),
        ("employees", "BIGINT"),
        ("annual_revenue", "DOUBLE"),
        ("billing_country", "TEXT"),
        ("owner_id", "TEXT"),
        ("segment", "TEXT"),
        ("plan", "TEXT"),
        ("seats", "BIGINT"),
        ("arr", "DOUBLE"),
        ("billing_frequency", "TEXT"),
        ("customer_since", "DATE"),
        ("churn_date", "DATE"),
        ("created_at", "TIMESTAMP"),
        ("system_modstamp", "TIMESTAMP", False),
        ("is_deleted", "BOOLEAN", False),
    ],
    keys=("account_id",),
    kind="dimension",
    description="Salesforce Account with the contract custom fields (segment, plan, seats, ARR).",
)

CONTACTS = table(
    "raw_sf_contacts",
    [
        ("contact_id", "TEXT"),
        ("account_id", "TEXT"),
        ("first_name", "TEXT"),
        ("last_name", "TEXT"),
        ("email", "TEXT"),
        ("title", "TEXT"),
        ("created_at", "TIMESTAMP"),
        ("system_modstamp", "TIMESTAMP", False),
        ("is_deleted", "BOOLEAN", False),
    ],
    keys=("contact_id",),
    kind="dimension",
)

MEDDPICC = (
    "metrics",
    "economic_buyer",
    "decision_criteria",
    "decision_process",
    "paper_process",
    "identify_pain",
    "champion",
    "competition",
)

OPPORTUNITIES = table(
    "raw_sf_opportunities",
    [
        ("opportunity_id", "TEXT"),
        ("account_id", "TEXT"),
        ("name", "TEXT"),
        ("type", "TEXT"),
        ("stage_name", "TEXT"),
        ("amount", "DOUBLE"),
        ("close_date", "DATE"),
        ("is_closed", "BOOLEAN"),
        ("is_won", "BOOLEAN"),
        ("probability", "DOUBLE"),
        ("owner_id", "TEXT"),
        ("created_at", "TIMESTAMP"),
        ("system_modstamp", "TIMESTAMP", False),
        ("is_deleted", "BOOLEAN", False),
        *[(f"meddpicc_{m}", "TEXT") for m in MEDDPICC],
    ],
    keys=("opportunity_id",),
    primary_index=("account_id", "close_date"),
)

CASES = table(
    "raw_sf_cases",
    [
        ("case_id", "TEXT"),
        ("account_id", "TEXT"),
        ("contact_id", "TEXT"),
        ("case_number", "TEXT"),
        ("subject", "TEXT"),
        ("description", "TEXT"),
        ("status", "TEXT"),
        ("priority", "TEXT"),
        ("origin", "TEXT"),
        ("type", "TEXT"),
        ("product_feature", "TEXT"),
        ("created_at", "TIMESTAMP"),
        ("closed_at", "TIMESTAMP"),
        ("is_closed", "BOOLEAN"),
        ("system_modstamp", "TIMESTAMP", False),
        ("is_deleted", "BOOLEAN", False),
    ],
    keys=("case_id",),
    primary_index=("account_id", "created_at"),
    description="Salesforce Case (support tickets).",
)


OPPORTUNITY_HISTORY = table(
    "raw_sf_opportunity_history",
    [
        ("history_id", "TEXT"),
        ("opportunity_id", "TEXT"),
        ("stage_name", "TEXT"),
        ("amount", "DOUBLE"),
        ("close_date", "DATE"),
        ("probability", "DOUBLE"),
        ("created_at", "TIMESTAMP"),
        ("system_modstamp", "TIMESTAMP", False),
        ("is_deleted", "BOOLEAN", False),
    ],
    keys=("history_id",),
    description="Salesforce OpportunityHistory: one row per stage/amount change of an opportunity.",
)

TASKS = table(
    "raw_sf_tasks",
    [
        ("task_id", "TEXT"),
        ("account_id", "TEXT"),
        ("who_id", "TEXT"),
        ("what_id", "TEXT"),
        ("subject", "TEXT"),
        ("status", "TEXT"),
        ("priority", "TEXT"),
        ("activity_date", "DATE"),
        ("task_subtype", "TEXT"),
        ("owner_id", "TEXT"),
        ("created_at", "TIMESTAMP"),
        ("system_modstamp", "TIMESTAMP", False),
        ("is_deleted", "BOOLEAN", False),
    ],
    keys=("task_id",),
    description="Salesforce Task (calls, emails, to-dos logged against accounts and contacts).",
)

QUARANTINE = table(
    "raw_sf_quarantine",
    [
        ("object", "TEXT"),
        ("record_id", "TEXT"),
        ("reason", "TEXT", False),
        ("raw", "TEXT"),
        ("quarantined_at", "TIMESTAMP", False),
    ],
    keys=("object", "record_id"),
    kind="dimension",
    description="Salesforce records that could not be loaded, with the reason (never silently dropped).",
)


def _common(prefix: dict[str, str]) -> dict[str, str]:
    return {
        **prefix,
        "created_at": "CreatedDate",
        "system_modstamp": "SystemModstamp",
        "is_deleted": "IsDeleted",
    }


MAPPINGS: dict[str, tuple] = {
    "Account": (
        ACCOUNTS,
        _common(
            {
                "account_id": "Id",
                "name": "Name",
                "industry": "Industry",
                "type": "Type",
                "employees": "NumberOfEmployees",
                "annual_revenue": "AnnualRevenue",
                "billing_country": "BillingCountry",
                "owner_id": "OwnerId",
                "segment": "Segment__c",
                "plan": "Plan__c",
                "seats": "Seats__c",
                "arr": "ARR__c",
                "billing_frequency": "Billing_Frequency__c",
                "customer_since": "Customer_Since__c",
                "churn_date": "Churn_Date__c",
            }
        ),
    ),
    "Contact": (
        CONTACTS,
        _common(
            {
                "contact_id": "Id",
                "account_id": "AccountId",
                "first_name": "FirstName",
                "last_name": "LastName",
                "email": "Email",
                "title": "Title",
            }
        ),
    ),
    "Opportunity": (
        OPPORTUNITIES,
        _common(
            {
                "opportunity_id": "Id",
                "account_id": "AccountId",
                "name": "Name",
                "type": "Type",
                "stage_name": "StageName",
                "amount": "Amount",
                "close_date": "CloseDate",
                "is_closed": "IsClosed",
                "is_won": "IsWon",
                "probability": "Probability",
                "owner_id": "OwnerId",
                **{
                    f"meddpicc_{k}": "MEDDPICC_" + "_".join(p.capitalize() for p in k.split("_")) + "__c"
                    for k in MEDDPICC
                },
            }
        ),
    ),
    "OpportunityHistory": (
        OPPORTUNITY_HISTORY,
        _common(
            {
                "history_id": "Id",
                "opportunity_id": "OpportunityId",
                "stage_name": "StageName",
                "amount": "Amount",
                "close_date": "CloseDate",
                "probability": "Probability",
            }
        ),
    ),
    "Task": (
        TASKS,
        _common(
            {
                "task_id": "Id",
                "account_id": "AccountId",
                "who_id": "WhoId",
                "what_id": "WhatId",
                "subject": "Subject",
                "status": "Status",
                "priority": "Priority",
                "activity_date": "ActivityDate",
                "task_subtype": "TaskSubtype",
                "owner_id": "OwnerId",
            }
        ),
    ),
    "Case": (
        CASES,
        _common(
            {
                "case_id": "Id",
                "account_id": "AccountId",
                "contact_id": "ContactId",
                "case_number": "CaseNumber",
                "subject": "Subject",
                "description": "Description",
                "status": "Status",
                "priority": "Priority",
                "origin": "Origin",
                "type": "Type",
                "product_feature": "Product_Feature__c",
                "closed_at": "ClosedDate",
                "is_closed": "IsClosed",
            }
        ),
    ),
}


def frame(obj: str, records: list[dict]) -> "pd.DataFrame":
    """Flatten REST sObject records of ``obj`` to its raw table's columns."""
    schema, mapping = MAPPINGS[obj]
    rows = [{col: r.get(field) for col, field in mapping.items()} for r in records]
    return pd.DataFrame(rows, columns=list(mapping))[schema.column_names]


class WarehouseSalesforceSink:
    def __init__(self, warehouse: Warehouse):
        self.wh = warehouse

    def write(self, obj: str, records: list[dict]) -> None:
        self.wh.merge(MAPPINGS[obj][0], frame(obj, records))

    def write_quarantine(self, rows: list[dict]) -> None:
        merge_quarantine(self.wh, QUARANTINE, rows)


TABLES = [ACCOUNTS, CONTACTS, OPPORTUNITIES, OPPORTUNITY_HISTORY, TASKS, CASES, QUARANTINE]
OBJECT_OF = {schema.name: obj for obj, (schema, _m) in MAPPINGS.items()}


@sync_asset(
    "salesforce",
    TABLES,
    describe=lambda schema: schema.description or f"Salesforce {OBJECT_OF.get(schema.name, schema.name)}.",
    checkpoint_of=ACCOUNTS,
    checkpoint_description="every object's incremental query ran to its end in this run",
)
def salesforce_sync(context: dg.AssetExecutionContext, warehouse: Warehouse, salesforce: SalesforceResource):
    """One incremental Salesforce sync of every object (queryAll on SystemModstamp, deletes applied)."""
    for schema in TABLES:
        warehouse.ensure_table(schema)
    summary, stats = salesforce.sync(WarehouseSalesforceSink(warehouse), log=context.log.info)
    context.log.info(f"salesforce: {summary} {stats.as_dict()}")
    common = request_metadata(stats)
    for schema in TABLES:
        obj = OBJECT_OF.get(schema.name)
        md = {**common, "dagster/row_count": dg.MetadataValue.int(warehouse.row_count(schema.name))}
        if obj:
            md["records_fetched"] = dg.MetadataValue.int(summary["records"].get(obj, 0))
            md["deletes_applied"] = dg.MetadataValue.int(summary["deleted"].get(obj, 0))
            md["checkpoint"] = dg.MetadataValue.json(summary["checkpoint"][obj])
        else:
            md["quarantined_this_run"] = dg.MetadataValue.int(summary["quarantined"])
        yield dg.MaterializeResult(asset_key=schema.name, metadata=md)
    yield checkpoint_result(
        ACCOUNTS,
        passed=set(summary["checkpoint"]) == set(MAPPINGS),
        metadata={"checkpoint": dg.MetadataValue.json(summary["checkpoint"])},
    )


ASSETS = [salesforce_sync]

CHECKS = combine_checks(
    [
        unique_check("raw_sf_accounts", ("account_id",)),
        not_null_check("raw_sf_accounts", ("segment", "arr", "customer_since")),
        sql_check(
            "raw_sf_accounts",
            "raw_sf_accounts_accepted_segments",
            "SELECT COUNT(*) FROM raw_sf_accounts WHERE segment NOT IN ('Enterprise', 'Mid-Market', 'SMB')",
            description="segment is one of Enterprise, Mid-Market, SMB",
            blocking=True,
        ),
        references_check("raw_sf_opportunities", "account_id", "raw_sf_accounts", "account_id"),
        references_check("raw_sf_cases", "account_id", "raw_sf_accounts", "account_id"),
        unique_check("raw_sf_contacts", ("contact_id",)),
        unique_check("raw_sf_opportunities", ("opportunity_id",)),
        unique_check("raw_sf_cases", ("case_id",)),
        unique_check("raw_sf_opportunity_history", ("history_id",)),
        unique_check("raw_sf_tasks", ("task_id",)),
        not_null_check("raw_sf_opportunities", ("account_id", "stage_name")),
        references_check("raw_sf_contacts", "account_id", "raw_sf_accounts", "account_id"),
        references_check(
            "raw_sf_opportunity_history", "opportunity_id", "raw_sf_opportunities", "opportunity_id"
        ),
        references_check("raw_sf_tasks", "account_id", "raw_sf_accounts", "account_id", blocking=False),
        sql_check(
            "raw_sf_quarantine",
            "raw_sf_quarantine_empty",
            "SELECT COUNT(*) FROM raw_sf_quarantine",
            description="no Salesforce record is waiting in quarantine (a warning: the rows say why)",
            severity=dg.AssetCheckSeverity.WARN,
            sample_sql="SELECT object, record_id, reason FROM raw_sf_quarantine ORDER BY quarantined_at DESC",
        ),
    ],
    name="salesforce",
)
