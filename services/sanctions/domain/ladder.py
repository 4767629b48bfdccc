"""Which card each incident deserves, and how held cards must change to match.

The ladder is derived, not accumulated: from the live qualifying incidents in the order
they happened, each gets yellow 1, yellow 2 or red by the count in its window (or red at
once when serious), or attaches as evidence while a red card is open. Reconciling held
cards with that ideal handles late reports, amendments, withdrawals and upheld appeals
with one rule, so a card that no longer stands is rescinded and never two cards hold one
position.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from schemas.incidents import AgeBand, Category, PerpetratorKind
from services.sanctions.domain.model import Card, CardKind, CardStatus, IncidentRecord, Policy, SubjectState

CARDABLE = frozenset({PerpetratorKind.PATIENT, PerpetratorKind.RELATIVE, PerpetratorKind.VISITOR})
EXTENSION = "red.extension"  # the rule of a red card proposed for an incident during a ban


@dataclass(frozen=True)
class Want:
    """The card an incident deserves, or the red card it attaches to as evidence."""

    kind: CardKind | None
    rule: str = ""
    evidence: tuple[UUID, ...] = ()
    attach_to: UUID | None = None  # incident whose red card this one is evidence for


def cardable(i: IncidentRecord) -> bool:
    """Staff-on-staff is an HR matter; the public and the unknown cannot be carded."""
    return i.kind in CARDABLE and not i.withdrawn


def eligible(i: IncidentRecord) -> bool:
    """Conduct that can deserve a card: cardable, not a child, no clinical cause, not excused on appeal."""
    return cardable(i) and not i.excused and not i.medical_factors and i.age_band != AgeBand.UNDER_18


def awaiting_age_band(i: IncidentRecord, policy: Policy) -> bool:
    """Eligible, but held back until its age band is recorded: the person may be a child."""
    return i.age_band is None and not policy.card_without_age_band and eligible(i)


def qualifies(i: IncidentRecord, policy: Policy) -> bool:
    """Earns a card of its own: eligible, and known to be an adult where the policy asks."""
    return eligible(i) and not awaiting_age_band(i, policy)


# Cards that bound someone: a warning issued, a ban imposed, whether in force or run its
# course. A proposal awaiting a reviewer is not yet one, and one rejected never was.
GIVEN = frozenset({CardStatus.ISSUED, CardStatus.ACTIVE, CardStatus.LAPSED, CardStatus.EXPIRED})


def counted(state: SubjectState, policy: Policy) -> set[UUID]:
    """The incidents the ladder counts: those that qualify, and those awaiting their age band
    that hold a card already. The policy holds back new cards, never ones given before: a card
    issued, or a ban people imposed, before the policy asked for the age band (or before an
    amendment cleared it, which proves no child) stands, and keeps its place on the ladder."""
    held = {c.incident_id for c in state.cards if c.status in GIVEN}
    return {i.incident_id for i in state.incidents
            if qualifies(i, policy) or (awaiting_age_band(i, policy) and i.incident_id in held)}


def serious(i: IncidentRecord, policy: Policy) -> bool:
    """The most serious incidents may skip the warnings, as trusts' schemes allow."""
    if i.category in policy.immediate_red_categories:
        return True
    if policy.immediate_red_on_sexual_assault and i.category == Category.SEXUAL_MISCONDUCT and i.sexual_assault:
        return True
    return i.harm in policy.immediate_red_harm.get(i.category, frozenset())


def ordered(state: SubjectState, policy: Policy) -> list[IncidentRecord]:
    """Counted incidents in the order they happened (arrival breaks ties)."""
    live = counted(state, policy)
    return sorted((i for i in state.incidents if i.incident_id in live), key=lambda i: (i.occurred_at, i.seq))


