"""Composition root for sanctions: policy, connections, subscriber and routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from functools import partial

from fastapi import FastAPI

from schemas.envelope import utcnow
from schemas.topics import INCIDENTS, SANCTIONS, dead_letter
from services.sanctions import entrypoints, handlers
from services.sanctions.adapters import SCHEMA
from services.sanctions.config import SERVICE, SanctionsSettings
from services.sanctions.domain import Policy
from vanda.runtime.http import install_error_handlers, ops_router
from vanda.runtime.service import Runtime
from vanda.runtime.settings import CommonSettings


def create_app(common: CommonSettings | None = None, settings: SanctionsSettings | None = None) -> FastAPI:
    """Build the sanctions app; nothing connects until the app starts."""
    common = common or CommonSettings()
    settings = settings or SanctionsSettings()
    policy = Policy(settings.policy_version, timedelta(days=settings.window_days),
                    timedelta(days=settings.red_card_days))
    runtime = Runtime(SERVICE, common, topics=[INCIDENTS, SANCTIONS, dead_letter(INCIDENTS)])

    async def apply(conn, event):
        return await handlers.on_incident(conn, event, policy, utcnow())

    consumer = runtime.consumer(SCHEMA, apply)
    entrypoints.subscribe(runtime.broker, consumer, settings.consumer_group, common.consumer_max_records)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(title="vanda sanctions", version="1", lifespan=lifespan,
                  description="Applies the yellow/red card policy to incidents.")
    app.state.pool = lambda: runtime.pool
    install_error_handlers(app)
    app.include_router(ops_router(runtime.checks, runtime.refresh_gauges))
    app.include_router(entrypoints.routes())
    return app
