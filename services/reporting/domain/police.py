"""Police referral: which incidents meet the criteria, and where each stands."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

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


@dataclass(frozen=True)
class Claim:
    """An incident's place on the police referral topic.

    `criteria` and `meets`: what the record calls for now (a withdrawn incident meets none;
    the criteria last met are kept). `prompted`: whether the last event sent said a referral
    is required (True) or retracted it (False); `round` numbers the prompts, and so their
    event ids (a prompt retracted within the batch that made it never went out, but counts).
    `prompted_under`: the criteria the last prompt was sent under, which `criteria` leaves as
    the record moves on (empty on claims kept before it was: `criteria` stands in).
    """

    criteria: tuple[str, ...]
    meets: bool = True
    prompted: bool = True
    round: int = 1
    prompted_under: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.prompted and not self.prompted_under:  # a new claim's prompt goes out under its criteria
            object.__setattr__(self, "prompted_under", self.criteria)


def in_force(enabled: frozenset[ReferralCriterion], claim: Claim | None) -> frozenset[ReferralCriterion]:
    """The criteria an incident is judged by: those enabled, and while its prompt stands, those
    it was prompted under. The police were rightly told under the criteria of the day; narrowing
    them later retracts nothing (an amendment of the incident out of them still does)."""
    if claim is None or not claim.prompted:
        return enabled
    return enabled | {ReferralCriterion(c) for c in claim.prompted_under}


def met_now(fact: IncidentFact, enabled: frozenset[ReferralCriterion], claim: Claim | None) -> list[ReferralCriterion]:
    """What the record meets, judged by the criteria in force for its claim (none if withdrawn)."""
    return [] if fact.withdrawn else criteria_met(fact, in_force(enabled, claim))


def next_claim(claim: Claim | None, met: list[ReferralCriterion]) -> Claim | None:
    """The claim after an incident event: `met` is what the incident meets now (none if withdrawn).
    A first claim only once a criterion holds; then it follows the record, either way, each time."""
    wanted = [c.value for c in met]
    if claim is None:
        return Claim(tuple(wanted)) if wanted else None
    claim = replace(claim, criteria=tuple(wanted) or claim.criteria, meets=bool(wanted))
    return settled(claim)


def settled(claim: Claim) -> Claim:
    """The claim once the topic says what the record calls for: a prompt, or its retraction."""
    if claim.meets == claim.prompted:
        return claim
    if claim.meets:  # a new prompt, under what the record meets now
        return replace(claim, prompted=True, round=claim.round + 1, prompted_under=claim.criteria)
    return replace(claim, prompted=False, prompted_under=())  # no prompt stands


def announcement(before: Claim | None, after: Claim | None) -> str | None:
    """What the topic must say after `before` became `after` (in one batch, perhaps several
    events): "required", "retracted" or nothing. A prompt retracted and renewed within the
    batch leaves the police side as it was, so nothing goes out for it."""
    was = before is not None and before.prompted
    now = after is not None and after.prompted
    if was == now:
        return None
    return "required" if now else "retracted"
