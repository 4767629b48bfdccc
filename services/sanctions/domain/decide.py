"""decide(): the one pure entry point for everything the sanctions service is told.

(state, input, policy, now) -> (new state, decision events). No I/O, no clock reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from schemas.incidents import AgeBand
from schemas.sanctions import (
    AppealDecided,
    AppealLodged,
    AppealOutcome,
    BanExpired,
    BanReviewDue,
    Decision,
    Endorsement,
    RedCardEndorsed,
    RedCardRejected,
    RescindReason,
    SanctionRescinded,
    WarningLapsed,
)
from services.sanctions.domain import ladder
from services.sanctions.domain.events import GUARD_CHILD, GUARD_CLINICAL, follow_up, guard
from services.sanctions.domain.model import AppealState, Card, CardKind, CardStatus, IncidentRecord, Policy, SubjectState
from services.sanctions.domain.reconcile import impose, reconcile, replace_card


class SanctionsError(ValueError):
    """The input cannot be applied; the message says why."""


class NotFound(SanctionsError):
    pass


class Conflict(SanctionsError):
    pass


class Stale(SanctionsError):
    """The subject moved on since the version a reviewer's decision was made on."""

    def __init__(self, current: str) -> None:
        super().__init__("If-Match: the subject has changed since this version (an incident reported, corrected"
                         " or withdrawn, or a decision taken): look at it again and decide on what it is now")
        self.current = current


@dataclass(frozen=True)
class IncidentSeen:
    """An incident reported, or its amended version."""

    record: IncidentRecord
    amended: bool = False


@dataclass(frozen=True)
class IncidentGone:
    incident_id: UUID


@dataclass(frozen=True)
class Approve:
    sanction_id: UUID
    reviewer: str


@dataclass(frozen=True)
class Agree:
    """The clinical lead agrees a proposed ban is clinically safe."""

    sanction_id: UUID
    clinician: str


@dataclass(frozen=True)
class Reject:
    sanction_id: UUID
    reviewer: str


@dataclass(frozen=True)
class LodgeAppeal:
    sanction_id: UUID
    recorded_by: str


@dataclass(frozen=True)
class DecideAppeal:
    sanction_id: UUID
    outcome: AppealOutcome
    decided_by: str


@dataclass(frozen=True)
class Tick:
    """Time passed: lapse warnings, send review reminders and expire bans that have ended."""


Input = IncidentSeen | IncidentGone | Approve | Agree | Reject | LodgeAppeal | DecideAppeal | Tick
Result = tuple[SubjectState, list[Decision]]


def decide(state: SubjectState, command: Input, policy: Policy, now: datetime) -> Result:
    """Apply one input to one subject's state.

    A ban whose end has passed is expired first, as the scheduler's next round would: what an
    incident or a decision does must not hang on whether that round came before it (an
    incident reported as a ban ended would otherwise propose an extension of a ban over)."""
    if isinstance(command, Tick):
        return _tick(state, policy, now)
    state, expired = _expire(state, policy, now)
    state, events = _dispatch(state, command, policy, now)
    return state, expired + events


def _dispatch(state: SubjectState, command: Input, policy: Policy, now: datetime) -> Result:
    match command:
        case IncidentSeen():
            return _seen(state, command, policy, now)
        case IncidentGone():
            return _gone(state, command, policy, now)
        case Approve():
            return _approve(state, command, policy, now)
        case Agree():
            return _agree(state, command, policy, now)
        case Reject():
            return _reject(state, command, policy, now)
        case LodgeAppeal():
            return _lodge(state, command, policy, now)
        case DecideAppeal():
            return _decide_appeal(state, command, policy, now)
    raise TypeError(f"unknown input {command!r}")


