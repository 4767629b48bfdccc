"""Police referral: which incidents meet the criteria, and where each stands."""

from __future__ import annotations

from collections.abc import Iterable

from schemas.incidents import Category
from schemas.reporting import ReferralCriterion
from services.reporting.domain.facts import IncidentFact

DEFAULT_CRITERIA = frozenset(ReferralCriterion)
CATEGORY_CRITERIA = {
    ReferralCriterion.PHYSICAL_ASSAULT: "physical_assault",
    ReferralCriterion.SEXUAL_MISCONDUCT: "sexual_misconduct",
    ReferralCriterion.WEAPON: "weapon",
}


def criteria_met(fact: IncidentFact, enabled: Iterable[ReferralCriterion] = DEFAULT_CRITERIA) -> list[ReferralCriterion]:
    """Every enabled criterion the incident meets, in a stable order."""
    met = []
    for criterion in sorted(set(enabled)):
        if criterion in CATEGORY_CRITERIA:
            hit = fact.category == CATEGORY_CRITERIA[criterion]
        elif criterion == ReferralCriterion.HATE_AGGRAVATION:
            # A hate incident is aggravated by definition even when no aggravation is ticked.
            hit = bool(fact.hate_aggravation) or fact.category == Category.HATE_INCIDENT
        else:
            hit = any(s.wishes_police_action for s in fact.staff)
        if hit:
            met.append(criterion)
    return met


def status(fact: IncidentFact) -> str:
    """pending (not yet referred), referred (awaiting an outcome) or closed (outcome known)."""
    if fact.police_outcome is not None:
        return "closed"
    return "referred" if fact.referred else "pending"
