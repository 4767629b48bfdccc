"""Sanctions use cases: load a subject, decide, store state and events together."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
from prometheus_client import Counter, Histogram

from schemas.envelope import CloudEvent
from schemas.events import envelope
from schemas.incidents import IncidentAmended, IncidentReported, IncidentWithdrawn
from schemas.sanctions import Decision, Endorsement
from schemas.topics import SANCTIONS
from services.sanctions import adapters
from services.sanctions.config import SOURCE
from services.sanctions.domain import (
    Card,
    CardStatus,
    Conflict,
    IncidentGone,
    IncidentRecord,
    IncidentSeen,
    Input,
    NotFound,
    Policy,
    Stale,
    SubjectState,
    Tick,
    decide,
    ladder,
)
from vanda.runtime.db import PURGE_CHUNK, is_transient
from vanda.runtime.outbox import Outgoing, stage

log = logging.getLogger(__name__)

DECISIONS = Counter("vanda_sanction_decisions_total", "Sanction decisions people and the scheduler make, by type"
                    " (what a report itself prompts is not counted here).", ["type"])
# What a report itself prompts goes uncounted: /metrics needs no token, and a scrape on either
# side of one known report would say whether its perpetrator got a card, a referral (a child,
# or unwell) or nothing (late, say), as reporting's live gauges leave such shares out for.
ON_REPORT = frozenset({"yellow_card_issued", "red_card_proposed", "evidence_attached",
                       "clinical_review_requested", "safeguarding_referral_requested"})
REPORT_TO_DECISION = Histogram(
    "vanda_incident_to_decision_seconds", "From intake accepting a report to sanctions having decided on it (a card,"
    " a referral or nothing: every report, so that which cannot be told).",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300))


def incident_input(data: Any) -> tuple[str | None, Input | None]:
    """The subject and domain input an incident event means, if any."""
    if isinstance(data, IncidentWithdrawn):
        return data.subject_id, IncidentGone(data.incident_id)
    if not isinstance(data, (IncidentReported, IncidentAmended)) or data.subject_id is None:
        return None, None  # unidentified perpetrators cannot be carded; reporting still counts them
    record = IncidentRecord(
        incident_id=data.incident_id, seq=0, occurred_at=data.occurred_at, kind=data.perpetrator.kind,
        medical_factors=data.perpetrator.medical_factors, age_band=data.perpetrator.age_band,
        category=data.category, sexual_assault=data.sexual_assault, harm=data.harm,
        organisation=data.organisation, site=data.site, revision=getattr(data, "revision", 1),
        vulnerabilities=tuple(data.perpetrator.vulnerabilities), reported_at=data.reported_at,
    )
    return data.subject_id, IncidentSeen(record, amended=isinstance(data, IncidentAmended))


def outgoing(decisions: list[Decision], now: datetime) -> list[Outgoing]:
    """Events for the outbox; the event id is the decision id, so re-sends are recognisable."""
    return [Outgoing(SANCTIONS, d.subject_id, envelope(d, source=SOURCE, subject=d.subject_id,
                                                        event_id=str(d.decision_id), time=now))
            for d in decisions]


async def apply(conn: asyncpg.Connection, subject_id: str, command: Input, policy: Policy,
                clock: Callable[[], datetime], seen: str | None = None) -> tuple[SubjectState, list[Decision]]:
    """Decide for one subject inside the caller's transaction; stage the resulting events.
    `seen`: the subject's version a reviewer decided on, refused (Stale) if it has moved on.
    The time is read once the subject is ours: a decision that waited behind another
    transaction must not be stamped before the events that one has just decided."""
    await adapters.lock_subject(conn, subject_id)
    now = clock()
    state = await adapters.load(conn, subject_id)
    if seen is not None and (current := state.version()) != seen:
        raise Stale(current)
    decided, decisions = decide(state, command, policy, now)
    if decided == state and not decisions:
        # Nothing to write: the scheduler's rounds find most due subjects already dealt with
        # (by another replica, say), and a rewrite of the whole state would be for nothing.
        return state, []
    events = outgoing(decisions, now)
    await adapters.save(conn, decided, events)
    await stage(conn, adapters.SCHEMA, events)
    _count(decisions)
    return decided, decisions


def _count(decisions: list[Decision]) -> None:
    # Counted before commit: a rolled-back batch is retried and counts again (at-least-once metric).
    for d in decisions:
        if (name := counted_type(d)) is not None:
            DECISIONS.labels(name).inc()


def counted_type(d: Decision) -> str | None:
    """The label a decision counts under, or None for what a report itself prompts."""
    name = d.event_type.split(".")[-2]
    return None if name in ON_REPORT else name


def _time_to_decision(data: Any, now: datetime) -> None:
    if isinstance(data, IncidentReported):
        REPORT_TO_DECISION.observe(max(0.0, (now - data.reported_at).total_seconds()))


async def on_incident(conn: asyncpg.Connection, event: CloudEvent[Any], policy: Policy,
                      clock: Callable[[], datetime]) -> list[Outgoing]:
    """Consumer entry for one event: the outbox rows are already staged by apply()."""
    subject_id, command = incident_input(event.data)
    if subject_id is None or command is None:
        return []
    await apply(conn, subject_id, command, policy, clock)
    _time_to_decision(event.data, clock())
    return []


# A subject's state holds their whole history, so the states a batch loads grow with the
# stream; deciding a chunk of subjects at a time keeps a batch's memory bounded.
SUBJECTS_PER_CHUNK = 500


async def on_incidents(conn: asyncpg.Connection, events: list[CloudEvent[Any]], policy: Policy,
                       clock: Callable[[], datetime]) -> list[Outgoing]:
    """Consumer entry for a batch: each subject locked, loaded and saved once, decided in event order,
    at the time the last lock was granted (as `apply` reads it)."""
    inputs = [(data, subject, command) for data, subject, command in
              ((event.data, *incident_input(event.data)) for event in events)
              if subject is not None and command is not None]
    subjects = list(dict.fromkeys(subject for _, subject, _ in inputs))
    if not subjects:
        return []
    await adapters.lock_subjects(conn, subjects)  # all at once, in one order: no deadlock between batches
    now = clock()
    out: list[Outgoing] = []
    for start in range(0, len(subjects), SUBJECTS_PER_CHUNK):
        chunk = set(subjects[start:start + SUBJECTS_PER_CHUNK])
        out += await _decide_and_save(conn, [i for i in inputs if i[1] in chunk], policy, now)
    return out


async def _decide_and_save(conn: asyncpg.Connection, inputs: list[tuple[Any, str, Input]], policy: Policy,
                           now: datetime) -> list[Outgoing]:
    """Load the inputs' subjects, decide each input in order, save states, cards and decisions."""
    before = await adapters.load_many(conn, [subject for _, subject, _ in inputs])
    states, decisions = dict(before), []
    for data, subject_id, command in inputs:
        states[subject_id], decided = decide(states[subject_id], command, policy, now)
        _count(decided)
        _time_to_decision(data, now)
        decisions += decided
    events = outgoing(decisions, now)
    await adapters.save_many(conn, list(states.values()), events, before)
    return events


