"""Reporting use cases: project events into facts, build the board, the referral and footage worklists."""

from __future__ import annotations

import asyncio
import uuid
import weakref
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from schemas.envelope import CloudEvent
from schemas.events import envelope
from schemas.incidents import Category, IncidentAmended, IncidentReported, IncidentWithdrawn
from schemas.reporting import PoliceReferralRequired, PoliceReferralRetracted, ReferralCriterion, RetractionReason
from schemas.sanctions import Decision
from schemas.topics import POLICE_REFERRALS
from services.reporting import adapters, footage_store
from services.reporting.config import SOURCE
from services.reporting.domain import cursor, footage, periods, police
from services.reporting.domain.board import Disclosure, compute, view
from services.reporting.domain.facts import IncidentFact, decision_fact, next_fact
from services.reporting.domain.indicators import Headcount
from services.reporting.domain.metrics import Inputs, Window
from services.reporting.domain.objectives import assess, headline
from services.reporting.domain.police import status
from vanda.runtime import outbox
from vanda.runtime.auth import Principal
from vanda.runtime.outbox import Outgoing

IDS = uuid.UUID("5b0c4d1e-9a57-4c1b-8f7e-2a9d3c6b1e40")  # namespace for derived event ids


def derived_id(name: str, round_: int = 1) -> str:
    """The id of the `round_`th event of its kind for `name`: the same on every re-send. The
    first round's is the one used before rounds existed, so it carries no number."""
    return str(uuid.uuid5(IDS, name + (f":{round_}" if round_ > 1 else "")))


@dataclass(frozen=True)
class Projection:
    """How events become facts: the trust's calendar, its referral criteria, where facts go."""

    zone: ZoneInfo
    criteria: frozenset[ReferralCriterion]
    schema: str = adapters.SCHEMA
    emit: bool = True  # a rebuild replays history: it must not prompt the police again


async def on_event(conn: asyncpg.Connection, event: CloudEvent[Any], p: Projection) -> list[Outgoing]:
    """Apply one event inside the consumer's transaction; return the events it causes."""
    return await on_events(conn, [event], p)


async def on_events(conn: asyncpg.Connection, events: list[CloudEvent[Any]], p: Projection) -> list[Outgoing]:
    """Apply a batch in order, with a handful of statements for the whole batch; return the
    events it causes: per incident, what the referral topic must say once the batch is in."""
    incidents = [e.data for e in events if isinstance(e.data, (IncidentReported, IncidentAmended, IncidentWithdrawn))]
    ids = [d.incident_id for d in incidents]
    facts = await adapters.load_incidents(conn, ids, p.schema)
    before = await adapters.load_claims(conn, ids, p.schema)
    changed: dict[Any, IncidentFact] = {}
    claims = dict(before)
    for data in incidents:
        fact = next_fact(facts.get(data.incident_id), data)
        if fact != facts.get(data.incident_id):
            facts[data.incident_id] = changed[data.incident_id] = fact
        claim = claims.get(data.incident_id)
        met = police.met_now(fact, p.criteria, claim)
        if (claim := police.next_claim(claim, met)) is not None:
            claims[data.incident_id] = claim
    moved = {i: c for i, c in claims.items() if c != before.get(i)}
    await adapters.save_incidents(conn, list(changed.values()), p.schema)
    await adapters.save_claims(conn, moved, p.schema)
    await adapters.save_decisions(conn, [decision_fact(e.data) for e in events if isinstance(e.data, Decision)],
                                  p.schema)
    if not p.emit:  # a rebuild replays history: it must not prompt the police again
        return []
    return [referral_event(facts[i], c, kind) for i, c in moved.items()
            if (kind := police.announcement(before.get(i), c))]


async def settle_claims(conn: asyncpg.Connection, schema: str = adapters.SCHEMA,
                        outbox_schema: str = adapters.SCHEMA) -> int:
    """Send what the referral topic still owes: a prompt where the record calls for a referral
    and the last event said otherwise (or none went out), a retraction the other way. For claims
    made before retractions existed, and for the claims a rebuild's promotion brings."""
    claims = await adapters.unsettled_claims(conn, schema)
    facts = await adapters.load_incidents(conn, list(claims), schema)
    settled = {i: police.settled(c) for i, c in claims.items() if i in facts}
    await adapters.save_claims(conn, settled, schema)
    events = [referral_event(facts[i], c, kind) for i, c in settled.items()
              if (kind := police.announcement(claims[i], c))]
    await outbox.stage(conn, outbox_schema, events)
    return len(events)


