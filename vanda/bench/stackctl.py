"""The stack the bench runs on: a fresh one in a temporary home (default), or a running one."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from vanda import envfile

# A fresh stack must never pick up someone's servers from the environment.
CONNECTION_VARIABLES = ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")


@dataclass(frozen=True)
class Stack:
    home: Path
    env: dict[str, str]
    owned: bool

    @property
    def intake_url(self) -> str:
        return self.env["INTAKE_URL"]

    @property
    def bootstrap(self) -> str:
        return self.env["KAFKA_BOOTSTRAP_SERVERS"]

    @property
    def dsn(self) -> str:
        return self.env["DATABASE_URL"]

    @property
    def api_key(self) -> str:
        return self.env["INTAKE_API_KEY"]

    def service_pids(self) -> dict[str, int]:
        """The pid of each service `vanda up` recorded in this home."""
        path = self.home / "services.json"
        return {e["name"]: int(e["pid"]) for e in json.loads(path.read_text())} if path.exists() else {}


    def infrastructure_pids(self) -> dict[str, int]:
        """Kafka's and PostgreSQL's pids when this home's stack runs them (not for external servers)."""
        path = self.home / "stack.json"
        nodes = json.loads(path.read_text()) if path.exists() else {}
        return {name: int(node["pid"]) for name, node in nodes.items()
                if isinstance(node, dict) and node.get("pid") and not node.get("external")}


def load(home: Path) -> Stack:
    """A running stack's endpoints and development secrets, as `vanda up` wrote them."""
    env = envfile.read(home / "dev-secrets.env") | envfile.read(home / "endpoints.env")
    missing = [k for k in ("INTAKE_URL", "KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "INTAKE_API_KEY") if k not in env]
    if missing:
        raise RuntimeError(f"{home / 'endpoints.env'} lacks {', '.join(missing)}: run `vanda up --home {home}` first")
    return Stack(home, env, owned=False)


def _vanda(command: str, home: Path, env: dict[str, str]) -> None:
    result = subprocess.run([sys.executable, "-m", "vanda", command, "--home", str(home)], env=env,
                            capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"`vanda {command}` failed:\n{result.stdout}\n{result.stderr}")


@contextmanager
def running(home: Path | None, console: Console) -> Iterator[Stack]:
    """Yield the stack in `home` if given, else start a fresh one and stop it afterwards."""
    if home is not None:
        yield load(home.resolve())
        return
    fresh = Path(tempfile.mkdtemp(prefix="vanda-bench-"))
    env = {k: v for k, v in os.environ.items() if k not in CONNECTION_VARIABLES}
    try:
        with console.status(f"starting a fresh stack in {fresh}"):
            _vanda("up", fresh, env)
        yield Stack(fresh, load(fresh).env, owned=True)
    finally:
        with console.status("stopping the bench's stack"):
            _vanda("down", fresh, env)
        shutil.rmtree(fresh, ignore_errors=True)
