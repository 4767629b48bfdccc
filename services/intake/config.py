"""Intake settings (env prefix INTAKE_), beside the shared connection settings."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

SERVICE = "intake"
SOURCE = "/vanda/intake"


class IntakeSettings(BaseSettings):
    """Secrets and limits owned by intake."""

    model_config = SettingsConfigDict(env_prefix="INTAKE_", extra="ignore")

    pseudonym_key: SecretStr = Field(
        SecretStr("development-only-pseudonym-key-change-me"),
        description="HMAC key for subject pseudonyms; set a long random secret in production.",
    )
    pseudonym_key_version: int = Field(1, ge=1, description="Version of the pseudonym key in use.")
    require_api_key: bool = Field(True, description="Refuse submissions without a valid X-API-Key.")
