"""Sanctions' PostgreSQL adapter: subject state in and out, cards, decisions, audit."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from schemas.sanctions import Decision
from services.sanctions.domain import SubjectState

SCHEMA = "sanctions"


async def lock_subject(conn: asyncpg.Connection, subject_id: str) -> None:
    """Serialise changes per subject across replicas for the rest of the transaction."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", subject_id)


async def load(conn: asyncpg.Connection, subject_id: str) -> SubjectState:
    raw = await conn.fetchval("SELECT state FROM sanctions.subjects WHERE subject_id = $1", subject_id)
    return SubjectState.model_validate(raw) if raw else SubjectState(subject_id=subject_id)


async def save(conn: asyncpg.Connection, state: SubjectState, decisions: list[Decision]) -> None:
    """Store the new state, its cards and the decisions that produced it."""
    await conn.execute(
        "INSERT INTO sanctions.subjects (subject_id, state) VALUES ($1, $2) ON CONFLICT (subject_id)"
        " DO UPDATE SET state = EXCLUDED.state, updated_at = now()",
        state.subject_id, state.model_dump(mode="json"),
    )
    await conn.executemany(
        "INSERT INTO sanctions.cards (sanction_id, subject_id, kind, status, incident_id, starts_at, ends_at,"
        " review_sent, appeal) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (sanction_id) DO UPDATE"
        " SET status = EXCLUDED.status, starts_at = EXCLUDED.starts_at, ends_at = EXCLUDED.ends_at,"
        " review_sent = EXCLUDED.review_sent, appeal = EXCLUDED.appeal, updated_at = now()",
        [(c.sanction_id, state.subject_id, c.kind.value, c.status.value, c.incident_id, c.starts_at, c.ends_at,
          c.review_sent, c.appeal.value) for c in state.cards],
    )
    await conn.executemany(
        "INSERT INTO sanctions.decisions (decision_id, subject_id, event_type, incident_id, rule, policy_version,"
        " payload, decided_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (decision_id) DO NOTHING",
        [(d.decision_id, d.subject_id, d.event_type, d.incident_id, d.rule, d.policy_version,
          d.model_dump(mode="json"), d.decided_at) for d in decisions],
    )


async def subject_of(conn: asyncpg.Connection, sanction_id: UUID) -> str | None:
    return await conn.fetchval("SELECT subject_id FROM sanctions.cards WHERE sanction_id = $1", sanction_id)


async def audit(conn: asyncpg.Connection, actor: str, action: str, sanction_id: UUID | None,
                subject_id: str | None, reason: str | None) -> None:
    await conn.execute(
        "INSERT INTO sanctions.audit (actor, action, sanction_id, subject_id, reason) VALUES ($1, $2, $3, $4, $5)",
        actor, action, sanction_id, subject_id, reason,
    )


async def due_subjects(conn: asyncpg.Connection, now: datetime, review_days: int) -> list[str]:
    """Subjects with a ban whose review is due or that has ended."""
    rows = await conn.fetch(
        "SELECT DISTINCT subject_id FROM sanctions.cards WHERE status = 'active'"
        " AND (ends_at <= $1 OR (NOT review_sent AND ends_at - make_interval(days => $2) <= $1))",
        now, review_days,
    )
    return [r["subject_id"] for r in rows]


async def history(pool: asyncpg.Pool, subject_id: str) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT payload, event_type FROM sanctions.decisions WHERE subject_id = $1 ORDER BY seq", subject_id)
    return [r["payload"] | {"type": r["event_type"]} for r in rows]


async def pending(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT c.sanction_id, c.subject_id, c.incident_id, d.decided_at AS proposed_at FROM sanctions.cards c"
        " JOIN sanctions.decisions d ON d.decision_id = c.sanction_id WHERE c.status = 'proposed'"
        " ORDER BY d.decided_at")
    return [dict(r) for r in rows]
