"""Inbox: remember processed event ids in the same transaction as their effect."""

from __future__ import annotations

import asyncpg


async def claim_many(conn: asyncpg.Connection, schema: str, events: list[tuple[str, str]]) -> set[str]:
    """Record many (event id, topic) as processed in one statement; return the ids that were new."""
    rows = await conn.fetch(
        f"INSERT INTO {schema}.inbox (event_id, topic) SELECT * FROM unnest($1::text[], $2::text[])"
        " ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
        [e for e, _ in events], [t for _, t in events],
    )
    return {r["event_id"] for r in rows}


async def claim(conn: asyncpg.Connection, schema: str, event_id: str, topic: str) -> bool:
    """Record an event as processed; False if it already was (a redelivery)."""
    inserted = await conn.fetchval(
        f"INSERT INTO {schema}.inbox (event_id, topic) VALUES ($1, $2)"
        " ON CONFLICT (event_id) DO NOTHING RETURNING true",
        event_id,
        topic,
    )
    return bool(inserted)