class OutOfScope(NotFound):
    """A card of an organisation the person does not act for: answered as for no card, audited."""


@dataclass(frozen=True)
class Actor:
    """A person acting through the API: who, in what capacity, why, and for which organisations
    (None: every one)."""

    id: str
    action: str
    reason: str | None
    organisations: frozenset[str] | None = None


def _acts_for(organisations: frozenset[str], state: SubjectState, sanction_id: UUID) -> bool:
    """Whether a person acting for `organisations` may decide on this card: the organisation
    whose incident it answers is one of theirs."""
    card = state.card(sanction_id)
    incident = state.incident(card.incident_id) if card else None
    return incident is not None and incident.organisation in organisations


async def command(pool: asyncpg.Pool, sanction_id: UUID, cmd: Input, actor: Actor, policy: Policy,
                  clock: Callable[[], datetime],
                  seen: str | None = None) -> tuple[SubjectState, list[Decision], bool]:
    """A reviewer's or appeals officer's decision on one sanction, audited in the same transaction;
    and whether it was a retry of one already taken (the same person, action and sanction: each
    can be taken once), answered with the card as it stands and nothing done again."""
    try:
        async with pool.acquire() as conn, conn.transaction():
            subject_id = await adapters.subject_of(conn, sanction_id)
            if subject_id is None:
                raise NotFound(f"sanction_id: no sanction {sanction_id}")
            await adapters.lock_subject(conn, subject_id)
            # Loaded for this only when the person acts for some organisations: apply loads it anyway.
            if actor.organisations is not None and not _acts_for(actor.organisations,
                                                                 await adapters.load(conn, subject_id), sanction_id):
                # As for no sanction at all: another trust's cards are not this person's to know of.
                raise OutOfScope(f"sanction_id: no sanction {sanction_id}")
            if await adapters.acted(conn, sanction_id, actor.id, actor.action):
                return await adapters.load(conn, subject_id), [], True
            state, decisions = await apply(conn, subject_id, cmd, policy, clock, seen)
            await adapters.audit(conn, actor.id, actor.action, sanction_id, subject_id, actor.reason)
    except (Conflict, Stale, OutOfScope) as refused:
        # Refused, and rolled back; but an attempt (a second yes from the same person, say) is
        # itself worth knowing: kept with why it was refused, never the person's own words.
        try:
            async with pool.acquire() as conn:
                await adapters.audit(conn, actor.id, f"{actor.action}_refused", sanction_id,
                                     await adapters.subject_of(conn, sanction_id), str(refused))
        except Exception as exc:  # noqa: BLE001 - the caller is owed the refusal, not this failure
            log.warning("a refused decision was not audited (%s)", type(exc).__name__)
        raise
    return state, decisions, False


