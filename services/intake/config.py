"""Intake settings (env prefix INTAKE_), beside the shared connection settings."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from vanda.runtime.settings import StrongSecret

SERVICE = "intake"
SOURCE = "/vanda/intake"


class IntakeSettings(BaseSettings):
    """Secrets and limits owned by intake."""

    model_config = SettingsConfigDict(env_prefix="INTAKE_", extra="ignore")

    # No defaults: a key anyone can read would make pseudonyms reversible by trying NHS numbers.
    pseudonym_key: StrongSecret = Field(description="HMAC key for subject pseudonyms: a long random secret.")
    pseudonym_key_version: int = Field(1, ge=1, description="Version of the pseudonym key in use.")
    # Earlier keys stay in use (new people are remembered under each, and stored identities read
    # under them): one weak would make pseudonyms reversible as surely as a weak current key.
    previous_pseudonym_keys: dict[int, StrongSecret] = Field(
        default_factory=dict, description="Earlier keys by version (JSON), kept so rotation never splits a subject.")
    identity_key: StrongSecret = Field(description="Encrypts stored identifiers (AES-GCM): a long random secret.")
    previous_identity_keys: list[StrongSecret] = Field(
        default_factory=list, description="Earlier identity keys (JSON list), still read after a rotation.")
    retention_days: int = Field(3650, ge=1, description="Narratives and identifiers older than this are purged.")
    retention_interval_s: float = Field(86400, gt=0, description="How often the retention purge runs, and identities"
                                        " sealed under an earlier identity key are sealed under the current one.")
    allow_clock_override: bool = Field(False, description="Let POST /v1/retention/run take a `now` (tests only).")
    batch_max_lines: int = Field(5000, ge=1, description="Most reports in one POST /v1/incidents:batch.")
    batch_max_bytes: int = Field(16 * 1024 * 1024, ge=1024, description="Largest batch request body.")
    consumer_group: str = Field("vanda-intake", description="Kafka consumer group for the submissions topic.")
    require_api_key: bool = Field(True, description="Refuse submissions without a valid X-API-Key.")
