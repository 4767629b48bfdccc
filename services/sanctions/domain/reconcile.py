"""Bring a subject's held cards in line with the ladder after anything changes."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from schemas.sanctions import (
    BanExpired,
    BanImposed,
    Decision,
    EvidenceAttached,
    RescindReason,
    Restriction,
    SanctionBasisRevised,
    SanctionRescinded,
)
from services.sanctions.domain import ladder
from services.sanctions.domain.events import card_issued, decision_id, follow_up, restriction_for
from services.sanctions.domain.model import MAX_BAN, Card, CardKind, CardStatus, IncidentRecord, Policy, SubjectState

Result = tuple[SubjectState, list[Decision]]


def replace_card(state: SubjectState, card: Card) -> SubjectState:
    cards = tuple(card if c.sanction_id == card.sanction_id else c for c in state.cards)
    return state.model_copy(update={"cards": cards})


def impose(state: SubjectState, card: Card, reviewer: str | None, policy: Policy, now: datetime,
           clinical_lead: str | None = None) -> Result:
    """Start a ban now for the policy's length, replacing any ban in force; emergency care stays open."""
    events: list[Decision] = []
    for older in [c for c in state.cards if c.status == CardStatus.ACTIVE]:
        # A newer ban supersedes the older one: never two bans in force at once.
        older = older.model_copy(update={"status": CardStatus.EXPIRED, "superseded_by": card.sanction_id})
        state = replace_card(state, older)
        events.append(follow_up(BanExpired, state, older, "ban.superseded", policy, now, ended_at=now))
    active = card.model_copy(update={"status": CardStatus.ACTIVE, "starts_at": now, "ends_at": now + policy.ban_length,
                                     "approved_by": reviewer, "agreed_by": clinical_lead})
    state = replace_card(state, active)
    events.append(follow_up(BanImposed, state, active, "ban.approved" if reviewer else "ban.automatic", policy, now,
                            reviewer=reviewer, clinical_lead=clinical_lead, restriction=active.restriction,
                            starts_at=active.starts_at, ends_at=active.ends_at))
    return state, events


def reconcile(state: SubjectState, policy: Policy, now: datetime, reason: RescindReason) -> Result:
    """Rescind cards that no longer stand, issue cards now deserved, announce new evidence."""
    wants = ladder.ideal(state, policy, now)
    state, rescinded = _rescind(state, wants, policy, now, reason)
    state, restored = _reinstate(state, wants, policy, now)
    state, issued = _issue(state, wants, policy, now)
    state, attached = _attach(state, wants, policy, now)
    state, revised = _revise(state, wants, policy, now)
    return state, rescinded + restored + issued + attached + revised


def _rescind(state: SubjectState, wants: dict, policy: Policy, now: datetime, reason: RescindReason) -> Result:
    events: list[Decision] = []
    for card in state.cards:
        if card.standing and not _stands(card, wants.get(card.incident_id)):
            card = card.model_copy(update={"status": CardStatus.RESCINDED})
            state = replace_card(state, card)
            events.append(follow_up(SanctionRescinded, state, card, f"rescind.{reason}", policy, now, reason=reason))
    return state, events


def _stands(card: Card, want: ladder.Want | None) -> bool:
    """Whether a standing card is still the one its incident wants. A proposal must also rest on
    the rule and incidents it names: reviewers decide on those, and a yes given to a weapon
    incident since amended, or to evidence since withdrawn, is not a yes to what is left. So
    such a proposal is rescinded and proposed again as it now stands. More evidence (an earlier
    incident reported since) takes nothing from what a yes was given to: it stands. A card
    given stands on what was weighed when it was given."""
    if want is None or want.kind != card.kind:
        return False
    return card.status != CardStatus.PROPOSED or (want.rule == card.rule and set(card.evidence) <= set(want.evidence))


def _reinstate(state: SubjectState, wants: dict, policy: Policy, now: datetime) -> Result:
    """A ban replaced by an extension runs on when the extension falls (its incident withdrawn,
    its appeal upheld), to the end its reviewers set: as a new ban in force from now, on their
    decision (`BanImposed`, rule `ban.reinstated`). Never while another ban is in force."""
    events: list[Decision] = []
    # The latest-begun first: of two bans whose extensions fell, the more recent one runs on.
    candidates = [c for c in state.cards if c.superseded_by is not None and c.ends_at is not None and c.ends_at > now]
    for old in sorted(candidates, key=lambda c: c.starts_at or now, reverse=True):
        replaced = state.card(old.superseded_by)
        if (replaced is None or replaced.status != CardStatus.RESCINDED or state.active_ban() is not None
                or ladder.holders(state).get((old.incident_id, old.kind)) != old
                or wants.get(old.incident_id, ladder.Want(None)).kind != CardKind.RED):
            continue
        card = _new_card(state, old.incident_id, ladder.Want(CardKind.RED, old.rule, old.evidence)).model_copy(
            # Never past 12 months from now, whatever the clock did (a replica's running behind).
            update={"status": CardStatus.ACTIVE, "starts_at": now, "ends_at": min(old.ends_at, now + MAX_BAN),
                    "restriction": old.restriction,
                    "approved_by": old.approved_by, "agreed_by": old.agreed_by, "review_sent": old.review_sent,
                    "in_force_since": ladder.first_start(state, old)})
        state = state.model_copy(update={"cards": state.cards + (card,)})
        events.append(follow_up(BanImposed, state, card, "ban.reinstated", policy, now, reviewer=old.approved_by,
                                clinical_lead=old.agreed_by, restriction=card.restriction,
                                starts_at=card.starts_at, ends_at=card.ends_at))
    return state, events