class SchedulerIncomplete(Exception):
    """Some subjects' rounds failed, after every other subject's was done."""


async def run_scheduler(pool: asyncpg.Pool, policy: Policy, now: datetime,
                        clock: Callable[[], datetime] | None = None) -> int:
    """Lapse warnings, send review reminders and expire ended bans; safe to run on every replica at once.
    With `clock`, each subject's tick is stamped when its lock is had (never before `now`): a
    long round must not stamp a subject's tick before a batch's decisions committed meanwhile."""
    tick_at = (lambda: max(now, clock())) if clock else (lambda: now)
    async with pool.acquire() as conn:
        subjects = await adapters.due_subjects(conn, now, policy.review_days_before_end, policy.window_days)
    sent, failed = 0, 0
    for subject_id in subjects:
        try:
            async with pool.acquire() as conn, conn.transaction():
                # A subject another replica's round, or a consumer's batch, holds now is left to the
                # next round: waiting for it (a batch holds its subjects for its whole run) could
                # outlast the statement timeout and end this round for every subject after it.
                if not await adapters.try_lock_subject(conn, subject_id):
                    continue
                _, decisions = await apply(conn, subject_id, Tick(), policy, tick_at)
                sent += len(decisions)
        except Exception as exc:  # noqa: BLE001 - one subject must not hold up every expiry after it
            if is_transient(exc):
                raise
            failed += 1
            log.error("scheduler round failed for one subject (%s); the others go on", type(exc).__name__)
    if failed:
        raise SchedulerIncomplete(f"{failed} subject(s) failed; {sent} event(s) sent for the others")
    return sent


async def purge(pool: asyncpg.Pool, now: datetime, retention: timedelta, actor: str,
                chunk: int = PURGE_CHUNK) -> dict[str, int]:
    """Clear reasons and appeal grounds past the retention period, `chunk` rows per transaction,
    and audit the purge itself."""
    cutoff = now - retention
    counts = {"reasons": await adapters.purge_reasons(pool, cutoff, now, chunk)}
    async with pool.acquire() as conn:
        await adapters.audit(conn, actor, "retention_purge", None, None, f"{counts} older than {cutoff.isoformat()}")
    return counts


