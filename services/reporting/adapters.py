"""Reporting's PostgreSQL adapter: counter upserts and range reads."""

from __future__ import annotations

from collections import Counter
from datetime import date
from uuid import UUID

import asyncpg

from services.reporting.domain import Cell

SCHEMA = "reporting"


async def add(conn: asyncpg.Connection, summed: Counter[Cell]) -> None:
    """Add each delta to its cell, inside the consumer's transaction."""
    await conn.executemany(
        "INSERT INTO reporting.monthly_counts (month, organisation, site, measure, dimension, count)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (month, organisation, site, measure, dimension)"
        " DO UPDATE SET count = reporting.monthly_counts.count + EXCLUDED.count",
        [(c.month, c.organisation, c.site, c.measure, c.dimension, n) for c, n in sorted(summed.items())],
    )


async def read(pool: asyncpg.Pool, start: date, end: date, organisation: str | None,
               site: str | None) -> dict[Cell, int]:
    """Counts for months in [start, end], optionally for one organisation or site."""
    rows = await pool.fetch(
        "SELECT month, organisation, site, measure, dimension, count FROM reporting.monthly_counts"
        " WHERE month BETWEEN $1 AND $2 AND ($3::text IS NULL OR organisation = $3)"
        " AND ($4::text IS NULL OR site = $4)",
        start, end, organisation, site,
    )
    return {Cell(r["month"], r["organisation"], r["site"], r["measure"], r["dimension"]): r["count"] for r in rows}


async def remembered(conn: asyncpg.Connection, incident_id: UUID) -> list[Cell] | None:
    """The cells an incident currently counts in, or None if reporting never saw it."""
    raw = await conn.fetchval("SELECT cells FROM reporting.incident_cells WHERE incident_id = $1", incident_id)
    return None if raw is None else [Cell(date.fromisoformat(c[0]), *c[1:]) for c in raw]


async def remember(conn: asyncpg.Connection, incident_id: UUID, cells: list[Cell]) -> None:
    """Keep an incident's cells (categories only, no identifiers) so amendments can undo them."""
    await conn.execute(
        "INSERT INTO reporting.incident_cells (incident_id, cells) VALUES ($1, $2)"
        " ON CONFLICT (incident_id) DO UPDATE SET cells = EXCLUDED.cells",
        incident_id, [[c.month.isoformat(), c.organisation, c.site, c.measure, c.dimension] for c in cells],
    )
