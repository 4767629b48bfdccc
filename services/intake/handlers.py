"""Intake use cases: accept a report once, then amend or withdraw it, each with its event."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime
from uuid import UUID

import asyncpg

from schemas.base import EventData
from schemas.envelope import new_id, utcnow
from schemas.events import envelope
from schemas.incidents import IncidentAmended, IncidentAmendment, IncidentReport, IncidentWithdrawal, holds
from schemas.topics import INCIDENTS
from services.intake import vault
from services.intake.adapters import IncidentStore, Receipt, Stored
from services.intake.config import SOURCE
from services.intake.domain import (Accepted, InvalidAmendment, accept, amend, as_reported, fingerprints,
                                    normalised_identifier, withdrawn)
from services.intake.vault import Keyring
from vanda.runtime.outbox import Outgoing

log = logging.getLogger(__name__)


class SourceRefConflict(Exception):
    """The source reference was already used for a different report."""

    def __init__(self, receipt: Receipt) -> None:
        super().__init__("source_ref already used for a different report")
        self.receipt = receipt


class NotFound(Exception):
    """No incident has this id."""


class AlreadyWithdrawn(Exception):
    """The incident was withdrawn, so it can no longer be amended."""


class RevisionMismatch(Exception):
    """The caller changed a revision that is no longer the current one."""

    def __init__(self, current: int) -> None:
        super().__init__(f"the incident is at revision {current}")
        self.current = current


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
        accepted = _accept(report, subject_id, utcnow(), keyring)
        outgoing = _outgoing(accepted.event, accepted.event.incident_id, accepted.event.subject_id)
        identity = (identifier, keyring, also_local(report)) if identifier else None
        receipt = await store.add(accepted, outgoing, keyring.current_version, idempotency_key, identity)
        if receipt is not None:
            return Submitted(receipt, replayed=False)
        # A concurrent request with the same ref or key won the insert: answer as a retry.
        existing = await store.earlier(report.source_system, report.source_ref, idempotency_key)
    assert existing is not None
    if not _same_report(keyring, existing.fingerprint, report):
        # The key was used before for another report, or this ref was (under no key or another).
        raise IdempotencyKeyConflict(existing) if existing.by_key else SourceRefConflict(existing)
    return Submitted(existing, replayed=True)


@dataclass(frozen=True)
class Outcome:
    """What happened to one report of a batch: accepted, replayed (a retry) or conflict."""

    status: str
    receipt: Receipt


async def submit_many(reports: list[IncidentReport], store: IncidentStore, keyring: Keyring) -> list[Outcome]:
    """`submit` for a batch in a few round trips; outcomes are in the order of `reports`.

    A source ref repeated within the batch is a retry of its first occurrence (or a
    conflict if the report differs), exactly as if the two had arrived one after the other.
    """
    refs = [(r.source_system, r.source_ref) for r in reports]
    known = await store.earlier_many(refs)
    first = {ref: i for i, ref in reversed(list(enumerate(refs))) if ref not in known}
    fresh = [reports[i] for i in sorted(first.values())]
    mine: set[UUID] = set()
    if fresh:
        stored, mine = await _store_fresh(fresh, store, keyring)
        known |= stored
    return [_outcome(report, known[ref], keyring, new=first.get(ref) == i and known[ref].incident_id in mine)
            for i, (report, ref) in enumerate(zip(reports, refs, strict=True))]


async def _store_fresh(reports: list[IncidentReport], store: IncidentStore,
                       keyring: Keyring) -> tuple[dict[tuple[str, str], Receipt], set[UUID]]:
    identifiers = [normalised_identifier(r.perpetrator, r.organisation) for r in reports]
    subjects = await vault.resolve_many(store.pool, {i for i in identifiers if i}, keyring)
    now = utcnow()
    batch, people = [], []
    for report, identifier in zip(reports, identifiers, strict=True):
        subject_id = subjects.get(identifier) if identifier else None
        accepted = _accept(report, subject_id, now, keyring)
        batch.append((accepted, _outgoing(accepted.event, accepted.event.incident_id, subject_id)))
        if identifier and subject_id:
            people.append((subject_id, identifier, report.organisation, also_local(report), report.source_system))
    inserted = await store.add_many(batch, keyring.current_version, people, keyring)
    receipts = {(a.event.source_system, a.source_ref): Receipt(a.event.incident_id, a.event.subject_id, a.fingerprint)
                for a, _ in batch if a.event.incident_id in inserted}
    if len(receipts) < len(batch):
        # Another request stored some of these refs meanwhile: theirs are the receipts.
        receipts = await store.earlier_many([(r.source_system, r.source_ref) for r in reports]) | receipts
    return receipts, inserted


def _accept(report: IncidentReport, subject_id: str | None, now: datetime, keyring: Keyring) -> Accepted:
    """The report accepted, its fingerprint keyed for storing (see `Keyring.seal_fingerprint`)."""
    accepted = accept(report, incident_id=new_id(), subject_id=subject_id, now=now)
    return replace(accepted, fingerprint=keyring.seal_fingerprint(accepted.fingerprint))


def _outcome(report: IncidentReport, receipt: Receipt, keyring: Keyring, *, new: bool) -> Outcome:
    if new:
        return Outcome("accepted", receipt)  # stored from this very report: the fingerprints agree
    if not _same_report(keyring, receipt.fingerprint, report):
        return Outcome("conflict", receipt)
    return Outcome("replayed", receipt)


def _same_report(keyring: Keyring, stored: str, report: IncidentReport) -> bool:
    return any(keyring.fingerprint_matches(stored, digest) for digest in fingerprints(report))


async def read(incident_id: UUID, store: IncidentStore) -> Stored:
    """The incident as stored now, with its revision and whether it was withdrawn."""
    stored = await store.read(incident_id)
    if stored is None:
        raise NotFound
    return stored


async def correct(incident_id: UUID, amendment: IncidentAmendment, store: IncidentStore, keyring: Keyring,
                  expected_revision: int | None = None) -> Amended:
    """Apply an amendment and queue IncidentAmended; no changed fields means nothing changed.

    With `expected_revision`, the amendment applies only to that revision: a caller that
    replaces a whole list (the staff affected) cannot overwrite a change it never saw.
    """
    async with store.locked(incident_id) as incident:
        if incident is None:
            raise NotFound
        if incident.withdrawn:
            raise AlreadyWithdrawn
        if expected_revision is not None and expected_revision != incident.revision:
            raise RevisionMismatch(incident.revision)
        event = amend(incident.event, amendment, revision=incident.revision, now=utcnow())
        if event is None:
            return Amended(incident.revision, [])
        await _no_identifier_published(incident.conn, event, keyring)
        outgoing = _outgoing(event, incident_id, event.subject_id)
        await incident.amend(as_reported(event), event.revision, outgoing)
        return Amended(event.revision, event.changed_fields)


async def _no_identifier_published(conn: asyncpg.Connection, event: IncidentAmended, keyring: Keyring) -> None:
    """Refuse a crime reference that holds the perpetrator's identifier, as a report's is refused:
    the amendment would publish it (crime references mostly arrive this way, after the report)."""
    reference = event.police.crime_reference if event.police else None
    if not reference or not any(f.startswith("police") for f in event.changed_fields) or event.subject_id is None:
        return
    try:
        identifiers = await vault.identifiers_of(conn, event.subject_id, keyring, event.source_system)
    except vault.IdentityUnreadable:
        # A replica without the key the identity is sealed under (a rotation rolling out): the
        # correction goes ahead unchecked rather than fail; its report was checked whole.
        log.warning("an amended crime reference went unchecked: the subject's identity opens under no key here")
        return
    if what := identifiers.held_in(reference, keyring):
        raise InvalidAmendment([("police.crime_reference", holds(what))])


def also_local(report: IncidentReport) -> str | None:
    """A local id given beside the NHS number that keys the person: kept only as a digest, so
    that an amendment cannot publish it either (the sealed identity holds the NHS number)."""
    return report.perpetrator.local_id if report.perpetrator.nhs_number else None


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
