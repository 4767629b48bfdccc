"""Sanctions' PostgreSQL adapter: subject state in and out, cards, decisions, audit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from services.sanctions.domain import Card, SubjectState
from vanda.runtime.db import PURGE_CHUNK, in_chunks
from vanda.runtime.outbox import Outgoing
from vanda.runtime.rows import insert_many

SCHEMA = "sanctions"


async def lock_subject(conn: asyncpg.Connection, subject_id: str) -> None:
    """Serialise changes per subject across replicas for the rest of the transaction."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", subject_id)


async def try_lock_subject(conn: asyncpg.Connection, subject_id: str) -> bool:
    """`lock_subject` if no one else holds it now; False, at once, if someone does."""
    return await conn.fetchval("SELECT pg_try_advisory_xact_lock(hashtext($1))", subject_id)


async def lock_subjects(conn: asyncpg.Connection, subject_ids: list[str]) -> None:
    """`lock_subject` for many, always in sorted order so two batches cannot deadlock."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext(s)) FROM unnest($1::text[]) AS s",
                       sorted(set(subject_ids)))


async def load(conn: asyncpg.Connection, subject_id: str) -> SubjectState:
    return (await load_many(conn, [subject_id]))[subject_id]


async def load_many(conn: asyncpg.Connection, subject_ids: list[str]) -> dict[str, SubjectState]:
    """Each subject's state (empty for one never seen), in one query."""
    rows = await conn.fetch("SELECT subject_id, state FROM sanctions.subjects WHERE subject_id = ANY($1::text[])",
                            list(set(subject_ids)))
    found = {r["subject_id"]: SubjectState.model_validate(r["state"]) for r in rows}
    return {s: found.get(s) or SubjectState(subject_id=s) for s in subject_ids}


async def every_state(conn: asyncpg.Connection, chunk: int = 500) -> AsyncIterator[SubjectState]:
    """Every subject's state, read through a cursor a chunk at a time (in the caller's
    transaction), so that a region's history is never in memory at once."""
    cursor = await conn.cursor("SELECT state FROM sanctions.subjects ORDER BY subject_id")
    while rows := await cursor.fetch(chunk):
        for row in rows:
            yield SubjectState.model_validate(row["state"])


async def save(conn: asyncpg.Connection, state: SubjectState, decisions: list[Outgoing]) -> None:
    """Store the new state, its cards and the decisions that produced it (as their outgoing events)."""
    await save_many(conn, [state], decisions)


async def save_many(conn: asyncpg.Connection, states: list[SubjectState], decisions: list[Outgoing],
                    before: dict[str, SubjectState] | None = None) -> None:
    """Store new states, the cards that differ from `before` (all if not given) and the decisions."""
    await insert_many(conn, "sanctions.subjects", (("subject_id", "text"), ("state", "json")),
                      [(s.subject_id, s) for s in states],
                      "ON CONFLICT (subject_id) DO UPDATE SET state = EXCLUDED.state, updated_at = now()")
    await _save_cards(conn, [(s, c) for s in states for c in _changed_cards(s, (before or {}).get(s.subject_id))])
    await _save_decisions(conn, decisions)


def _changed_cards(state: SubjectState, before: SubjectState | None) -> list[Card]:
    old = {c.sanction_id: c for c in before.cards} if before else {}
    return [c for c in state.cards if old.get(c.sanction_id) != c]


CARD_COLUMNS = (("sanction_id", "uuid"), ("subject_id", "text"), ("kind", "text"), ("status", "text"),
                ("incident_id", "uuid"), ("starts_at", "timestamptz"), ("ends_at", "timestamptz"),
                ("review_sent", "boolean"), ("appeal", "text"), ("occurred_at", "timestamptz"),
                ("approved_by", "text"), ("agreed_by", "text"))
DECISION_COLUMNS = (("decision_id", "uuid"), ("subject_id", "text"), ("event_type", "text"), ("incident_id", "uuid"),
                    ("rule", "text"), ("policy_version", "text"), ("payload", "json"), ("decided_at", "timestamptz"))


