"""Inbox: remember processed event ids in the same transaction as their effect."""

from __future__ import annotations

import asyncpg


async def claim(conn: asyncpg.Connection, schema: str, event_id: str, topic: str) -> bool:
    """Record an event as processed; False if it already was (a redelivery)."""
    inserted = await conn.fetchval(
        f"INSERT INTO {schema}.inbox (event_id, topic) VALUES ($1, $2)"
        " ON CONFLICT (event_id) DO NOTHING RETURNING true",
        event_id,
        topic,
    )
    return bool(inserted)
