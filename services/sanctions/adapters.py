"""Sanctions' PostgreSQL adapter: subject history in, decisions and incidents out."""

from __future__ import annotations

from typing import Any

import asyncpg

from schemas.incidents import IncidentReported
from schemas.sanctions import Decision, RedCardProposed
from services.sanctions.domain import History, PastIncident

SCHEMA = "sanctions"
STATUS = {
    "uk.nhs.vanda.sanction.yellow_card_issued.v1": "issued",
    "uk.nhs.vanda.sanction.red_card_proposed.v1": "proposed",
    "uk.nhs.vanda.sanction.clinical_review_requested.v1": "requested",
    "uk.nhs.vanda.sanction.safeguarding_referral_requested.v1": "requested",
}


async def lock_subject(conn: asyncpg.Connection, subject_id: str) -> None:
    """Serialise decisions per subject across replicas for the rest of the transaction."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", subject_id)


async def load_history(conn: asyncpg.Connection, subject_id: str) -> History:
    rows = await conn.fetch(
        "SELECT incident_id, occurred_at FROM sanctions.incidents"
        " WHERE subject_id = $1 AND qualifying ORDER BY occurred_at",
        subject_id,
    )
    red_open = await conn.fetchval(
        "SELECT exists(SELECT 1 FROM sanctions.decisions WHERE subject_id = $1 AND event_type = $2"
        " AND status = 'proposed')",
        subject_id, RedCardProposed.event_type,
    )
    return History(tuple(PastIncident(r["incident_id"], r["occurred_at"]) for r in rows), bool(red_open))


async def record(conn: asyncpg.Connection, incident: IncidentReported, qualifying: bool,
                 decisions: tuple[Decision, ...]) -> None:
    await conn.execute(
        "INSERT INTO sanctions.incidents (incident_id, subject_id, occurred_at, qualifying)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT (incident_id) DO NOTHING",
        incident.incident_id, incident.subject_id, incident.occurred_at, qualifying,
    )
    await conn.executemany(
        "INSERT INTO sanctions.decisions (decision_id, subject_id, event_type, status, incident_id, rule,"
        " policy_version, payload, decided_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        " ON CONFLICT (decision_id) DO NOTHING",
        [(d.decision_id, d.subject_id, d.event_type, STATUS[d.event_type], d.incident_id, d.rule,
          d.policy_version, d.model_dump(mode="json"), d.decided_at) for d in decisions],
    )


async def subject_view(pool: asyncpg.Pool, subject_id: str) -> dict[str, Any] | None:
    """Everything sanctions holds on one subject, oldest decision first."""
    async with pool.acquire() as conn:
        incidents = await conn.fetch(
            "SELECT incident_id, occurred_at, qualifying FROM sanctions.incidents"
            " WHERE subject_id = $1 ORDER BY occurred_at", subject_id)
        decisions = await conn.fetch(
            "SELECT event_type, status, payload FROM sanctions.decisions"
            " WHERE subject_id = $1 ORDER BY decided_at, decision_id", subject_id)
    if not incidents and not decisions:
        return None
    return {"incidents": [dict(r) for r in incidents], "decisions": [dict(r) for r in decisions]}
