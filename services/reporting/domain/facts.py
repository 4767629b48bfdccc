"""Fact rows built from events by pure functions: one per incident, one per sanction decision.

A fact holds categories, dates and the keyed subject pseudonym (needed to count repeat
perpetrators; never shown on a board output). No NHS number, name or narrative exists
in any event, so none can reach a fact.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from uuid import UUID

from schemas.incidents import IncidentAmended, IncidentReported, IncidentWithdrawn
from schemas.sanctions import BanExpired, BanImposed, Decision, EvidenceAttached, FollowUp, YellowCardIssued


NOT_STATED = "not_stated"


class NeverSeen(ValueError):
    """A correction for an incident reporting has no record of."""


@dataclass(frozen=True, slots=True)
class Staff:
    staff_group: str
    ethnic_group: str
    injured: bool
    wishes_police_action: bool
    over_7_day_incapacity: bool = False  # RIDDOR-reportable; rows written before it existed lack it
    # The other protected characteristics; rows written before they existed read not stated.
    disability: str = NOT_STATED
    sex: str = NOT_STATED
    gender_identity: str = NOT_STATED
    sexual_orientation: str = NOT_STATED
    religion: str = NOT_STATED


# Staff characteristics the board breaks staff affected down by, beside the staff group.
# Those beyond ethnicity are stated only where the reporting system records them.
STATED_IF_RECORDED = ("disability", "sex", "gender_identity", "sexual_orientation", "religion")
CHARACTERISTICS = ("ethnic_group", *STATED_IF_RECORDED)


@dataclass(frozen=True, slots=True)
class IncidentFact:
    incident_id: UUID
    subject_id: str | None
    occurred_at: datetime
    organisation: str
    site: str
    location_type: str
    category: str
    sexual_assault: bool
    harm: str
    perpetrator_kind: str
    medical_factors: bool
    age_band: str | None
    vulnerabilities: tuple[str, ...]
    staff: tuple[Staff, ...]
    hate_aggravation: tuple[str, ...]
    body_worn_camera: bool
    police_informed: bool
    crime_reference: str | None
    referred_at: datetime | None
    police_outcome: str | None
    revision: int
    withdrawn: bool = False
    riddor_reported_at: datetime | None = None  # when the trust reported it to HSE
    # When intake accepted the report. None on rows kept before it was, until a rebuild.
    reported_at: datetime | None = None

    @property
    def referred(self) -> bool:
        """The police were told: informed on the report, or a referral date, a crime reference
        or an outcome recorded since (there is no outcome, nor a crime reference, without them)."""
        return (self.police_informed or self.referred_at is not None or self.crime_reference is not None
                or self.police_outcome is not None)


@dataclass(frozen=True, slots=True)
class DecisionFact:
    decision_id: UUID
    kind: str
    sanction_id: UUID
    incident_id: UUID
    subject_id: str
    organisation: str
    site: str
    occurred_at: datetime
    decided_at: datetime
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    # Known only when read for a board: a card whose incident already had one, issued again
    # after a re-derivation (an earlier incident withdrawn, say), not the first time.
    reissued: bool = False


def incident_fact(data: IncidentReported | IncidentAmended) -> IncidentFact:
    """The fact row an incident event describes."""
    police = data.police
    return IncidentFact(
        incident_id=data.incident_id, subject_id=data.subject_id, occurred_at=data.occurred_at,
        organisation=data.organisation, site=data.site, location_type=data.location_type.value,
        category=data.category.value, sexual_assault=data.sexual_assault, harm=data.harm.value,
        perpetrator_kind=data.perpetrator.kind.value, medical_factors=data.perpetrator.medical_factors,
        age_band=data.perpetrator.age_band.value if data.perpetrator.age_band else None,
        # Each flag once: history may hold a flag given twice, from before intake took them as a set.
        vulnerabilities=tuple(sorted({v.value for v in data.perpetrator.vulnerabilities})),
        staff=tuple(Staff(s.staff_group.value, s.ethnic_group.value, s.injured, s.wishes_police_action,
                          s.over_7_day_incapacity, s.disability.value, s.sex.value, s.gender_identity.value,
                          s.sexual_orientation.value, s.religion.value) for s in data.staff_affected),
        hate_aggravation=tuple(a.value for a in data.hate_aggravation),
        body_worn_camera=data.body_worn_camera_used,
        police_informed=bool(police and police.informed),
        crime_reference=police.crime_reference if police else None,
        referred_at=police.referred_at if police else None,
        police_outcome=police.outcome.value if police and police.outcome else None,
        revision=getattr(data, "revision", 1), riddor_reported_at=data.riddor_reported_at,
        reported_at=data.reported_at,
    )


def next_fact(previous: IncidentFact | None,
              data: IncidentReported | IncidentAmended | IncidentWithdrawn) -> IncidentFact:
    """The incident's fact after an event: amendments replace, withdrawals exclude.

    An older revision arriving late never overwrites a newer one, and a withdrawal is
    final, so the result does not depend on redelivery.
    """
    if isinstance(data, IncidentWithdrawn):
        if previous is None:
            raise NeverSeen(f"incident_id: {data.incident_id} was never reported to reporting")
        return replace(previous, withdrawn=True)
    fact = incident_fact(data)
    if previous is None:
        return fact  # an amendment carries the whole incident, so it can stand alone
    if previous.withdrawn or fact.revision <= previous.revision:
        return previous
    return fact


def decision_kind(d: Decision) -> str:
    """Short name of a decision: yellow_card_1, red_card_proposed, ban_imposed, rescinded..."""
    if isinstance(d, YellowCardIssued):
        return f"yellow_card_{d.level}"
    # "uk.nhs.vanda.sanction.red_card_proposed.v1" -> "red_card_proposed"
    return d.event_type.split(".")[-2]


def decision_fact(d: Decision) -> DecisionFact:
    """The fact row a sanction decision describes; follow-ups name the card they act on."""
    starts, ends = None, None
    if isinstance(d, BanImposed):
        starts, ends = d.starts_at, d.ends_at
    elif isinstance(d, BanExpired):
        ends = d.ended_at
    # Evidence attached names the red card's own incident; the incident it rests on, which
    # footage retention asks about, is the evidence.
    attached = isinstance(d, EvidenceAttached) and d.evidence_incident_ids
    return DecisionFact(
        decision_id=d.decision_id, kind=decision_kind(d),
        sanction_id=d.sanction_id if isinstance(d, FollowUp) else d.decision_id,
        incident_id=d.evidence_incident_ids[-1] if attached else d.incident_id,
        subject_id=d.subject_id, organisation=d.organisation, site=d.site,
        occurred_at=d.occurred_at, decided_at=d.decided_at, starts_at=starts, ends_at=ends,
    )
