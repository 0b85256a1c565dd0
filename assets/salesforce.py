"""Salesforce raw tables: Account, Contact, Opportunity, Case (REST record shapes)."""

from __future__ import annotations

from revops_pipelines.checks import not_null_check, references_check, sql_check, unique_check
from revops_pipelines.lazy import pd
from revops_pipelines.raw import raw_table_asset
from revops_pipelines.sources import SampleWorldSource
from revops_pipelines.warehouse import table

SF = "salesforce/"

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


def _frame(records, mapping: dict[str, str]) -> pd.DataFrame:
    rows = [{col: r.get(field) for col, field in mapping.items()} for r in records]
    return pd.DataFrame(rows, columns=list(mapping))


def _common(prefix: dict[str, str]) -> dict[str, str]:
    return {
        **prefix,
        "created_at": "CreatedDate",
        "system_modstamp": "SystemModstamp",
        "is_deleted": "IsDeleted",
    }


def _accounts(src: SampleWorldSource) -> pd.DataFrame:
    m = _common(
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
    )
    return _frame(src.records(SF + "Account.jsonl"), m)[ACCOUNTS.column_names]


def _contacts(src: SampleWorldSource) -> pd.DataFrame:
    m = _common(
        {
            "contact_id": "Id",
            "account_id": "AccountId",
            "first_name": "FirstName",
            "last_name": "LastName",
            "email": "Email",
            "title": "Title",
        }
    )
    return _frame(src.records(SF + "Contact.jsonl"), m)[CONTACTS.column_names]


def _opportunities(src: SampleWorldSource) -> pd.DataFrame:
    m = _common(
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
        }
    )
    m.update(
        {
            f"meddpicc_{k}": "MEDDPICC_" + "_".join(p.capitalize() for p in k.split("_")) + "__c"
            for k in MEDDPICC
        }
    )
    return _frame(src.records(SF + "Opportunity.jsonl"), m)[OPPORTUNITIES.column_names]


def _cases(src: SampleWorldSource) -> pd.DataFrame:
    m = _common(
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
    )
    return _frame(src.records(SF + "Case.jsonl"), m)[CASES.column_names]


raw_sf_accounts = raw_table_asset(ACCOUNTS, _accounts, source="salesforce", description=ACCOUNTS.description)
raw_sf_contacts = raw_table_asset(CONTACTS, _contacts, source="salesforce", description="Salesforce Contact.")
raw_sf_opportunities = raw_table_asset(
    OPPORTUNITIES,
    _opportunities,
    source="salesforce",
    description="Salesforce Opportunity (new business, renewal, expansion) with MEDDPICC fields.",
)
raw_sf_cases = raw_table_asset(CASES, _cases, source="salesforce", description=CASES.description)

ASSETS = [raw_sf_accounts, raw_sf_contacts, raw_sf_opportunities, raw_sf_cases]
TABLES = [ACCOUNTS, CONTACTS, OPPORTUNITIES, CASES]
CHECKS = [
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
]
