"""Publish through the outbox: each closed month's board figures (BoardMetricsPublished), and again
if they change, and each footage notice once each time the footage changes side
(FootageHoldRequired, FootageDeletionDue)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import asyncpg

from schemas.events import envelope
from schemas.reporting import BoardMetricsPublished, FootageDeletionDue, FootageHoldRequired
from schemas.topics import BOARD_METRICS, FOOTAGE
from services.reporting import adapters, footage_store
from services.reporting.config import SOURCE
from services.reporting.domain import footage, periods, revisions
from services.reporting.domain.board import Disclosure
from services.reporting.handlers import Projection, Scope, board, derived_id
from vanda.runtime.db import alone
from vanda.runtime.outbox import Outgoing, stage


def event_for(month: date, organisation: str, figures: dict[str, Any], disclosure: Disclosure,
              now: datetime, revision: int = 1) -> Outgoing:
    """The month's event; its id derives from month, organisation and revision, so each is sent
    once (the first revision's id is the one used before revisions existed)."""
    totals = figures["totals"]
    indicators = {k: v for k, v in totals["indicators"].items() if not isinstance(v, dict) or "suppressed" in v}
    data = BoardMetricsPublished(period=periods.label(month), organisation=organisation,
                                 suppression_threshold=disclosure.threshold,
                                 rounding_base=disclosure.rounding, incidents=totals["incidents"],
                                 breakdowns=totals["breakdowns"] | {"incidents_by_site": totals["incidents_by_site"]},
                                 indicators=indicators, published_at=now, revision=revision)
    return Outgoing(BOARD_METRICS, organisation, envelope(
        data, source=SOURCE, subject=organisation, event_id=derived_id(f"board-metrics:{month}:{organisation}",
                                                                        revision), time=now))


def figures_of(event: Outgoing) -> dict[str, Any]:
    """What a revision compares: the published figures, not when or which revision."""
    return event.event.data.model_dump(mode="json", exclude={"published_at", "revision"})


async def publish_closed_months(pool: asyncpg.Pool, p: Projection, disclosure: Disclosure, grace_days: int,
                                now: datetime, revise_months: int = 0) -> int | None:
    """Publish every closed month not yet published, from each organisation's first report on
    (a month with none is published too, as zeros), and again each of the last `revise_months`
    whose figures changed since; suppressed figures only. Return how many went out, or None if
    another replica's round is under way (this one then does nothing)."""
    # One round at a time across replicas: two would work out the same boards twice, and one
    # holding older figures could publish them as a revision after the other's newer ones.
    async with alone(pool, "board-metrics") as mine:
        return await _publish_round(pool, p, disclosure, grace_days, now, revise_months) if mine else None


async def _publish_round(pool: asyncpg.Pool, p: Projection, disclosure: Disclosure, grace_days: int,
                         now: datetime, revise_months: int) -> int:
    current = periods.month_of(now - timedelta(days=grace_days), p.zone)
    since = periods.add_months(current, -revise_months)
    due = await adapters.months_to_publish(pool, periods.start_of(current, p.zone), current, since, p.zone.key)
    sent = 0
    for month, organisation in due:
        figures = await board(pool, Scope(periods.parse(periods.label(month)), organisation), p, disclosure, now)
        first = event_for(month, organisation, figures, disclosure, now)
        async with pool.acquire() as conn, conn.transaction():
            last = await adapters.published_month(conn, month, organisation)
            if (step := revisions.next_published(last, revisions.digest(figures_of(first)))) is None:
                continue
            published, goes_out = step
            outgoing = first if published.revision == 1 else event_for(month, organisation, figures, disclosure,
                                                                         now, published.revision)
            if await adapters.record_month(conn, month, organisation, published, outgoing.event.id, last is None):
                await stage(conn, adapters.SCHEMA, [outgoing] if goes_out else [])
                sent += goes_out
    return sent


NOTICE_CHUNK = 500  # incidents announced per transaction


def notice_for(notice: str, f: footage.Footage, retention: timedelta, now: datetime, round_: int = 1) -> Outgoing:
    """The notice's event; its id derives from the incident, the notice and its round, so each
    round is sent once (the first round's id is the one used before rounds existed)."""
    fact, key = f.fact, str(f.fact.incident_id)
    common = {"incident_id": fact.incident_id, "organisation": fact.organisation, "site": fact.site,
              "occurred_at": fact.occurred_at}
    data = (FootageHoldRequired(**common, uses=footage.uses(f)) if notice == "hold"
            else FootageDeletionDue(**common, delete_from=footage.delete_from(fact, retention)))
    event_id = derived_id(f"footage-{notice}:{fact.incident_id}", round_)
    return Outgoing(FOOTAGE, key, envelope(data, source=SOURCE, subject=key, event_id=event_id, time=now))


async def announce_footage(pool: asyncpg.Pool, retention: timedelta, now: datetime) -> int:
    """Publish a hold for footage that has become evidence and a release for footage that has
    fallen due, each when the footage changes side (held, released, held again); return how many."""
    # One round at a time across replicas: two could each find an incident's footage on another
    # side, moments apart, and their notices reach the camera system in the wrong order.
    async with alone(pool, "footage-notices") as mine:
        return await _announce_round(pool, retention, now) if mine else 0


async def _announce_round(pool: asyncpg.Pool, retention: timedelta, now: datetime) -> int:
    sent = 0
    for notice in footage_store.NOTICE_STATUS:
        while found := await footage_store.unannounced(pool, notice, now - retention, NOTICE_CHUNK):
            async with pool.acquire() as conn, conn.transaction():
                for f, round_ in found:
                    outgoing = notice_for(notice, f, retention, now, round_)
                    if await footage_store.claim_notice(conn, f.fact.incident_id, notice, round_, outgoing.event.id):
                        await stage(conn, adapters.SCHEMA, [outgoing])
                        sent += 1
    return sent
