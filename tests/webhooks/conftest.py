import json
import time
import uuid

import pytest
from starlette.testclient import TestClient

from revops_pipelines.credentials import ApiKeyCredential
from revops_pipelines.settings import load_settings
from revops_pipelines.webhooks import signatures as sig
from revops_pipelines.webhooks.app import create_app
from revops_pipelines.webhooks.ratelimit import RateLimiter
from revops_pipelines.webhooks.store import EventStore

SECRETS = {
    "generic": "generic-secret-0123456789",
    "gong": "gong-secret-0123456789",
    "slack": "8f742231b10e8888abcd99yyyzzz85a5",
    "hubspot": "hubspot-client-secret-0123",
}


def escalation(event_id: str | None = None, account: str = "001A0", severity: str = "critical") -> dict:
    return {
        "event_id": event_id or f"esc-{uuid.uuid4().hex[:12]}",
        "event_type": "support_escalation",
        "occurred_at": "2026-01-05T09:30:00Z",
        "entity": {"type": "account", "id": account},
        "data": {"ticket_id": "T-42", "severity": severity, "subject": "Sync down for all users"},
    }


def generic_request(doc, secret: str = SECRETS["generic"], **kw) -> tuple[bytes, dict[str, str]]:
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return body, {"Content-Type": "application/json", **sig.sign_generic(secret, body, **kw)}


def slack_request(doc, secret: str = SECRETS["slack"], ts: int | None = None) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(doc).encode()
    ts = int(time.time()) if ts is None else ts
    return body, {
        "Content-Type": "application/json",
        sig.SLACK_TS: str(ts),
        sig.SLACK_SIG: sig.slack_signature(secret, ts, body),
    }


@pytest.fixture
def store(runtime_env):
    return EventStore(load_settings().events_path)


@pytest.fixture
def make_client(runtime_env):
    clients = []

    def _make(
        source_rate: float = 10_000, client_rate: float = 10_000, secrets=None, app=None, host="10.0.0.1"
    ):
        secrets = SECRETS if secrets is None else secrets
        creds = {k: ApiKeyCredential(token=v) for k, v in secrets.items()}
        app = app or create_app(secrets=creds, limiter=RateLimiter(source_rate, client_rate))
        c = TestClient(app, base_url="http://testserver", client=(host, 50000))
        c.__enter__()
        clients.append(c)
        return c

    yield _make
    for c in clients:
        c.__exit__(None, None, None)


@pytest.fixture
def client(make_client):
    return make_client()