def _issue(state: SubjectState, wants: dict, policy: Policy, now: datetime) -> Result:
    events: list[Decision] = []
    # Cards issued below are for other incidents than the ones still to look at: one index serves the loop.
    held = ladder.holders(state)
    for incident_id, want in wants.items():
        # A card people already decided on (rejected, expired) still holds its position.
        if want.kind is None or (incident_id, want.kind) in held:
            continue
        card = _new_card(state, incident_id, want)
        state = state.model_copy(update={"cards": state.cards + (card,)})
        events.append(card_issued(state, card, policy, now))
        if card.kind == CardKind.RED and not policy.approval_required:
            state, imposed = impose(state, card, None, policy, now)
            events += imposed
    return state, events


def _new_card(state: SubjectState, incident_id, want: ladder.Want) -> Card:
    earlier = sum(1 for c in state.cards if c.incident_id == incident_id and c.kind == want.kind)
    red = want.kind == CardKind.RED
    trigger = state.incident(incident_id)
    assert trigger is not None
    return Card(
        sanction_id=decision_id(f"card:{incident_id}:{want.kind}:{earlier}"),
        kind=want.kind,
        status=CardStatus.PROPOSED if red else CardStatus.ISSUED,
        incident_id=incident_id,
        evidence=want.evidence,
        rule=want.rule,
        restriction=_restriction(state, trigger, want) if red else None,
    )


def _restriction(state: SubjectState, trigger: IncidentRecord, want: ladder.Want) -> Restriction:
    """What a red card restricts: by the perpetrator's part in its incident, except that an
    extension extends the ban it follows. A patient banned from non-emergency care who
    abuses staff while visiting stays banned from that care: an extension taking its
    restriction from the visit would replace the care ban with a visiting one."""
    extended = ladder.holders(state).get((want.evidence[0], CardKind.RED)) if want.rule == ladder.EXTENSION else None
    return extended.restriction if extended and extended.restriction else restriction_for(trigger.kind)


def _attach(state: SubjectState, wants: dict, policy: Policy, now: datetime) -> Result:
    events: list[Decision] = []
    held = ladder.holders(state)  # only `attached` changes below
    for incident_id, want in wants.items():
        red = held.get((want.attach_to, CardKind.RED)) if want.attach_to else None
        if red is None or f"{incident_id}:{red.sanction_id}" in state.attached:
            continue
        state = state.model_copy(update={"attached": state.attached | {f"{incident_id}:{red.sanction_id}"}})
        events.append(follow_up(EvidenceAttached, state, red, "evidence.attached", policy, now,
                                evidence=(incident_id,), key=str(incident_id)))
    return state, events


# Cards given and in force: a proposal that lost an incident is proposed again instead (`_stands`).
REVISABLE = frozenset({CardStatus.ISSUED, CardStatus.ACTIVE})


def _revise(state: SubjectState, wants: dict, policy: Policy, now: datetime) -> Result:
    """A card in force that lost an incident it rested on (withdrawn, say), while its own place
    in the count still calls for it (a late report keeps the count), stands: a ban falls only
    when its count does. But every decision must say which incidents it rests on, so the new
    basis, the place's rule and evidence, is recorded and published (`SanctionBasisRevised`).

    A card the ladder keeps as it is held, its incident having left the window, is left as it
    is: no place in the count can be given to it again."""
    events: list[Decision] = []
    counted = ladder.counted(state, policy)
    for card in state.cards:
        want = wants.get(card.incident_id)
        gone = tuple(e for e in card.evidence if e not in counted)
        if (card.status not in REVISABLE or not gone or want is None or want.kind != card.kind
                or any(e not in counted for e in want.evidence)):
            continue
        card = card.model_copy(update={"evidence": want.evidence, "rule": want.rule,
                                       "basis_revisions": card.basis_revisions + 1})
        state = replace_card(state, card)
        events.append(follow_up(SanctionBasisRevised, state, card, "basis.revised", policy, now,
                                key=str(card.basis_revisions), reason=_why_gone(state, gone[0]),
                                no_longer_counted=list(gone), basis_rule=card.rule))
    return state, events


def _why_gone(state: SubjectState, incident_id: UUID) -> RescindReason:
    """Why an incident no longer counts, as a rescission for it would say."""
    incident = state.incident(incident_id)
    if incident is not None and incident.withdrawn:
        return RescindReason.INCIDENT_WITHDRAWN
    if incident is not None and incident.excused:
        return RescindReason.APPEAL_UPHELD
    return RescindReason.INCIDENT_AMENDED  # found to be a child's, or to have a clinical cause
