"""Event registry and codec: build, encode and decode CloudEvents by type."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import orjson
from pydantic import ValidationError

from schemas.base import EventData
from schemas.envelope import DATASCHEMA_BASE, CloudEvent, new_event_id, utcnow
from schemas.incidents import IncidentAmended, IncidentReported, IncidentWithdrawn
from schemas.reporting import (
    BoardMetricsPublished,
    FootageDeletionDue,
    FootageHoldRequired,
    PoliceReferralRequired,
    PoliceReferralRetracted,
)
from schemas.sanctions import (
    AppealDecided,
    AppealLodged,
    BanExpired,
    BanImposed,
    BanReviewDue,
    ClinicalReviewRequested,
    EvidenceAttached,
    RedCardEndorsed,
    RedCardProposed,
    RedCardRejected,
    SafeguardingReferralRequested,
    SanctionBasisRevised,
    SanctionRescinded,
    WarningLapsed,
    YellowCardIssued,
)

EVENT_TYPES: dict[str, type[EventData]] = {
    model.event_type: model
    for model in (
        IncidentReported,
        IncidentAmended,
        IncidentWithdrawn,
        YellowCardIssued,
        RedCardProposed,
        ClinicalReviewRequested,
        SafeguardingReferralRequested,
        EvidenceAttached,
        RedCardRejected,
        RedCardEndorsed,
        BanImposed,
        BanReviewDue,
        BanExpired,
        WarningLapsed,
        SanctionRescinded,
        SanctionBasisRevised,
        AppealLodged,
        AppealDecided,
        PoliceReferralRequired,
        PoliceReferralRetracted,
        FootageHoldRequired,
        FootageDeletionDue,
        BoardMetricsPublished,
    )
}

CONTENT_TYPE = "application/cloudevents+json"

# Parametrised once: pydantic's own lookup of CloudEvent[Model] showed in every consumer's profile.
ENVELOPES: dict[type[EventData], type[CloudEvent[Any]]] = {
    m: CloudEvent[m] for m in EVENT_TYPES.values()  # type: ignore[valid-type]
}


class UnknownEventType(ValueError):
    """A well-formed event whose type this version does not know."""


def dataschema_uri(model: type[EventData]) -> str:
    """URI of a payload's JSON Schema (files under schemas/json/)."""
    return f"{DATASCHEMA_BASE}/{model.schema_name()}.schema.json"


def envelope(
    data: EventData,
    *,
    source: str,
    subject: str | None,
    event_id: str | None = None,
    time: datetime | None = None,
) -> CloudEvent[Any]:
    """Wrap a payload in a CloudEvent; pass `event_id` to keep it stable on re-send."""
    model = type(data)
    cls = ENVELOPES.get(model) or CloudEvent[model]  # type: ignore[valid-type]
    return cls(
        id=event_id or new_event_id(),
        source=source,
        type=data.event_type,
        time=time or utcnow(),
        subject=subject,
        dataschema=dataschema_uri(type(data)),
        data=data,
    )


def encode(event: CloudEvent[Any], data_json: str | None = None) -> bytes:
    """Serialise an event to structured-mode CloudEvents JSON.

    `data_json`, the payload's own JSON if the caller has already written it (to store it in
    a table too), is reused rather than written a second time.
    """
    # pydantic writes the JSON itself: the same bytes as dumping to dicts for orjson, in less time.
    if data_json is None:
        return event.model_dump_json().encode()
    # `data` is the envelope's last field, so its JSON closes the object: the same bytes.
    head = event.model_dump_json(exclude={"data"})
    return f'{head[:-1]},"data":{data_json}}}'.encode()


def decode(raw: bytes | str | dict[str, Any]) -> CloudEvent[Any]:
    """Parse and validate an event; raises ValueError naming what is wrong."""
    try:
        body = raw if isinstance(raw, dict) else orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ValueError("event is not a JSON object")
    kind = body.get("type")
    # Only a string is looked up or named: anything else could be nested deep enough that
    # writing it out raises RecursionError, which no caller expects of a bad event.
    model = EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise UnknownEventType(f"type: unknown event type {_named(kind)}")
    return ENVELOPES[model].model_validate(body)


# An event type's shape: dotted lower-case words and a version, digits nowhere else. The
# error becomes a dead-letter header, kept for weeks and printed by `vanda dlq list`: a type
# that is anything else is the sender's own text ("Jane Smith 9434765919"), and not repeated.
EVENT_TYPE_LIKE = re.compile(r"[a-z_]{1,40}(\.[a-z_]{1,40}){0,8}\.v[0-9]{1,3}")


def _named(kind: Any) -> str:
    if not isinstance(kind, str):
        return f"of JSON type {_json_type(kind)}"
    return repr(kind) if EVENT_TYPE_LIKE.fullmatch(kind) else "(not an event type's name)"


def _json_type(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "number",
            float: "number", type(None): "null"}.get(type(value), type(value).__name__)


def describe_error(exc: Exception) -> str:
    """One line naming each bad field and why, for DLQ headers and logs."""
    if isinstance(exc, ValidationError):
        return "; ".join(f"{field_of(err) or '(root)'}: {err['msg']}" for err in exc.errors())
    return str(exc)


# An unknown key is the sender's own text, and could be anything ("Jane Smith 9434765919"):
# it is named only when it looks like a field name someone mistyped.
FIELD_LIKE = re.compile(r"[A-Za-z_]{1,64}")


def field_of(error: Any, skip: tuple[str, ...] = ()) -> str:
    """The dotted name of the field a validation error is about, with an unknown key that
    does not look like a field name given as `(unknown field)`; `skip` drops FastAPI's
    prefixes (body, query...)."""
    parts = [str(p) for p in error["loc"] if p not in skip]
    if error.get("type") == "extra_forbidden" and parts and not FIELD_LIKE.fullmatch(parts[-1]):
        parts[-1] = "(unknown field)"
    return ".".join(parts)
