"""Intake's pure rules: pseudonymise the perpetrator and shape the published event."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import orjson

from schemas.incidents import IncidentReport, IncidentReported, PerpetratorFacts, PerpetratorReport


@dataclass(frozen=True)
class PseudonymKey:
    secret: bytes
    version: int


@dataclass(frozen=True)
class Accepted:
    """What intake stores and publishes for one new report."""

    event: IncidentReported
    source_ref: str
    fingerprint: str
    narrative: str | None


def normalised_identifier(perpetrator: PerpetratorReport, organisation: str) -> str | None:
    """One canonical string per person; the NHS number wins because it is national."""
    if perpetrator.nhs_number:
        return f"nhs:{perpetrator.nhs_number}"
    if perpetrator.local_id:
        # Local ids are only unique within the organisation that issued them.
        return f"local:{organisation}:{perpetrator.local_id.strip().upper()}"
    return None


def pseudonym(identifier: str, key: PseudonymKey) -> str:
    """Keyed HMAC-SHA256 pseudonym: stable per person, useless without the key."""
    digest = hmac.new(key.secret, identifier.encode(), hashlib.sha256).hexdigest()
    return f"sub_{digest[:40]}"


def fingerprint(report: IncidentReport) -> str:
    """Digest of the whole report, to tell a retry from a different report reusing a ref."""
    canonical = orjson.dumps(report.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


def accept(report: IncidentReport, *, incident_id: UUID, key: PseudonymKey, now: datetime) -> Accepted:
    """Turn a valid report into the event other services may see: no identifiers, no narrative."""
    identifier = normalised_identifier(report.perpetrator, report.organisation)
    facts = report.model_dump(exclude={"source_ref", "perpetrator", "narrative", "source_system"})
    event = IncidentReported(
        **facts,
        incident_id=incident_id,
        subject_id=pseudonym(identifier, key) if identifier else None,
        source_system=report.source_system,
        reported_at=now,
        perpetrator=PerpetratorFacts(
            kind=report.perpetrator.kind,
            identified=identifier is not None,
            medical_factors=report.perpetrator.medical_factors,
            age_band=report.perpetrator.age_band,
        ),
    )
    return Accepted(event=event, source_ref=report.source_ref, fingerprint=fingerprint(report), narrative=report.narrative)
