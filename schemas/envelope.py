"""CloudEvents 1.0 envelope shared by every event vanda publishes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Generic, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from uuid_utils.compat import uuid7

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
    time: AwareDatetime = Field(description="When the fact happened in vanda (UTC).")
    subject: str | None = Field(None, description="Pseudonymous subject id or incident id.")
    datacontenttype: Literal["application/json"] = "application/json"
    dataschema: str = Field(description="URI of the JSON Schema of `data`.")
    data: Data


def new_id() -> uuid.UUID:
    """A fresh, globally unique id, ordered by creation time (UUIDv7).

    Inboxes and tables keyed by these ids then grow at one end of their index, instead of
    dirtying a random page (and logging it whole after a checkpoint) for every row.
    """
    return uuid7()


def new_event_id() -> str:
    """Return a fresh, globally unique event id."""
    return str(new_id())


def utcnow() -> datetime:
    """Current time in UTC; only adapters call it, never the domain."""
    return datetime.now(UTC)