def referral_event(fact: IncidentFact, claim: police.Claim, kind: str) -> Outgoing:
    """The referral topic's event for a claim: "required" or "retracted". Its id derives from the
    incident and the round, so a re-send is recognisable (the first prompt's id predates rounds)."""
    about = dict(incident_id=fact.incident_id, organisation=fact.organisation, site=fact.site,
                 occurred_at=fact.occurred_at, category=Category(fact.category), already_referred=fact.referred)
    if kind == "required":
        data: Any = PoliceReferralRequired(**about, criteria=[ReferralCriterion(c) for c in claim.criteria])
        event_id = derived_id(f"police-referral:{fact.incident_id}", claim.round)
    else:
        reason = RetractionReason.WITHDRAWN if fact.withdrawn else RetractionReason.CRITERIA_NO_LONGER_MET
        data = PoliceReferralRetracted(**about, reason=reason)
        event_id = str(uuid.uuid5(IDS, f"police-referral-retracted:{fact.incident_id}:{claim.round}"))
    key = str(fact.incident_id)
    return Outgoing(POLICE_REFERRALS, key, envelope(data, source=SOURCE, subject=key, event_id=event_id))


@dataclass(frozen=True)
class Scope:
    period: periods.Period
    organisation: str | None = None
    site: str | None = None
    location_type: str | None = None


# A large region's board holds every fact of its period in memory (hundreds of MB): two at
# once would double the peak and could take the process past its memory limit. Boards
# queue behind each other instead; each takes the CPU it would have shared anyway.
BOARDS_AT_ONCE = 1
_boards: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


async def board(pool: asyncpg.Pool, scope: Scope, p: Projection, disclosure: Disclosure,
                now: datetime | None = None) -> dict[str, Any]:
    """The board's figures for a period: months, totals, indicators and objectives, as known at
    `now` (what is not yet due then, a RIDDOR report within its 15 days, is not yet late)."""
    # One queue per event loop: a semaphore belongs to the loop it first waited on.
    slots = _boards.setdefault(asyncio.get_running_loop(), asyncio.Semaphore(BOARDS_AT_ONCE))
    async with slots:
        return await _board(pool, scope, p, disclosure, now)


async def _board(pool: asyncpg.Pool, scope: Scope, p: Projection, disclosure: Disclosure,
                 now: datetime | None) -> dict[str, Any]:
    start, end = periods.bounds(scope.period, p.zone)
    where = (scope.organisation, scope.site, p.schema)
    incidents = await adapters.incidents_between(pool, start, end, *where, location=scope.location_type)
    if scope.organisation is None:
        # A region's trusts name their sites as they like: "Main Site" of two trusts is two sites,
        # not one with both trusts' incidents (and a camera share of neither).
        incidents = [replace(f, site=f"{f.organisation} {f.site}") for f in incidents]
    decisions = await adapters.decisions_before(pool, start, end, *where, location=scope.location_type)
    red = [d.incident_id for d in decisions if d.kind == "red_card_proposed"]
    related = await adapters.incidents_by_id(pool, red, p.schema)
    heads, missing = await _workforce(pool, scope, incidents)
    months = [Window(periods.label(m), periods.start_of(m, p.zone), periods.start_of(periods.add_months(m, 1), p.zone))
              for m in scope.period.months]
    # A long period's figures are seconds of pure CPU: worked out in a thread, so that the
    # event loop goes on serving consumers, health checks and other requests meanwhile.
    body = await asyncio.to_thread(_figures, Inputs(incidents, decisions, related, p.criteria, p.zone, now), months,
                                   Window("total", start, end), disclosure, heads)
    goals = assess(await adapters.objectives(pool), headline(body["totals"]), [headline(m) for m in body["months"]])
    return {"from": periods.label(scope.period.first), "to": periods.label(scope.period.last),
            "period": scope.period.label, "organisation": scope.organisation, "site": scope.site,
            "location_type": scope.location_type, "workforce_missing": missing,
            **body, "objectives": goals}


async def _workforce(pool: asyncpg.Pool, scope: Scope, incidents: list[IncidentFact]) -> tuple[Headcount, list[str]]:
    """The staff in post the rates count against, and the organisations with incidents in scope
    but no workforce load. With any such, no rate is given: a region's incidents over some of
    its trusts' staff would overstate every rate, by three times with one trust of three loaded."""
    if scope.location_type:  # loaded by site, not by where in it staff work: no rate for one location type
        return {}, []
    heads, loaded = await adapters.headcount(pool, scope.period.label, scope.period.last, scope.organisation,
                                             scope.site)
    missing = sorted({f.organisation for f in incidents if not f.withdrawn} - loaded)
    return ({}, missing) if missing else (heads, [])


