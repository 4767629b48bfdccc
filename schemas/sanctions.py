"""Sanction contracts: the decisions the card policy publishes."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal
from uuid import UUID

from pydantic import AwareDatetime, Field

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
    occurred_at: AwareDatetime = Field(description="When the triggering incident happened.")
    decided_at: AwareDatetime


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


class FollowUp(Decision):
    """A decision about an existing sanction (approval, expiry, appeal...)."""

    sanction_id: UUID = Field(description="decision_id of the card this acts on.")


class RescindReason(StrEnum):
    INCIDENT_WITHDRAWN = "incident_withdrawn"
    INCIDENT_AMENDED = "incident_amended"
    INCIDENT_REPORTED_LATE = "incident_reported_late"  # an earlier incident shifted the ladder
    APPEAL_UPHELD = "appeal_upheld"


class AppealOutcome(StrEnum):
    UPHELD = "upheld"
    DISMISSED = "dismissed"


class EvidenceAttached(FollowUp):
    """A further incident attached to an open red card or active ban, not a new card."""

    event_type = "uk.nhs.vanda.sanction.evidence_attached.v1"


class RedCardRejected(FollowUp):
    """An authorised reviewer declined the proposed red card."""

    event_type = "uk.nhs.vanda.sanction.red_card_rejected.v1"

    reviewer: str = Field(description="Opaque id of the reviewer; the reason text stays in the audit log.")


class Endorsement(StrEnum):
    SECURITY = "security"  # the security manager, who investigated, approves
    CLINICAL = "clinical"  # the clinical lead agrees the exclusion is clinically safe


class RedCardEndorsed(FollowUp):
    """One of the two people a red card needs has said yes; the ban waits for the other."""

    event_type = "uk.nhs.vanda.sanction.red_card_endorsed.v1"

    endorsement: Endorsement
    endorsed_by: str = Field(description="Opaque id of the person; the reason text stays in the audit log.")
    awaiting: Endorsement


class BanImposed(FollowUp):
    """A red card approved by an authorised reviewer (or automatically, where policy allows)."""

    event_type = "uk.nhs.vanda.sanction.ban_imposed.v1"

    reviewer: str | None = Field(description="Opaque reviewer id; null when policy needs no approval.")
    # Left out when absent, so subscribers of the schema before clinical agreement existed
    # go on accepting the bans of a trust whose policy does not ask for it.
    clinical_lead: str | None = Field(None, exclude_if=lambda v: v is None,
                                      description="Opaque id of the clinical lead who agreed the exclusion is"
                                                  " clinically safe, where the policy asks for it.")
    restriction: Restriction
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    emergency_care_never_barred: Literal[True] = True


class BanReviewDue(FollowUp):
    """The ban ends soon: check for new incidents before it lapses."""

    event_type = "uk.nhs.vanda.sanction.ban_review_due.v1"

    ends_at: AwareDatetime


class BanExpired(FollowUp):
    """The ban reached its end date."""

    event_type = "uk.nhs.vanda.sanction.ban_expired.v1"

    ended_at: AwareDatetime


class WarningLapsed(FollowUp):
    """A yellow card's incident has left the policy's window: the warning no longer binds."""

    event_type = "uk.nhs.vanda.sanction.warning_lapsed.v1"

    lapsed_at: AwareDatetime = Field(description="When the incident left the window; a marker the warning put on a"
                                            " record can come off.")


class SanctionRescinded(FollowUp):
    """A card that no longer stands, with why."""

    event_type = "uk.nhs.vanda.sanction.rescinded.v1"

    reason: RescindReason


class SanctionBasisRevised(FollowUp):
    """A card that still stands lost an incident it rested on (withdrawn, excused on appeal, or
    found to be a child's or to have a clinical cause), and the count still calls for it: it
    now rests on the incidents in `evidence_incident_ids`, which reviewers may look at again."""

    event_type = "uk.nhs.vanda.sanction.basis_revised.v1"

    reason: RescindReason = Field(description="Why the first of `no_longer_counted` no longer counts.")
    no_longer_counted: list[UUID] = Field(min_length=1, description="The incidents it rested on that no longer count.")
    basis_rule: str = Field(description="The policy rule of the card's place in the count now (an extension whose"
                                        " ban's incident went may now stand as the third incident, say).")


class AppealLodged(FollowUp):
    """The subject appealed against a card."""

    event_type = "uk.nhs.vanda.sanction.appeal_lodged.v1"

    recorded_by: str = Field(description="Opaque id of the officer who recorded the appeal.")


class AppealDecided(FollowUp):
    """An appeals officer decided: upheld rescinds the card, dismissed leaves it."""

    event_type = "uk.nhs.vanda.sanction.appeal_decided.v1"

    outcome: AppealOutcome
    decided_by: str
