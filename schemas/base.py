"""Base class for event payloads: type name, schema version, strictness."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field


class EventData(BaseModel):
    """Payload of one event type; `data` of a CloudEvent."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_type: ClassVar[str]
    schema_version: int = Field(1, ge=1, description="Version of this payload's schema.")

    @classmethod
    def schema_name(cls) -> str:
        """File stem of this payload's JSON Schema."""
        return cls.event_type.removeprefix("uk.nhs.vanda.")
