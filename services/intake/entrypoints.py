"""Intake's HTTP API: submit an incident, read it back, then amend or withdraw it."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Body, Header, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import Counter
from pydantic import BaseModel, Field

from schemas.incidents import (
    IncidentAmendment,
    IncidentReport,
    IncidentReported,
    IncidentWithdrawal,
    WithdrawalReason,
)
from services.intake import bulk, handlers, security
from services.intake.domain import InvalidAmendment
from services.intake.security import SourceKey, check_source
from vanda.runtime.http import validation_failed

IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=200,
                                              description="Makes a retry safe even without a stable source_ref.")]

RECEIVED = Counter(
    "vanda_intake_reports_total",
    "Incident reports received over HTTP, by outcome (accepted, replayed, conflict).",
    ["outcome"],
)
CORRECTED = Counter(
    "vanda_intake_corrections_total",
    "Amendments and withdrawals by kind (amended, withdrawn) and outcome"
    " (applied, unchanged, not_found, conflict, invalid).",
    ["kind", "outcome"],
)


class IncidentReceipt(BaseModel):
    incident_id: UUID
    subject_id: str | None = Field(description="Pseudonym of the perpetrator, if identified.")
    status: Literal["accepted"] = "accepted"


class AmendmentReceipt(BaseModel):
    incident_id: UUID
    revision: int = Field(description="The incident's revision now: 1 is the report as submitted.")
    changed_fields: list[str] = Field(description="Dotted names of the fields this request changed.")
    status: Literal["amended", "unchanged"]


class StoredIncident(BaseModel):
    incident_id: UUID
    source_ref: str
    revision: int = Field(description="1 is the report as submitted; each amendment adds one. Also the ETag.")
    status: Literal["active", "withdrawn"]
    withdrawal_reason: WithdrawalReason | None = None
    withdrawn_at: datetime | None = None
    incident: IncidentReported = Field(description="The incident as vanda holds and publishes it: pseudonymous,"
                                                   " with no NHS number, local id or narrative.")


class WithdrawalReceipt(BaseModel):
    incident_id: UUID
    status: Literal["withdrawn"] = "withdrawn"


def _refusal(status: int, error: str, incident_id: UUID, reason: str) -> JSONResponse:
    body = {"error": error, "errors": [{"field": "incident_id", "reason": reason}], "incident_id": str(incident_id)}
    return JSONResponse(status_code=status, content=body)


NOT_FOUND = {404: {"description": "no incident has this id"}}
IfMatch = Annotated[str | None, Header(alias="If-Match", description=(
    "The revision the change was made against, as the ETag gives it (\"3\"); if the incident has"
    " moved on since, nothing changes and the answer is 412."))]
ETAG = re.compile(r'^\s*"?(\d{1,9})"?\s*$')


def expected_revision(if_match: str | None) -> int | None:
    """The revision an If-Match names; None when absent or `*` (any revision)."""
    if if_match is None or if_match.strip() == "*":
        return None
    if (found := ETAG.match(if_match)) is None:
        raise RequestValidationError([{"loc": ("header", "If-Match"), "type": "value_error",
                                       "msg": 'must be the revision as the ETag gives it, such as "3"'}])
    return int(found.group(1))


def etag(revision: int) -> str:
    return f'"{revision}"'


async def count_refused(request: Request, exc: RequestValidationError) -> JSONResponse:
    """A single report refused as invalid is counted too, then answered as every 422 is.

    A body that is not JSON at all is refused before the routes' API-key check runs: the key is
    checked here first, so that a caller without one learns nothing and moves no metric."""
    if request.url.path.startswith("/v1/incidents"):
        try:
            await security.source_key(request, request.headers.get("X-API-Key"))
        except HTTPException as refused:
            return JSONResponse({"detail": refused.detail}, status_code=refused.status_code, headers=refused.headers)
    if request.method == "POST" and request.url.path == "/v1/incidents":
        errors = exc.errors()
        bulk.count("http", None, "rejected", errors[0]["type"] if errors else "invalid")
    return await validation_failed(request, exc)


def routes() -> APIRouter:
    """The incident submission and correction routes."""
    router = APIRouter(prefix="/v1", tags=["incidents"])
    _submit_route(router)
    _read_route(router)
    _amend_route(router)
    _withdraw_route(router)
    return router


def _submit_route(router: APIRouter) -> None:
    @router.post("/incidents", status_code=202, response_model=IncidentReceipt,
                 responses={409: {"description": "source_ref already used for a different report"},
                            422: {"description": "every invalid field, with the reason"}})
    async def report_incident(report: IncidentReport, request: Request, response: Response, key: SourceKey,
                              idempotency_key: IdempotencyKey = None):
        """Accept an incident report once; a retry (same source_ref or Idempotency-Key) gets the original receipt."""
        deps = request.app.state.deps
        check_source(key, report.source_system)
        try:
            submitted = await handlers.submit(report, deps.store, deps.keyring, idempotency_key)
        except handlers.IdempotencyKeyConflict as conflict:
            RECEIVED.labels("conflict").inc()
            bulk.count("http", report.source_system, "rejected", "conflict")
            return JSONResponse(status_code=422, content={
                "error": "idempotency_key_reused",
                "errors": [{"field": "Idempotency-Key", "reason": "already used for a different report"}],
                "incident_id": str(conflict.receipt.incident_id),
            })
        except handlers.SourceRefConflict as conflict:
            RECEIVED.labels("conflict").inc()
            bulk.count("http", report.source_system, "rejected", "conflict")
            return JSONResponse(status_code=409, content={
                "error": "source_ref_conflict",
                "errors": [{"field": "source_ref", "reason": "already used for a different report;"
                            " amend the incident instead"}],
                "incident_id": str(conflict.receipt.incident_id),
            })
        if submitted.replayed:
            response.headers["Idempotent-Replayed"] = "true"
        else:
            deps.wake_relay()
        RECEIVED.labels("replayed" if submitted.replayed else "accepted").inc()
        bulk.count("http", report.source_system, "replayed" if submitted.replayed else "accepted")
        return IncidentReceipt(incident_id=submitted.receipt.incident_id, subject_id=submitted.receipt.subject_id)


def _read_route(router: APIRouter) -> None:
    @router.get("/incidents/{incident_id}", response_model=StoredIncident, responses=NOT_FOUND)
    async def read_incident(incident_id: UUID, request: Request, response: Response, key: SourceKey):
        """The incident as vanda holds it now, for the system that reported it: to check a correction
        arrived, or to read the staff list before replacing it (send the ETag back as If-Match)."""
        deps = request.app.state.deps
        try:
            stored = await handlers.read(incident_id, deps.store)
        except handlers.NotFound:
            return _refusal(404, "not_found", incident_id, "no incident has this id")
        check_source(key, stored.event.source_system)
        response.headers["ETag"] = etag(stored.revision)
        return StoredIncident(incident_id=incident_id, source_ref=stored.source_ref, revision=stored.revision,
                              status="withdrawn" if stored.withdrawn_at else "active",
                              withdrawal_reason=stored.withdrawal_reason, withdrawn_at=stored.withdrawn_at,
                              incident=stored.event)


def _amend_route(router: APIRouter) -> None:
    @router.patch("/incidents/{incident_id}", response_model=AmendmentReceipt,
                  responses=NOT_FOUND | {409: {"description": "the incident was withdrawn"},
                                         412: {"description": "If-Match names a revision the incident has moved on from"},
                                         422: {"description": "every invalid field, with the reason"}})
    async def amend_incident(incident_id: UUID, amendment: IncidentAmendment, request: Request, response: Response,
                             key: SourceKey, if_match: IfMatch = None):
        """Correct an incident; every consumer gets the full corrected version."""
        deps = request.app.state.deps
        expected = expected_revision(if_match)
        try:
            if (source := await deps.store.source_of(incident_id)) is not None:
                check_source(key, source)
            amended = await handlers.correct(incident_id, amendment, deps.store, deps.keyring, expected)
        except handlers.NotFound:
            CORRECTED.labels("amended", "not_found").inc()
            return _refusal(404, "not_found", incident_id, "no incident has this id")
        except handlers.AlreadyWithdrawn:
            CORRECTED.labels("amended", "conflict").inc()
            return _refusal(409, "withdrawn", incident_id, "the incident was withdrawn and cannot be amended")
        except handlers.RevisionMismatch as moved:
            CORRECTED.labels("amended", "conflict").inc()
            return JSONResponse(status_code=412, headers={"ETag": etag(moved.current)}, content={
                "error": "revision_mismatch", "incident_id": str(incident_id), "revision": moved.current,
                "errors": [{"field": "If-Match", "reason": f"the incident is at revision {moved.current}:"
                                                           " read it again and make the change on that"}]})
        except InvalidAmendment as invalid:
            CORRECTED.labels("amended", "invalid").inc()
            raise RequestValidationError([{"loc": ("body", field), "msg": reason, "type": "value_error"}
                                          for field, reason in invalid.errors]) from None
        if amended.changed:
            deps.wake_relay()
        response.headers["ETag"] = etag(amended.revision)
        CORRECTED.labels("amended", "applied" if amended.changed else "unchanged").inc()
        return AmendmentReceipt(incident_id=incident_id, revision=amended.revision,
                                changed_fields=amended.changed_fields,
                                status="amended" if amended.changed else "unchanged")


def _withdraw_route(router: APIRouter) -> None:
    @router.post("/incidents/{incident_id}/withdraw", status_code=202, response_model=WithdrawalReceipt,
                 responses=NOT_FOUND | {200: {"description": "already withdrawn; nothing more happens"}})
    async def withdraw_incident(incident_id: UUID, request: Request, response: Response, key: SourceKey,
                                withdrawal: Annotated[IncidentWithdrawal | None, Body()] = None):
        """Withdraw an incident (entered in error unless a reason is given); consumers undo it."""
        deps = request.app.state.deps
        try:
            if (source := await deps.store.source_of(incident_id)) is not None:
                check_source(key, source)
            applied = await handlers.withdraw(incident_id, withdrawal or IncidentWithdrawal(), deps.store)
        except handlers.NotFound:
            CORRECTED.labels("withdrawn", "not_found").inc()
            return _refusal(404, "not_found", incident_id, "no incident has this id")
        if applied:
            deps.wake_relay()
        else:
            response.status_code = 200
            response.headers["Idempotent-Replayed"] = "true"
        CORRECTED.labels("withdrawn", "applied" if applied else "unchanged").inc()
        return WithdrawalReceipt(incident_id=incident_id)
