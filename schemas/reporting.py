"""Reporting contracts: police referral prompts, footage notices and the board's published monthly figures."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.base import EventData
from schemas.incidents import Category


class ReferralCriterion(StrEnum):
    """Why an incident should go to the police (Police, CPS and NHS joint agreement, 2020)."""

    PHYSICAL_ASSAULT = "physical_assault"
    SEXUAL_MISCONDUCT = "sexual_misconduct"
    HATE_AGGRAVATION = "hate_aggravation"
    WEAPON = "weapon"
    STAFF_WISH_POLICE_ACTION = "staff_wish_police_action"


class AboutIncident(EventData):
    """What every notice about one incident says of it: where and when, never who."""

    incident_id: UUID
    organisation: str
    site: str
    occurred_at: AwareDatetime


class PoliceReferralRequired(AboutIncident):
    """An incident meets the trust's police referral criteria: the liaison officer should act."""

    event_type = "uk.nhs.vanda.reporting.police_referral_required.v1"

    category: Category
    criteria: list[ReferralCriterion] = Field(min_length=1, description="Every criterion the incident meets.")
    already_referred: bool = Field(description="The report already says the police were informed.")


class RetractionReason(StrEnum):
    """Why an incident no longer calls for a referral."""

    WITHDRAWN = "withdrawn"  # the report was withdrawn (made in error, or a duplicate)
    CRITERIA_NO_LONGER_MET = "criteria_no_longer_met"  # amended so that no enabled criterion holds


class PoliceReferralRetracted(AboutIncident):
    """An incident the liaison officer was prompted to refer no longer calls for it. A later
    `PoliceReferralRequired` for the same incident (amended back within the criteria) prompts anew."""

    event_type = "uk.nhs.vanda.reporting.police_referral_retracted.v1"

    category: Category = Field(description="The incident's category now.")
    reason: RetractionReason
    already_referred: bool = Field(description="The record says the police were informed or referred to: they"
                                                " may need telling too.")


class FootageUse(StrEnum):
    """Why an incident's body-worn camera footage is evidence."""

    POLICE = "police"  # the police were told, or gave a crime reference or an outcome
    REFERRAL_PENDING = "referral_pending"  # it meets the referral criteria and the liaison has not yet referred it
    SANCTION = "sanction"  # a card that has not been rescinded or declined cites it


class FootageHoldRequired(AboutIncident):
    """Keep this incident's body-worn camera footage as evidence: a referral or a card rests on it."""

    event_type = "uk.nhs.vanda.reporting.footage_hold_required.v1"

    uses: list[FootageUse] = Field(min_length=1, description="What rests on the footage.")


class FootageDeletionDue(AboutIncident):
    """This incident's footage is past its retention period and nothing rests on it: delete it."""

    event_type = "uk.nhs.vanda.reporting.footage_deletion_due.v1"

    delete_from: AwareDatetime = Field(description="When its retention period ended.")


class Suppressed(BaseModel):
    """A cell withheld by disclosure control: below the threshold, or able to reveal one that is."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    suppressed: Literal[True] = True


Figure = int | float | Suppressed | None


class BoardMetricsPublished(EventData):
    """The board's figures for one closed month and organisation, with suppression applied."""

    event_type = "uk.nhs.vanda.reporting.board_metrics_published.v1"

    period: str = Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="Calendar month, YYYY-MM.")
    organisation: str = Field(description="ODS code the figures cover.")
    suppression_threshold: int = Field(ge=1, description="Counts below this (and above 0) are suppressed.")
    # Left out while 1, so a subscriber validating against the schema of before rounding
    # existed goes on accepting every event of a trust that does not round.
    rounding_base: int = Field(1, ge=1, exclude_if=lambda v: v == 1,
                               description="Published counts are rounded to a multiple of this, and shares"
                                           " made from the rounded counts; absent (1): exact.")
    incidents: Figure
    breakdowns: dict[str, dict[str, Figure]] = Field(description="Each measure by dimension; zeros omitted.")
    indicators: dict[str, Figure] = Field(description="Shares, rates and medians; null when undefined.")
    published_at: AwareDatetime
    # Left out while 1, as rounding_base is: a month's first figures read as they always did.
    revision: int = Field(1, ge=1, exclude_if=lambda v: v == 1,
                          description="Absent (1): the month's first figures. Each later revision replaces those"
                                      " before it, after late reports, amendments, withdrawals or a workforce load;"
                                      " they come in order (key organisation).")

