"""Intake use cases: accept a report once, answer retries with the original receipt."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from schemas.envelope import utcnow
from schemas.events import envelope
from schemas.incidents import IncidentReport
from schemas.topics import INCIDENTS
from services.intake.adapters import IncidentStore, Receipt
from services.intake.config import SOURCE
from services.intake.domain import PseudonymKey, accept, fingerprint
from vanda.runtime.outbox import Outgoing


class SourceRefConflict(Exception):
    """The source reference was already used for a different report."""

    def __init__(self, receipt: Receipt) -> None:
        super().__init__("source_ref already used for a different report")
        self.receipt = receipt


@dataclass(frozen=True)
class Submitted:
    receipt: Receipt
    replayed: bool


async def submit(report: IncidentReport, store: IncidentStore, key: PseudonymKey) -> Submitted:
    """Store and queue a new incident, or return the receipt of the one already stored."""
    existing = await store.find(report.source_system, report.source_ref)
    if existing is None:
        accepted = accept(report, incident_id=uuid.uuid4(), key=key, now=utcnow())
        event = accepted.event
        outgoing = Outgoing(
            topic=INCIDENTS,
            # Keyed by subject so one person's incidents stay in order on one partition.
            key=event.subject_id or str(event.incident_id),
            event=envelope(event, source=SOURCE, subject=event.subject_id or str(event.incident_id)),
        )
        receipt = await store.add(accepted, outgoing, key.version)
        if receipt is not None:
            return Submitted(receipt, replayed=False)
        # A concurrent request with the same ref won the insert: answer as a retry.
        existing = await store.find(report.source_system, report.source_ref)
    assert existing is not None
    if existing.fingerprint != fingerprint(report):
        raise SourceRefConflict(existing)
    return Submitted(existing, replayed=True)

