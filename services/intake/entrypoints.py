"""Intake's HTTP API."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from prometheus_client import Counter

from schemas.incidents import IncidentReport
from services.intake import handlers

RECEIVED = Counter(
    "vanda_intake_reports_total",
    "Incident reports received over HTTP, by outcome (accepted, replayed, conflict, invalid).",
    ["outcome"],
)


class IncidentReceipt(BaseModel):
    incident_id: UUID
    subject_id: str | None = Field(description="Pseudonym of the perpetrator, if identified.")
    status: Literal["accepted"] = "accepted"


def routes() -> APIRouter:
    """The incident submission route."""
    router = APIRouter(prefix="/v1", tags=["incidents"])

    @router.post("/incidents", status_code=202, response_model=IncidentReceipt,
                 responses={409: {"description": "source_ref already used for a different report"},
                            422: {"description": "every invalid field, with the reason"}})
    async def report_incident(report: IncidentReport, request: Request, response: Response):
        """Accept an incident report once; a retry gets the original receipt."""
        deps = request.app.state.deps
        try:
            submitted = await handlers.submit(report, deps.store, deps.key)
        except handlers.SourceRefConflict as conflict:
            RECEIVED.labels("conflict").inc()
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
        return IncidentReceipt(incident_id=submitted.receipt.incident_id, subject_id=submitted.receipt.subject_id)

    return router
