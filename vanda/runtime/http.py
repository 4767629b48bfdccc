"""Operational HTTP routes every service serves (liveness, readiness, metrics), and the
request handling they share: error answers, body limit, correlation ids."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable

import asyncpg
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.datastructures import URL, Headers, MutableHeaders
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from schemas.events import field_of
from vanda.runtime import logs, metrics
from vanda.runtime.db import TRANSIENT_DB_ERRORS

Checks = Callable[[], Awaitable[dict[str, bool]]]
Refresh = Callable[[], Awaitable[None]]


def ops_router(checks: Checks, refresh: Refresh, scrape_budget_s: float = 5,
               serving: Callable[[], Awaitable[bool]] | None = None) -> APIRouter:
    """Routes for orchestrators and Prometheus; `refresh` updates gauges before a scrape, and
    `serving` says whether PostgreSQL answers (by default, from `checks`)."""
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="The process is alive.")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", summary="Kafka and PostgreSQL both answer.")
    async def readyz() -> JSONResponse:
        results = await checks()
        ready = all(results.values())
        metrics.READY.set(1 if ready else 0)
        body = {"status": "ready" if ready else "not_ready", "checks": results}
        return JSONResponse(body, status_code=200 if ready else 503)

    @router.get("/readyz/http", summary="The HTTP API can answer: PostgreSQL does.")
    async def readyz_http() -> JSONResponse:
        # What an orchestrator routes HTTP traffic by. Every route stores and reads through
        # PostgreSQL alone (events leave by the outbox), so Kafka down, or a consumer held on
        # a batch, must not take the API away: reports are still accepted and kept, and sent
        # once Kafka is back. /readyz and vanda_ready keep saying the whole of it.
        postgres = await serving() if serving is not None else (await checks()).get("postgres", False)
        body = {"status": "ready" if postgres else "not_ready", "checks": {"postgres": postgres}}
        return JSONResponse(body, status_code=200 if postgres else 503)

    @router.get("/metrics", summary="Prometheus text exposition.")
    async def prometheus() -> Response:
        # Readiness as of this scrape, not of the last probe: nothing may call /readyz (a Docker
        # healthcheck calls /healthz). Both at once, each bounded: a database that hangs must not
        # hold the scrape past Prometheus' timeout, or the 0 it should show is never seen.
        ready, _ = await asyncio.gather(_ready(checks, scrape_budget_s), _bounded(refresh(), scrape_budget_s))
        metrics.READY.set(1 if ready else 0)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


async def _ready(checks: Checks, budget_s: float) -> bool:
    try:
        return all((await asyncio.wait_for(checks(), budget_s)).values())
    except Exception:  # noqa: BLE001 - a check that cannot answer in time is a failing one
        return False


async def _bounded(work: Awaitable[None], budget_s: float) -> None:
    with contextlib.suppress(Exception):  # gauges left as they were: the rest of the scrape still counts
        await asyncio.wait_for(work, budget_s)


# FastAPI prefixes where the value came from; callers know their own body and query.
SOURCES = ("body", "query", "path", "header")


async def validation_failed(request: Request, exc: RequestValidationError) -> JSONResponse:
    # The offending input is not echoed back: it may hold an NHS number.
    errors = [{"field": field_of(e, SOURCES) or "(body)", "reason": e["msg"]} for e in exc.errors()]
    return JSONResponse({"error": "validation_failed", "errors": errors}, status_code=422)


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    # Nothing was stored: the client should retry, and its retry is safe (idempotent by ref/key).
    return JSONResponse({"error": "unavailable", "errors": [{"field": "(service)",
                         "reason": "a dependency is unavailable; retry shortly"}]},
                        status_code=503, headers={"Retry-After": "1"})


async def _unstorable(request: Request, exc: Exception) -> JSONResponse:
    # A query value PostgreSQL cannot hold (e.g. U+0000): the client's input, not our failure.
    return JSONResponse({"error": "validation_failed", "errors": [{"field": "(query)",
                         "reason": "contains a value that cannot be stored (such as a NUL character)"}]},
                        status_code=422)


def install_error_handlers(app: FastAPI) -> None:
    """422 bodies name every bad field and the reason; an outage is a 503 to retry, not a 500.
    Every answer, errors included, carries the request's correlation id."""
    correlate(app)
    app.add_exception_handler(RequestValidationError, validation_failed)  # type: ignore[arg-type]
    for error in (asyncpg.exceptions.CharacterNotInRepertoireError, asyncpg.exceptions.UntranslatableCharacterError,
                  asyncpg.exceptions._base.DataError):
        app.add_exception_handler(error, _unstorable)
    for error in TRANSIENT_DB_ERRORS:
        app.add_exception_handler(error, _unavailable)


def limit_body_size(app: FastAPI, max_bytes: int, larger: dict[str, int] | None = None) -> None:
    """Refuse bodies over `max_bytes` (or `larger[path]`) with 413 before reading them (hostile or broken clients)."""
    app.add_middleware(LimitBody, max_bytes=max_bytes, larger=larger or {})


# Both middlewares are plain ASGI, not Starlette's BaseHTTPMiddleware: that one runs every
# request in a task group of its own with message streams between; without it intake's CPU
# per single report fell by about 7%.

class LimitBody:
    """ASGI middleware behind `limit_body_size`."""

    def __init__(self, app: ASGIApp, max_bytes: int, larger: dict[str, int]) -> None:
        self.app, self.max_bytes, self.larger = app, max_bytes, larger

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        max_bytes = self.larger.get(URL(scope=scope).path, self.max_bytes)
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > max_bytes):
            return await _too_large(max_bytes)(scope, receive, send)
        if declared is None and scope["method"] in ("POST", "PUT", "PATCH"):
            try:
                body = await _read_at_most(receive, max_bytes)
            except ClientDisconnect:
                return None  # the client left mid-body: nothing to answer, and a part is never the whole
            if body is None:
                return await _too_large(max_bytes)(scope, receive, send)
            receive = _replay(body, receive)  # already read: let the route see it
        await self.app(scope, receive, send)


async def _read_at_most(receive: Receive, max_bytes: int) -> bytes | None:
    """The whole body of a request with no declared length, or None once it passes `max_bytes`;
    raises ClientDisconnect if the client leaves before the end."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if size > max_bytes:
            return None
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()  # after the body: wait for a disconnect, as the server would
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def _too_large(max_bytes: int) -> JSONResponse:
    return JSONResponse({"error": "too_large", "errors": [
        {"field": "(body)", "reason": f"request body over {max_bytes} bytes"}]}, status_code=413)


REQUEST_ID = "X-Request-ID"


def correlate(app: FastAPI) -> None:
    """Log lines written for a request carry its X-Request-ID as `correlation_id`; the answer
    returns it. A missing id, or one that is not a UUID, is replaced by a fresh UUID: the id
    goes into every log line, so free text from a caller (a name, an NHS number) never may."""
    app.add_middleware(Correlate)


class Correlate:
    """ASGI middleware behind `correlate`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        correlation_id = _request_id(Headers(scope=scope).get(REQUEST_ID))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[REQUEST_ID] = correlation_id
            await send(message)

        with logs.correlated(correlation_id):
            await self.app(scope, receive, send_with_id)


def _request_id(supplied: str | None) -> str:
    try:
        return str(uuid.UUID(supplied or ""))
    except ValueError:
        return str(uuid.uuid4())