async def pending(pool: asyncpg.Pool, policy: Policy,
                  organisations: frozenset[str] | None = None) -> list[dict[str, Any]]:
    """Proposed red cards, oldest first, each with the yeses it still awaits (of `organisations`'
    incidents only, if given)."""
    return [{k: v for k, v in row.items() if k not in ("approved_by", "agreed_by")}
            | {"awaiting": _awaiting(row, policy)} for row in await adapters.pending(pool)
            if organisations is None or row["organisation"] in organisations]


def _awaiting(row: dict[str, Any], policy: Policy) -> list[Endorsement]:
    if not policy.clinical_agreement_required:
        return [Endorsement.SECURITY]
    given = {Endorsement.SECURITY: row["approved_by"], Endorsement.CLINICAL: row["agreed_by"]}
    return [who for who, by in given.items() if by is None]


EMERGENCY_CARE = "Emergency care is never withheld: no card restricts emergency or life-threatening care."


def card_view(card: Card) -> dict[str, Any]:
    return card.model_dump(mode="json", exclude={"closed_at_seq", "review_sent"})


def _card_in_view(card: Card, state: SubjectState, policy: Policy, now: datetime) -> dict[str, Any]:
    """A card with whether it binds now and, for a warning, when it stops (or stopped) binding:
    what a letter about it has to say."""
    lapses, shown = ladder.lapses_at(card, state, policy), ladder.first_start_known(state, card)
    return card_view(shown) | {"in_force": ladder.in_force(card, state, policy, now),
                               "lapses_at": lapses.isoformat() if lapses else None}


def _incident_in_view(i: IncidentRecord, policy: Policy, counted: set[UUID]) -> dict[str, Any]:
    """An incident with whether it counts towards the ladder and until when: why an incident
    reported after it left the window carries no warning, or one whose age band was not
    recorded none yet."""
    view = i.model_dump(mode="json", include={"incident_id", "occurred_at", "category", "harm", "withdrawn",
                                              "excused", "revision"})
    return view | {"qualifies": i.incident_id in counted, "awaiting_age_band": ladder.awaiting_age_band(i, policy),
                   "counts_until": ladder.counts_until(i, policy).isoformat()}


async def describe_subject(pool: asyncpg.Pool, subject_id: str, policy: Policy, now: datetime,
                           organisations: frozenset[str] | None = None) -> dict[str, Any] | None:
    """Current level, active ban with dates, pending approvals and the reasoned history, as at `now`;
    None for a subject none of `organisations` (if given) has reported."""
    async with pool.acquire() as conn:
        state = await adapters.load(conn, subject_id)
    if not state.incidents:
        return None
    if organisations is not None and not any(i.organisation in organisations and not i.withdrawn
                                             for i in state.incidents):
        return None  # a report withdrawn (the wrong person, say) gives no sight of them
    return subject_view(state, policy, now) | {"history": await adapters.history(pool, subject_id)}


def subject_view(state: SubjectState, policy: Policy, now: datetime) -> dict[str, Any]:
    """The subject as at `now`, history aside."""
    ban, live = state.active_ban(), ladder.counted(state, policy)
    # A ban whose end has passed binds no more, though the scheduler has yet to mark it expired:
    # the front desk reads this to decide whether to turn someone away from non-emergency care.
    ban = ban if ban and ladder.in_force(ban, state, policy, now) else None
    return {
        "subject_id": state.subject_id,
        "version": state.version(),
        "card_level": ladder.card_level(state, policy, now),
        "active_ban": card_view(ladder.first_start_known(state, ban)) if ban else None,
        "pending_approvals": [card_view(c) for c in state.cards if c.status == CardStatus.PROPOSED],
        "emergency_care": EMERGENCY_CARE,
        "cards": [_card_in_view(c, state, policy, now) for c in state.cards],
        "incidents": [_incident_in_view(i, policy, live) for i in state.incidents],
    }


