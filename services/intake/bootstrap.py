"""Composition root for intake: settings, connections and routes, wired at startup."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError

from schemas.envelope import utcnow
from schemas.topics import INCIDENTS, SUBMISSIONS, dead_letter
from services.intake import bulk, entrypoints
from services.intake.adapters import IncidentStore
from services.intake.config import SERVICE, IntakeSettings
from services.intake import governance, vault
from services.intake.vault import Keyring
from vanda.runtime.auth import auth_settings
from vanda.runtime.consumer import subscribe
from vanda.runtime.http import install_error_handlers, limit_body_size, ops_router
from vanda.runtime.service import Runtime, every
from vanda.runtime.settings import CommonSettings


@dataclass
class Deps:
    store: IncidentStore
    keyring: Keyring
    wake_relay: Callable[[], None]
    retention: timedelta
    allow_clock_override: bool


def keyring(settings: IntakeSettings) -> Keyring:
    keys = {v: k.get_secret_value().encode() for v, k in settings.previous_pseudonym_keys.items()}
    keys[settings.pseudonym_key_version] = settings.pseudonym_key.get_secret_value().encode()
    previous = tuple(k.get_secret_value().encode() for k in settings.previous_identity_keys)
    return Keyring(settings.pseudonym_key_version, keys, settings.identity_key.get_secret_value().encode(), previous)


async def _reseal_fingerprints(deps: Deps) -> None:
    """Once at start: key the fingerprints stored bare, before they were keyed."""
    try:
        if resealed := await vault.reseal_fingerprints(deps.store.pool, deps.keyring):
            log.info("keyed %d report fingerprints stored bare", resealed)
    except Exception:  # noqa: BLE001 - tried again at the next start; bare ones are still matched
        log.warning("resealing report fingerprints failed", exc_info=True)


async def _key_then_purge(deps: Deps, interval_s: float) -> None:
    """At start, key the fingerprints stored bare, then purge what is past retention, and again
    every `interval_s`. One after the other, as both work on the same rows; the first purge at
    once, not an interval after the start: a replica restarted more often than that (rollouts,
    rescheduling) would never purge."""
    await _reseal_fingerprints(deps)
    await every(lambda: vault.purge(deps.store.pool, utcnow(), deps.retention, "retention-timer"), interval_s,
                "retention purge failed")


log = logging.getLogger(__name__)


def create_app(common: CommonSettings | None = None, settings: IntakeSettings | None = None) -> FastAPI:
    """Build the intake app; nothing connects until the app starts."""
    common = common or CommonSettings()
    settings = settings or IntakeSettings()
    runtime = Runtime(SERVICE, common,
                      topics=[INCIDENTS, SUBMISSIONS, dead_letter(SUBMISSIONS)],
                      dead_letters=[dead_letter(SUBMISSIONS)])
    app = FastAPI(title="vanda intake", version="1",
                  description="Takes incident reports, pseudonymises them and publishes incident events.")
    submissions = runtime.add_consumer(bulk.SubmissionConsumer(runtime, lambda: app.state.deps))
    subscribe(runtime.broker, submissions, SUBMISSIONS, group_id=settings.consumer_group,
              max_records=common.consumer_max_records, copies=common.consumers_per_subscription,
              description="IncidentReport JSON from upstream systems that prefer Kafka to HTTP; refused ones go to"
                          f" {dead_letter(SUBMISSIONS)} with the field and reason.")
    runtime.document(publishes=[INCIDENTS, dead_letter(SUBMISSIONS)])

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async def connected() -> None:
            ring = keyring(settings)
            await vault.check_pseudonym_keys(runtime.pool, ring)  # before any report is pseudonymised
            app.state.deps = Deps(IncidentStore(runtime.pool), ring, runtime.relay.wake,
                                  timedelta(days=settings.retention_days), settings.allow_clock_override)

        await runtime.start(before_consuming=connected)
        deps: Deps = app.state.deps
        runtime.background(_key_then_purge(deps, settings.retention_interval_s))
        # At start, after a rotation, and daily after: a replica still on the earlier key
        # goes on sealing under it until it is upgraded.
        runtime.every(lambda: governance.reseal_now(deps.store.pool, deps.keyring), settings.retention_interval_s,
                      "resealing identities under the current key failed")
        try:
            yield
        finally:
            await runtime.stop()

    app.router.lifespan_context = lifespan
    app.state.require_api_key = settings.require_api_key
    # The body limit first: middleware added later runs first, so a 413 carries X-Request-ID too.
    limit_body_size(app, common.max_body_bytes, {"/v1/incidents:batch": settings.batch_max_bytes})
    install_error_handlers(app)
    app.add_exception_handler(RequestValidationError, entrypoints.count_refused)  # type: ignore[arg-type]
    app.include_router(ops_router(runtime.checks, runtime.refresh_gauges, serving=runtime.serving))
    app.include_router(entrypoints.routes())
    app.include_router(bulk.routes(settings.batch_max_lines))
    app.include_router(governance.routes(auth_settings()))
    return app
