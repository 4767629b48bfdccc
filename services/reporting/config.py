"""Reporting settings (env prefix REPORTING_)."""

from __future__ import annotations

import json
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.reporting import ReferralCriterion

SERVICE = "reporting"
SOURCE = "/vanda/reporting"


MIN_ROUNDING_TO_REVISE = 5


class ReportingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REPORTING_", extra="ignore")

    consumer_group: str = Field("vanda-reporting", description="Kafka consumer group.")
    timezone: str = Field("Europe/London", description="Time zone whose calendar months the board sees.")
    max_months: int = Field(60, ge=1, description="Longest range one board request may span.")
    suppression_threshold: int = Field(5, ge=1, description="Counts from 1 to this minus 1 are suppressed.")
    rounding_base: int = Field(1, ge=1, description="Published counts are rounded to a multiple of this (5 bounds"
                               " what differencing two boards can reveal); 1 leaves them exact.")
    police_criteria: frozenset[ReferralCriterion] = Field(
        frozenset(ReferralCriterion), description="Which referral criteria apply (JSON list).")
    publish_interval_s: float = Field(3600, gt=0, description="How often closed months are checked for publishing.")
    gauges_interval_s: float = Field(300, gt=0, description="How often the current month's headline gauges"
                                     " are recomputed.")
    footage_retention_days: int = Field(30, ge=1, le=3650, description="Days body-worn camera footage that"
                                        " nothing rests on is kept, from the incident or its report if later,"
                                        " before it is due for deletion.")
    footage_notice_interval_s: float = Field(300, gt=0, description="How often footage that has become evidence,"
                                             " or fallen due for deletion, is announced on vanda.footage.v1, and"
                                             " referral prompts still owed a retraction are settled.")
    retention_days: int = Field(3650, ge=1, description="Why footage deletions were retracted (free text) is cleared"
                                " from the retractions and the audit after this many days.")
    retention_interval_s: float = Field(86400, gt=0, description="How often the retention purge runs.")
    publish_grace_days: int = Field(3, ge=0, description="Days after a month closes before it is published.")
    publish_backlog_s: float = Field(60, ge=0, description="A publishing round goes ahead only once reporting has"
                                     " applied every event written to its topics more than this many seconds"
                                     " before it; one held back by a backlog (after an outage, say) is tried"
                                     " again on the next.")
    revise_months: int = Field(0, ge=0, le=60, description="How many closed months back are worked out again on each"
                               " publishing round, and published again (a revision) if their figures changed: late"
                               " reports, amendments, withdrawals, decisions, a workforce loaded. 0: never. Needs a"
                               " rounding base of at least 5: two revisions' difference is what one report changed.")

    @field_validator("timezone")
    @classmethod
    def _a_time_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # "Europe" is a folder of zones, not one
            raise ValueError("not a time zone name, such as Europe/London") from None
        return name

    @field_validator("rounding_base")
    @classmethod
    def _never_rounds_a_shown_count_to_zero(cls, base: int, info: ValidationInfo) -> int:
        threshold = info.data.get("suppression_threshold")  # absent when it was itself refused
        if threshold is not None and base > 2 * threshold:
            raise ValueError(f"must be at most twice the suppression threshold ({2 * threshold}), or a count"
                             " that is shown could read 0")
        return base

    @field_validator("revise_months")
    @classmethod
    def _revisions_only_over_rounded_counts(cls, months: int, info: ValidationInfo) -> int:
        # Revision n beside revision n + 1 shows exactly what one late report changed (its site,
        # category, the affected staff member's characteristics): exact counts would defeat the
        # threshold. Rounded to 5, one report mostly moves nothing, and never by its own size.
        base = info.data.get("rounding_base")
        if months and base is not None and base < MIN_ROUNDING_TO_REVISE:
            raise ValueError(f"needs REPORTING_ROUNDING_BASE of at least {MIN_ROUNDING_TO_REVISE} (it is {base}):"
                             " the difference between two revisions would show what one report changed")
        return months


def projection_settings(settings: ReportingSettings) -> dict[str, str]:
    """What the projection is built under, by variable name: a rebuild must replay under the same.
    The criteria are written sorted, so that one set is one text however it was given."""
    return {"REPORTING_TIMEZONE": settings.timezone,
            "REPORTING_POLICE_CRITERIA": json.dumps(sorted(c.value for c in settings.police_criteria)),
            "REPORTING_CONSUMER_GROUP": settings.consumer_group}
