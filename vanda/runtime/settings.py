"""Settings every service shares; each service adds its own with an env prefix."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

SUBMISSIONS_RETENTION_DAYS = 7  # personal data: brief
DLQ_RETENTION_DAYS = 28  # time to fix and replay


class CommonSettings(BaseSettings):
    """Connection settings read from unprefixed environment variables."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    kafka_bootstrap_servers: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers.")
    database_url: str = Field("postgresql://postgres@127.0.0.1:5432/vanda", description="PostgreSQL DSN.")
    topic_partitions: int = Field(6, ge=1, description="Partitions for topics a service creates.")
    topic_replication_factor: int = Field(1, ge=1, description="Replication factor for new topics.")
    startup_wait_s: float = Field(
        60, gt=0, description="How long start-up waits for PostgreSQL and for Kafka to accept connections before"
                              " the service gives up and exits.")
    submissions_retention_days: int = Field(
        SUBMISSIONS_RETENTION_DAYS, ge=1, description="Retention of vanda.intake.submissions.v1 and its dead letters, set when they are"
                             " created: they hold reports as submitted, with personal data.")
    dlq_retention_days: int = Field(DLQ_RETENTION_DAYS, ge=1, description="Retention of the other dead-letter topics, set when they"
                                                          " are created: time to fix and replay.")
    dlq_watch_interval_s: float = Field(
        300, gt=0, description="How often each service counts the dead letters still waiting on the dead-letter"
                               " topics it writes, and how soon retention may delete the oldest.")
    db_pool_max: int = Field(10, ge=2, description="Largest PostgreSQL pool size per service (at least 2: a timed"
                             " round holds one connection for its lock while it works with another).")
    relay_interval_s: float = Field(0.2, gt=0, description="Outbox poll interval when idle.")
    relay_batch: int = Field(2000, ge=1, description="Most outbox rows published per round.")
    consumer_max_records: int = Field(2000, ge=1, description="Most records handled per batch.")
    consumers_per_subscription: int = Field(
        2, ge=1, description="Kafka consumers each subscription runs in one process, in the same group: while one"
                             " batch waits for PostgreSQL, another is decoded and decided.")
    log_level: str = Field("INFO", description="Python logging level.")
    max_body_bytes: int = Field(256 * 1024, ge=1024, description="Largest HTTP request body accepted.")


MIN_SECRET_LENGTH = 32
MIN_DISTINCT = 8  # 32 random hex digits have about 14 different ones, and fewer than 8 almost never
# Words that mark a value copied from an example or a development default, never a real secret.
PLACEHOLDERS = ("change-me", "changeme", "development-only", "example")
SECRET_HINT = "make one with: python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"


def strong_secret(value: SecretStr) -> SecretStr:
    """A key that guards personal data or people's tokens: long, random, not a copied example.

    A known or short key would let anyone reverse pseudonyms by trying NHS numbers, or sign
    themselves any role; refusing to start is the only safe answer.
    """
    text = value.get_secret_value()
    if len(text) < MIN_SECRET_LENGTH:
        raise ValueError(f"must be a random secret of at least {MIN_SECRET_LENGTH} characters, got {len(text)};"
                         f" {SECRET_HINT}")
    if any(word in text.lower() for word in PLACEHOLDERS):
        raise ValueError(f"is a placeholder from an example or a development default; {SECRET_HINT}")
    if len(set(text)) < MIN_DISTINCT:
        # Long but made of a few characters repeated ('a' * 32, 'password' * 4): not random.
        raise ValueError(f"repeats too few characters ({len(set(text))} different) to be random; {SECRET_HINT}")
    return value


StrongSecret = Annotated[SecretStr, AfterValidator(strong_secret)]


def _settings_classes(cls: type = BaseSettings) -> list[type[BaseSettings]]:
    return [c for sub in cls.__subclasses__() for c in (sub, *_settings_classes(sub))]


def explain(error: ValidationError) -> list[str] | None:
    """Each problem in a settings error as `ENV_VARIABLE: reason`; None if not a settings error.

    pydantic names a field (`pseudonym_key`); an operator sets `INTAKE_PSEUDONYM_KEY`.
    """
    found = [c for c in _settings_classes() if c.__name__ == error.title]
    if not found:
        return None
    prefix = found[0].model_config.get("env_prefix") or ""
    return [f"{(prefix + '_'.join(str(p) for p in e['loc'])).upper()}: {e['msg'].removeprefix('Value error, ')}"
            for e in error.errors()]
