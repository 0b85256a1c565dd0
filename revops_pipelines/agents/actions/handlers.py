"""The five action handlers: Slack message, HubSpot task, signed webhook, email draft, warehouse write-back.

Vendor libraries (slack-sdk, hubspot-api-client, httpx) are imported when a handler is built, never at
definition load.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field

from revops_pipelines.agents.actions import PermanentError, TransientError
from revops_pipelines.errors import ValidationFailed
from revops_pipelines.lazy import pd
from revops_pipelines.validation import StrictModel, parse
from revops_pipelines.warehouse import Warehouse, table
from revops_pipelines.webhooks.signatures import sign_generic

EMAIL_DRAFTS = table(
    "email_drafts",
    [
        ("idempotency_key", "TEXT"),
        ("account_id", "TEXT", False),
        ("to_role", "TEXT", False),
        ("subject", "TEXT", False),
        ("body", "TEXT", False),
        ("template", "TEXT", False),
        ("created_at", "TIMESTAMP", False),
    ],
    keys=("idempotency_key",),
    description="Email drafts prepared by the Execution Agent for a human to review and send (never sent).",
    group="agents",
)
ACCOUNT_FLAGS = table(
    "account_flags",
    [
        ("account_id", "TEXT"),
        ("flag", "TEXT"),
        ("value", "TEXT", False),
        ("idempotency_key", "TEXT", False),
        ("updated_at", "TIMESTAMP", False),
    ],
    keys=("account_id", "flag"),
    description="Warehouse write-back of the Execution Agent: the latest value of each flag per account.",
    group="agents",
)


def _problems(model: type[StrictModel], params: dict[str, Any], what: str) -> list[str]:
    try:
        parse(model, params, what)
    except ValidationFailed as e:
        return e.problems
    return []


# ---- Slack -------------------------------------------------------------------------------------------
class SlackParams(StrictModel):
    channel: str = Field(pattern=r"^#[a-z0-9._-]{1,80}$")
    text: str = Field(min_length=1, max_length=3000)


_SLACK_TRANSIENT = {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}


class SlackMessage:
    """``chat.postMessage`` with the idempotency key in message ``metadata``; confirmed (and looked up
    before a retry) through ``conversations.history``. Rate limits: slack-sdk's
    ``RateLimitErrorRetryHandler`` waits ``Retry-After``; what remains becomes a TransientError."""

    type = "slack_message"

    def __init__(self, client: Any, allowed_channels: list[str]):
        self.client = client
        self.allowed = set(allowed_channels)
        self._ids: dict[str, str] = {}

    @classmethod
    def build(cls, token: str | None, base_url: str, allowed_channels: list[str]) -> SlackMessage:
        from slack_sdk import WebClient
        from slack_sdk.http_retry.builtin_handlers import (
            ConnectionErrorRetryHandler,
            RateLimitErrorRetryHandler,
        )

        if not token:
            raise PermanentError("slack token missing (set SLACK_BOT_TOKEN)")
        client = WebClient(
            token=token,
            base_url=base_url,
            timeout=10,
            retry_handlers=[
                ConnectionErrorRetryHandler(max_retry_count=1),
                RateLimitErrorRetryHandler(max_retry_count=2),
            ],
        )
        return cls(client, allowed_channels)

    def verify(self, params: dict[str, Any]) -> list[str]:
        problems = _problems(SlackParams, params, "slack_message")
        if not problems and params["channel"] not in self.allowed:
            problems.append(f"channel: {params['channel']} is not in the allow-list {sorted(self.allowed)}")
        return problems

    def _call(self, method: str, **kwargs: Any) -> Any:
        from slack_sdk.errors import SlackApiError

        try:
            return getattr(self.client, method)(**kwargs)
        except SlackApiError as e:
            status = e.response.status_code
            err = e.response.get("error") if hasattr(e.response, "get") else None
            if status == 429 or status >= 500 or err in _SLACK_TRANSIENT:
                ra = e.response.headers.get("Retry-After") if e.response.headers else None
                raise TransientError(
                    f"slack {method}: HTTP {status} {err}", float(ra) if ra else None
                ) from None
            raise PermanentError(f"slack {method}: {err or status}") from None
        except (OSError, TimeoutError) as e:
            raise TransientError(f"slack {method}: {type(e).__name__}: {e}") from None

    def execute(self, params: dict[str, Any], key: str) -> dict[str, Any]:
        r = self._call(
            "chat_postMessage",
            channel=params["channel"],
            text=params["text"],
            metadata={"event_type": "revops_action", "event_payload": {"idempotency_key": key}},
        )
        self._ids[params["channel"]] = r["channel"]
        return {"channel_id": r["channel"], "ts": r["ts"]}

    def _channel_id(self, name: str) -> str | None:
        """conversations.history needs the channel id (chat.postMessage accepts the name)."""
        if name not in self._ids:
            cursor = None
            while True:
                r = self._call(
                    "conversations_list", types="public_channel,private_channel", limit=1000, cursor=cursor
                )
                for c in r.get("channels", []):
                    self._ids.setdefault(f"#{c['name']}", c["id"])
                cursor = (r.get("response_metadata") or {}).get("next_cursor")
                if not cursor or name in self._ids:
                    break
        return self._ids.get(name)

    def find(self, params: dict[str, Any], key: str) -> dict[str, Any] | None:
        cid = self._channel_id(params["channel"])
        if cid is None:
            return None
        r = self._call("conversations_history", channel=cid, include_all_metadata=True, limit=200)
        for m in r.get("messages", []):
            payload = (m.get("metadata") or {}).get("event_payload") or {}
            if payload.get("idempotency_key") == key:
                return {"channel_id": cid, "ts": m["ts"]}
        return None

    def confirm(self, params: dict[str, Any], result: dict[str, Any]) -> bool:
        r = self._call(
            "conversations_history",
            channel=result["channel_id"],
            latest=result["ts"],
            inclusive=True,
            limit=1,
        )
        return any(m.get("ts") == result["ts"] for m in r.get("messages", []))


# ---- HubSpot task ----------------------------------------------------------------------------------------
class CrmTaskParams(StrictModel):
    subject: str = Field(min_length=1, max_length=255)
    account_id: str = Field(min_length=1)
    due_in_days: int = Field(ge=0, le=90)
    body: str = ""
    company_id: str | None = Field(
        default=None, pattern=r"^\d+$", description="HubSpot company to associate."
    )


class HubSpotTask:
    """A HubSpot task (CRM v3 objects API via hubspot-api-client) carrying the idempotency key in the
    ``revops_idempotency_key`` property; looked up by search before a retry, read back to confirm."""

    type = "crm_task"

    def __init__(self, client: Any, clock: Any = None):
        self.client = client
        self.clock = clock or (lambda: datetime.now(UTC))

    @classmethod
    def build(cls, token: str | None, base_url: str) -> HubSpotTask:
        from hubspot import HubSpot

        if not token:
            raise PermanentError("HubSpot token missing (set HUBSPOT_ACCESS_TOKEN)")
        return cls(HubSpot(access_token=token, host=base_url.rstrip("/")))

    def verify(self, params: dict[str, Any]) -> list[str]:
        return _problems(CrmTaskParams, params, "crm_task")

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        from hubspot.crm.objects.tasks import ApiException

        try:
            return fn(*args, **kwargs)
        except ApiException as e:
            if e.status == 429 or (e.status or 0) >= 500:
                ra = (e.headers or {}).get("Retry-After")
                raise TransientError(
                    f"hubspot: HTTP {e.status} {e.reason}", float(ra) if ra else None
                ) from None
            raise PermanentError(f"hubspot: HTTP {e.status} {_hs_message(e)}") from None
        except (OSError, TimeoutError) as e:
            raise TransientError(f"hubspot: {type(e).__name__}: {e}") from None
        except Exception as e:  # urllib3 MaxRetryError and friends
            if type(e).__module__.startswith("urllib3"):
                raise TransientError(f"hubspot: {type(e).__name__}: {e}") from None
            raise

    def execute(self, params: dict[str, Any], key: str) -> dict[str, Any]:
        from hubspot.crm.objects.tasks import SimplePublicObjectInputForCreate

        due = self.clock() + timedelta(days=int(params["due_in_days"]))
        props = {
            "hs_timestamp": due.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "hs_task_subject": params["subject"],
            "hs_task_body": params.get("body") or f"Salesforce account {params['account_id']}",
            "hs_task_status": "NOT_STARTED",
            "hs_task_priority": "HIGH" if int(params["due_in_days"]) <= 3 else "MEDIUM",
            "hs_task_type": "TODO",
            "revops_idempotency_key": key,
        }
        assoc = None
        if params.get("company_id"):
            assoc = [
                {
                    "to": {"id": params["company_id"]},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 192}],
                }
            ]
        obj = SimplePublicObjectInputForCreate(properties=props, associations=assoc)
        r = self._call(
            self.client.crm.objects.tasks.basic_api.create, simple_public_object_input_for_create=obj
        )
        return {"task_id": str(r.id)}

    def find(self, params: dict[str, Any], key: str) -> dict[str, Any] | None:
        from hubspot.crm.objects.tasks import PublicObjectSearchRequest

        req = PublicObjectSearchRequest(
            filter_groups=[
                {"filters": [{"propertyName": "revops_idempotency_key", "operator": "EQ", "value": key}]}
            ],
            limit=1,
        )
        r = self._call(self.client.crm.objects.tasks.search_api.do_search, public_object_search_request=req)
        return {"task_id": str(r.results[0].id)} if r.results else None

    def confirm(self, params: dict[str, Any], result: dict[str, Any]) -> bool:
        r = self._call(self.client.crm.objects.tasks.basic_api.get_by_id, task_id=result["task_id"])
        return str(r.id) == result["task_id"] and r.properties.get("hs_task_subject") == params["subject"]


def _hs_message(e: Any) -> str:
    try:
        return json.loads(e.body).get("message", "")
    except Exception:
        return str(e.reason)


# ---- signed webhook ----------------------------------------------------------------------------------------
class WebhookParams(StrictModel):
    account_id: str = Field(min_length=1)
    event: str = Field(default="churn_risk", pattern=r"^[a-z][a-z0-9_.]{0,63}$")
    data: dict[str, Any] = Field(default_factory=dict)


class SignedWebhook:
    """POST a JSON event to an allow-listed URL, signed with the generic webhook scheme the receiver
    verifies (:func:`revops_pipelines.webhooks.signatures.sign_generic`: ``X-RevOps-Timestamp``,
    ``X-RevOps-Nonce``, ``X-RevOps-Signature: v1=hex(HMAC-SHA256(secret, "{ts}.{nonce}.{body}"))``), plus
    an ``Idempotency-Key`` header (httpx). 429/5xx/timeouts are transient; other 4xx permanent."""

    type = "webhook"

    def __init__(self, url: str | None, secret: str | None, allowed_hosts: list[str], client: Any = None):
        self.url, self.secret, self.allowed = url, secret, set(allowed_hosts)
        self.client = client

    def verify(self, params: dict[str, Any]) -> list[str]:
        problems = _problems(WebhookParams, params, "webhook")
        if not self.url:
            return [*problems, "webhook_url: not configured"]
        parts = urlsplit(self.url)
        if parts.hostname not in self.allowed:
            problems.append(
                f"webhook_url: host {parts.hostname} is not in the allow-list {sorted(self.allowed)}"
            )
        if parts.scheme != "https" and parts.hostname not in ("127.0.0.1", "localhost"):
            problems.append("webhook_url: must use https")
        if not self.secret:
            problems.append("webhook_secret: not configured")
        return problems

    def execute(self, params: dict[str, Any], key: str) -> dict[str, Any]:
        import httpx

        event = parse(WebhookParams, params).model_dump()
        body = json.dumps({"id": key, **event}, sort_keys=True).encode()
        headers = {
            "Content-Type": "application/json",
            **sign_generic(self.secret or "", body),  # a fresh timestamp and nonce per attempt
            "Idempotency-Key": key,
        }
        client = self.client or httpx.Client(timeout=10)
        try:
            r = client.post(self.url, content=body, headers=headers)
        except httpx.TransportError as e:
            raise TransientError(f"webhook: {type(e).__name__}: {e}") from None
        if r.status_code == 429 or r.status_code >= 500:
            ra = r.headers.get("Retry-After")
            raise TransientError(f"webhook: HTTP {r.status_code}", float(ra) if ra else None)
        if r.status_code >= 400:
            raise PermanentError(f"webhook: HTTP {r.status_code} {r.text[:200]}")
        return {"status_code": r.status_code}

    def find(self, params: dict[str, Any], key: str) -> dict[str, Any] | None:
        return None  # the receiver de-duplicates on Idempotency-Key

    def confirm(self, params: dict[str, Any], result: dict[str, Any]) -> bool:
        return 200 <= int(result["status_code"]) < 300


# ---- email draft and warehouse write-back --------------------------------------------------------------
class EmailDraftParams(StrictModel):
    account_id: str = Field(min_length=1)
    subject: str = Field(min_length=1, max_length=200)
    template: str = Field(default="executive_check_in", pattern=r"^[a-z_]{1,64}$")
    to_role: str = Field(default="executive_sponsor", pattern=r"^[a-z_]{1,64}$")


_TEMPLATES = {
    "executive_check_in": "Hi,\n\nAhead of your renewal we would like to review how the team is using the "
    "product and agree the next steps together. Would 30 minutes next week work?\n\nBest regards",
}


class EmailDraft:
    """Records a draft in ``email_drafts`` for a human to send; never sends."""

    type = "email_draft"

    def __init__(self, warehouse: Warehouse):
        self.warehouse = warehouse

    def verify(self, params: dict[str, Any]) -> list[str]:
        problems = _problems(EmailDraftParams, params, "email_draft")
        if not problems and params.get("template", "executive_check_in") not in _TEMPLATES:
            problems.append(f"template: unknown template {params['template']!r}")
        return problems

    def execute(self, params: dict[str, Any], key: str) -> dict[str, Any]:
        p = parse(EmailDraftParams, params)
        row = {
            "idempotency_key": key,
            "account_id": p.account_id,
            "to_role": p.to_role,
            "subject": p.subject,
            "body": _TEMPLATES[p.template],
            "template": p.template,
            "created_at": datetime.now(UTC).replace(tzinfo=None),
        }
        self.warehouse.merge(EMAIL_DRAFTS, pd.DataFrame([row], columns=EMAIL_DRAFTS.column_names))
        return {"draft_key": key}

    def find(self, params: dict[str, Any], key: str) -> dict[str, Any] | None:
        return {"draft_key": key} if self.confirm(params, {"draft_key": key}) else None

    def confirm(self, params: dict[str, Any], result: dict[str, Any]) -> bool:
        self.warehouse.ensure_table(EMAIL_DRAFTS)
        n = self.warehouse.scalar(
            "SELECT COUNT(*) FROM email_drafts WHERE idempotency_key = ?", [result["draft_key"]]
        )
        return int(n) == 1


class WritebackParams(StrictModel):
    account_id: str = Field(min_length=1)
    flag: str = Field(default="churn_risk_priority", pattern=r"^[a-z][a-z0-9_]{0,62}$")
    value: str = Field(min_length=1, max_length=200)


class WarehouseWriteback:
    """Upserts ``account_flags`` (account, flag) — idempotent by construction."""

    type = "warehouse_writeback"

    def __init__(self, warehouse: Warehouse):
        self.warehouse = warehouse

    def verify(self, params: dict[str, Any]) -> list[str]:
        return _problems(WritebackParams, params, "warehouse_writeback")

    def execute(self, params: dict[str, Any], key: str) -> dict[str, Any]:
        p = parse(WritebackParams, params)
        row = {
            "account_id": p.account_id,
            "flag": p.flag,
            "value": p.value,
            "idempotency_key": key,
            "updated_at": datetime.now(UTC).replace(tzinfo=None),
        }
        self.warehouse.merge(ACCOUNT_FLAGS, pd.DataFrame([row], columns=ACCOUNT_FLAGS.column_names))
        return {"account_id": p.account_id, "flag": p.flag}

    def find(self, params: dict[str, Any], key: str) -> dict[str, Any] | None:
        return None

    def confirm(self, params: dict[str, Any], result: dict[str, Any]) -> bool:
        v = self.warehouse.scalar(
            "SELECT value FROM account_flags WHERE account_id = ? AND flag = ?",
            [result["account_id"], result["flag"]],
        )
        return v == params["value"]
