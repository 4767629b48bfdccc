"""Intake's pure rules: pseudonymise the perpetrator, shape the published events, apply corrections."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson
from pydantic import ValidationError

from schemas.incidents import (IncidentAmended, IncidentAmendment, IncidentReport, IncidentReported,
                               IncidentWithdrawn, PerpetratorFacts, PerpetratorReport, WithdrawalReason,
                               REFERRAL_DATE, referral_date_problem)


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


def fingerprint(report: IncidentReport) -> str:
    """Digest of the whole report, to tell a retry from a different report reusing a ref. Times
    count as instants: a retry may give the same moment with another offset (a system that
    writes local time, say, before and after a clock change), and is still the same report."""
    return _digest(_in_utc(report.model_dump()))


def fingerprints(report: IncidentReport) -> tuple[str, ...]:
    """Every digest a stored fingerprint of this report may have: `fingerprint`, and the digest
    of times as given, which fingerprints stored before instants counted were taken of."""
    return fingerprint(report), _digest(report.model_dump(mode="json"))


def _digest(dumped: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(dumped, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _in_utc(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    if isinstance(value, dict):
        return {k: _in_utc(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_in_utc(v) for v in value]
    return value


def accept(report: IncidentReport, *, incident_id: UUID, subject_id: str | None, now: datetime) -> Accepted:
    """Turn a valid report into the event other services may see: no identifiers, no narrative."""
    facts = report.model_dump(exclude={"source_ref", "perpetrator", "narrative", "source_system"})
    event = IncidentReported(
        **facts,
        incident_id=incident_id,
        subject_id=subject_id,
        source_system=report.source_system,
        reported_at=now,
        perpetrator=PerpetratorFacts(
            kind=report.perpetrator.kind,
            identified=subject_id is not None,
            medical_factors=report.perpetrator.medical_factors,
            age_band=report.perpetrator.age_band,
            vulnerabilities=report.perpetrator.vulnerabilities,
        ),
    )
    return Accepted(event=event, source_ref=report.source_ref, fingerprint=fingerprint(report), narrative=report.narrative)


class InvalidAmendment(ValueError):
    """The amended incident would break a contract rule; `errors` are (field, reason) pairs."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{field}: {reason}" for field, reason in errors))
        self.errors = errors


# Bookkeeping of one amendment: it travels on the event, not in the stored incident.
AMENDMENT_ONLY = frozenset({"revision", "changed_fields", "amended_at"})


def amend(current: IncidentReported, amendment: IncidentAmendment, *, revision: int,
          now: datetime) -> IncidentAmended | None:
    """The incident corrected, as the stored `revision` + 1; None when nothing actually changes."""
    before = current.model_dump()
    # None means "not given": an amendment never blanks a field by omission.
    changes = {k: v for k, v in amendment.model_dump().items() if v is not None}
    after = before | changes
    if "perpetrator" in changes:
        # Only clinical and age facts are correctable; who it was stays as reported.
        given = {k: v for k, v in changes["perpetrator"].items() if v is not None}
        after["perpetrator"] = before["perpetrator"] | given
    if amendment.police is not None:
        # Field by field too, so that recording an outcome keeps the crime reference; a
        # field given as null is cleared.
        after["police"] = (before["police"] or {}) | amendment.police.model_dump(exclude_unset=True)
    changed = _changed(before, after)
    if not changed:
        return None
    try:
        amended = IncidentAmended(**after, revision=revision + 1, changed_fields=changed, amended_at=now)
    except ValidationError as exc:
        raise InvalidAmendment(_named(exc, changed)) from None
    if reason := referral_date_problem(amended.police, amended.occurred_at):
        raise InvalidAmendment([(REFERRAL_DATE, reason)])
    return amended


def as_reported(amended: IncidentAmended) -> IncidentReported:
    """The current full incident, as intake stores it after an amendment."""
    return IncidentReported(**amended.model_dump(exclude=set(AMENDMENT_ONLY)))


def withdrawn(current: IncidentReported, reason: WithdrawalReason, *, now: datetime) -> IncidentWithdrawn:
    """The event telling consumers to undo an incident's effects."""
    return IncidentWithdrawn(incident_id=current.incident_id, subject_id=current.subject_id,
                             reason=reason, withdrawn_at=now)


def _changed(before: dict[str, Any], after: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted names whose values differ; objects present on both sides are compared field by field."""
    names: list[str] = []
    for name, value in after.items():
        old = before.get(name)
        if isinstance(old, dict) and isinstance(value, dict):
            names += _changed(old, value, f"{prefix}{name}.")
        elif old != value:
            names.append(prefix + name)
    return names


def _named(exc: ValidationError, changed: list[str]) -> list[tuple[str, str]]:
    """Name a field for every error, so a 422 says what to fix."""
    named = []
    for error in exc.errors():
        located = ".".join(str(p) for p in error["loc"])
        # The stored incident satisfied every rule, so a rule across fields was broken by the
        # amended fields it is checked on or mentions: amending the category away from a
        # sexual assault is the category's fault, though the rule sits on the assault flag.
        blamed = [n for n in changed if n == located or re.search(rf"\b{re.escape(n)}\b", error["msg"])]
        named += [(name, error["msg"]) for name in blamed or ([located] if located else changed)]
    return named
