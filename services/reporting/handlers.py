"""Reporting use cases: project an event into counters; build the board view."""

from __future__ import annotations

from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from schemas.envelope import CloudEvent
from services.reporting import adapters
from schemas.incidents import IncidentAmended, IncidentReported, IncidentWithdrawn
from services.reporting.domain import board, changes, month_range
from vanda.runtime.outbox import Outgoing


async def on_event(conn: asyncpg.Connection, event: CloudEvent[Any], zone: ZoneInfo) -> list[Outgoing]:
    """Apply an event's count changes inside the consumer's transaction; reporting publishes nothing yet."""
    incident_id = getattr(event.data, "incident_id", None) if _is_incident(event.data) else None
    previous = await adapters.remembered(conn, incident_id) if incident_id else None
    deltas, keep = changes(event.data, previous, zone)
    await adapters.add(conn, deltas)
    if incident_id and keep is not None:
        await adapters.remember(conn, incident_id, keep)
    return []


def _is_incident(data: Any) -> bool:
    return isinstance(data, (IncidentReported, IncidentAmended, IncidentWithdrawn))


async def board_metrics(pool: asyncpg.Pool, start: date, end: date, organisation: str | None,
                        site: str | None) -> dict[str, Any]:
    """Monthly board figures from start to end months inclusive."""
    counts = await adapters.read(pool, start, end, organisation, site)
    return {
        "from": start.strftime("%Y-%m"),
        "to": end.strftime("%Y-%m"),
        "organisation": organisation,
        "site": site,
        **board(counts, month_range(start, end)),
    }
