"""Composition root for intake: settings, connections and routes, wired at startup."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI

from schemas.topics import INCIDENTS, dead_letter
from services.intake import entrypoints
from services.intake.adapters import IncidentStore
from services.intake.config import SERVICE, IntakeSettings
from services.intake.domain import PseudonymKey
from vanda.runtime.http import install_error_handlers, limit_body_size, ops_router
from vanda.runtime.service import Runtime
from vanda.runtime.settings import CommonSettings


@dataclass
class Deps:
    store: IncidentStore
    key: PseudonymKey
    wake_relay: Callable[[], None]


def create_app(common: CommonSettings | None = None, settings: IntakeSettings | None = None) -> FastAPI:
    """Build the intake app; nothing connects until the app starts."""
    common = common or CommonSettings()
    settings = settings or IntakeSettings()
    runtime = Runtime(SERVICE, common, topics=[INCIDENTS, dead_letter(INCIDENTS)])

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        key = PseudonymKey(settings.pseudonym_key.get_secret_value().encode(), settings.pseudonym_key_version)
        app.state.deps = Deps(IncidentStore(runtime.pool), key, runtime.relay.wake)
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(title="vanda intake", version="1", lifespan=lifespan,
                  description="Takes incident reports, pseudonymises them and publishes incident events.")
    app.state.require_api_key = settings.require_api_key
    install_error_handlers(app)
    limit_body_size(app, common.max_body_bytes)
    app.include_router(ops_router(runtime.checks, runtime.refresh_gauges))
    app.include_router(entrypoints.routes())
    return app