def ideal(state: SubjectState, policy: Policy, now: datetime | None = None) -> dict[UUID, Want]:
    """The card each qualifying incident deserves, given the cards already decided by people.

    Two things hold what people decided against what the count alone would give:
    - a ban people imposed (in force, or served) stands on what its reviewers weighed: an
      incident that happened before it and now calls for a new red card (reported since,
      say) is evidence for that ban, not a new proposal that would lift it until someone
      decides again, or a second ban for conduct before one already served;
    - given `now`, an incident that has left the window keeps the card it holds and earns no
      new one: conduct the policy no longer counts is not carded, whatever is learnt of it
      later (an amendment of its harm, the backfill of an incident before it).
    """
    live, cards = ordered(state, policy), _first_starts_known(state, holders(state))
    bans = {c.incident_id for c in state.cards
            if c.kind == CardKind.RED and c.status in (CardStatus.ACTIVE, CardStatus.EXPIRED)}
    while True:
        wants = _derive(live, cards, bans, policy, now)
        # A ban in force whose own place on the ladder went (an incident it counted was
        # withdrawn) falls as before, and takes no evidence with it.
        fallen = {k for k in bans if k in wants and wants[k].kind != CardKind.RED}
        if not fallen:
            return wants
        bans -= fallen


def _first_starts_known(state: SubjectState, cards: dict[tuple[UUID, CardKind], Card]
                        ) -> dict[tuple[UUID, CardKind], Card]:
    """The held cards, each ban brought back before bans kept `in_force_since` given it."""
    return {key: first_start_known(state, card) for key, card in cards.items()}


def first_start_known(state: SubjectState, card: Card) -> Card:
    """The card, given `in_force_since` if it is a ban brought back before bans kept it: read
    from the ban it replaced."""
    if card.kind == CardKind.RED and card.in_force_since is None and card.starts_at is not None:
        if (began := first_start(state, card)) < card.starts_at:
            return card.model_copy(update={"in_force_since": began})
    return card


def first_start(state: SubjectState, ban: Card) -> datetime:
    """When ban `ban` first came into force: the earliest start of its incident's bans, which
    stay in the state replaced when it is brought back (only a ban brought back shares its
    incident with another in force or ended), whether or not they kept `in_force_since`."""
    starts = [when for c in state.cards if c.incident_id == ban.incident_id and c.kind == CardKind.RED
              and c.status in (CardStatus.ACTIVE, CardStatus.EXPIRED)
              for when in (c.in_force_since, c.starts_at) if when is not None]
    own = [when for when in (ban.in_force_since, ban.starts_at) if when is not None]
    return min(starts + own)


def _derive(live: list[IncidentRecord], cards: dict[tuple[UUID, CardKind], Card], bans: set[UUID],
            policy: Policy, now: datetime | None) -> dict[UUID, Want]:
    wants: dict[UUID, Want] = {}
    open_red: UUID | None = None
    for n, i in enumerate(live):
        red = cards.get((open_red, CardKind.RED)) if open_red is not None else None
        if red is not None and not _still_open(red, i) and (ban := _extended_ban(wants[open_red], wants, cards)):
            # A rejected extension leaves the ban it would have extended in force: an incident
            # during that ban proposes an extension of it again, with its restriction.
            open_red, red = ban, cards[(ban, CardKind.RED)]
        # A ban people imposed is never taken as evidence for a card a reviewer rejected (which
        # an earlier incident reported since can make the open one again): it stands.
        if open_red is not None and _still_open(red, i) and not (
                red is not None and red.status == CardStatus.REJECTED and i.incident_id in bans):
            extends = policy.extend_on_reoffence and _during_ban(red, i, cards)
            if extends and ((i.incident_id, CardKind.RED) in cards or not _too_late(i, policy, now)):
                want = Want(CardKind.RED, EXTENSION, (open_red, i.incident_id))
            else:
                want = Want(None, attach_to=open_red)
        else:
            # Every incident counts in the windows after it, a late report too, though it earns nothing.
            window = tuple(j.incident_id for j in live[: n + 1] if j.occurred_at > i.occurred_at - policy.window)
            want = _decided(i, _position(i, window, policy), live, n, cards, bans, policy, now)
        wants[i.incident_id] = want
        open_red = i.incident_id if want.kind == CardKind.RED else open_red
    return wants


def _extended_ban(want: Want, wants: dict[UUID, Want], cards: dict[tuple[UUID, CardKind], Card]) -> UUID | None:
    """The incident of the ban an extension `want` is for, while that ban still stands in the
    count (its own incident withdrawn, say, it is gone, and the ladder counts on as ever)."""
    if want.rule != EXTENSION:
        return None
    ban = want.evidence[0]
    stands = wants.get(ban, Want(None)).kind == CardKind.RED and (ban, CardKind.RED) in cards
    return ban if stands else None


