"""Build decision events from state: every one names its incidents, rule and policy version."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from schemas.incidents import PerpetratorKind
from schemas.sanctions import (
    ClinicalReviewRequested,
    Decision,
    FollowUp,
    RedCardProposed,
    Restriction,
    SafeguardingReferralRequested,
    YellowCardIssued,
)
from services.sanctions.domain.model import Card, CardKind, IncidentRecord, Policy, SubjectState

# Decision ids derive from what was decided, so replaying the same inputs gives the same ids.
NAMESPACE = uuid.UUID("5b0f3e1e-8f5e-4c56-9a53-3f4f2b7d8a10")


def decision_id(key: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, key)


def restriction_for(kind: PerpetratorKind) -> Restriction:
    """A patient loses non-emergency care; a relative or visitor loses visiting, never their own care."""
    return Restriction.NON_EMERGENCY_CARE if kind == PerpetratorKind.PATIENT else Restriction.VISITING


def _common(state: SubjectState, trigger: IncidentRecord, evidence: tuple[uuid.UUID, ...], rule: str,
            policy: Policy, now: datetime) -> dict[str, Any]:
    return {
        "subject_id": state.subject_id,
        "perpetrator_kind": trigger.kind,
        "incident_id": trigger.incident_id,
        "evidence_incident_ids": list(evidence),
        "rule": rule,
        "policy_version": policy.version,
        "organisation": trigger.organisation,
        "site": trigger.site,
        "occurred_at": trigger.occurred_at,
        "decided_at": now,
    }


def card_issued(state: SubjectState, card: Card, policy: Policy, now: datetime) -> Decision:
    """YellowCardIssued or RedCardProposed for a new card."""
    trigger = state.incident(card.incident_id)
    assert trigger is not None
    common = _common(state, trigger, card.evidence, card.rule, policy, now) | {"decision_id": card.sanction_id}
    if card.kind == CardKind.RED:
        return RedCardProposed(**common, restriction=card.restriction, proposed_duration_days=policy.red_card_days)
    return YellowCardIssued(**common, level=1 if card.kind == CardKind.YELLOW_1 else 2)


def follow_up(cls: type[FollowUp], state: SubjectState, card: Card, action: str, policy: Policy, now: datetime,
              *, evidence: tuple[uuid.UUID, ...] | None = None, key: str = "", **extra: Any) -> FollowUp:
    """An event acting on an existing card (approval, expiry, appeal, rescission...)."""
    trigger = state.incident(card.incident_id)
    assert trigger is not None
    common = _common(state, trigger, card.evidence if evidence is None else evidence, action, policy, now)
    ident = decision_id(f"{action}:{card.sanction_id}:{key}")
    return cls(**common, decision_id=ident, sanction_id=card.sanction_id, **extra)


GUARD_CHILD, GUARD_CLINICAL = "guard.child", "guard.medical_factors"


def guard(state: SubjectState, incident: IncidentRecord, child: bool, policy: Policy, now: datetime) -> Decision:
    """Safeguarding for a child, clinical review for a clinical cause: never a card."""
    cls = SafeguardingReferralRequested if child else ClinicalReviewRequested
    rule = GUARD_CHILD if child else GUARD_CLINICAL
    ident = decision_id(f"{rule}:{incident.incident_id}")
    return cls(**_common(state, incident, (incident.incident_id,), rule, policy, now), decision_id=ident)
