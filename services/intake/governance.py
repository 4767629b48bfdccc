"""Information governance routes: re-identification for letters, the retention purge, and
sealing stored identities under the current identity key after a rotation."""

from __future__ import annotations

import logging
from typing import Annotated

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from prometheus_client import Gauge
from pydantic import AwareDatetime, BaseModel, ConfigDict, StringConstraints

from schemas.envelope import utcnow
from services.intake import vault
from vanda.runtime.auth import AuthSettings, Principal, Role, require
from vanda.runtime.db import alone

log = logging.getLogger(__name__)
SUBJECT_ID = Path(pattern=r"^sub_[0-9a-f]{40}$")
UNDER_EARLIER_KEYS = Gauge("vanda_intake_identities_under_earlier_keys",
                           "Stored identities a configured earlier identity key still seals, after the last resealing"
                           " round: the earlier key may be dropped once a round since the last replica took the new"
                           " key reads 0.")
UNREADABLE = Gauge("vanda_intake_identities_unreadable",
                   "Stored identities no configured identity key opens, at the last resealing round.")


async def reseal_now(pool: asyncpg.Pool, keyring: vault.Keyring) -> vault.Resealed | None:
    """Seal the identities under an earlier identity key (or one unknown) under the current one;
    one replica at a time, since each would read and rewrite the same rows. None: another
    replica's round is under way."""
    async with alone(pool, "identity-reseal") as mine:
        if not mine:
            return None
        done = await vault.reseal_identities(pool, keyring)
    UNDER_EARLIER_KEYS.set(done.left)
    UNREADABLE.set(done.foreign + done.unopened)
    if done.resealed:
        log.info("sealed %d stored identities under the current identity key", done.resealed)
    if done.foreign:
        log.info("%d stored identities are sealed under an identity key this replica does not have (a newer key"
                 " not yet given to it, or one dropped)", done.foreign)
    if done.unopened:
        log.warning("%d stored identities open under no configured identity key though they should (altered?):"
                    " they cannot be revealed", done.unopened)
    return done


Purpose = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=200)]


class IdentityRead(BaseModel):
    model_config = ConfigDict(extra="forbid")
    purpose: Purpose


class RetentionRun(BaseModel):
    model_config = ConfigDict(extra="forbid")
    now: AwareDatetime | None = None


def routes(auth: AuthSettings) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["governance"])
    correspondence = Depends(require(Role.CORRESPONDENCE, settings=auth))
    operations = Depends(require(Role.OPERATIONS, settings=auth))

    @router.post("/subjects/{subject_id}/identity")
    async def identity_read(request: Request, body: IdentityRead, subject_id: str = SUBJECT_ID,
                            who: Principal = correspondence) -> dict:
        """Who a subject is, for a warning letter (role correspondence); every call is audited with its
        purpose, given in the body: it may name the person or their health, and a URL's query is
        written to proxies' and browsers' logs, out of reach of the retention purge."""
        return await _reveal(request, subject_id, body.purpose, who)

    @router.get("/subjects/{subject_id}/identity", deprecated=True)
    async def identity(request: Request, purpose: Annotated[Purpose, Query()], subject_id: str = SUBJECT_ID,
                       who: Principal = correspondence) -> dict:
        """As the POST, with the purpose in the query: kept for callers written before it."""
        return await _reveal(request, subject_id, purpose, who)

    async def _reveal(request: Request, subject_id: str, purpose: str, who: Principal) -> dict:
        deps = request.app.state.deps
        try:
            found = await vault.reveal(deps.store.pool, subject_id, deps.keyring, who.subject, purpose,
                                       who.organisations)
        except vault.IdentityUnreadable:
            # AES-GCM cannot tell a missing key from an altered record: say both.
            log.error("a stored identity opens under no configured identity key, or was altered")
            raise HTTPException(500, detail="this subject's identity opens under no configured identity key: it was"
                                            " sealed under a key no longer configured (add that key to"
                                            " INTAKE_PREVIOUS_IDENTITY_KEYS), or the stored record was altered"
                                            ) from None
        if found is None:
            raise HTTPException(404, detail="no identity is held for this subject (never known, purged, or last"
                                            " reported by an organisation this token does not act for)")
        return found

    @router.post("/retention/run", tags=["operations"])
    async def retention(request: Request, body: RetentionRun | None = None, who: Principal = operations) -> dict:
        """Purge narratives, identifiers and the purposes given to read them past the retention period now
        (role operations). The body is optional."""
        deps = request.app.state.deps
        now = body.now if body else None
        if now is not None and not deps.allow_clock_override:
            raise HTTPException(403, detail="this service does not allow overriding the clock")
        return await vault.purge(deps.store.pool, now or utcnow(), deps.retention, who.subject)

    @router.post("/identities/reseal", tags=["operations"])
    async def reseal(request: Request, who: Principal = operations) -> dict:
        """Seal every stored identity under the current identity key now (role operations); the
        service also does it at start and every retention interval. After a rotation, once every
        replica has the new key, a round whose `under_earlier_keys` is 0 means the old key can go."""
        deps = request.app.state.deps
        if (done := await reseal_now(deps.store.pool, deps.keyring)) is None:
            raise HTTPException(409, detail="a resealing round is under way: try again once it ends")
        # Who set a round of every identity going, and when: it opens each sealed identity.
        await deps.store.pool.execute("INSERT INTO intake.audit (actor, action) VALUES ($1, 'identities_resealed')",
                                      who.subject)
        return {"resealed": done.resealed, "under_earlier_keys": done.left, "unreadable": done.foreign + done.unopened}

    return router


