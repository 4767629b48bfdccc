"""`vanda docs`: each service's AsyncAPI (topics) and OpenAPI (HTTP) documents.

The documents are built from the services' own apps, exactly as `vanda serve` builds
them, with the settings' defaults: nothing connects while an app is built, so this
needs neither Kafka nor PostgreSQL. Checked-in copies live in docs/asyncapi/ and
docs/openapi/; tests/unit/test_docs.py fails when they drift from the code.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

SERVICES = ("intake", "sanctions", "reporting")
DOCS_DIR = Path(__file__).resolve().parents[1] / "docs"
# The compose stack's in-network broker: the documents name a stable server
# rather than whatever this machine's KAFKA_BOOTSTRAP_SERVERS happens to be.
DOCUMENTED_KAFKA = "kafka:9092"
# Kept while an app is built; everything else in the environment is hidden so the
# documents show the defaults, not this machine's settings.
KEPT_ENVIRONMENT = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "PYTHONPATH")


@contextlib.contextmanager
def _default_environment() -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update({k: v for k, v in saved.items() if k in KEPT_ENVIRONMENT})
    # Intake refuses to be built without its keys, and every service warns without a token
    # secret; the documents need neither, so throwaway ones.
    os.environ.update({k: secrets.token_urlsafe(48)
                       for k in ("INTAKE_PSEUDONYM_KEY", "INTAKE_IDENTITY_KEY", "AUTH_JWT_SECRET")})
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def _capturing_runtimes() -> Iterator[list[Any]]:
    """Every Runtime constructed meanwhile: the composition root keeps its broker private."""
    from vanda.runtime import service

    built: list[Any] = []
    original = service.Runtime.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        built.append(self)

    service.Runtime.__init__ = init  # type: ignore[method-assign]
    try:
        yield built
    finally:
        service.Runtime.__init__ = original  # type: ignore[method-assign]


def _specification(name: str) -> tuple[Any, Any]:
    """The service's AsyncAPI specification and its FastAPI app, neither connected."""
    from faststream.specification import AsyncAPI

    from vanda.runtime.settings import CommonSettings

    bootstrap = importlib.import_module(f"services.{name}.bootstrap")
    with _default_environment(), _capturing_runtimes() as runtimes:
        http_app = bootstrap.create_app(CommonSettings(kafka_bootstrap_servers=DOCUMENTED_KAFKA))
    (runtime,) = runtimes
    from vanda.runtime.asyncapi import describe_subscribers

    describe_subscribers(runtime.broker)
    spec = AsyncAPI(runtime.broker, title=http_app.title, version=http_app.version,
                    description=http_app.description, schema_version="3.0.0").to_specification()
    return spec, http_app


def build(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(AsyncAPI, OpenAPI) documents of one service, built without connecting to anything."""
    spec, http_app = _specification(name)
    return _stable(json.loads(spec.to_json())), http_app.openapi()


def _stable(asyncapi: dict[str, Any]) -> dict[str, Any]:
    # FastStream keeps a broker's publishers in a WeakSet, so channels come out in a
    # different order from one run to the next: sort them, so the check compares content.
    for part in (asyncapi, asyncapi.get("components", {})):
        for key in ("channels", "operations", "messages", "schemas"):
            if isinstance(part.get(key), dict):
                part[key] = dict(sorted(part[key].items()))
    return asyncapi


def _text(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def generated() -> dict[str, str]:
    """Relative path (under docs/) to document text, for every service."""
    files = {}
    for name in SERVICES:
        asyncapi, openapi = build(name)
        files[f"asyncapi/{name}.json"] = _text(asyncapi)
        files[f"openapi/{name}.json"] = _text(openapi)
    return files


def write(directory: Path | None = None) -> list[Path]:
    """Write every document; return the paths written."""
    directory = directory or DOCS_DIR
    paths = []
    for relative, text in generated().items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def stale(directory: Path | None = None) -> list[str]:
    """Documents on disk that differ from the code (empty when in sync)."""
    directory = directory or DOCS_DIR
    wanted = generated()
    on_disk = {f"{kind}/{p.name}": p.read_text(encoding="utf-8")
               for kind in ("asyncapi", "openapi") for p in (directory / kind).glob("*.json")}
    return sorted(n for n in set(on_disk) | set(wanted) if on_disk.get(n) != wanted.get(n))


def site() -> Any:
    """A small web app showing every document (AsyncAPI viewer, Swagger UI)."""
    from fastapi import FastAPI, HTTPException
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import HTMLResponse
    from faststream.specification.asyncapi import get_asyncapi_html

    specs = {name: _specification(name) for name in SERVICES}
    web = FastAPI(title="vanda docs", docs_url=None, redoc_url=None, openapi_url=None)

    def known(name: str) -> tuple[Any, Any]:
        if name not in specs:
            raise HTTPException(404, detail=f"no service {name!r}")
        return specs[name]

    @web.get("/", response_class=HTMLResponse)
    def index() -> str:
        rows = "".join(f'<li>{n}: <a href="/asyncapi/{n}">topics (AsyncAPI)</a>, '
                       f'<a href="/openapi/{n}">HTTP (OpenAPI)</a></li>' for n in SERVICES)
        return f"<!DOCTYPE html><title>vanda docs</title><h1>vanda</h1><ul>{rows}</ul>"

    @web.get("/asyncapi/{name}.json")
    def asyncapi_json(name: str) -> dict[str, Any]:
        return json.loads(known(name)[0].to_json())

    @web.get("/asyncapi/{name}", response_class=HTMLResponse)
    def asyncapi_html(name: str) -> str:
        # No "try it out": the page must never publish to a broker.
        return get_asyncapi_html(known(name)[0], try_it_out_path=None)

    @web.get("/openapi/{name}.json")
    def openapi_json(name: str) -> dict[str, Any]:
        return known(name)[1].openapi()

    @web.get("/openapi/{name}", response_class=HTMLResponse)
    def openapi_html(name: str) -> HTMLResponse:
        known(name)
        return get_swagger_ui_html(openapi_url=f"/openapi/{name}.json", title=f"vanda {name}")

    return web


def docs(
    check: Annotated[bool, typer.Option("--check", help="Fail if docs/ differs from the code.")] = False,
    serve: Annotated[bool, typer.Option("--serve", help="Serve the documents in a browser.")] = False,
    host: str = "127.0.0.1",
    port: int = 8088,
) -> None:
    """Write docs/asyncapi/<service>.json and docs/openapi/<service>.json (or check, or serve them)."""
    if check:
        if names := stale():
            typer.echo(f"out of date: {', '.join(names)}; run `vanda docs`")
            raise typer.Exit(1)
        typer.echo("docs up to date")
    elif serve:
        import uvicorn

        typer.echo(f"serving the documents on http://{host}:{port}/")
        uvicorn.run(site(), host=host, port=port, log_level="warning")
    else:
        for path in write():
            typer.echo(str(path))
