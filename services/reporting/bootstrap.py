"""Composition root for reporting: projection, connections, subscriber, publisher timer, gauges, routes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Depends, FastAPI, HTTPException

from schemas.envelope import utcnow
from schemas.topics import BOARD_METRICS, FOOTAGE, INCIDENTS, POLICE_REFERRALS, SANCTIONS, dead_letter
from services.reporting import adapters, entrypoints, footage_store, gauges, handlers, publishing
from services.reporting.adapters import SCHEMA
from services.reporting.config import SERVICE, ReportingSettings, projection_settings
from services.reporting.domain.board import Disclosure
from vanda.runtime import progress
from vanda.runtime.auth import Principal, Role, auth_settings, require
from vanda.runtime.http import install_error_handlers, limit_body_size, ops_router
from vanda.runtime.service import Runtime
from vanda.runtime.settings import CommonSettings
from vanda.runtime.transport import kafka_options

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Published:
    """What a publishing round did: the months it sent, or why it sent none."""

    sent: int = 0
    busy: bool = False  # another replica's round was under way
    backlog: int = 0  # events written before the round that reporting had yet to apply


Backlog = Callable[[datetime], Awaitable[int]]  # events written before a moment, not yet applied


def kafka_backlog(bootstrap: str, group: str, **kafka: Any) -> Backlog:
    """How many events written to the topics reporting consumes before a moment its consumer
    group has yet to apply, from the group's committed offsets (they follow the database)."""
    async def backlog(before: datetime) -> int:
        return await progress.unapplied(bootstrap, group, (INCIDENTS, SANCTIONS), before, **kafka)
    return backlog


async def publish_now(deps: entrypoints.Deps, settings: ReportingSettings, wake: Callable[[], None],
                      backlog: Backlog) -> Published:
    """Publish closed months, unless a backlog is still to be applied or another round is under way."""
    now = deps.clock()
    # Figures worked out before a backlog is applied (after an outage, say) are short, and a
    # month goes out once: without revisions, short for good. So the round waits for it.
    waiting = await backlog(now - timedelta(seconds=settings.publish_backlog_s))
    gauges.PUBLISHING_BACKLOG.set(waiting)
    if waiting:
        log.warning("board metrics held back: %d event(s) written before this round are not yet applied", waiting)
        return Published(backlog=waiting)
    sent = await publishing.publish_closed_months(deps.pool(), deps.projection, deps.disclosure,
                                                  settings.publish_grace_days, now, settings.revise_months)
    if sent:
        wake()
        log.info("published board metrics for %d closed month(s)", sent)
    return Published(busy=True) if sent is None else Published(sent=sent)


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


async def purge_now(deps: entrypoints.Deps, actor: str) -> dict[str, int]:
    now = deps.clock()
    return await footage_store.purge_reasons(deps.pool(), now - deps.retention, now, actor)


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
    backlog = kafka_backlog(common.kafka_bootstrap_servers, settings.consumer_group, **kafka_options(runtime.transport))
    deps = entrypoints.Deps(lambda: runtime.pool, projection, disclosure, auth_settings(),
                            settings.max_months, clock, timedelta(days=settings.footage_retention_days),
                            timedelta(days=settings.retention_days))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Recorded before consuming, for `vanda reporting rebuild` to replay under the same.
        await runtime.start(before_consuming=lambda: adapters.record_projection_settings(
            runtime.pool, projection_settings(settings)))
        wake = runtime.relay.wake
        runtime.every(lambda: publish_now(deps, settings, wake, backlog),
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
        runtime.every(lambda: purge_now(deps, "retention-timer"), settings.retention_interval_s,
                      "retention purge failed")
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(title="vanda reporting", version="1", lifespan=lifespan,
                  description="Board metrics with disclosure control, the police referral worklist and the board pack.")
    limit_body_size(app, common.max_body_bytes)  # first, so a 413 carries X-Request-ID too
    install_error_handlers(app)
    app.include_router(ops_router(runtime.checks, runtime.refresh_gauges, serving=runtime.serving))
    app.include_router(entrypoints.routes(deps))

    operations = Depends(require(Role.OPERATIONS, settings=deps.auth))

    @app.post("/v1/board-metrics/publish", tags=["operations"])
    async def publish(who: Principal = operations) -> dict:
        """Publish closed months now (the service also does it on its own timer); 409 while a
        round (a replica's timer, or another call) is under way, or while reporting has events
        written before the call still to apply."""
        done = await publish_now(deps, settings, runtime.relay.wake, backlog)
        if done.busy:
            raise HTTPException(409, detail="a publishing round is under way: try again once it ends")
        if done.backlog:
            raise HTTPException(409, detail=f"{done.backlog} event(s) written before this call are not yet applied:"
                                " try again once reporting has caught up")
        await adapters.audit(deps.pool(), who.subject, "board_metrics_published",
                             f"board metrics published={done.sent}")
        return {"published": done.sent}

    @app.post("/v1/retention/run", tags=["operations"])
    async def run_retention(who: Principal = operations) -> dict:
        """Clear why footage deletions were retracted, past the retention period, now (the service
        also does this on its own timer); who did what, and when, stays in the audit."""
        return await purge_now(deps, who.subject)

    return app