def _too_late(i: IncidentRecord, policy: Policy, now: datetime | None) -> bool:
    """Whether a card made now for `i` would answer conduct the policy no longer counts, or
    card someone who may be a child: it keeps the card it holds and earns no new one."""
    return (reported_late(i, policy) or (now is not None and left_window(i, policy, now))
            or awaiting_age_band(i, policy))


def _decided(i: IncidentRecord, want: Want, live: list[IncidentRecord], n: int,
             cards: dict[tuple[UUID, CardKind], Card], bans: set[UUID], policy: Policy, now: datetime | None) -> Want:
    """The place the count gives `i`, unless a card not yet made would go against what people
    decided (see `ideal`): then the card it holds, or evidence for the ban in force."""
    if want.kind is None:
        return want
    if (held := cards.get((i.incident_id, want.kind))) is not None:
        # Held: as the count now gives it, unless no new card could be made for it now (a
        # proposal on other evidence is proposed again, as a new card): then as it is held.
        return Want(held.kind, held.rule, held.evidence) if _too_late(i, policy, now) else want
    if (ban := cards.get((i.incident_id, CardKind.RED))) is not None and _served(ban, cards, now):
        # A ban served stands as history when its place goes (an earlier incident withdrawn or
        # found to have a clinical cause): a warning now, for the conduct it answered, would
        # punish that conduct twice. Its own incident overturned, it is rescinded instead.
        return _kept(i, cards)
    if _too_late(i, policy, now):
        return _kept(i, cards)
    if want.kind == CardKind.RED and bans and (
            ban := next((j.incident_id for j in live[n + 1:] if j.incident_id in bans), None)):
        kept = _kept(i, cards)
        return kept if kept.kind else Want(None, attach_to=ban)
    return want


def _served(card: Card, cards: dict[tuple[UUID, CardKind], Card], now: datetime | None) -> bool:
    """A ban that ran to its end, itself, or past the end it was set (so it can never run on),
    or through the extensions that replaced it. One whose extension still runs, before its own
    end, did not: it may run on if the extension falls, and falls itself, like a ban in force,
    when its own count does."""
    if card.status != CardStatus.EXPIRED:
        return False
    if card.superseded_by is None or (now is not None and card.ends_at is not None and card.ends_at <= now):
        return True
    replacement = next((c for c in cards.values() if c.sanction_id == card.superseded_by), None)
    return replacement is not None and _served(replacement, cards, now)


def _kept(i: IncidentRecord, cards: dict[tuple[UUID, CardKind], Card]) -> Want:
    """The card an incident holds, highest first, as a want; none if it holds none."""
    return next((Want(c.kind, c.rule, c.evidence) for k in (CardKind.RED, CardKind.YELLOW_2, CardKind.YELLOW_1)
                 if (c := cards.get((i.incident_id, k)))), Want(None))


def counts_until(i: IncidentRecord, policy: Policy) -> datetime:
    """When an incident leaves the policy's window and stops counting towards the ladder."""
    return i.occurred_at + policy.window


def reported_late(i: IncidentRecord, policy: Policy) -> bool:
    """Whether the incident was reported only after it had left the window: a card for it,
    warning or ban, would answer conduct the policy no longer counts (a late report, or a
    backfill of history, which would otherwise flood reviewers with proposals)."""
    return i.reported_at is not None and i.reported_at >= counts_until(i, policy)


def left_window(i: IncidentRecord, policy: Policy, now: datetime) -> bool:
    """Whether an incident no longer counts towards the ladder at `now`, so that a warning
    for it would have lapsed before it was issued."""
    return counts_until(i, policy) <= now


def _position(i: IncidentRecord, window: tuple[UUID, ...], policy: Policy) -> Want:
    if serious(i, policy):
        return Want(CardKind.RED, "red.immediate", window)
    if len(window) == 1:
        return Want(CardKind.YELLOW_1, "ladder.first", window)
    if len(window) == 2:
        return Want(CardKind.YELLOW_2, "ladder.second", window)
    return Want(CardKind.RED, "ladder.third_or_later", window)


