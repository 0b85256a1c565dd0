"""The webhook receiver: a Starlette ASGI app (``revops webhook serve`` runs it under uvicorn).

``POST /webhooks/{slack|hubspot|gong|generic}`` — checks, in this order, each failure with its own
status and machine-readable ``error`` code (responses never echo a header value, signature or secret):

====  ==========================  ====================================================================
404   ``unknown_source``          not one of the four sources
429   ``rate_limited``            per-source or per-client token bucket empty (``Retry-After`` seconds)
503   ``source_not_configured``   ``REVOPS_WEBHOOK_SECRET_<SOURCE>`` unset: nothing unsigned is accepted
415   ``unsupported_media_type``  Content-Type is not ``application/json``
413   ``body_too_large``          body over ``REVOPS_WEBHOOK_MAX_BYTES`` (read incrementally, never whole)
401   ``missing_header`` / ``bad_timestamp`` / ``stale_timestamp`` / ``bad_nonce`` / ``bad_signature``
400   ``malformed_json``          not UTF-8 JSON (line and column given)
422   ``invalid_payload``         schema of the source / event type (every field problem listed)
409   ``replayed_nonce``          the generic/Gong nonce was used before
====  ==========================  ====================================================================

``200`` means every event of the request is durably stored (or was already: a duplicate ``event_id``
is acknowledged again and stored once): ``{"accepted": n, "duplicates": m, "event_ids": [...]}``.
``GET /openapi.json`` serves the OpenAPI 3.1 document, ``GET /healthz`` a liveness probe.
"""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import URL
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from revops_pipelines.credentials import ApiKeyCredential, api_key_from_env
from revops_pipelines.errors import ConfigurationError, ValidationFailed
from revops_pipelines.logging import get_logger
from revops_pipelines.settings import WEBHOOK_SOURCES, Settings, load_settings, webhook_secret_var
from revops_pipelines.webhooks import signatures as sig
from revops_pipelines.webhooks.ratelimit import RateLimiter
from revops_pipelines.webhooks.schemas import MALFORMED, Challenge, normalise_json, openapi_schemas
from revops_pipelines.webhooks.store import EventStore, GroupCommitWriter, Submission

log = get_logger("webhooks")


def load_secrets(env: dict[str, str] | None = None) -> dict[str, ApiKeyCredential]:
    """Configured sources' secrets (registered with the log redactor); unset sources are left out."""
    out = {}
    for source in WEBHOOK_SOURCES:
        try:
            out[source] = api_key_from_env(webhook_secret_var(source), env)
        except ConfigurationError:
            continue
    return out


Reply = tuple[int, dict[str, Any] | bytes, dict[str, str]]
_PREFIX = "/webhooks/"
_READ = frozenset(
    h.lower().encode()
    for h in (
        "content-type",
        "content-length",
        sig.GENERIC_TS,
        sig.GENERIC_NONCE,
        sig.GENERIC_SIG,
        sig.SLACK_TS,
        sig.SLACK_SIG,
        sig.HUBSPOT_TS,
        sig.HUBSPOT_SIG,
    )
)
_JSON = json.JSONEncoder(separators=(",", ":"))  # one encoder (json.dumps with options builds one per call)


def _error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> Reply:
    return status, {"error": code, "message": message, **extra}, headers or {}


class _Disconnected(Exception):
    pass


