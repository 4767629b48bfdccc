"""Sanctions settings (env prefix SANCTIONS_) and the card policy defaults."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

SERVICE = "sanctions"
SOURCE = "/vanda/sanctions"


class SanctionsSettings(BaseSettings):
    """Policy parameters; each change should come with a new policy_version."""

    model_config = SettingsConfigDict(env_prefix="SANCTIONS_", extra="ignore")

    policy_version: str = Field("2026.1", description="Named in every decision so it can be explained.")
    window_days: int = Field(365, ge=1, description="Rolling window for counting incidents.")
    red_card_days: int = Field(180, ge=1, le=366, description="Proposed ban length (never over 12 months).")
    consumer_group: str = Field("vanda-sanctions", description="Kafka consumer group.")