def _still_open(red: Card | None, i: IncidentRecord) -> bool:
    """Whether the red card held for an earlier incident (`red`) still absorbs incident `i` as evidence."""
    if red is None or red.status == CardStatus.PROPOSED:
        return True  # proposed, or about to be: never two proposals at once
    if red.status == CardStatus.ACTIVE:
        return red.ends_at is None or i.occurred_at <= red.ends_at
    if red.status == CardStatus.EXPIRED:
        return red.ends_at is not None and i.occurred_at <= red.ends_at
    if red.status == CardStatus.REJECTED:
        return red.closed_at_seq is not None and i.seq < red.closed_at_seq  # reviewer saw it already
    return False


def _during_ban(red: Card | None, i: IncidentRecord, cards: dict[tuple[UUID, CardKind], Card]) -> bool:
    """Whether incident `i` prompts an extension of the ban `red`: it happened after the ban
    was imposed (and, the ban being still open, before it ended), and the ban is in force.

    Once the ban has ended (run out, or replaced by the extension itself), the extension `i`
    already prompted stays wanted; a late report of an incident in a ban long over is only
    evidence, not a new ban for old conduct. An incident reported before the ban began was
    before its reviewers (dated minutes ahead, as a report may be, it can seem to follow it)."""
    held = cards.get((i.incident_id, CardKind.RED))
    if (held is not None and held.rule == EXTENSION and held.status in (CardStatus.ACTIVE, CardStatus.EXPIRED)
            and red is not None and red.incident_id == held.evidence[0]
            and red.status in (CardStatus.ACTIVE, CardStatus.EXPIRED)):
        # An extension people imposed of a ban people imposed stands, whatever that ban became
        # since: brought back from a later date (its own extension withdrawn), it seems to start
        # after the extension's incident. (The ban itself fallen, the extension falls with it.)
        return True
    began = red.in_force_since or red.starts_at if red is not None else None
    if began is None or i.occurred_at <= began:
        return False
    if i.reported_at is not None and i.reported_at <= began:
        return False
    prompted = (i.incident_id, CardKind.RED) in cards
    return red.status == CardStatus.ACTIVE or (red.status == CardStatus.EXPIRED and prompted)


def holders(state: SubjectState) -> dict[tuple[UUID, CardKind], Card]:
    """The latest card not rescinded for each (incident, kind): loops look cards up here instead of rescanning."""
    return {(c.incident_id, c.kind): c for c in state.cards if c.status != CardStatus.RESCINDED}


def due(card: Card, policy: Policy, now: datetime) -> tuple[bool, bool]:
    """(review due, expired) for an active ban at `now`."""
    if card.status != CardStatus.ACTIVE or card.ends_at is None:
        return False, False
    review_at = card.ends_at - policy.review_window
    return (not card.review_sent and now >= review_at), now >= card.ends_at


def in_force(card: Card, state: SubjectState, policy: Policy, now: datetime) -> bool:
    """Whether a card binds the subject at `now`.

    A ban binds until it ends and a proposal until a reviewer decides. A warning lasts as
    long as its incident counts towards the ladder, the policy's window: an issued card
    whose incident left it has lapsed, before the scheduler comes round to mark it so.
    """
    if card.status == CardStatus.ACTIVE:
        return card.ends_at is None or now < card.ends_at
    if card.status == CardStatus.PROPOSED:
        return True
    if card.status == CardStatus.ISSUED:
        lapse = lapses_at(card, state, policy)
        return lapse is not None and now < lapse
    return False


def lapses_at(card: Card, state: SubjectState, policy: Policy) -> datetime | None:
    """When a warning stops (or stopped) binding: its incident leaves the policy's window. None for a red card."""
    incident = state.incident(card.incident_id)
    if card.kind == CardKind.RED or incident is None:
        return None
    return counts_until(incident, policy)


def card_level(state: SubjectState, policy: Policy, now: datetime) -> str:
    """The most serious card in force at `now`: red_active, red_proposed, yellow_2, yellow_1 or none."""
    binding = {(c.kind, c.status) for c in state.cards if in_force(c, state, policy, now)}
    if (CardKind.RED, CardStatus.ACTIVE) in binding:
        return "red_active"
    if (CardKind.RED, CardStatus.PROPOSED) in binding:
        return "red_proposed"
    kinds = {kind for kind, _ in binding}
    return "yellow_2" if CardKind.YELLOW_2 in kinds else "yellow_1" if CardKind.YELLOW_1 in kinds else "none"