class Receiver:
    """The ``/webhooks/{source}`` endpoint, a plain ASGI callable inside Starlette's routing (no
    per-request Request/Response objects on the hot path)."""

    def __init__(
        self,
        settings: Settings,
        secrets: dict[str, ApiKeyCredential],
        store: EventStore,
        limiter: RateLimiter,
    ):
        self.settings, self.secrets, self.store, self.limiter = settings, secrets, store, limiter
        self.max_bytes = settings.webhook_max_bytes
        self._writer: GroupCommitWriter | None = None

    @property
    def writer(self) -> GroupCommitWriter:
        if self._writer is None:
            self._writer = GroupCommitWriter(self.store)
        return self._writer

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            status, payload, headers = await self.handle(scope, receive)
        except _Disconnected:
            return
        body = payload if isinstance(payload, bytes) else _JSON.encode(payload).encode()
        raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        raw_headers += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": body})

    async def _body(self, headers: dict[str, str], receive: Any) -> bytes | Reply:
        declared = headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            return self._too_large()
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:  # stop reading: the rest of an oversize body is never buffered
                return self._too_large()
            chunks.append(chunk)
            more = message.get("more_body", False)
        return b"".join(chunks)

    def _too_large(self) -> Reply:
        return _error(413, "body_too_large", f"request body exceeds {self.max_bytes} bytes")

    def _verify(
        self, source: str, secret: str, scope: dict[str, Any], headers: dict[str, str], body: bytes
    ) -> str | None:
        if source == "slack":
            sig.verify_slack(secret, headers, body)
            return None
        if source == "hubspot":
            url = URL(scope=scope)
            uri = str(url)
            if self.settings.webhook_public_url:
                uri = self.settings.webhook_public_url + url.path + (f"?{url.query}" if url.query else "")
            sig.verify_hubspot_v3(secret, scope["method"], uri, headers, body)
            return None
        return sig.verify_generic(secret, headers, body)

    async def handle(self, scope: dict[str, Any], receive: Any) -> Reply:
        params = scope.get("path_params")
        source = params["source"] if params else scope["path"][len(_PREFIX) :]
        if source not in WEBHOOK_SOURCES:
            return _error(
                404, "unknown_source", f"unknown source {source!r} (one of {list(WEBHOOK_SOURCES)})"
            )
        client = scope["client"][0] if scope.get("client") else "unknown"
        retry_after = self.limiter.check(source, client)
        if retry_after:
            return _error(
                429,
                "rate_limited",
                f"too many requests for {source}; retry after {retry_after} s",
                headers={"Retry-After": str(retry_after)},
            )
        cred = self.secrets.get(source)
        if cred is None:
            return _error(
                503,
                "source_not_configured",
                f"{source} webhooks are not configured: set {webhook_secret_var(source)}",
            )
        # only the headers some check reads are decoded (uvicorn and Starlette give lower-case names)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"] if k in _READ}
        media = headers.get("content-type", "").split(";")[0].strip().lower()
        if media != "application/json":
            return _error(415, "unsupported_media_type", "Content-Type must be application/json")
        body = await self._body(headers, receive)
        if isinstance(body, tuple):
            return body
        try:
            nonce = self._verify(source, cred.token.get_secret_value(), scope, headers, body)
        except sig.SignatureError as e:
            log.info(f"webhook {source} from {client} rejected: {e.code}")
            return _error(401, e.code, str(e))
        try:
            events = normalise_json(source, body)
        except ValidationFailed as e:
            if e.what != MALFORMED:
                return _error(
                    422, "invalid_payload", "payload does not match its schema", problems=e.problems
                )
            return _error(400, "malformed_json", e.problems[0])
        if isinstance(events, Challenge):
            return 200, {"challenge": events.challenge}, {}
        outcome = await self.writer.submit_async(Submission(source, events, nonce))
        if outcome.replayed_nonce:
            return _error(409, "replayed_nonce", f"{sig.GENERIC_NONCE} was already used (replay)")
        if len(outcome.stored) == 1 and not outcome.duplicates:  # the common answer, without an encoder
            return (
                200,
                b'{"accepted":1,"duplicates":0,"event_ids":[%s]}' % _JSON.encode(outcome.stored[0]).encode(),
                {},
            )
        ids = outcome.stored + outcome.duplicates
        return (
            200,
            {"accepted": len(outcome.stored), "duplicates": len(outcome.duplicates), "event_ids": ids},
            {},
        )


