"""The receiver: each bad request refused with its own 4xx and nothing stored; duplicates stored once;
Slack and HubSpot payloads; rate limits with Retry-After; the OpenAPI document."""

import json
import time

import pytest

from revops_pipelines.webhooks import signatures as sig
from revops_pipelines.webhooks.ratelimit import RateLimiter
from tests.webhooks.conftest import SECRETS, escalation, generic_request, slack_request


def _stored(store) -> int:
    return sum(store.counts().values())


def _no_secret_in(response) -> None:
    text = response.text
    for secret in SECRETS.values():
        assert secret not in text


def _bad_signature():
    body, h = generic_request(escalation())
    return body, {
        **h,
        sig.GENERIC_SIG: sig.generic_signature("wrong-secret", h[sig.GENERIC_TS], h[sig.GENERIC_NONCE], body),
    }


def _stale():
    return generic_request(escalation(), now=time.time() - 301)


def _oversize():
    doc = escalation()
    doc["data"]["reason"] = "x" * 300_000  # over the 256 KiB default, signed correctly
    return generic_request(doc)


def _malformed():
    return generic_request(b'{"event_id": "e1", "event_type": ')


def _wrong_type():
    body, h = generic_request(escalation())
    return body, {**h, "Content-Type": "application/x-www-form-urlencoded"}


def _schema():
    doc = escalation()
    doc["data"]["severity"] = "apocalyptic"
    del doc["entity"]["id"]
    return generic_request(doc)


def _missing_nonce():
    body, h = generic_request(escalation())
    return body, {k: v for k, v in h.items() if k != sig.GENERIC_NONCE}


CASES = {
    "wrong signature": (_bad_signature, 401, "bad_signature", "X-RevOps-Signature does not match"),
    "stale timestamp": (_stale, 401, "stale_timestamp", "more than 5 minutes"),
    "missing nonce": (_missing_nonce, 401, "missing_header", "missing header X-RevOps-Nonce"),
    "oversize body": (_oversize, 413, "body_too_large", "exceeds 262144 bytes"),
    "malformed JSON": (_malformed, 400, "malformed_json", "line 1 column"),
    "wrong content type": (_wrong_type, 415, "unsupported_media_type", "application/json"),
    "schema": (_schema, 422, "invalid_payload", "payload does not match"),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_each_bad_request_gets_its_own_4xx_and_nothing_is_stored(client, store, case):
    build, status, code, message = CASES[case]
    body, headers = build()
    r = client.post("/webhooks/generic", content=body, headers=headers)
    assert r.status_code == status, r.text
    assert r.json()["error"] == code and message in r.json()["message"]
    _no_secret_in(r)
    assert headers.get(sig.GENERIC_SIG, "-") not in r.text
    assert _stored(store) == 0


def test_schema_errors_name_every_field(client, store):
    body, headers = _schema()
    problems = client.post("/webhooks/generic", content=body, headers=headers).json()["problems"]
    assert any(p.startswith("entity.id:") for p in problems), problems
    doc = escalation()
    doc["data"]["severity"] = "apocalyptic"
    body, headers = generic_request(doc)
    problems = client.post("/webhooks/generic", content=body, headers=headers).json()["problems"]
    assert problems == [p for p in problems if p.startswith("data.severity:")] and problems
    doc["event_type"] = "meteor_strike"
    body, headers = generic_request(doc)
    problems = client.post("/webhooks/generic", content=body, headers=headers).json()["problems"]
    assert "unknown event type 'meteor_strike'" in problems[0] and "support_escalation" in problems[0]
    assert _stored(store) == 0


def test_streamed_oversize_body_without_content_length_is_cut_off(client, store):
    body, headers = _oversize()

    def chunks():
        for i in range(0, len(body), 16_384):
            yield body[i : i + 16_384]

    r = client.post("/webhooks/generic", content=chunks(), headers=headers)
    assert r.status_code == 413 and r.json()["error"] == "body_too_large"
    assert _stored(store) == 0


def test_replayed_nonce_is_refused_and_adds_nothing(client, store):
    body, headers = generic_request(escalation("esc-1"))
    assert client.post("/webhooks/generic", content=body, headers=headers).status_code == 200
    r = client.post("/webhooks/generic", content=body, headers=headers)
    assert r.status_code == 409 and r.json()["error"] == "replayed_nonce"
    assert _stored(store) == 1


def test_duplicate_event_id_is_acknowledged_and_stored_once(client, store):
    doc = escalation("esc-dup")
    first = client.post("/webhooks/generic", content=(g := generic_request(doc))[0], headers=g[1])
    again = client.post("/webhooks/generic", content=(g := generic_request(doc))[0], headers=g[1])
    assert first.status_code == again.status_code == 200
    assert first.json() == {"accepted": 1, "duplicates": 0, "event_ids": ["esc-dup"]}
    assert again.json() == {"accepted": 0, "duplicates": 1, "event_ids": ["esc-dup"]}
    (rec,) = store.list()
    assert (rec.key, rec.event_type, rec.entity_id, rec.status) == (
        "generic:esc-dup",
        "support_escalation",
        "001A0",
        "received",
    )
    assert rec.payload["data"]["severity"] == "critical"


def test_unconfigured_source_is_refused_even_when_signed(make_client, store):
    client = make_client(secrets={"generic": SECRETS["generic"]})
    body, headers = generic_request(escalation(), secret="anything")
    r = client.post("/webhooks/gong", content=body, headers=headers)
    assert r.status_code == 503 and r.json()["error"] == "source_not_configured"
    assert "REVOPS_WEBHOOK_SECRET_GONG" in r.json()["message"]
    r = client.post("/webhooks/nope", content=body, headers=headers)
    assert r.status_code == 404 and r.json()["error"] == "unknown_source"
    assert _stored(store) == 0


def test_slack_events_api(client, store):
    body, headers = slack_request({"type": "url_verification", "token": "legacy", "challenge": "abc123"})
    r = client.post("/webhooks/slack", content=body, headers=headers)
    assert r.status_code == 200 and r.json() == {"challenge": "abc123"}
    doc = {
        "type": "event_callback",
        "token": "legacy-verification-token",
        "team_id": "T1",
        "event_id": "Ev123",
        "event_time": 1767225600,
        "event": {"type": "app_mention", "channel": "C42", "user": "U1", "text": "<@bot> escalate"},
    }
    body, headers = slack_request(doc, ts=int(time.time()) - 400)
    r = client.post("/webhooks/slack", content=body, headers=headers)
    assert r.status_code == 401 and r.json()["error"] == "stale_timestamp"
    body, headers = slack_request(doc)
    assert client.post("/webhooks/slack", content=body, headers=headers).json()["accepted"] == 1
    (rec,) = store.list()
    assert (rec.key, rec.event_type, rec.entity_type, rec.entity_id) == (
        "slack:Ev123",
        "slack_app_mention",
        "channel",
        "C42",
    )
    assert "token" not in rec.payload  # Slack's legacy verification token is not kept


def test_hubspot_v3_batch(client, store):
    ts = int(time.time() * 1000)
    events = [
        {
            "eventId": 100 + i,
            "subscriptionId": 7,
            "portalId": 99,
            "occurredAt": ts,
            "subscriptionType": "deal.creation" if i < 2 else "company.propertyChange",
            "objectId": 5000 + i,
            "attemptNumber": 0,
            "propertyName": None if i < 2 else "lifecyclestage",
            "propertyValue": None if i < 2 else "customer",
        }
        for i in range(3)
    ]
    body = json.dumps(events).encode()
    uri = "http://testserver/webhooks/hubspot"
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        sig.HUBSPOT_TS: str(ts),
        sig.HUBSPOT_SIG: sig.hubspot_v3_signature(SECRETS["hubspot"], "POST", uri, body, ts),
    }
    r = client.post("/webhooks/hubspot", content=body, headers=headers)
    assert r.status_code == 200 and r.json()["accepted"] == 3
    got = [(e.event_id, e.event_type, e.entity_type, e.entity_id) for e in store.list()]
    assert got == [
        ("100", "hubspot_deal_creation", "deal", "5000"),
        ("101", "hubspot_deal_creation", "deal", "5001"),
        ("102", "hubspot_company_property_change", "company", "5002"),
    ]
    r = client.post("/webhooks/hubspot", content=body, headers={**headers, sig.HUBSPOT_TS: str(ts + 1)})
    assert r.status_code == 401 and r.json()["error"] == "bad_signature"


