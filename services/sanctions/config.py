"""Sanctions settings (env prefix SANCTIONS_) and the versioned policy file."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.sanctions.domain import Policy

SERVICE = "sanctions"
SOURCE = "/vanda/sanctions"
DEFAULT_POLICY = Path(__file__).with_name("policy.toml")
# Settings a trust's file must state: left out, the model's default (off) would silently ban
# on one person's approval, or never propose an extension, under a version that says neither.
STATED = ("clinical_agreement_required", "extend_on_reoffence")


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

    @field_validator("policy_file")
    @classmethod
    def _a_policy(cls, path: Path) -> Path:
        # Read at once, so a bad file stops the service like any bad setting: one line, exit 2.
        load_policy(path)
        return path


def load_policy(path: Path) -> Policy:
    """Read and validate the policy file; a bad value stops the service at start (ValueError,
    naming the file and the key)."""
    try:
        with path.open("rb") as handle:
            values = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as unread:
        raise ValueError(f"{path}: cannot be read as a TOML policy file: {unread}") from None
    if missing := [key for key in STATED if key not in values]:
        raise ValueError(f"{path}: {', '.join(missing)}: missing; state true or false (see the shipped policy.toml)")
    try:
        policy = Policy.model_validate(values)
    except ValidationError as bad:
        raise ValueError(f"{path}: " + "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                                  for e in bad.errors())) from None
    if not policy.approval_required:
        # A rule no scheme breaks: the system proposes, an authorised person approves. Only a
        # simulation approves every proposal at once (`vanda sanctions simulate --approve-all`).
        raise ValueError(f"{path}: approval_required: a ban needs a person's approval; it cannot be false")
    if policy.review_days_before_end >= policy.red_card_days:
        # The reminder falls due at the ban's end less this, so it would go out on the first
        # tick after approval, when there is nothing yet to review.
        raise ValueError(f"{path}: review_days_before_end, red_card_days: the review reminder must fall within the ban"
                         f" ({policy.review_days_before_end} days before its end is not within a"
                         f" {policy.red_card_days}-day ban); make review_days_before_end fewer than red_card_days")
    return policy
