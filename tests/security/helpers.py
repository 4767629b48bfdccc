"""What the security tests share: the intake client's headers, readiness, liveness."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import psutil

SERVICES = ("intake", "sanctions", "reporting")


def intake_headers(pipeline: dict[str, str]) -> dict[str, str]:
    """Headers an upstream system sends to intake: its API key, when the pipeline has one."""
    key = pipeline.get("INTAKE_API_KEY")
    return {"X-API-Key": key} if key else {}


def url_of(pipeline: dict[str, str], service: str) -> str:
    return pipeline[f"{service.upper()}_URL"]


async def readiness(pipeline: dict[str, str]) -> dict[str, int]:
    """`GET /readyz` status of each service."""
    statuses = {}
    async with httpx.AsyncClient(timeout=30) as client:
        for service in SERVICES:
            statuses[service] = (await client.get(f"{url_of(pipeline, service)}/readyz")).status_code
    return statuses


def service_pids(pipeline: dict[str, str]) -> dict[str, int]:
    """Pids `vanda up` recorded for the three services (`services.json`: a list of name, pid, url)."""
    recorded = json.loads((Path(pipeline["HOME_DIR"]) / "services.json").read_text())
    entries = recorded if isinstance(recorded, list) else recorded.get("services", [])
    return {e["name"]: e["pid"] for e in entries if e.get("name") in SERVICES and isinstance(e.get("pid"), int)}


def alive(pid: int) -> bool:
    return psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
