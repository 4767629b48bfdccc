"""Reporting use cases: project an event into counters; build the board view."""

from __future__ import annotations

from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from schemas.envelope import CloudEvent
from services.reporting import adapters
from services.reporting.domain import board, increments, month_range
from vanda.runtime.outbox import Outgoing


async def on_event(conn: asyncpg.Connection, event: CloudEvent[Any], zone: ZoneInfo) -> list[Outgoing]:
    """Add an event's cells inside the consumer's transaction; reporting publishes nothing yet."""
    await adapters.add(conn, increments(event.data, zone))
    return []


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
