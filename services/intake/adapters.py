"""Intake's PostgreSQL adapter: an incident and its outbox row commit together."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg
import orjson

from schemas.incidents import IncidentReported, WithdrawalReason
from services.intake import vault
from services.intake.domain import Accepted
from services.intake.vault import Keyring
from vanda.runtime import outbox
from vanda.runtime.rows import insert_many

SCHEMA = "intake"


@dataclass(frozen=True)
class Receipt:
    incident_id: UUID
    subject_id: str | None
    fingerprint: str
    by_key: bool = False  # found by the request's Idempotency-Key, not by its source ref


@dataclass(frozen=True)
class Stored:
    """An incident as intake holds it now, for its source system to read back."""

    event: IncidentReported
    source_ref: str
    revision: int
    withdrawn_at: datetime | None
    withdrawal_reason: str | None


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
        if self.event.subject_id is not None:
            await vault.follow_active_reports(self.conn, self.event.subject_id)
        await outbox.stage(self.conn, SCHEMA, [outgoing])


INCIDENT_COLUMNS = (("incident_id", "uuid"), ("source_system", "text"), ("source_ref", "text"), ("subject_id", "text"),
                    ("pseudonym_key_version", "integer"), ("fingerprint", "text"), ("event", "json"),
                    ("narrative", "text"), ("idempotency_key", "text"))


def _incident_row(accepted: Accepted, outgoing: outbox.Outgoing, key_version: int,
                  idempotency_key: str | None) -> tuple:
    event = accepted.event
    assert outgoing.event.data is event  # the outgoing event carries the stored one: its JSON serves both
    return (event.incident_id, event.source_system, accepted.source_ref, event.subject_id,
            key_version if event.subject_id else None, accepted.fingerprint, orjson.Fragment(outgoing.data_json),
            accepted.narrative, idempotency_key)


class IncidentStore:
    """Stores accepted incidents; the unique (source_system, source_ref) makes retries safe."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def add(self, accepted: Accepted, outgoing: outbox.Outgoing, key_version: int,
                  idempotency_key: str | None = None, identity: tuple[str, Keyring, str | None] | None = None,
                  ) -> Receipt | None:
        """Insert incident and outbox row atomically; None if the source ref or key already exists.
        `identity`: the person's identifier, the keyring, and a local id given beside an NHS number."""
        event = accepted.event
        people = [(event.subject_id, identity[0], event.organisation, identity[2], event.source_system)] \
            if identity and event.subject_id else []
        inserted = await self.add_many([(accepted, outgoing)], key_version, people,
                                       identity[1] if identity else None, [idempotency_key])
        return Receipt(event.incident_id, event.subject_id, accepted.fingerprint) if inserted else None

    async def add_many(self, accepted: list[tuple[Accepted, outbox.Outgoing]], key_version: int,
                       people: list[vault.Person], keyring: Keyring | None,
                       idempotency_keys: list[str | None] | None = None) -> set[UUID]:
        """Insert many incidents with their outbox rows in one transaction; return the ids inserted.

        A report whose source ref another request stored meanwhile is skipped, not failed,
        and its outbox row is not staged: the caller answers it as a retry.
        """
        events = [a.event for a, _ in accepted]
        keys = idempotency_keys or [None] * len(accepted)
        # In source-ref order: two batches holding the same refs in opposite orders would each
        # wait on a ref the other inserted first, and PostgreSQL would abort one as a deadlock.
        ordered = sorted((_incident_row(a, o, key_version, k) for (a, o), k in zip(accepted, keys, strict=True)),
                         key=lambda row: (row[1], row[2]))
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await insert_many(conn, "intake.incidents", INCIDENT_COLUMNS, ordered,
                                     "ON CONFLICT DO NOTHING RETURNING incident_id")
            inserted = {r["incident_id"] for r in rows}
            await outbox.stage(conn, SCHEMA, [o for a, o in accepted if a.event.incident_id in inserted])
            stored = {e.subject_id for e in events if e.incident_id in inserted}
            if keyring is not None:
                await vault.remember_many(conn, [p for p in people if p[0] in stored], keyring)
        return inserted

    async def earlier_many(self, refs: list[tuple[str, str]]) -> dict[tuple[str, str], Receipt]:
        """Receipts of incidents already stored under any of these (source system, source ref)."""
        rows = await self._pool.fetch(
            "SELECT i.source_system, i.source_ref, i.incident_id, i.subject_id, i.fingerprint FROM intake.incidents i"
            " JOIN unnest($1::text[], $2::text[]) AS w(s, r) ON i.source_system = w.s AND i.source_ref = w.r",
            [s for s, _ in refs], [r for _, r in refs])
        return {(r["source_system"], r["source_ref"]): Receipt(r["incident_id"], r["subject_id"], r["fingerprint"])
                for r in rows}

    async def earlier(self, source_system: str, source_ref: str, idempotency_key: str | None) -> Receipt | None:
        """The incident already stored under this Idempotency-Key, else under this source ref, if any."""
        row = await self._pool.fetchrow(
            "SELECT incident_id, subject_id, fingerprint, coalesce(idempotency_key = $3, false) AS by_key"
            " FROM intake.incidents WHERE source_system = $1 AND (source_ref = $2 OR idempotency_key = $3)"
            " ORDER BY idempotency_key IS NOT DISTINCT FROM $3 DESC LIMIT 1",
            source_system, source_ref, idempotency_key,
        )
        return Receipt(row["incident_id"], row["subject_id"], row["fingerprint"], row["by_key"]) if row else None

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool

    async def source_of(self, incident_id: UUID) -> str | None:
        """The source system an incident came from (None if unknown: the route then answers 404)."""
        return await self._pool.fetchval("SELECT source_system FROM intake.incidents WHERE incident_id = $1",
                                         incident_id)

    async def read(self, incident_id: UUID) -> Stored | None:
        row = await self._pool.fetchrow(
            "SELECT event, source_ref, revision, withdrawn_at, withdrawal_reason FROM intake.incidents"
            " WHERE incident_id = $1", incident_id)
        if row is None:
            return None
        return Stored(IncidentReported.model_validate(row["event"]), row["source_ref"], row["revision"],
                      row["withdrawn_at"], row["withdrawal_reason"])

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
