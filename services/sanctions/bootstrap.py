"""Composition root for sanctions: policy, clock, connections, scheduler, subscriber, routes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
from fastapi import FastAPI
from prometheus_client import Counter, Gauge

from schemas.envelope import utcnow
from schemas.topics import INCIDENTS, SANCTIONS, dead_letter
from services.sanctions import entrypoints, handlers
from services.sanctions.adapters import SCHEMA
from services.sanctions.config import SERVICE, SanctionsSettings, load_policy
from services.sanctions.domain import Policy
from vanda.runtime.auth import auth_settings
from vanda.runtime.http import install_error_handlers, limit_body_size, ops_router
from vanda.runtime.service import Runtime
from vanda.runtime.settings import CommonSettings

log = logging.getLogger(__name__)


@dataclass
class Deps:
    pool: asyncpg.Pool
    policy: Policy
    clock: Callable[[], datetime]
    wake_relay: Callable[[], None]
    allow_clock_override: bool
    retention: timedelta


SCHEDULER_RUNS = Counter("vanda_scheduler_runs_total", "Review and expiry rounds, by outcome.", ["outcome"])
PENDING = Gauge("vanda_pending_approvals", "Red cards proposed before today (UTC) still waiting for an authorised"
                " reviewer.")
PENDING_AGE = Gauge("vanda_oldest_pending_approval_age_seconds", "How long the oldest of them has waited.")
ACTIVE_BANS = Gauge("vanda_active_bans", "Approved red cards (bans) in force now.")
# Counted by the day a card was proposed: /metrics needs no token, and a count that moved at
# once would say, around one known report, that it earned a red card (or, for a weapon, that
# its perpetrator was not a child or unwell). A day's proposals join at midnight together.
PENDING_SQL = """
SELECT count(*) AS n, coalesce(extract(epoch FROM now() - min(d.decided_at)), 0) AS age
  FROM sanctions.cards c JOIN sanctions.decisions d ON d.decision_id = c.sanction_id
 WHERE c.status = 'proposed' AND d.decided_at < date_trunc('day', now(), 'UTC')
"""


async def _refresh_pending(pool: asyncpg.Pool) -> None:
    row = await pool.fetchrow(PENDING_SQL)
    PENDING.set(row["n"])
    PENDING_AGE.set(float(row["age"]))


async def _refresh_active_bans(pool: asyncpg.Pool) -> None:
    # An approved ban stays 'active' until the scheduler expires it at ends_at, so a
    # ban past its end counts until that round: the same view the subject API gives.
    ACTIVE_BANS.set(await pool.fetchval("SELECT count(*) FROM sanctions.cards WHERE status = 'active'"))


async def _scheduler(deps: Deps, interval: float) -> None:
    while True:
        try:
            sent = await handlers.run_scheduler(deps.pool, deps.policy, deps.clock(), deps.clock)
            SCHEDULER_RUNS.labels("ok").inc()
            if sent:
                deps.wake_relay()
                log.info("scheduler sent %d events", sent)
        except Exception:  # noqa: BLE001 - a failed round is retried on the next tick
            SCHEDULER_RUNS.labels("failed").inc()
            log.warning("scheduler round failed", exc_info=True)
        await asyncio.sleep(interval)


def create_app(common: CommonSettings | None = None, settings: SanctionsSettings | None = None,
               clock: Callable[[], datetime] = utcnow) -> FastAPI:
    """Build the sanctions app; nothing connects until the app starts."""
    common = common or CommonSettings()
    settings = settings or SanctionsSettings()
    policy = load_policy(settings.policy_file)
    runtime = Runtime(SERVICE, common, topics=[INCIDENTS, SANCTIONS, dead_letter(INCIDENTS)])

    async def apply(conn, event):
        return await handlers.on_incident(conn, event, policy, clock)

    async def apply_many(conn, events):
        return await handlers.on_incidents(conn, events, policy, clock)

    consumer = runtime.consumer(SCHEMA, apply, apply_many)
    entrypoints.subscribe(runtime.broker, consumer, settings.consumer_group, common.consumer_max_records,
                          common.consumers_per_subscription)
    runtime.document(publishes=[SANCTIONS, dead_letter(INCIDENTS)])
    holder: dict[str, Deps] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        holder["deps"] = Deps(runtime.pool, policy, clock, runtime.relay.wake, settings.allow_clock_override,
                              timedelta(days=settings.retention_days))
        runtime.refreshers.append(lambda: _refresh_pending(runtime.pool))
        runtime.refreshers.append(lambda: _refresh_active_bans(runtime.pool))
        runtime.background(_scheduler(holder["deps"], settings.scheduler_interval_s))
        deps = holder["deps"]
        runtime.every(lambda: handlers.purge(deps.pool, deps.clock(), deps.retention, "retention-timer"),
                      settings.retention_interval_s, "retention purge failed")
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(title="vanda sanctions", version="1", lifespan=lifespan,
                  description="Applies the yellow/red card policy: warnings, proposals, approvals, "
                              "expiry and appeals. Emergency care is never barred.")
    limit_body_size(app, common.max_body_bytes)  # first, so a 413 carries X-Request-ID too
    install_error_handlers(app)
    entrypoints.install_error_handlers(app)
    app.include_router(ops_router(runtime.checks, runtime.refresh_gauges, serving=runtime.serving))
    app.include_router(entrypoints.routes(lambda: holder["deps"], auth_settings()))
    return app