async def _save_cards(conn: asyncpg.Connection, cards: list[tuple[SubjectState, Card]]) -> None:
    await insert_many(
        conn, "sanctions.cards", CARD_COLUMNS,
        [(c.sanction_id, s.subject_id, c.kind.value, c.status.value, c.incident_id, c.starts_at, c.ends_at,
          c.review_sent, c.appeal.value, _occurred_at(s, c), c.approved_by, c.agreed_by) for s, c in cards],
        "ON CONFLICT (sanction_id) DO UPDATE SET status = EXCLUDED.status, starts_at = EXCLUDED.starts_at,"
        " ends_at = EXCLUDED.ends_at, review_sent = EXCLUDED.review_sent, appeal = EXCLUDED.appeal,"
        " approved_by = EXCLUDED.approved_by, agreed_by = EXCLUDED.agreed_by, updated_at = now()",
    )


def _occurred_at(state: SubjectState, card: Card) -> datetime | None:
    incident = state.incident(card.incident_id)
    return incident.occurred_at if incident else None


async def _save_decisions(conn: asyncpg.Connection, decisions: list[Outgoing]) -> None:
    # Inserted in decision order: the table's seq orders a subject's history. The payload is
    # the JSON the outbox publishes (a Fragment is written as it is), not a second dump.
    await insert_many(
        conn, "sanctions.decisions", DECISION_COLUMNS,
        [_decision_row(o) for o in decisions], "ON CONFLICT (decision_id) DO NOTHING")


def _decision_row(outgoing: Outgoing) -> tuple:
    d = outgoing.event.data
    return (d.decision_id, d.subject_id, d.event_type, d.incident_id, d.rule, d.policy_version,
            orjson.Fragment(outgoing.data_json), d.decided_at)


async def subject_of(conn: asyncpg.Connection, sanction_id: UUID) -> str | None:
    return await conn.fetchval("SELECT subject_id FROM sanctions.cards WHERE sanction_id = $1", sanction_id)


async def audit(conn: asyncpg.Connection, actor: str, action: str, sanction_id: UUID | None,
                subject_id: str | None, reason: str | None) -> None:
    await conn.execute(
        "INSERT INTO sanctions.audit (actor, action, sanction_id, subject_id, reason) VALUES ($1, $2, $3, $4, $5)",
        actor, action, sanction_id, subject_id, reason,
    )


async def acted(conn: asyncpg.Connection, sanction_id: UUID, actor: str, action: str) -> bool:
    """Whether this person already took this action on this sanction."""
    return await conn.fetchval("SELECT EXISTS (SELECT 1 FROM sanctions.audit WHERE sanction_id = $1 AND actor = $2"
                               " AND action = $3)", sanction_id, actor, action)


async def purge_reasons(pool: asyncpg.Pool, cutoff: datetime, now: datetime, chunk: int = PURGE_CHUNK) -> int:
    """Clear the free text of audit rows older than `cutoff`, a chunk at a time; who did what,
    and when, stays."""
    return await in_chunks(pool, "sanctions.audit", "UPDATE sanctions.audit SET reason = NULL, reason_purged_at = $2",
                           "reason IS NOT NULL AND at < $1", cutoff, now, chunk=chunk)


async def due_subjects(conn: asyncpg.Connection, now: datetime, review_days: int, window_days: int) -> list[str]:
    """Subjects with a ban whose review is due or that has ended, or a warning that has lapsed.
    Days are 24 hours, as the policy counts them: PostgreSQL's days follow the session's time
    zone across clock changes, an hour apart from the policy's twice a year."""
    rows = await conn.fetch(
        "SELECT subject_id FROM sanctions.cards WHERE status = 'active'"
        " AND (ends_at <= $1 OR (NOT review_sent AND ends_at - make_interval(hours => 24 * $2) <= $1))"
        " UNION SELECT subject_id FROM sanctions.cards WHERE status = 'issued'"
        " AND occurred_at <= $1 - make_interval(hours => 24 * $3)",
        now, review_days, window_days,
    )
    return [r["subject_id"] for r in rows]


async def history(pool: asyncpg.Pool, subject_id: str) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT payload, event_type FROM sanctions.decisions WHERE subject_id = $1 ORDER BY seq", subject_id)
    return [r["payload"] | {"type": r["event_type"]} for r in rows]


async def pending(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    """Proposed red cards, oldest first, with the yeses given so far."""
    rows = await pool.fetch(
        "SELECT c.sanction_id, c.subject_id, c.incident_id, d.payload->>'organisation' AS organisation,"
        " d.decided_at AS proposed_at, c.approved_by, c.agreed_by"
        " FROM sanctions.cards c JOIN sanctions.decisions d ON d.decision_id = c.sanction_id"
        " WHERE c.status = 'proposed' ORDER BY d.decided_at")
    return [dict(r) for r in rows]
