"""Bulk intake: many reports per request (NDJSON) or per Kafka batch, each line judged alone.

Both entry points parse every line on its own, so one bad line is refused with its field
and reason while the others are accepted; then the valid ones are stored in one
transaction (`handlers.submit_many`). A retried batch is safe: each report is idempotent
by (source_system, source_ref).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from uuid import UUID

from aiokafka import ConsumerRecord
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from prometheus_client import Counter
from pydantic import BaseModel, Field, ValidationError

from schemas.events import field_of
from schemas.incidents import IncidentReport
from services.intake import handlers
from services.intake.security import SourceKey
from vanda.apikeys import ApiKey
from vanda.runtime.consumer import BatchConsumer, BatchResult, Connections, DeadLetter
from vanda.runtime.db import is_transient

NDJSON = "application/x-ndjson"

INCIDENTS = Counter(
    "vanda_intake_incidents_total",
    "Incident reports by entry channel (http, http_batch, kafka), source system, outcome"
    " (accepted, replayed, rejected) and reason (the first validation error's type, conflict, forbidden, or"
    " unstorable: valid, but refused by the database).",
    ["channel", "source", "outcome", "reason"],
)
# Source systems are the trust's own upstream systems, a handful; a misbehaving producer
# inventing names must not create unbounded series, so names past this many read "other".
MAX_SOURCES = 50
_sources: set[str] = set()


def count(channel: str, source: str | None, outcome: str, reason: str = "") -> None:
    """Count one report; unparsed input says source "unknown"."""
    if source is not None and source not in _sources:
        if len(_sources) >= MAX_SOURCES:
            source = "other"
        else:
            _sources.add(source)
    INCIDENTS.labels(channel, source or "unknown", outcome, reason).inc()


@dataclass
class Line:
    """One line of a batch: parsed, or refused with (field, reason) pairs."""

    number: int
    report: IncidentReport | None = None
    errors: list[dict[str, str]] = field(default_factory=list)
    reason: str = ""
    source: str | None = None


log = logging.getLogger(__name__)

BOM = "\ufeff".encode()


def parse(number: int, raw: bytes) -> Line:
    """Validate one JSON report; errors name the field and never echo the value."""
    try:
        # A byte order mark, as some Windows tools write, is not part of the report.
        report = IncidentReport.model_validate_json(raw.removeprefix(BOM))
    except ValidationError as exc:
        errors = [{"field": field_of(e) or "(line)", "reason": e["msg"]} for e in exc.errors()]
        return Line(number, errors=errors, reason=exc.errors()[0]["type"])
    return Line(number, report, source=report.source_system)


def forbid(line: Line, key: ApiKey | None) -> None:
    """Refuse a line whose source system the presenting API key may not act for."""
    if line.report is not None and key is not None and not key.allows(line.report.source_system):
        line.errors = [{"field": "source_system", "reason": "this API key may not act for this source system"}]
        # Nor is its source counted by name: whatever the caller wrote there would become a
        # metric label (on /metrics, which needs no token) and take a slot from a real source.
        line.report, line.reason, line.source = None, "forbidden", None


async def store(lines: list[Line], deps: Any, channel: str) -> list[handlers.Outcome | None]:
    """Submit the parsed lines together and count each; None where a line was refused."""
    valid = [line for line in lines if line.report is not None]
    outcomes = await handlers.submit_many([line.report for line in valid], deps.store, deps.keyring) if valid else []
    by_line = {line.number: o for line, o in zip(valid, outcomes, strict=True)}
    if any(o.status == "accepted" for o in outcomes):
        deps.wake_relay()
    stored = [by_line.get(line.number) for line in lines]
    for line, outcome in zip(lines, stored, strict=True):
        count(channel, line.source, *verdict(line, outcome))
    return stored


def verdict(line: Line, outcome: handlers.Outcome | None) -> tuple[str, str]:
    """(status, reason) of one line: accepted or replayed with no reason, or rejected and why."""
    if outcome is None:
        return "rejected", line.reason
    if outcome.status == "conflict":
        return "rejected", "conflict"
    return outcome.status, ""


# ---------------------------------------------------------------- HTTP: POST /v1/incidents:batch


class LineResult(BaseModel):
    line: int = Field(description="1-based line number in the request body.")
    status: Literal["accepted", "replayed", "rejected"]
    incident_id: UUID | None = None
    subject_id: str | None = None
    errors: list[dict[str, str]] = Field(default_factory=list, description="Every bad field, with the reason.")


class BatchReceipt(BaseModel):
    accepted: int
    replayed: int
    rejected: int
    results: list[LineResult]


def _line_result(line: Line, outcome: handlers.Outcome | None) -> LineResult:
    if outcome is None:
        return LineResult(line=line.number, status="rejected", errors=line.errors)
    if outcome.status == "conflict":
        return LineResult(line=line.number, status="rejected", incident_id=outcome.receipt.incident_id, errors=[
            {"field": "source_ref", "reason": "already used for a different report; amend the incident instead"}])
    return LineResult(line=line.number, status=outcome.status, incident_id=outcome.receipt.incident_id,
                      subject_id=outcome.receipt.subject_id)


def _too_many(limit: int) -> JSONResponse:
    return JSONResponse(status_code=413, content={"error": "too_large", "errors": [
        {"field": "(body)", "reason": f"more than {limit} lines; split the batch"}]})


def _lines(body: bytes) -> list[bytes]:
    return [line.removesuffix(b"\r") for line in body.split(b"\n")]


def routes(max_lines: int) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["incidents"])

    @router.post("/incidents:batch", response_model=BatchReceipt,
                 openapi_extra={"requestBody": {"required": True, "content": {NDJSON: {"schema": {
                     "type": "array", "items": {"$ref": "#/components/schemas/IncidentReport"},
                     "description": "One IncidentReport JSON object per line (NDJSON), not a JSON array."}}}}},
                 responses={413: {"description": "body or line count over the limit"}})
    async def report_incidents(request: Request, key: SourceKey) -> BatchReceipt | JSONResponse:
        """Submit many reports as NDJSON; each line is accepted, replayed or rejected on its own."""
        # Numbered before blank lines are dropped: a result names the report's line in the body.
        # Lines end at "\n" alone (and a "\r" before it): bytes.splitlines() also splits at a
        # bare "\r", which JSON allows as space inside an object, and every later line's
        # number would be wrong.
        raw = [(n, r) for n, r in enumerate(_lines(await request.body()), start=1) if r.strip()]
        if len(raw) > max_lines:
            return _too_many(max_lines)
        lines = [parse(n, r) for n, r in raw]
        for line in lines:
            forbid(line, key)
        outcomes = await store(lines, request.app.state.deps, "http_batch")
        results = [_line_result(line, o) for line, o in zip(lines, outcomes, strict=True)]
        tally = {s: sum(r.status == s for r in results) for s in ("accepted", "replayed", "rejected")}
        return BatchReceipt(**tally, results=results)

    return router


# ---------------------------------------------------------------- Kafka: vanda.intake.submissions.v1


class SubmissionConsumer(BatchConsumer):
    """Reports published by upstream systems; refused ones go to the topic's DLQ with field and reason."""

    def __init__(self, runtime: Connections, deps: Any) -> None:
        super().__init__(runtime)
        self._deps = deps

    async def apply_batch(self, records: Sequence[ConsumerRecord]) -> BatchResult:
        lines = [parse(n, r.value or b"") for n, r in enumerate(records)]
        try:
            return _result(records, lines, await store(lines, self._deps(), "kafka"))
        except Exception as exc:  # noqa: BLE001 - an outage propagates; anything else is some report's fault
            if is_transient(exc):
                raise
            # The valid lines are stored in one transaction: one that the database refuses
            # (a constraint, a bug) would fail the batch every time it came round, and stop
            # the partition. One at a time finds it, dead-letters it alone and stores the rest.
            log.warning("a batch of %d submissions was refused as a whole (%s); storing one at a time",
                        len(records), type(exc).__name__, extra={"count": len(records)})
        result = BatchResult()
        for record, line in zip(records, lines, strict=True):
            result = result.merged(await self._store_alone(record, line))
        return result

    async def _store_alone(self, record: ConsumerRecord, line: Line) -> BatchResult:
        try:
            return _result([record], [line], await store([line], self._deps(), "kafka"))
        except Exception as exc:  # noqa: BLE001 - as above
            if is_transient(exc):
                raise
            # Named by its type alone: a database error's text can quote the value it refused.
            log.error("a submission could not be stored (%s); dead-lettered", type(exc).__name__)
            count("kafka", line.source, "rejected", "unstorable")
            error = f"(report) could not be stored: {type(exc).__name__}"
            return BatchResult(dead=[DeadLetter(record, "rejected", error)])


def _result(records: Sequence[ConsumerRecord], lines: list[Line],
            outcomes: list[handlers.Outcome | None]) -> BatchResult:
    result = BatchResult()
    for record, line, outcome in zip(records, lines, outcomes, strict=True):
        if outcome is None:
            error = "; ".join(f"{e['field']}: {e['reason']}" for e in line.errors)
            result.dead.append(DeadLetter(record, "invalid", error))
        elif outcome.status == "conflict":
            result.dead.append(DeadLetter(record, "conflict", "source_ref: already used for a different report"))
        elif outcome.status == "accepted":
            result.applied[record.topic] += 1
        else:
            result.duplicates[record.topic] += 1
    return result
