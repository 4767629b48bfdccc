"""Sanction contracts: the decisions the card policy publishes."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal
from uuid import UUID

from pydantic import Field

from schemas.base import EventData
from schemas.incidents import PerpetratorKind


class Restriction(StrEnum):
    """What a red card restricts: never emergency care."""

    NON_EMERGENCY_CARE = "non_emergency_care"
    VISITING = "visiting"


class Decision(EventData):
    """Fields every sanction-service decision carries, so it can be explained."""

    decision_id: UUID
    subject_id: str
    perpetrator_kind: PerpetratorKind
    incident_id: UUID = Field(description="The incident that triggered this decision.")
    evidence_incident_ids: list[UUID] = Field(description="Incidents the rule counted.")
    rule: str = Field(description="Policy rule that fired.")
    policy_version: str
    organisation: str
    site: str
    occurred_at: datetime = Field(description="When the triggering incident happened.")
    decided_at: datetime


class YellowCardIssued(Decision):
    """A written warning: level 1 first, level 2 final."""

    event_type = "uk.nhs.vanda.sanction.yellow_card_issued.v1"

    level: Literal[1, 2]


class RedCardProposed(Decision):
    """A proposed time-limited restriction awaiting an authorised reviewer."""

    event_type = "uk.nhs.vanda.sanction.red_card_proposed.v1"

    restriction: Restriction
    proposed_duration_days: int = Field(ge=1, le=366)
    emergency_care_never_barred: Literal[True] = True


class ClinicalReviewRequested(Decision):
    """No card: the behaviour came from a clinical condition."""

    event_type = "uk.nhs.vanda.sanction.clinical_review_requested.v1"


class SafeguardingReferralRequested(Decision):
    """No card: the perpetrator is a child."""

    event_type = "uk.nhs.vanda.sanction.safeguarding_referral_requested.v1"