def _seen(state: SubjectState, command: IncidentSeen, policy: Policy, now: datetime) -> Result:
    new, known = command.record, state.incident(command.record.incident_id)
    if command.amended and known is None:
        raise NotFound(f"incident_id: amendment for an incident sanctions has not seen ({new.incident_id})")
    if known is not None and new.revision <= known.revision:
        raise Conflict(f"revision: {new.revision} arrived after revision {known.revision} (out of order)")
    if known is not None:
        new = new.model_copy(update={"seq": known.seq, "excused": known.excused, "withdrawn": known.withdrawn,
                                     "reported_at": known.reported_at or new.reported_at})
        incidents = tuple(new if i.incident_id == new.incident_id else i for i in state.incidents)
    else:
        new = new.model_copy(update={"seq": len(state.incidents)})
        incidents = state.incidents + (new,)
    state, decisions = _guards(state.model_copy(update={"incidents": incidents}), new, policy, now)
    reason = RescindReason.INCIDENT_AMENDED if command.amended else RescindReason.INCIDENT_REPORTED_LATE
    if command.amended and not ladder.eligible(new):
        # Found to be a child, or unwell: a card for it that has run its course was never
        # deserved, and the record says so (overturned, not served), as for a withdrawal.
        # An age band cleared proves nothing of the kind: a card in force falls, one served stands.
        state, overturned = _overturn_ended(state, new.incident_id, policy, now, reason)
        decisions += overturned
    state, more = reconcile(state, policy, now, reason)
    return state, decisions + more


def _guards(state: SubjectState, i: IncidentRecord, policy: Policy, now: datetime) -> Result:
    """Safeguarding for a child and clinical review for a clinical cause, each once per
    incident, when the record first calls for it: a report, or an amendment that finds the
    person was a child or unwell. A child with a clinical cause gets both."""
    if not ladder.cardable(i):
        return state, []
    wanted = [rule for rule, due in ((GUARD_CHILD, i.age_band == AgeBand.UNDER_18),
                                     (GUARD_CLINICAL, i.medical_factors)) if due]
    # States kept before the two were told apart hold the bare incident id for whichever went
    # first, the one the record then called for: taken as the first it calls for now.
    legacy = str(i.incident_id) in state.guarded
    due = [r for n, r in enumerate(wanted) if f"{r}:{i.incident_id}" not in state.guarded and not (legacy and n == 0)]
    if not due:
        return state, []
    state = state.model_copy(update={"guarded": state.guarded | {f"{r}:{i.incident_id}" for r in due}})
    return state, [guard(state, i, r == GUARD_CHILD, policy, now) for r in due]


def _gone(state: SubjectState, command: IncidentGone, policy: Policy, now: datetime) -> Result:
    known = state.incident(command.incident_id)
    if known is None:
        raise NotFound(f"incident_id: withdrawal of an incident sanctions has not seen ({command.incident_id})")
    if known.withdrawn:
        return state, []
    gone = known.model_copy(update={"withdrawn": True})
    incidents = tuple(gone if i.incident_id == gone.incident_id else i for i in state.incidents)
    reason = RescindReason.INCIDENT_WITHDRAWN
    state, overturned = _overturn_ended(state.model_copy(update={"incidents": incidents}), gone.incident_id, policy,
                                        now, reason)
    state, events = reconcile(state, policy, now, reason)
    return state, overturned + events


def _card(state: SubjectState, sanction_id: UUID) -> Card:
    card = state.card(sanction_id)
    if card is None:
        raise NotFound(f"sanction_id: no sanction {sanction_id} for this subject")
    return card


def _proposed(state: SubjectState, sanction_id: UUID, verb: str) -> Card:
    card = _card(state, sanction_id)
    if card.kind != CardKind.RED or card.status != CardStatus.PROPOSED:
        raise Conflict(f"sanction_id: only a proposed red card can be {verb} (this one is {card.status})")
    return card


