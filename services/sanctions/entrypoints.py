"""Sanctions' HTTP API (reviewers, appeals, worklists) and Kafka subscriber."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Path, Request, Response
from fastapi.responses import JSONResponse
from faststream.kafka import KafkaBroker
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from schemas.incidents import NoNul
from schemas.sanctions import AppealOutcome
from schemas.topics import INCIDENTS
from services.sanctions import handlers
from services.sanctions.domain import (
    Agree,
    Approve,
    Conflict,
    DecideAppeal,
    LodgeAppeal,
    NotFound,
    Reject,
    Stale,
)
from vanda.runtime.auth import AuthSettings, Principal, Role, require
from vanda.runtime.consumer import EventConsumer, subscribe as consume

SUBJECT_ID = Path(pattern=r"^sub_[0-9a-f]{40}$", description="Pseudonymous subject id from intake.")
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000), NoNul]


IfMatch = Annotated[str | None, Header(alias="If-Match", description=(
    "The subject's `version` the decision was made on, as GET /v1/subjects/{id} gives it (also its ETag): if"
    " the subject has moved on since (an incident reported, corrected or withdrawn, a decision taken), nothing"
    " changes and the answer is 412 with the current version. Without it the decision is taken on the subject"
    " as it is now."))]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Review(Body):
    reason: Reason = Field(description="Why; kept in the audit log, never published.")


class AppealRequest(Body):
    grounds: Reason = Field(description="The subject's grounds; kept in the audit log, never published.")


class AppealDecision(Body):
    outcome: AppealOutcome
    reason: Reason


class SchedulerRun(Body):
    now: AwareDatetime | None = Field(None, description="Override the clock (only where the service allows it).")


def routes(deps: Callable[[], Any], auth: AuthSettings) -> APIRouter:
    """Subject view, worklist, and the human decisions on a card (each needs its role)."""
    router = APIRouter(prefix="/v1")
    # Plain defaults, not local Annotated aliases: annotations here are strings FastAPI resolves globally.
    approver = Depends(require(Role.SANCTION_APPROVER, settings=auth))
    clinician = Depends(require(Role.CLINICAL_LEAD, settings=auth))
    # Either of the two people a ban needs may see what waits for them, or decline it.
    deciders = Depends(require(Role.SANCTION_APPROVER, Role.CLINICAL_LEAD, settings=auth))
    appeals = Depends(require(Role.APPEALS_OFFICER, settings=auth))
    operations = Depends(require(Role.OPERATIONS, settings=auth))
    # A subject's cards are read by whoever acts on them or writes to them about them.
    readers = Depends(require(Role.SANCTION_APPROVER, Role.CLINICAL_LEAD, Role.APPEALS_OFFICER, Role.OPERATIONS,
                              Role.CORRESPONDENCE, settings=auth))

    async def act(sanction_id: UUID, cmd: Any, actor: handlers.Actor, if_match: str | None = None) -> dict:
        d = deps()
        seen = if_match.strip().removeprefix("W/").strip('"') if if_match and if_match.strip() != "*" else None
        state, decisions, replayed = await handlers.command(d.pool, sanction_id, cmd, actor, d.policy, d.clock,
                                                            seen)
        d.wake_relay()
        card = state.card(sanction_id)
        return {"sanction": handlers.card_view(card), "events": [x.event_type for x in decisions],
                "replayed": replayed, "emergency_care": handlers.EMERGENCY_CARE}

    @router.get("/subjects/{subject_id}", tags=["subjects"])
    async def get_subject(response: Response, subject_id: str = SUBJECT_ID, who: Principal = readers) -> dict:
        """Card level, active ban, pending approvals and history; emergency care is never barred.
        `version` (also the ETag) is what a reviewer decides on: send it back as If-Match."""
        d = deps()
        view = await handlers.describe_subject(d.pool, subject_id, d.policy, d.clock(), who.organisations)
        if view is None:
            raise HTTPException(404, detail="no incidents or decisions for this subject")
        response.headers["ETag"] = f'"{view["version"]}"'
        return view

    @router.get("/sanctions/pending", tags=["sanctions"])
    async def pending(who: Principal = deciders) -> dict:
        """Red cards awaiting a decision, oldest first, each with whose yes it still awaits."""
        d = deps()
        return {"pending": await handlers.pending(d.pool, d.policy, who.organisations)}

    @router.post("/sanctions/{sanction_id}/approve", tags=["sanctions"])
    async def approve(sanction_id: UUID, body: Review, who: Principal = approver, if_match: IfMatch = None) -> dict:
        """Approve a proposed red card (role sanction_approver): the ban starts now, for the policy's length,
        or, where the policy asks for a clinical lead's agreement too, once that is given."""
        return await act(sanction_id, Approve(sanction_id, who.subject),
                         handlers.Actor(who.subject, "approve", body.reason, who.organisations), if_match)

    @router.post("/sanctions/{sanction_id}/agree", tags=["sanctions"])
    async def agree(sanction_id: UUID, body: Review, who: Principal = clinician, if_match: IfMatch = None) -> dict:
        """Agree, as clinical lead, that the proposed ban is clinically safe (role clinical_lead); the ban
        starts once the security manager has approved too. Two different people must give the two."""
        return await act(sanction_id, Agree(sanction_id, who.subject),
                         handlers.Actor(who.subject, "agree", body.reason, who.organisations), if_match)

    @router.post("/sanctions/{sanction_id}/reject", tags=["sanctions"])
    async def reject(sanction_id: UUID, body: Review, who: Principal = deciders, if_match: IfMatch = None) -> dict:
        """Decline a proposed red card (role sanction_approver, or clinical_lead: not clinically safe)."""
        return await act(sanction_id, Reject(sanction_id, who.subject),
                         handlers.Actor(who.subject, "reject", body.reason, who.organisations), if_match)

    @router.post("/sanctions/{sanction_id}/appeal", tags=["appeals"])
    async def appeal(sanction_id: UUID, body: AppealRequest, who: Principal = appeals) -> dict:
        """Record the subject's appeal against a card (role appeals_officer)."""
        return await act(sanction_id, LodgeAppeal(sanction_id, who.subject),
                         handlers.Actor(who.subject, "appeal", body.grounds, who.organisations))

    @router.post("/sanctions/{sanction_id}/appeal/decide", tags=["appeals"])
    async def decide_appeal(sanction_id: UUID, body: AppealDecision, who: Principal = appeals) -> dict:
        """Decide an appeal (role appeals_officer): upheld rescinds the card, dismissed leaves it."""
        return await act(sanction_id, DecideAppeal(sanction_id, body.outcome, who.subject),
                         handlers.Actor(who.subject, f"appeal_{body.outcome}", body.reason, who.organisations))

    def clock(body: SchedulerRun | None) -> datetime:
        d = deps()
        if body is not None and body.now is not None and not d.allow_clock_override:
            raise HTTPException(403, detail="this service does not allow overriding the clock")
        return (body.now if body else None) or d.clock()

    @router.post("/scheduler/run", tags=["operations"])
    async def run_scheduler(body: SchedulerRun | None = None, who: Principal = operations) -> dict:
        """Lapse warnings and run review and expiry now (the service also runs them on its own timer);
        the body is optional."""
        d = deps()
        try:
            return {"events": await handlers.run_scheduler(d.pool, d.policy, clock(body))}
        except handlers.SchedulerIncomplete as exc:
            raise HTTPException(500, detail=f"scheduler round incomplete: {exc}") from None

    @router.post("/retention/run", tags=["operations"])
    async def run_retention(body: SchedulerRun | None = None, who: Principal = operations) -> dict:
        """Clear reviewers' reasons and appeal grounds past the retention period now (the service also
        does this on its own timer); who decided what, and when, stays in the audit. The body is optional."""
        d = deps()
        return await handlers.purge(d.pool, clock(body), d.retention, who.subject)

    return router


def install_error_handlers(app: FastAPI) -> None:
    """Domain refusals become 404, 409 and 412 with the reason, naming the field."""

    async def refused(_: Request, exc: Exception) -> JSONResponse:
        field, _, reason = str(exc).partition(": ")
        body = {"errors": [{"field": field, "reason": reason}]}
        if isinstance(exc, Stale):  # with the version the subject is at now, to look at again
            return JSONResponse({"error": "stale", **body, "version": exc.current}, status_code=412,
                                headers={"ETag": f'"{exc.current}"'})
        status = 404 if isinstance(exc, NotFound) else 409
        return JSONResponse({"error": "not_found" if status == 404 else "conflict", **body}, status_code=status)

    app.add_exception_handler(NotFound, refused)
    app.add_exception_handler(Conflict, refused)
    app.add_exception_handler(Stale, refused)


def subscribe(broker: KafkaBroker, consumer: EventConsumer, group_id: str, max_records: int,
              copies: int = 1) -> None:
    """Consume incidents in batches; offsets commit only after the batch is stored."""
    consume(broker, consumer, INCIDENTS, group_id=group_id, max_records=max_records, copies=copies,
            description="Incidents reported, amended and withdrawn, to apply the card policy to.")
