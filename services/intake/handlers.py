"""Intake use cases: accept a report once, then amend or withdraw it, each with its event."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from uuid import UUID

from schemas.base import EventData
from schemas.envelope import utcnow
from schemas.events import envelope
from schemas.incidents import IncidentAmendment, IncidentReport, IncidentWithdrawal
from schemas.topics import INCIDENTS
from services.intake.adapters import IncidentStore, Receipt
from services.intake.config import SOURCE
from services.intake import vault
from services.intake.domain import accept, amend, as_reported, fingerprint, normalised_identifier, withdrawn
from services.intake.vault import Keyring
from vanda.runtime.outbox import Outgoing


class SourceRefConflict(Exception):
    """The source reference was already used for a different report."""

    def __init__(self, receipt: Receipt) -> None:
        super().__init__("source_ref already used for a different report")
        self.receipt = receipt


class NotFound(Exception):
    """No incident has this id."""


class AlreadyWithdrawn(Exception):
    """The incident was withdrawn, so it can no longer be amended."""


@dataclass(frozen=True)
class Submitted:
    receipt: Receipt
    replayed: bool


@dataclass(frozen=True)
class Amended:
    revision: int
    changed_fields: list[str]

    @property
    def changed(self) -> bool:
        return bool(self.changed_fields)


def _outgoing(data: EventData, incident_id: UUID, subject_id: str | None) -> Outgoing:
    # Keyed by subject so one person's incidents, and their corrections, stay in order on one partition.
    key = subject_id or str(incident_id)
    return Outgoing(topic=INCIDENTS, key=key, event=envelope(data, source=SOURCE, subject=key))


class IdempotencyKeyConflict(Exception):
    """The Idempotency-Key was already used for a different report."""

    def __init__(self, receipt: Receipt) -> None:
        super().__init__("Idempotency-Key already used for a different report")
        self.receipt = receipt


async def submit(report: IncidentReport, store: IncidentStore, keyring: Keyring,
                 idempotency_key: str | None = None) -> Submitted:
    """Store and queue a new incident, or return the receipt of the one already stored."""
    existing = await store.earlier(report.source_system, report.source_ref, idempotency_key)
    if existing is None:
        identifier = normalised_identifier(report.perpetrator, report.organisation)
        subject_id = await vault.resolve_subject(store.pool, identifier, keyring) if identifier else None
        accepted = accept(report, incident_id=uuid.uuid4(), subject_id=subject_id, now=utcnow())
        outgoing = _outgoing(accepted.event, accepted.event.incident_id, accepted.event.subject_id)
        identity = (identifier, keyring) if identifier else None
        receipt = await store.add(accepted, outgoing, keyring.current_version, idempotency_key, identity)
        if receipt is not None:
            return Submitted(receipt, replayed=False)
        # A concurrent request with the same ref or key won the insert: answer as a retry.
        existing = await store.earlier(report.source_system, report.source_ref, idempotency_key)
    assert existing is not None
    if existing.fingerprint != fingerprint(report):
        raise SourceRefConflict(existing) if idempotency_key is None else IdempotencyKeyConflict(existing)
    return Submitted(existing, replayed=True)




async def correct(incident_id: UUID, amendment: IncidentAmendment, store: IncidentStore) -> Amended:
    """Apply an amendment and queue IncidentAmended; no changed fields means nothing changed."""
    async with store.locked(incident_id) as incident:
        if incident is None:
            raise NotFound
        if incident.withdrawn:
            raise AlreadyWithdrawn
        event = amend(incident.event, amendment, revision=incident.revision, now=utcnow())
        if event is None:
            return Amended(incident.revision, [])
        outgoing = _outgoing(event, incident_id, event.subject_id)
        await incident.amend(as_reported(event), event.revision, outgoing)
        return Amended(event.revision, event.changed_fields)


async def withdraw(incident_id: UUID, withdrawal: IncidentWithdrawal, store: IncidentStore) -> bool:
    """Withdraw an incident and queue IncidentWithdrawn; False if it already was withdrawn."""
    async with store.locked(incident_id) as incident:
        if incident is None:
            raise NotFound
        if incident.withdrawn:
            return False
        event = withdrawn(incident.event, withdrawal.reason, now=utcnow())
        await incident.withdraw(withdrawal.reason, event.withdrawn_at,
                                _outgoing(event, incident_id, event.subject_id))
        return True
