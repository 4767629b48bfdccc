"""Operational HTTP routes every service serves (liveness, readiness, metrics), and the
request handling they share: error answers, body limit, correlation ids."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import asyncpg
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from vanda.runtime import logs, metrics
from vanda.runtime.db import TRANSIENT_DB_ERRORS

Checks = Callable[[], Awaitable[dict[str, bool]]]
Refresh = Callable[[], Awaitable[None]]


def ops_router(checks: Checks, refresh: Refresh) -> APIRouter:
    """Routes for orchestrators and Prometheus; `refresh` updates gauges before a scrape."""
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

    @router.get("/metrics", summary="Prometheus text exposition.")
    async def prometheus() -> Response:
        await refresh()
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


def _field(loc: tuple[object, ...]) -> str:
    # FastAPI prefixes where the value came from; callers know their own body and query.
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "(body)"


async def validation_failed(request: Request, exc: RequestValidationError) -> JSONResponse:
    # The offending input is not echoed back: it may hold an NHS number.
    errors = [{"field": _field(tuple(e["loc"])), "reason": e["msg"]} for e in exc.errors()]
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
    larger = larger or {}

    @app.middleware("http")
    async def _limit(request: Request, call_next):  # type: ignore[no-untyped-def]
        return await _limited(request, call_next, larger.get(request.url.path, max_bytes))


async def _limited(request: Request, call_next, max_bytes: int):  # type: ignore[no-untyped-def]
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > max_bytes):
        return _too_large(max_bytes)
    if declared is None and request.method in ("POST", "PUT", "PATCH"):
        chunks, size = [], 0
        async for chunk in request.stream():
            chunks.append(chunk)
            size += len(chunk)
            if size > max_bytes:
                return _too_large(max_bytes)
        request._body = b"".join(chunks)  # already read: let the route see it
    return await call_next(request)


def _too_large(max_bytes: int) -> JSONResponse:
    return JSONResponse({"error": "too_large", "errors": [
        {"field": "(body)", "reason": f"request body over {max_bytes} bytes"}]}, status_code=413)


REQUEST_ID = "X-Request-ID"


def correlate(app: FastAPI) -> None:
    """Log lines written for a request carry its X-Request-ID as `correlation_id`; the answer
    returns it. A missing id, or one that is not a UUID, is replaced by a fresh UUID: the id
    goes into every log line, so free text from a caller (a name, an NHS number) never may."""

    @app.middleware("http")
    async def _correlate(request: Request, call_next):  # type: ignore[no-untyped-def]
        correlation_id = _request_id(request.headers.get(REQUEST_ID))
        with logs.correlated(correlation_id):
            response = await call_next(request)
        response.headers[REQUEST_ID] = correlation_id
        return response


def _request_id(supplied: str | None) -> str:
    try:
        return str(uuid.UUID(supplied or ""))
    except ValueError:
        return str(uuid.uuid4())