def _imposable(state: SubjectState, sanction_id: UUID, verb: str, policy: Policy, now: datetime) -> Card:
    """A proposal a reviewer may say yes to: its incident still counts. One left waiting until
    its incident left the window would impose a ban for conduct the policy no longer counts."""
    card = _proposed(state, sanction_id, verb)
    incident = state.incident(card.incident_id)
    if incident is not None and ladder.left_window(incident, policy, now):
        raise Conflict(f"sanction_id: its incident left the policy's window on"
                       f" {ladder.counts_until(incident, policy):%Y-%m-%d}: a ban now would answer conduct the"
                       " policy no longer counts; reject it instead")
    return card


def _approve(state: SubjectState, command: Approve, policy: Policy, now: datetime) -> Result:
    card = _imposable(state, command.sanction_id, "approved", policy, now)
    if not policy.clinical_agreement_required:
        return impose(state, card, command.reviewer, policy, now)
    return _endorse(state, card, Endorsement.SECURITY, command.reviewer, policy, now)


def _agree(state: SubjectState, command: Agree, policy: Policy, now: datetime) -> Result:
    card = _imposable(state, command.sanction_id, "agreed", policy, now)
    if not policy.clinical_agreement_required:
        raise Conflict("sanction_id: this policy does not ask for a clinical lead's agreement")
    return _endorse(state, card, Endorsement.CLINICAL, command.clinician, policy, now)


# Where each yes is kept on the card, and what a repeat of it is told.
YES = {Endorsement.SECURITY: ("approved_by", "already approved; it awaits the clinical lead's agreement"),
       Endorsement.CLINICAL: ("agreed_by", "already agreed; it awaits the security manager's approval")}


def _endorse(state: SubjectState, card: Card, given: Endorsement, by: str, policy: Policy, now: datetime) -> Result:
    """One of the two yeses a ban needs: the first is recorded and published, the second imposes the ban."""
    other = Endorsement.CLINICAL if given == Endorsement.SECURITY else Endorsement.SECURITY
    (field, repeated), (other_field, _) = YES[given], YES[other]
    if getattr(card, field) is not None:
        raise Conflict(f"sanction_id: {repeated}")
    if getattr(card, other_field) == by:
        raise Conflict("sanction_id: two people decide a ban: whoever gave one yes cannot give the other")
    card = card.model_copy(update={field: by})
    if card.approved_by is not None and card.agreed_by is not None:
        return impose(state, card, card.approved_by, policy, now, clinical_lead=card.agreed_by)
    state = replace_card(state, card)
    return state, [follow_up(RedCardEndorsed, state, card, f"red.endorsed.{given}", policy, now,
                             endorsement=given, endorsed_by=by, awaiting=other)]


def _reject(state: SubjectState, command: Reject, policy: Policy, now: datetime) -> Result:
    card = _proposed(state, command.sanction_id, "rejected")
    closed = card.model_copy(update={"status": CardStatus.REJECTED, "closed_at_seq": len(state.incidents)})
    state = replace_card(state, closed)
    return state, [follow_up(RedCardRejected, state, closed, "red.rejected", policy, now, reviewer=command.reviewer)]


def _lodge(state: SubjectState, command: LodgeAppeal, policy: Policy, now: datetime) -> Result:
    card = _card(state, command.sanction_id)
    if not card.standing or card.appeal != AppealState.NONE:
        raise Conflict("sanction_id: an appeal can be lodged once, against a card in force or proposed")
    lodged = card.model_copy(update={"appeal": AppealState.LODGED})
    state = replace_card(state, lodged)
    return state, [follow_up(AppealLodged, state, lodged, "appeal.lodged", policy, now,
                             recorded_by=command.recorded_by)]