def build_openapi() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the receiver."""
    schemas = openapi_schemas()
    schemas["Error"] = {
        "type": "object",
        "required": ["error", "message"],
        "properties": {
            "error": {"type": "string"},
            "message": {"type": "string"},
            "problems": {"type": "array", "items": {"type": "string"}},
        },
    }
    schemas["Ack"] = {
        "type": "object",
        "required": ["accepted", "duplicates", "event_ids"],
        "properties": {
            "accepted": {"type": "integer"},
            "duplicates": {"type": "integer"},
            "event_ids": {"type": "array", "items": {"type": "string"}},
        },
    }
    ref = lambda name: {"$ref": f"#/components/schemas/{name}"}  # noqa: E731
    err = lambda text: {"description": text, "content": {"application/json": {"schema": ref("Error")}}}  # noqa: E731
    errors = {
        "400": err("malformed JSON"),
        "401": err("missing/bad timestamp, nonce or signature; stale timestamp"),
        "409": err("replayed nonce"),
        "413": err("body too large"),
        "415": err("Content-Type is not application/json"),
        "422": err("payload does not match its schema"),
        "503": err("source not configured (no secret)"),
    }
    errors["429"] = {
        **err("rate limited"),
        "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}},
    }
    bodies = {
        "generic": (ref("Envelope"), [sig.GENERIC_TS, sig.GENERIC_NONCE, sig.GENERIC_SIG]),
        "gong": (ref("Envelope"), [sig.GENERIC_TS, sig.GENERIC_NONCE, sig.GENERIC_SIG]),
        "slack": (
            {"oneOf": [ref("SlackEventCallback"), ref("SlackUrlVerification")]},
            [sig.SLACK_TS, sig.SLACK_SIG],
        ),
        "hubspot": (
            {"type": "array", "minItems": 1, "maxItems": 100, "items": ref("HubSpotEvent")},
            [sig.HUBSPOT_TS, sig.HUBSPOT_SIG],
        ),
    }
    paths: dict[str, Any] = {}
    for source, (schema, headers) in bodies.items():
        paths[f"/webhooks/{source}"] = {
            "post": {
                "operationId": f"receive_{source}",
                "summary": f"Receive {source} webhook events (stored durably before the 200)",
                "parameters": [
                    {"name": h, "in": "header", "required": True, "schema": {"type": "string"}}
                    for h in headers
                ],
                "requestBody": {"required": True, "content": {"application/json": {"schema": schema}}},
                "responses": {
                    "200": {
                        "description": "stored (or already stored: duplicate event id)",
                        "content": {"application/json": {"schema": ref("Ack")}},
                    },
                    **errors,
                },
            }
        }
    paths["/healthz"] = {"get": {"operationId": "healthz", "responses": {"200": {"description": "alive"}}}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "RevOps webhook receiver",
            "version": "1",
            "description": "Signed, rate-limited webhook intake; every 200 means the events are on disk.",
        },
        "paths": paths,
        "components": {"schemas": schemas},
    }


def create_app(
    settings: Settings | None = None,
    secrets: dict[str, ApiKeyCredential] | None = None,
    store: EventStore | None = None,
    limiter: RateLimiter | None = None,
) -> WebhookApp:
    """The ASGI app; with no arguments everything comes from the environment (``uvicorn --factory``)."""
    settings = settings or load_settings()
    receiver = Receiver(
        settings,
        load_secrets() if secrets is None else secrets,
        store or EventStore(settings.events_path),
        limiter or RateLimiter(settings.webhook_rate_source, settings.webhook_rate_client),
    )
    openapi = build_openapi()

    async def openapi_json(request: Request) -> Response:
        return JSONResponse(openapi)

    async def healthz(request: Request) -> Response:
        w = receiver._writer
        stats = (
            {
                "commits": w.batches,
                "requests": w.submissions,
                "commit_s": round(w.commit_seconds, 3),
                "checkpoints": w.checkpoints,
            }
            if w
            else {}
        )
        return JSONResponse({"status": "ok", "sources": sorted(receiver.secrets), "writer": stats})

    @asynccontextmanager
    async def lifespan(app: Starlette):
        yield
        receiver.close()

    app = Starlette(
        routes=[
            Route("/webhooks/{source}", receiver, methods=["POST"]),
            Route("/openapi.json", openapi_json, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.receiver = receiver
    return WebhookApp(receiver, app)


class WebhookApp:
    """The receiver's ASGI app: ``POST /webhooks/...`` goes straight to the :class:`Receiver` (the hot
    path skips Starlette's middleware and routing: about a third of the per-request work); everything
    else — other methods (405), ``/openapi.json``, ``/healthz``, lifespan — to the Starlette app."""

    def __init__(self, receiver: Receiver, app: Starlette):
        self.receiver, self.app, self.state = receiver, app, app.state

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"].startswith(_PREFIX):
            return await self.receiver(scope, receive, send)
        return await self.app(scope, receive, send)
