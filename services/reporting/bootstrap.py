"""Composition root for reporting: projections, connections, subscriber and routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from zoneinfo import ZoneInfo

from fastapi import FastAPI

from schemas.topics import INCIDENTS, SANCTIONS, dead_letter
from services.reporting import entrypoints, handlers
from services.reporting.adapters import SCHEMA
from services.reporting.config import SERVICE, ReportingSettings
from vanda.runtime.http import install_error_handlers, ops_router
from vanda.runtime.service import Runtime
from vanda.runtime.settings import CommonSettings


def create_app(common: CommonSettings | None = None, settings: ReportingSettings | None = None) -> FastAPI:
    """Build the reporting app; nothing connects until the app starts."""
    common = common or CommonSettings()
    settings = settings or ReportingSettings()
    zone = ZoneInfo(settings.timezone)
    runtime = Runtime(SERVICE, common,
                      topics=[INCIDENTS, SANCTIONS, dead_letter(INCIDENTS), dead_letter(SANCTIONS)])

    async def apply(conn, event):
        return await handlers.on_event(conn, event, zone)

    consumer = runtime.consumer(SCHEMA, apply)
    entrypoints.subscribe(runtime.broker, consumer, settings.consumer_group, common.consumer_max_records)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(title="vanda reporting", version="1", lifespan=lifespan,
                  description="Builds board metrics from incident and sanction events.")
    app.state.pool = lambda: runtime.pool
    install_error_handlers(app)
    app.include_router(ops_router(runtime.checks, runtime.refresh_gauges))
    app.include_router(entrypoints.routes(settings.max_months))
    return app
