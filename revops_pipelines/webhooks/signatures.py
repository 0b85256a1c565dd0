"""Request signatures: verify inbound webhooks (Slack v0, HubSpot v3, the generic/Gong HMAC scheme) and
sign outbound ones (the Execution Agent's webhooks use the generic scheme).

Every comparison is constant-time (:func:`hmac.compare_digest`); every timestamp must lie within
:data:`TOLERANCE_S` (5 minutes) of the receiver's clock. Errors say which header was wrong and never
contain a signature or a secret.

Schemes:

* **Slack v0** — ``X-Slack-Signature: v0=hex(HMAC-SHA256(secret, "v0:{ts}:{body}"))`` with
  ``X-Slack-Request-Timestamp`` (seconds).
* **HubSpot v3** — ``X-HubSpot-Signature-v3: base64(HMAC-SHA256(secret, method + uri + body + ts))`` with
  ``X-HubSpot-Request-Timestamp`` (milliseconds); ``uri`` is the full URL HubSpot called.
* **Generic / Gong** — ``X-RevOps-Signature: v1=hex(HMAC-SHA256(secret, "{ts}.{nonce}.{body}"))`` with
  ``X-RevOps-Timestamp`` (seconds) and ``X-RevOps-Nonce`` (8-128 characters, used once per source;
  the receiver records nonces).
"""

from __future__ import annotations

import base64
import hmac
import re
import secrets
import time
from collections.abc import Mapping

TOLERANCE_S = 300
GENERIC_TS, GENERIC_NONCE, GENERIC_SIG = "X-RevOps-Timestamp", "X-RevOps-Nonce", "X-RevOps-Signature"
SLACK_TS, SLACK_SIG = "X-Slack-Request-Timestamp", "X-Slack-Signature"
HUBSPOT_TS, HUBSPOT_SIG = "X-HubSpot-Request-Timestamp", "X-HubSpot-Signature-v3"
_NONCE = re.compile(r"^[A-Za-z0-9._~-]{8,128}$")


class SignatureError(Exception):
    """A request failed authentication. ``code`` is machine-readable; the message names the header."""

    def __init__(self, code: str, message: str):
        self.code = code
        super().__init__(message)


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name.lower()) or headers.get(name)  # ASGI servers give lower-case names
    if not value:
        raise SignatureError("missing_header", f"missing header {name}")
    return value


def _timestamp(raw: str, name: str, now: float, scale: int = 1) -> int:
    if not raw.isdigit():
        raise SignatureError("bad_timestamp", f"{name} must be an integer Unix timestamp")
    ts = int(raw)
    if abs(now - ts / scale) > TOLERANCE_S:
        raise SignatureError(
            "stale_timestamp", f"{name} is more than {TOLERANCE_S // 60} minutes from the receiver's clock"
        )
    return ts


def _check(expected: str, given: str, header: str) -> None:
    if not hmac.compare_digest(expected.encode(), given.encode()):
        raise SignatureError("bad_signature", f"{header} does not match the request body")


# ---- Slack v0 -------------------------------------------------------------------------------------------
def slack_signature(secret: str, timestamp: int | str, body: bytes) -> str:
    return "v0=" + hmac.digest(secret.encode(), f"v0:{timestamp}:".encode() + body, "sha256").hex()


def verify_slack(secret: str, headers: Mapping[str, str], body: bytes, now: float | None = None) -> None:
    now = time.time() if now is None else now
    ts = _timestamp(_header(headers, SLACK_TS), SLACK_TS, now)
    _check(slack_signature(secret, ts, body), _header(headers, SLACK_SIG), SLACK_SIG)


# ---- HubSpot v3 -----------------------------------------------------------------------------------------
def hubspot_v3_signature(secret: str, method: str, uri: str, body: bytes, timestamp_ms: int | str) -> str:
    message = method.upper().encode() + uri.encode() + body + str(timestamp_ms).encode()
    return base64.b64encode(hmac.digest(secret.encode(), message, "sha256")).decode()


def verify_hubspot_v3(
    secret: str, method: str, uri: str, headers: Mapping[str, str], body: bytes, now: float | None = None
) -> None:
    now = time.time() if now is None else now
    ts = _timestamp(_header(headers, HUBSPOT_TS), HUBSPOT_TS, now, scale=1000)
    _check(hubspot_v3_signature(secret, method, uri, body, ts), _header(headers, HUBSPOT_SIG), HUBSPOT_SIG)


# ---- generic / Gong (and the Execution Agent's outbound webhooks) -------------------------------------------
def generic_signature(secret: str, timestamp: int | str, nonce: str, body: bytes) -> str:
    return "v1=" + hmac.digest(secret.encode(), f"{timestamp}.{nonce}.".encode() + body, "sha256").hex()


def sign_generic(
    secret: str, body: bytes, now: float | None = None, nonce: str | None = None
) -> dict[str, str]:
    """Headers for an outbound request signed with the generic scheme (a fresh nonce each call)."""
    ts = int(time.time() if now is None else now)
    nonce = nonce or secrets.token_urlsafe(18)
    return {
        GENERIC_TS: str(ts),
        GENERIC_NONCE: nonce,
        GENERIC_SIG: generic_signature(secret, ts, nonce, body),
    }


def verify_generic(secret: str, headers: Mapping[str, str], body: bytes, now: float | None = None) -> str:
    """Check timestamp window and signature; returns the nonce (the caller records it, once)."""
    now = time.time() if now is None else now
    ts = _timestamp(_header(headers, GENERIC_TS), GENERIC_TS, now)
    nonce = _header(headers, GENERIC_NONCE)
    if not _NONCE.match(nonce):
        raise SignatureError("bad_nonce", f"{GENERIC_NONCE} must be 8-128 characters of [A-Za-z0-9._~-]")
    _check(generic_signature(secret, ts, nonce, body), _header(headers, GENERIC_SIG), GENERIC_SIG)
    return nonce
