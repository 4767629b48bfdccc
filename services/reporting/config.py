"""Reporting settings (env prefix REPORTING_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

SERVICE = "reporting"


class ReportingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REPORTING_", extra="ignore")

    consumer_group: str = Field("vanda-reporting", description="Kafka consumer group.")
    timezone: str = Field("Europe/London", description="Time zone whose calendar months the board sees.")
    max_months: int = Field(60, ge=1, description="Longest range one board request may span.")