def _figures(inputs: Inputs, months: list[Window], total: Window, disclosure: Disclosure,
             heads: Headcount) -> dict[str, Any]:
    return view(compute(inputs, months, total, disclosure), disclosure, heads)


async def worklist(pool: asyncpg.Pool, wanted: str | None, organisations: list[str] | None, site: str | None,
                   after: str | None = None, limit: int = 100) -> dict[str, Any]:
    """A page of incidents meeting the referral criteria, with where each stands, and the
    cursor of the next page (None on the last); no identifier of anyone."""
    found = await adapters.referrals(pool, wanted, organisations, site, cursor.decode(after), limit)
    page = [{"incident_id": str(fact.incident_id), "status": status(fact), "criteria": criteria,
             "organisation": fact.organisation, "site": fact.site, "category": fact.category,
             "occurred_at": fact.occurred_at.isoformat(),
             "referred_at": fact.referred_at.isoformat() if fact.referred_at else None,
             "crime_reference": fact.crime_reference, "outcome": fact.police_outcome}
            for fact, criteria in found]
    last = found[-1][0] if len(found) == limit else None
    return {"referrals": page, "next": cursor.encode(last.occurred_at, last.incident_id) if last else None}


async def footage_worklist(pool: asyncpg.Pool, wanted: str | None, organisations: list[str] | None, site: str | None,
                           after: str | None, limit: int, now: datetime, retention: timedelta) -> dict[str, Any]:
    """A page of incidents with body-worn camera footage, oldest first: what rests on each
    one's footage and whether it may be deleted, and the next page's cursor."""
    found = await footage_store.footage(pool, wanted, organisations, site, cursor.decode(after), limit,
                                        now - retention)
    page = [footage_item(f, by, now, retention) for f, by in found]
    last = found[-1][0].fact if len(found) == limit else None
    return {"footage": page, "next": cursor.encode(last.occurred_at, last.incident_id) if last else None}


def footage_item(f: footage.Footage, recorded_by: str | None, now: datetime, retention: timedelta) -> dict[str, Any]:
    return {"incident_id": str(f.fact.incident_id), "status": footage.status(f, now, retention),
            "uses": footage.uses(f), "organisation": f.fact.organisation, "site": f.fact.site,
            "occurred_at": f.fact.occurred_at.isoformat(),
            "delete_from": footage.delete_from(f.fact, retention).isoformat(),
            "deleted_at": f.deleted_at.isoformat() if f.deleted_at else None, "deleted_recorded_by": recorded_by,
            "deletion_unplanned": f.deletion_unplanned if f.deleted_at else None}


async def footage_deleted(pool: asyncpg.Pool, incident_id: uuid.UUID, who: Principal, now: datetime,
                          retention: timedelta, at: datetime | None = None,
                          unplanned: bool = False) -> dict[str, Any] | None:
    """Record that an incident's footage was deleted (at `at`, else now), if the rules allow it
    (footage.Refused or footage.BadTime if not); None when no incident with footage has that
    id. A repeat answers with the first record."""
    found = await footage_store.footage_one(pool, incident_id)
    if found is None or not who.acts_for(found[0].fact.organisation):
        return None
    current, when = found[0], at or now
    footage.check_deletion(current, when, retention, unplanned)
    was = footage.status(current, when, retention)
    at, by, unplanned = await footage_store.record_deletion(pool, incident_id, when, who.subject, unplanned, was)
    return footage_item(replace(current, deleted_at=at, deletion_unplanned=unplanned), by, now, retention)


async def footage_retracted(pool: asyncpg.Pool, incident_id: uuid.UUID, who: Principal, reason: str, now: datetime,
                            retention: timedelta) -> dict[str, Any] | None:
    """Retract the deletion recorded for an incident's footage; the item as it now stands, with
    the record retracted. None when no deletion is recorded (or the incident is of an
    organisation the person does not act for)."""
    if who.organisations is not None:  # read first only to see whose incident it is
        mine = await footage_store.footage_one(pool, incident_id)
        if mine is None or not who.acts_for(mine[0].fact.organisation):
            return None
    gone = await footage_store.retract_deletion(pool, incident_id, who.subject, reason)
    if gone is None:
        return None
    found = await footage_store.footage_one(pool, incident_id)
    assert found is not None  # a deletion is only ever recorded for an incident with footage
    retracted = {"deleted_at": gone["deleted_at"].isoformat(), "recorded_by": gone["recorded_by"],
                 "unplanned": gone["unplanned"], "retracted_by": who.subject, "reason": reason}
    return footage_item(*found, now, retention) | {"retracted": retracted}


def month_scope(first: date, last: date, organisation: str | None, site: str | None,
                location_type: str | None = None) -> Scope:
    return Scope(periods.span(first, last), organisation, site, location_type)
