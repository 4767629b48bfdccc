"""Intake's PostgreSQL adapter: an incident and its outbox row commit together."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from schemas.incidents import IncidentReported, WithdrawalReason
from services.intake import vault
from services.intake.domain import Accepted
from services.intake.vault import Keyring
from vanda.runtime import outbox

SCHEMA = "intake"


@dataclass(frozen=True)
class Receipt:
    incident_id: UUID
    subject_id: str | None
    fingerprint: str


@dataclass(frozen=True)
class Locked:
    """A stored incident, row-locked until its transaction ends; writes join that transaction."""

    conn: asyncpg.Connection
    event: IncidentReported
    revision: int
    withdrawn: bool

    async def amend(self, event: IncidentReported, revision: int, outgoing: outbox.Outgoing) -> None:
        """Store the corrected incident and stage its event together."""
        await self.conn.execute(
            "UPDATE intake.incidents SET event = $2, revision = $3 WHERE incident_id = $1",
            event.incident_id, event.model_dump(mode="json"), revision,
        )
        await outbox.stage(self.conn, SCHEMA, [outgoing])

    async def withdraw(self, reason: WithdrawalReason, at: datetime, outgoing: outbox.Outgoing) -> None:
        """Mark the incident withdrawn and stage its event together."""
        await self.conn.execute(
            "UPDATE intake.incidents SET withdrawn_at = $2, withdrawal_reason = $3 WHERE incident_id = $1",
            self.event.incident_id, at, reason.value,
        )
        await outbox.stage(self.conn, SCHEMA, [outgoing])


class IncidentStore:
    """Stores accepted incidents; the unique (source_system, source_ref) makes retries safe."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def add(self, accepted: Accepted, outgoing: outbox.Outgoing, key_version: int,
                  idempotency_key: str | None = None, identity: tuple[str, Keyring] | None = None) -> Receipt | None:
        """Insert incident and outbox row atomically; None if the source ref or key already exists."""
        event = accepted.event
        async with self._pool.acquire() as conn, conn.transaction():
            inserted = await conn.fetchval(
                "INSERT INTO intake.incidents (incident_id, source_system, source_ref, subject_id,"
                " pseudonym_key_version, fingerprint, event, narrative, idempotency_key)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                " ON CONFLICT DO NOTHING RETURNING incident_id",
                event.incident_id, event.source_system, accepted.source_ref, event.subject_id,
                key_version if event.subject_id else None, accepted.fingerprint,
                event.model_dump(mode="json"), accepted.narrative, idempotency_key,
            )
            if inserted is None:
                return None
            await outbox.stage(conn, SCHEMA, [outgoing])
            if identity is not None and event.subject_id is not None:
                await vault.remember(conn, event.subject_id, identity[0], event.organisation, identity[1])
        return Receipt(event.incident_id, event.subject_id, accepted.fingerprint)

    async def earlier(self, source_system: str, source_ref: str, idempotency_key: str | None) -> Receipt | None:
        """The incident already stored under this Idempotency-Key, else under this source ref, if any."""
        row = await self._pool.fetchrow(
            "SELECT incident_id, subject_id, fingerprint FROM intake.incidents"
            " WHERE source_system = $1 AND (source_ref = $2 OR idempotency_key = $3)"
            " ORDER BY idempotency_key IS NOT DISTINCT FROM $3 DESC LIMIT 1",
            source_system, source_ref, idempotency_key,
        )
        return Receipt(row["incident_id"], row["subject_id"], row["fingerprint"]) if row else None

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool

    async def source_of(self, incident_id: UUID) -> str | None:
        """The source system an incident came from (None if unknown: the route then answers 404)."""
        return await self._pool.fetchval("SELECT source_system FROM intake.incidents WHERE incident_id = $1",
                                         incident_id)

    @asynccontextmanager
    async def locked(self, incident_id: UUID) -> AsyncIterator[Locked | None]:
        """Hold the incident's row (None if unknown) so concurrent corrections queue, not race."""
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT event, revision, withdrawn_at FROM intake.incidents"
                " WHERE incident_id = $1 FOR UPDATE",
                incident_id,
            )
            yield None if row is None else Locked(conn, IncidentReported.model_validate(row["event"]),
                                                  row["revision"], row["withdrawn_at"] is not None)
