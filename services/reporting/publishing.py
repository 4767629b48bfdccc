"""Publish each closed month's board figures once, as BoardMetricsPublished, through the outbox."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg

from schemas.events import envelope
from schemas.reporting import BoardMetricsPublished
from schemas.topics import BOARD_METRICS
from services.reporting import adapters
from services.reporting.config import SOURCE
from services.reporting.domain import periods
from services.reporting.domain.board import Disclosure
from services.reporting.handlers import IDS, Projection, Scope, board
from vanda.runtime.outbox import Outgoing, stage


def event_for(month: date, organisation: str, figures: dict[str, Any], disclosure: Disclosure,
              now: datetime) -> Outgoing:
    """The month's event; its id derives from month and organisation, so it is sent once."""
    totals = figures["totals"]
    indicators = {k: v for k, v in totals["indicators"].items() if not isinstance(v, dict) or "suppressed" in v}
    data = BoardMetricsPublished(period=periods.label(month), organisation=organisation,
                                 suppression_threshold=disclosure.threshold,
                                 rounding_base=disclosure.rounding, incidents=totals["incidents"],
                                 breakdowns=totals["breakdowns"] | {"incidents_by_site": totals["incidents_by_site"]},
                                 indicators=indicators, published_at=now)
    event_id = str(uuid.uuid5(IDS, f"board-metrics:{month}:{organisation}"))
    return Outgoing(BOARD_METRICS, organisation, envelope(data, source=SOURCE, subject=organisation,
                                                          event_id=event_id, time=now))


async def publish_closed_months(pool: asyncpg.Pool, p: Projection, disclosure: Disclosure, grace_days: int,
                                now: datetime) -> int:
    """Publish every closed month not yet published (suppressed figures only); return how many."""
    current = periods.month_of(now - timedelta(days=grace_days), p.zone)
    due = await adapters.unpublished_months(pool, periods.start_of(current, p.zone), p.zone.key)
    sent = 0
    for month, organisation in due:
        figures = await board(pool, Scope(periods.parse(periods.label(month)), organisation), p,
                              disclosure)
        outgoing = event_for(month, organisation, figures, disclosure, now)
        async with pool.acquire() as conn, conn.transaction():
            if await adapters.claim_month(conn, month, organisation, outgoing.event.id):
                await stage(conn, adapters.SCHEMA, [outgoing])
                sent += 1
    return sent
