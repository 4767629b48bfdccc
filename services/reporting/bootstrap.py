"""Composition root for reporting: projection, connections, subscriber, publisher timer, gauges, routes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from fastapi import Depends, FastAPI, HTTPException

from schemas.envelope import utcnow
from schemas.topics import BOARD_METRICS, FOOTAGE, INCIDENTS, POLICE_REFERRALS, SANCTIONS, dead_letter
from services.reporting import entrypoints, gauges, handlers, publishing
from services.reporting.adapters import SCHEMA
from services.reporting.config import SERVICE, ReportingSettings
from services.reporting.domain.board import Disclosure
from vanda.runtime.auth import Role, auth_settings, require
from vanda.runtime.http import install_error_handlers, limit_body_size, ops_router
from vanda.runtime.service import Runtime
from vanda.runtime.settings import CommonSettings

log = logging.getLogger(__name__)


async def publish_now(deps: entrypoints.Deps, settings: ReportingSettings, wake: Callable[[], None]) -> int | None:
    """How many months went out; None if another replica's round was under way."""
    sent = await publishing.publish_closed_months(deps.pool(), deps.projection, deps.disclosure,
                                                  settings.publish_grace_days, deps.clock(), settings.revise_months)
    if sent:
        wake()
        log.info("published board metrics for %d closed month(s)", sent)
    return sent


async def announce_now(deps: entrypoints.Deps, wake: Callable[[], None]) -> int:
    sent = await publishing.announce_footage(deps.pool(), deps.footage_retention, deps.clock())
    if sent:
        wake()
        log.info("announced %d footage notice(s)", sent)
    return sent


async def settle_now(deps: entrypoints.Deps, wake: Callable[[], None]) -> int:
    async with deps.pool().acquire() as conn, conn.transaction():
        sent = await handlers.settle_claims(conn)
    if sent:
        wake()
        log.info("settled %d police referral claim(s)", sent)
    return sent


def create_app(common: CommonSettings | None = None, settings: ReportingSettings | None = None,
               clock: Callable[[], datetime] = utcnow) -> FastAPI:
    """Build the reporting app; nothing connects until the app starts."""
    common = common or CommonSettings()
    settings = settings or ReportingSettings()
    projection = handlers.Projection(ZoneInfo(settings.timezone), settings.police_criteria)
    runtime = Runtime(SERVICE, common, topics=[INCIDENTS, SANCTIONS, POLICE_REFERRALS, BOARD_METRICS, FOOTAGE,
                                               dead_letter(INCIDENTS), dead_letter(SANCTIONS)])

    async def apply(conn, event):
        return await handlers.on_event(conn, event, projection)

    async def apply_many(conn, events):
        return await handlers.on_events(conn, events, projection)

    consumer = runtime.consumer(SCHEMA, apply, apply_many)
    disclosure = Disclosure(settings.suppression_threshold, rounding=settings.rounding_base)
    entrypoints.subscribe(runtime.broker, consumer, settings.consumer_group, common.consumer_max_records,
                          common.consumers_per_subscription)
    runtime.document(publishes=[POLICE_REFERRALS, BOARD_METRICS, FOOTAGE, dead_letter(INCIDENTS),
                                dead_letter(SANCTIONS)])
    deps = entrypoints.Deps(lambda: runtime.pool, projection, disclosure, auth_settings(),
                            settings.max_months, clock, timedelta(days=settings.footage_retention_days))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        wake = runtime.relay.wake
        runtime.every(lambda: publish_now(deps, settings, wake),
                      settings.publish_interval_s, "board metrics not published")
        # A failed refresh keeps the last figures.
        runtime.every(lambda: gauges.refresh(runtime.pool, projection, disclosure, clock()),
                      settings.gauges_interval_s, "current month's board figures not refreshed")
        runtime.every(lambda: gauges.refresh_footage(runtime.pool, clock(), deps.footage_retention),
                      settings.gauges_interval_s, "footage due for deletion not recounted")
        runtime.every(lambda: announce_now(deps, wake), settings.footage_notice_interval_s,
                      "footage notices not announced")
        # The consumer settles each claim as it applies its incident's events; this sends what
        # is owed for claims made before retractions existed. The index makes a round cheap.
        runtime.every(lambda: settle_now(deps, wake), settings.footage_notice_interval_s,
                      "police referral claims not settled")
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(title="vanda reporting", version="1", lifespan=lifespan,
                  description="Board metrics with disclosure control, the police referral worklist and the board pack.")
    install_error_handlers(app)
    limit_body_size(app, common.max_body_bytes)
    app.include_router(ops_router(runtime.checks, runtime.refresh_gauges))
    app.include_router(entrypoints.routes(deps))

    @app.post("/v1/board-metrics/publish", tags=["operations"],
              dependencies=[Depends(require(Role.OPERATIONS, settings=deps.auth))])
    async def publish() -> dict:
        """Publish closed months now (the service also does it on its own timer); 409 while a
        round (a replica's timer, or another call) is under way."""
        if (sent := await publish_now(deps, settings, runtime.relay.wake)) is None:
            raise HTTPException(409, detail="a publishing round is under way: try again once it ends")
        return {"published": sent}

    return app
