"""The ``<home>/stack.json`` state file and the lock that serialises stack commands."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

STATE_FILE = "stack.json"
LOCK_FILE = "stack.lock"
# Top-level section naming the containers of a `--docker` stack; component records stay untouched.
DOCKER_SECTION = "docker"

State = dict[str, dict[str, Any]]


def state_path(home: Path) -> Path:
    """Return the path of the state file for ``home``."""
    return Path(home) / STATE_FILE


def load(home: Path) -> State:
    """Read the state file; a missing or unreadable file means nothing was recorded."""
    try:
        data = json.loads(state_path(home).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {name: rec for name, rec in data.items() if isinstance(rec, dict)}


def uses_docker(state: State) -> bool:
    """Return True if ``state`` records a stack started in Docker containers."""
    return bool(state.get(DOCKER_SECTION))


def save(home: Path, state: State) -> None:
    """Write the state file atomically (a crash never leaves half a JSON document)."""
    path = state_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


@contextlib.contextmanager
def locked(home: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``home`` so two CLI calls never start the same node twice."""
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    with open(home / LOCK_FILE, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
