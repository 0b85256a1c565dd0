"""The three signature schemes, against a documented vector (Slack) and independent computations."""

import base64
import hashlib
import hmac
import time

import pytest

from revops_pipelines.webhooks import signatures as sig

SLACK_DOC_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SLACK_DOC_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
    b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
    b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)


def test_slack_v0_matches_slacks_documented_example():
    headers = {
        sig.SLACK_TS: "1531420618",
        sig.SLACK_SIG: "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
    }
    sig.verify_slack(SLACK_DOC_SECRET, headers, SLACK_DOC_BODY, now=1531420618 + 10)
    with pytest.raises(sig.SignatureError) as e:
        sig.verify_slack(SLACK_DOC_SECRET, headers, SLACK_DOC_BODY + b"x", now=1531420618)
    assert e.value.code == "bad_signature"
    with pytest.raises(sig.SignatureError) as e:
        sig.verify_slack(SLACK_DOC_SECRET, headers, SLACK_DOC_BODY, now=1531420618 + 301)
    assert e.value.code == "stale_timestamp"


def test_hubspot_v3_is_base64_hmac_of_method_uri_body_timestamp():
    secret, uri, body, ts = (
        "hs-secret",
        "https://hooks.example.com/webhooks/hubspot?x=1",
        b"[]",
        1767225600000,
    )
    expected = base64.b64encode(
        hmac.new(secret.encode(), b"POST" + uri.encode() + body + str(ts).encode(), hashlib.sha256).digest()
    ).decode()
    assert sig.hubspot_v3_signature(secret, "post", uri, body, ts) == expected
    headers = {sig.HUBSPOT_TS: str(ts), sig.HUBSPOT_SIG: expected}
    sig.verify_hubspot_v3(secret, "POST", uri, headers, body, now=ts / 1000 + 299)
    with pytest.raises(sig.SignatureError, match="X-HubSpot-Signature-v3"):
        sig.verify_hubspot_v3(secret, "POST", uri.replace("x=1", "x=2"), headers, body, now=ts / 1000)
    with pytest.raises(sig.SignatureError) as e:  # milliseconds: 5 minutes is 300,000
        sig.verify_hubspot_v3(secret, "POST", uri, headers, body, now=ts / 1000 + 301)
    assert e.value.code == "stale_timestamp"


def test_generic_scheme_covers_timestamp_nonce_and_body():
    body = b'{"a":1}'
    h = sig.sign_generic("s3cret", body, now=1_700_000_000, nonce="nonce-0001")
    expected = hmac.new(b"s3cret", b"1700000000.nonce-0001." + body, hashlib.sha256).hexdigest()
    assert h[sig.GENERIC_SIG] == "v1=" + expected
    assert sig.verify_generic("s3cret", h, body, now=1_700_000_100) == "nonce-0001"
    for changed in ({sig.GENERIC_NONCE: "nonce-0002"}, {sig.GENERIC_TS: "1700000001"}):
        with pytest.raises(sig.SignatureError) as e:
            sig.verify_generic("s3cret", {**h, **changed}, body, now=1_700_000_000)
        assert e.value.code == "bad_signature"
    with pytest.raises(sig.SignatureError) as e:
        sig.verify_generic("other", h, body, now=1_700_000_000)
    assert e.value.code == "bad_signature" and "other" not in str(e.value) and expected not in str(e.value)
    with pytest.raises(sig.SignatureError) as e:
        sig.verify_generic(
            "s3cret", {k: v for k, v in h.items() if k != sig.GENERIC_NONCE}, body, 1_700_000_000
        )
    assert e.value.code == "missing_header" and sig.GENERIC_NONCE in str(e.value)
    fresh = sig.sign_generic("s3cret", body)
    assert fresh[sig.GENERIC_NONCE] != sig.sign_generic("s3cret", body)[sig.GENERIC_NONCE]
    assert abs(int(fresh[sig.GENERIC_TS]) - time.time()) < 5
