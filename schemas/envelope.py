"""CloudEvents 1.0 envelope shared by every event vanda publishes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

Data = TypeVar("Data", bound=BaseModel)

SPECVERSION = "1.0"
DATASCHEMA_BASE = "https://vanda.example/schemas"


class CloudEvent(BaseModel, Generic[Data]):
    """A CloudEvents 1.0 event in structured JSON mode."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    specversion: Literal["1.0"] = Field(SPECVERSION, description="CloudEvents version.")
    id: str = Field(description="Stable event id: subscribers dedupe on it.")
    source: str = Field(description="URI reference of the producing service.")
    type: str = Field(description="Reverse-DNS event type, e.g. uk.nhs.vanda.incident.reported.v1.")
    time: datetime = Field(description="When the fact happened in vanda (UTC).")
    subject: str | None = Field(None, description="Pseudonymous subject id or incident id.")
    datacontenttype: Literal["application/json"] = "application/json"
    dataschema: str = Field(description="URI of the JSON Schema of `data`.")
    data: Data


def new_event_id() -> str:
    """Return a fresh, globally unique event id."""
    return str(uuid.uuid4())


def utcnow() -> datetime:
    """Current time in UTC; only adapters call it, never the domain."""
    return datetime.now(UTC)
