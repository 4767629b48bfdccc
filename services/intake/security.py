"""Who may submit: each upstream system presents its own API key, scoped to its sources."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request

from vanda import apikeys
from vanda.apikeys import ApiKey


async def source_key(request: Request,
                     x_api_key: Annotated[str | None, Header(alias="X-API-Key")] = None) -> ApiKey | None:
    if not request.app.state.require_api_key:
        return None
    if not x_api_key:
        raise HTTPException(401, detail="an X-API-Key header is required", headers={"WWW-Authenticate": "ApiKey"})
    key = await apikeys.authenticate(request.app.state.deps.store.pool, x_api_key)
    if key is None:
        raise HTTPException(401, detail="unknown or revoked API key", headers={"WWW-Authenticate": "ApiKey"})
    return key


SourceKey = Annotated[ApiKey | None, Depends(source_key)]


def check_source(key: ApiKey | None, source_system: str) -> None:
    """403 when the key exists but is not scoped to this source system."""
    if key is not None and not key.allows(source_system):
        raise HTTPException(403, detail=f"this API key may not act for source_system {source_system!r}")
