"""Information governance routes: re-identification for letters, and the retention purge."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict

from schemas.envelope import utcnow
from services.intake import vault
from vanda.runtime.auth import AuthSettings, Principal, Role, require

log = logging.getLogger(__name__)
SUBJECT_ID = Path(pattern=r"^sub_[0-9a-f]{40}$")


class RetentionRun(BaseModel):
    model_config = ConfigDict(extra="forbid")
    now: AwareDatetime | None = None


def routes(auth: AuthSettings) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["governance"])
    correspondence = Depends(require(Role.CORRESPONDENCE, settings=auth))
    operations = Depends(require(Role.OPERATIONS, settings=auth))

    @router.get("/subjects/{subject_id}/identity")
    async def identity(request: Request, purpose: Annotated[str, Query(min_length=3, max_length=200)],
                       subject_id: str = SUBJECT_ID, who: Principal = correspondence) -> dict:
        """Who a subject is, for a warning letter (role correspondence); every call is audited with its purpose."""
        deps = request.app.state.deps
        try:
            found = await vault.reveal(deps.store.pool, subject_id, deps.keyring, who.subject, purpose)
        except vault.IdentityUnreadable:
            # AES-GCM cannot tell a missing key from an altered record: say both.
            log.error("a stored identity opens under no configured identity key, or was altered")
            raise HTTPException(500, detail="this subject's identity opens under no configured identity key: it was"
                                            " sealed under a key no longer configured (add that key to"
                                            " INTAKE_PREVIOUS_IDENTITY_KEYS), or the stored record was altered"
                                            ) from None
        if found is None:
            raise HTTPException(404, detail="no identity is held for this subject (never known, or purged)")
        return found

    @router.post("/retention/run", tags=["operations"])
    async def retention(request: Request, body: RetentionRun, who: Principal = operations) -> dict:
        """Purge narratives, identifiers and the purposes given to read them past the retention period now
        (role operations)."""
        deps = request.app.state.deps
        if body.now is not None and not deps.allow_clock_override:
            raise HTTPException(403, detail="this service does not allow overriding the clock")
        return await vault.purge(deps.store.pool, body.now or utcnow(), deps.retention, who.subject)

    return router