def test_burst_past_the_client_limit_gets_429_with_retry_after(make_client, store):
    client = make_client(source_rate=1000, client_rate=5)  # burst 10
    statuses, retry_after = [], []
    for _ in range(25):
        body, headers = generic_request(escalation())
        r = client.post("/webhooks/generic", content=body, headers=headers)
        statuses.append(r.status_code)
        if r.status_code == 429:
            retry_after.append(int(r.headers["Retry-After"]))
            assert r.json()["error"] == "rate_limited"
    assert 10 <= statuses.count(200) <= 12 and statuses.count(429) >= 13
    assert set(statuses) == {200, 429} and all(s >= 1 for s in retry_after)
    assert _stored(store) == statuses.count(200)
    other = make_client(app=client.app, host="10.0.0.2")  # another client still gets through
    body, headers = generic_request(escalation())
    assert other.post("/webhooks/generic", content=body, headers=headers).status_code == 200


def test_source_limit_holds_across_clients():
    now = [0.0]
    limiter = RateLimiter(source_rate=2, client_rate=100, clock=lambda: now[0])  # source burst 4
    admitted = [limiter.check("gong", f"10.0.0.{i}") for i in range(6)]
    assert admitted[:4] == [0, 0, 0, 0] and admitted[4] >= 1 and admitted[5] >= 1
    assert limiter.check("slack", "10.0.0.1") == 0  # per source
    now[0] += 0.5  # one token back at 2/s
    assert limiter.check("gong", "10.0.0.9") == 0 and limiter.check("gong", "10.0.0.9") == 1


def test_openapi_document_is_valid_and_served(client):
    from openapi_spec_validator import validate

    doc = client.get("/openapi.json").json()
    validate(doc)
    assert set(doc["paths"]) == {f"/webhooks/{s}" for s in ("slack", "hubspot", "gong", "generic")} | {
        "/healthz"
    }
    responses = doc["paths"]["/webhooks/generic"]["post"]["responses"]
    assert {"200", "400", "401", "409", "413", "415", "422", "429", "503"} <= set(responses)
    assert "SupportEscalationData" in doc["components"]["schemas"]
