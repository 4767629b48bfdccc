"""Run the three services as background processes, for `vanda up` and the tests."""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from vanda.stack import StackInfo
from vanda.stack.ports import free_port
from vanda.stack.procs import is_alive, spawn, terminate

SERVICES = ("intake", "sanctions", "reporting")
MARKER = ("-m vanda serve",)


class StartFailed(RuntimeError):
    """A service exited, or was not ready in time: its log under logs/ says why."""


@dataclass(frozen=True)
class Endpoint:
    name: str
    pid: int
    url: str


def _state_path(home: Path) -> Path:
    return home / "services.json"


def load(home: Path) -> list[Endpoint]:
    """Services recorded as started from this home."""
    path = _state_path(home)
    return [Endpoint(**e) for e in json.loads(path.read_text())] if path.exists() else []


def start(home: Path, stack: StackInfo, *, env: dict[str, str] | None = None, timeout: float = 90) -> list[Endpoint]:
    """Start every service not already running and wait until all are ready."""
    running = {e.name: e for e in load(home) if is_alive(e.pid, MARKER)}
    base = os.environ | {"KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap_servers,
                         "DATABASE_URL": stack.database_url} | (env or {})
    endpoints = [running.get(name) or _spawn(home, name, base) for name in SERVICES]
    _state_path(home).write_text(json.dumps([asdict(e) for e in endpoints], indent=2))
    wait_ready(endpoints, timeout)
    return endpoints


def _spawn(home: Path, name: str, env: dict[str, str]) -> Endpoint:
    port = free_port()
    cmd = [sys.executable, "-m", "vanda", "serve", name, "--host", "127.0.0.1", "--port", str(port)]
    pid = spawn(cmd, home / "logs" / f"{name}.log", env=env)
    return Endpoint(name, pid, f"http://127.0.0.1:{port}")


def wait_ready(endpoints: list[Endpoint], timeout: float) -> None:
    """Poll /readyz until every service answers 200, or raise naming those that did not."""
    deadline = time.monotonic() + timeout
    waiting = list(endpoints)
    while waiting and time.monotonic() < deadline:
        waiting = [e for e in waiting if not _ready(e)]
        if waiting:
            dead = [e.name for e in waiting if not is_alive(e.pid, MARKER)]
            if dead:
                raise StartFailed(f"service exited during start: {', '.join(dead)} (see logs/)")
            time.sleep(0.3)
    if waiting:
        raise StartFailed(f"not ready after {timeout:.0f}s: {', '.join(e.name for e in waiting)} (see logs/)")


def _ready(endpoint: Endpoint) -> bool:
    try:
        return httpx.get(f"{endpoint.url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def stop(home: Path, timeout: float = 20) -> list[str]:
    """Stop the services this home started (SIGTERM, then SIGKILL); return their names."""
    stopped = []
    for endpoint in load(home):
        if is_alive(endpoint.pid, MARKER):
            terminate(endpoint.pid, MARKER, timeout=timeout)
            stopped.append(endpoint.name)
    _state_path(home).unlink(missing_ok=True)
    return stopped
