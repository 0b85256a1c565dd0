"""Payload schemas per source and per event type, and their normalisation into stored events.

* ``generic`` and ``gong``: our envelope :class:`Envelope` — ``event_id``, ``event_type``,
  ``occurred_at``, ``entity`` ``{type, id}`` and ``data``, whose schema depends on ``event_type``
  (:data:`EVENT_TYPES`; add your own with :func:`register_event_type`). Unknown fields are errors.
* ``slack``: the Events API — ``event_callback`` (stored as ``slack_<event.type>``, entity = channel)
  and ``url_verification`` (answered with its challenge, not stored). Slack's extra fields are kept.
* ``hubspot``: a webhook delivery, a JSON array of 1-100 events (``eventId``, ``subscriptionType`` such
  as ``deal.creation`` → stored as ``hubspot_deal_creation``, ``objectId`` → entity).

Every problem is reported with its field path (``entity.id: ...``) through
:class:`~revops_pipelines.errors.ValidationFailed`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from revops_pipelines.errors import ValidationFailed
from revops_pipelines.validation import StrictModel, format_errors
from revops_pipelines.webhooks.store import NewEvent

EVENT_NAME = r"^[a-z][a-z0-9_]{0,62}$"  # the flow language's trigger.event pattern
EVENT_ID = r"^[A-Za-z0-9._:~@-]{1,200}$"
EntityType = Literal["account", "opportunity", "ticket", "contact", "call", "deal", "company", "channel"]


class EntityRef(StrictModel):
    type: EntityType = Field(description="Kind of entity the event is about.")
    id: str = Field(min_length=1, max_length=200, description="Its id (e.g. the Salesforce account id).")


class Envelope(StrictModel):
    """The generic / Gong event envelope."""

    event_id: str = Field(pattern=EVENT_ID, description="Unique per source; a redelivery reuses it.")
    event_type: str = Field(pattern=EVENT_NAME, description="One of the registered event types.")
    occurred_at: datetime
    entity: EntityRef
    data: dict[str, Any] = Field(default_factory=dict, description="Schema depends on event_type.")


class SupportEscalation(StrictModel):
    ticket_id: str = Field(min_length=1, max_length=100)
    severity: Literal["low", "medium", "high", "critical"]
    subject: str = Field(min_length=1, max_length=300)
    reason: str = Field(default="", max_length=2000)


class RenewalOpportunityCreated(StrictModel):
    opportunity_id: str = Field(min_length=1, max_length=100)
    amount: float = Field(ge=0)
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    close_date: date


class CallCompleted(StrictModel):
    call_id: str = Field(min_length=1, max_length=100)
    title: str = Field(default="", max_length=300)
    duration_s: int = Field(ge=0)
    participants: int = Field(default=0, ge=0)


@dataclass(frozen=True)
class EventType:
    name: str
    data: type[BaseModel]
    entity_types: tuple[str, ...]
    sources: tuple[str, ...]
    description: str = ""


EVENT_TYPES: dict[str, EventType] = {}


def register_event_type(
    name: str,
    data: type[BaseModel],
    entity_types: tuple[str, ...] = ("account",),
    sources: tuple[str, ...] = ("generic",),
    description: str = "",
) -> EventType:
    """Make ``event_type: name`` acceptable on ``sources`` (generic/gong envelopes)."""
    if not re.match(EVENT_NAME, name):
        raise ValueError(f"event type {name!r} must match {EVENT_NAME}")
    et = EventType(name, data, entity_types, sources, description)
    EVENT_TYPES[name] = et
    return et


register_event_type(
    "support_escalation", SupportEscalation, description="A support ticket was escalated for an account."
)
register_event_type(
    "renewal_opportunity_created",
    RenewalOpportunityCreated,
    description="A renewal opportunity was opened for an account.",
)
register_event_type(
    "call_completed", CallCompleted, sources=("gong", "generic"), description="A recorded call ended."
)


class _Vendor(BaseModel):
    model_config = ConfigDict(extra="allow")  # vendors add fields; we keep them in the payload


class SlackInner(_Vendor):
    type: str = Field(pattern=r"^[a-z][a-z0-9_]{0,40}$")
    channel: str | None = None
    user: str | None = None
    text: str | None = None


class SlackEventCallback(_Vendor):
    type: Literal["event_callback"]
    event_id: str = Field(pattern=EVENT_ID)
    event_time: int
    team_id: str = Field(min_length=1)
    event: SlackInner


class SlackUrlVerification(_Vendor):
    type: Literal["url_verification"]
    challenge: str = Field(min_length=1, max_length=200)


class HubSpotEvent(_Vendor):
    eventId: int  # noqa: N815 - HubSpot's field names
    subscriptionId: int  # noqa: N815
    portalId: int  # noqa: N815
    occurredAt: int  # noqa: N815
    subscriptionType: str = Field(pattern=r"^[a-z_]+\.[A-Za-z_]+$")  # noqa: N815
    objectId: int  # noqa: N815
    attemptNumber: int = 0  # noqa: N815
    propertyName: str | None = None  # noqa: N815
    propertyValue: str | None = None  # noqa: N815


class HubSpotDelivery(BaseModel):
    events: list[HubSpotEvent] = Field(min_length=1, max_length=100)


@dataclass(frozen=True)
class Challenge:
    """A Slack ``url_verification``: answered, not stored."""

    challenge: str


def _validate(model: type[BaseModel], doc: Any, prefix: str = "") -> Any:
    try:
        return model.model_validate(doc)
    except ValidationError as err:
        raise ValidationFailed("payload", [prefix + m for m in format_errors(err)]) from None


def _snake(s: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", s).lower().replace(".", "_")


def _envelope_events(source: str, env: Envelope, doc: Any, raw: bytes | None) -> list[NewEvent]:
    """The event of a valid generic/Gong envelope, once its type, entity and data check out; stored as
    received (``raw``) when given, else as ``doc``."""
    et = EVENT_TYPES.get(env.event_type)
    if et is None or source not in et.sources:
        known = sorted(n for n, t in EVENT_TYPES.items() if source in t.sources)
        raise ValidationFailed(
            "payload",
            [f"event_type: unknown event type {env.event_type!r} for {source} (one of {known})"],
        )
    if env.entity.type not in et.entity_types:
        raise ValidationFailed(
            "payload", [f"entity.type: {env.event_type} needs an entity of type {list(et.entity_types)}"]
        )
    _validate(et.data, env.data, "data.")
    return [
        NewEvent(
            source,
            env.event_id,
            env.event_type,
            env.entity.type,
            env.entity.id,
            env.occurred_at.isoformat(),
            None if raw is not None else doc,
            raw.decode() if raw is not None else None,
        )
    ]


def normalise(source: str, doc: Any, raw: bytes | None = None) -> list[NewEvent] | Challenge:
    """Validate ``doc`` (parsed JSON) for ``source`` and turn it into events to store. A generic/Gong
    event is stored as received (``raw``, the request body, when given); Slack's and HubSpot's are
    stored as validated (Slack's legacy ``token`` dropped; one row per HubSpot event)."""
    if source in ("generic", "gong"):
        return _envelope_events(source, _validate(Envelope, doc), doc, raw)
    if source == "slack":
        if isinstance(doc, dict) and doc.get("type") == "url_verification":
            return Challenge(_validate(SlackUrlVerification, doc).challenge)
        if not isinstance(doc, dict) or doc.get("type") != "event_callback":
            raise ValidationFailed("payload", ["type: expected 'event_callback' or 'url_verification'"])
        ev = _validate(SlackEventCallback, doc)
        occurred = datetime.fromtimestamp(ev.event_time, UTC).isoformat()
        payload = ev.model_dump(mode="json", exclude={"token"})  # Slack's legacy verification token
        return [
            NewEvent(
                source,
                ev.event_id,
                f"slack_{ev.event.type}",
                "channel",
                ev.event.channel or ev.team_id,
                occurred,
                payload,
            )
        ]
    if source == "hubspot":
        if not isinstance(doc, list):
            raise ValidationFailed("payload", ["<root>: a HubSpot delivery is a JSON array of events"])
        batch = _validate(HubSpotDelivery, {"events": doc})
        return [
            NewEvent(
                source,
                str(e.eventId),
                "hubspot_" + _snake(e.subscriptionType),
                e.subscriptionType.split(".")[0],
                str(e.objectId),
                datetime.fromtimestamp(e.occurredAt / 1000, UTC).isoformat(),
                e.model_dump(mode="json"),
            )
            for e in batch.events
        ]
    raise ValidationFailed("payload", [f"source: unknown source {source!r}"])


MALFORMED = "json"  # ValidationFailed.what of a body that is not JSON (answered 400, not 422)


def _parse(body: bytes) -> Any:
    try:
        return json.loads(body)
    except json.JSONDecodeError as e:
        raise ValidationFailed(
            MALFORMED, [f"body is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}"]
        ) from None
    except UnicodeDecodeError:
        raise ValidationFailed(MALFORMED, ["body is not UTF-8"]) from None


def normalise_json(source: str, body: bytes) -> list[NewEvent] | Challenge:
    """:func:`normalise` of a request body. A generic/Gong envelope is parsed and validated in one pass
    (pydantic's JSON parser) and stored verbatim; anything else — other sources, or a body that is not
    JSON or not an envelope — goes through ``json.loads`` + :func:`normalise`, so the answer is the same
    (``ValidationFailed`` with ``what == MALFORMED`` for a body that is not JSON, line and column given;
    the schema problems otherwise)."""
    if source in ("generic", "gong"):
        try:
            env = Envelope.model_validate_json(body)
        except ValidationError:
            pass  # not JSON, or not an envelope: the slow path words the error exactly as before
        else:
            return _envelope_events(source, env, None, body)
    return normalise(source, _parse(body), body)


def openapi_schemas() -> dict[str, Any]:
    """JSON Schemas of every payload, for the OpenAPI document."""
    out: dict[str, Any] = {}
    for model in (Envelope, SlackEventCallback, SlackUrlVerification, HubSpotEvent):
        out[model.__name__] = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for et in EVENT_TYPES.values():
        name = "".join(p.title() for p in et.name.split("_")) + "Data"
        out[name] = et.data.model_json_schema(ref_template="#/components/schemas/{model}")
    for schema in list(out.values()):  # hoist nested definitions into components
        for k, v in schema.pop("$defs", {}).items():
            out.setdefault(k, v)
    return out
