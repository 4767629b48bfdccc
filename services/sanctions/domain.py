"""The card ladder as a pure function: (history, incident, policy, now) -> decisions.

No I/O, no clock reads, no randomness: decision ids derive from the incident and the
rule, so replaying the same incidents always yields the same decisions.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from schemas.incidents import AgeBand, Category, Harm, IncidentReported, PerpetratorKind
from schemas.sanctions import (
    ClinicalReviewRequested,
    Decision,
    RedCardProposed,
    Restriction,
    SafeguardingReferralRequested,
    YellowCardIssued,
)

DECISION_NAMESPACE = uuid.UUID("5b0f3e1e-8f5e-4c56-9a53-3f4f2b7d8a10")
CARDABLE = {PerpetratorKind.PATIENT, PerpetratorKind.RELATIVE, PerpetratorKind.VISITOR}
SERIOUS_HARM = {Harm.MODERATE, Harm.SEVERE, Harm.DEATH}


@dataclass(frozen=True)
class Policy:
    version: str
    window: timedelta
    red_card_duration: timedelta


@dataclass(frozen=True)
class PastIncident:
    incident_id: UUID
    occurred_at: datetime


@dataclass(frozen=True)
class History:
    """What sanctions already knows about one subject."""

    qualifying: tuple[PastIncident, ...] = ()
    red_card_open: bool = False


@dataclass(frozen=True)
class Outcome:
    qualifying: bool
    decisions: tuple[Decision, ...]


def decide(history: History, incident: IncidentReported, policy: Policy, now: datetime) -> Outcome:
    """Apply the guards, then the ladder, to one incident about one subject."""
    p = incident.perpetrator
    if incident.subject_id is None or p.kind not in CARDABLE:
        # Staff-on-staff is an HR matter; the public and the unknown cannot be carded.
        return Outcome(False, ())
    if p.age_band == AgeBand.UNDER_18:
        return Outcome(False, (_decision(SafeguardingReferralRequested, "guard.child", incident, (), policy, now),))
    if p.medical_factors:
        return Outcome(False, (_decision(ClinicalReviewRequested, "guard.medical_factors", incident, (), policy, now),))
    return Outcome(True, _ladder(history, incident, policy, now))


def _ladder(history: History, incident: IncidentReported, policy: Policy, now: datetime) -> tuple[Decision, ...]:
    if history.red_card_open:
        return ()  # attaches as evidence to the open red card: never two proposals at once
    evidence = _in_window(history, incident, policy.window)
    if _immediately_serious(incident):
        return (_red(incident, evidence, "red.immediate", policy, now),)
    if len(evidence) == 1:
        return (_decision(YellowCardIssued, "ladder.first", incident, evidence, policy, now, level=1),)
    if len(evidence) == 2:
        return (_decision(YellowCardIssued, "ladder.second", incident, evidence, policy, now, level=2),)
    return (_red(incident, evidence, "ladder.third_or_later", policy, now),)


def _in_window(history: History, incident: IncidentReported, window: timedelta) -> tuple[UUID, ...]:
    start = incident.occurred_at - window
    past = [h for h in history.qualifying if start < h.occurred_at <= incident.occurred_at]
    ordered = sorted(past, key=lambda h: (h.occurred_at, str(h.incident_id)))
    return tuple(h.incident_id for h in ordered) + (incident.incident_id,)


def _immediately_serious(incident: IncidentReported) -> bool:
    # The most serious incidents may skip the warnings, as trusts' schemes allow.
    if incident.category == Category.WEAPON:
        return True
    return incident.category == Category.PHYSICAL_ASSAULT and incident.harm in SERIOUS_HARM


def _red(incident: IncidentReported, evidence: tuple[UUID, ...], rule: str, policy: Policy, now: datetime) -> Decision:
    # A patient loses non-emergency care; a relative or visitor loses visiting, never their own care.
    restriction = (Restriction.NON_EMERGENCY_CARE if incident.perpetrator.kind == PerpetratorKind.PATIENT
                   else Restriction.VISITING)
    return _decision(RedCardProposed, rule, incident, evidence, policy, now, restriction=restriction,
                     proposed_duration_days=policy.red_card_duration.days)


def _decision(kind: type[Decision], rule: str, incident: IncidentReported, evidence: tuple[UUID, ...],
              policy: Policy, now: datetime, **extra: object) -> Decision:
    assert incident.subject_id is not None
    return kind(
        decision_id=uuid.uuid5(DECISION_NAMESPACE, f"{incident.incident_id}:{rule}"),
        subject_id=incident.subject_id,
        perpetrator_kind=incident.perpetrator.kind,
        incident_id=incident.incident_id,
        evidence_incident_ids=list(evidence),
        rule=rule,
        policy_version=policy.version,
        organisation=incident.organisation,
        site=incident.site,
        occurred_at=incident.occurred_at,
        decided_at=now,
        **extra,
    )
