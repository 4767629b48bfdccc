"""Session-wide real infrastructure: `vanda up` once, `vanda down` at the end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[1]


def vanda(*args: str, home: Path, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    """Run the real CLI as a user would; fail with its output if it fails."""
    result = subprocess.run([sys.executable, "-m", "vanda", *args, "--home", str(home)], cwd=ROOT,
                            env=(env or dict(os.environ)) | {"COLUMNS": "200"},
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"vanda {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def read_env(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def recorded_pids(home: Path) -> list[int]:
    """Every pid the CLI recorded as started from this home."""
    pids = []
    for name in ("stack.json", "services.json"):
        path = home / name
        if path.exists():
            pids += [int(p) for p in _find_pids(json.loads(path.read_text()))]
    return pids


def _find_pids(node: object) -> list[int]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "pid" and isinstance(v, int)] + [
            p for v in node.values() for p in _find_pids(v)]
    if isinstance(node, list):
        return [p for v in node for p in _find_pids(v)]
    return []


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Kafka, PostgreSQL and the three services, started by `vanda up` for the whole session."""
    home = tmp_path_factory.mktemp("vanda-home")
    # Tests drive review and expiry through the scheduler endpoint with a chosen clock.
    try:
        vanda("up", home=home, env=dict(os.environ) | {"SANCTIONS_ALLOW_CLOCK_OVERRIDE": "true",
                                                      "INTAKE_ALLOW_CLOCK_OVERRIDE": "true"})
    except BaseException:
        # A failed start must not leave the servers it did start running after the session.
        subprocess.run([sys.executable, "-m", "vanda", "down", "--home", str(home)], cwd=ROOT, check=False)
        raise
    pids = recorded_pids(home)
    endpoints = read_env(home / "endpoints.env")
    if "INTAKE_API_KEY" not in endpoints:  # `up` makes none in a database of one's own: the tests make theirs
        endpoints["INTAKE_API_KEY"] = _test_key(endpoints["DATABASE_URL"])
    try:
        yield endpoints | read_env(home / "dev-secrets.env") | {"HOME_DIR": str(home)}
    finally:
        vanda("down", home=home)
        alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        assert not alive, f"`vanda down` left processes running: {alive}"


def _test_key(database_url: str) -> str:
    """A key for any source, in the database the tests run against."""
    import asyncio

    import asyncpg

    from vanda import apikeys

    async def make() -> str:
        conn = await asyncpg.connect(database_url)
        try:
            return await apikeys.create(conn, "tests (any source)", [apikeys.ANY_SOURCE])
        finally:
            await conn.close()
    return asyncio.run(make())


def bearer(pipeline: dict[str, str], role: str, subject: str = "tester-1",
           orgs: list[str] | None = None) -> dict[str, str]:
    """Authorization header for a person with one role (acting for `orgs` only, if given),
    signed with the session's secret."""
    from vanda.runtime.auth import sign

    return {"Authorization": f"Bearer {sign(pipeline['AUTH_JWT_SECRET'], subject, [role], orgs=orgs)}"}


def source_key(pipeline: dict[str, str]) -> dict[str, str]:
    """The header an upstream system sends: the development key, allowed for any source."""
    return {"X-API-Key": pipeline["INTAKE_API_KEY"]}