def _decide_appeal(state: SubjectState, command: DecideAppeal, policy: Policy, now: datetime) -> Result:
    card = _card(state, command.sanction_id)
    if card.appeal != AppealState.LODGED:
        raise Conflict("sanction_id: no appeal is waiting for a decision on this sanction")
    if command.decided_by in {card.approved_by, card.agreed_by}:
        # An appeal is heard by someone other than those who imposed the ban: the approver
        # dismissing the appeal against their own decision is no appeal at all.
        raise Conflict("sanction_id: whoever approved or agreed the ban cannot decide the appeal against it")
    upheld = command.outcome == AppealOutcome.UPHELD
    decided = card.model_copy(update={"appeal": AppealState.UPHELD if upheld else AppealState.DISMISSED})
    state = replace_card(state, decided)
    events: list[Decision] = [follow_up(AppealDecided, state, decided, f"appeal.{command.outcome}", policy, now,
                                        outcome=command.outcome, decided_by=command.decided_by)]
    if upheld:
        # The incident no longer counts, so the card falls and later positions are re-derived.
        incidents = tuple(i.model_copy(update={"excused": True}) if i.incident_id == card.incident_id else i
                          for i in state.incidents)
        state, overturned = _overturn_ended(state.model_copy(update={"incidents": incidents}), card.incident_id,
                                            policy, now, RescindReason.APPEAL_UPHELD)
        state, more = reconcile(state, policy, now, RescindReason.APPEAL_UPHELD)
        events += overturned + more
    return state, events


def _overturn_ended(state: SubjectState, incident_id: UUID, policy: Policy, now: datetime,
                    reason: RescindReason) -> Result:
    """The cards for an incident that ran their course (lapsed, or a ban expired) are still
    rescinded when the incident is withdrawn, its appeal upheld or it is found to have a
    clinical cause: the record says they were overturned, not served. (Re-derivation alone
    never touches a card that has ended: that is history.)

    Before re-deriving, not after: a ban an extension replaced runs on when the extension
    falls, and an extension that was itself replaced, then brought back, has ended."""
    events: list[Decision] = []
    for card in [c for c in state.cards if c.incident_id == incident_id]:
        if card.status in (CardStatus.LAPSED, CardStatus.EXPIRED):
            card = card.model_copy(update={"status": CardStatus.RESCINDED})
            state = replace_card(state, card)
            events.append(follow_up(SanctionRescinded, state, card, f"rescind.{reason}", policy, now, reason=reason))
    return state, events


def _tick(state: SubjectState, policy: Policy, now: datetime) -> Result:
    state, events = _lapse(state, policy, now)
    for card in state.cards:
        review, _ = ladder.due(card, policy, now)
        if review:
            card = card.model_copy(update={"review_sent": True})
            state = replace_card(state, card)
            events.append(follow_up(BanReviewDue, state, card, "ban.review_due", policy, now, ends_at=card.ends_at))
    state, expired = _expire(state, policy, now)
    return state, events + expired


def _expire(state: SubjectState, policy: Policy, now: datetime) -> Result:
    """Bans whose end has passed: expired, each at its own end."""
    events: list[Decision] = []
    for card in state.cards:
        if ladder.due(card, policy, now)[1]:
            card = card.model_copy(update={"status": CardStatus.EXPIRED})
            state = replace_card(state, card)
            events.append(follow_up(BanExpired, state, card, "ban.expired", policy, now, ended_at=card.ends_at))
    return state, events


def _lapse(state: SubjectState, policy: Policy, now: datetime) -> Result:
    """Warnings whose incident has left the window no longer bind: say so, once each.

    The ladder already stopped counting them; the event is for whoever put a marker on a
    record when the warning was issued. A lapsed card keeps its position in the ladder.
    """
    events: list[Decision] = []
    for card in state.cards:
        lapse = ladder.lapses_at(card, state, policy)
        if card.status == CardStatus.ISSUED and lapse is not None and now >= lapse:
            card = card.model_copy(update={"status": CardStatus.LAPSED})
            state = replace_card(state, card)
            events.append(follow_up(WarningLapsed, state, card, "warning.lapsed", policy, now, lapsed_at=lapse))
    return state, events
