"""Sanctions settings (env prefix SANCTIONS_) and the versioned policy file."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.sanctions.domain import Policy

SERVICE = "sanctions"
SOURCE = "/vanda/sanctions"
DEFAULT_POLICY = Path(__file__).with_name("policy.toml")


class SanctionsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SANCTIONS_", extra="ignore")

    policy_file: Path = Field(DEFAULT_POLICY, description="TOML file with the card policy.")
    consumer_group: str = Field("vanda-sanctions", description="Kafka consumer group.")
    scheduler_interval_s: float = Field(60, gt=0, description="How often warnings' lapse, bans' review and expiry are checked.")
    retention_days: int = Field(
        3650, ge=1, description="Reviewers' reasons and appeal grounds older than this are cleared from the audit."
    )
    retention_interval_s: float = Field(86400, gt=0, description="How often the retention purge runs.")
    allow_clock_override: bool = Field(
        False, description="Let POST /v1/scheduler/run and /v1/retention/run take a `now` (testing and drills only)."
    )


def load_policy(path: Path) -> Policy:
    """Read and validate the policy file; a bad value stops the service at start."""
    with path.open("rb") as handle:
        policy = Policy.model_validate(tomllib.load(handle))
    if not policy.approval_required:
        # A rule no scheme breaks: the system proposes, an authorised person approves. Only a
        # simulation approves every proposal at once (`vanda sanctions simulate --approve-all`).
        raise ValueError(f"{path}: approval_required: a ban needs a person's approval; it cannot be false")
    return policy
