"""A pipeline of its own for the fault suite, which breaks its servers on purpose."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import asyncpg

from tests.fault.processes import Service
from vanda import apikeys, stack
from vanda.runtime.migrate import apply_all

ROWS: list[tuple[str, ...]] = []
HEADER = ("fault", "acked", "stored", "lost", "cards = undisturbed", "board = topics", "re-sent ids so far",
          "ids with 2 contents", "held")


@dataclass
class Pipeline:
    home: Path
    bootstrap: str
    dsn: str
    api_key: str = ""
    jwt_secret: str = ""
    services: dict[str, Service] = field(default_factory=dict)
    extra: list[Service] = field(default_factory=list)

    def url(self, name: str) -> str:
        return self.services[name].url


@pytest.fixture(scope="session")
def broken_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    """Kafka, PostgreSQL and the services, started for the fault suite alone."""
    home = tmp_path_factory.mktemp("fault-home")
    env_backup = {k: os.environ.pop(k) for k in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL") if k in os.environ}
    try:
        info = stack.up(home)
        apply_all(info.database_url)
        secret = secrets.token_urlsafe(32)
        env = dict(os.environ) | {"KAFKA_BOOTSTRAP_SERVERS": info.kafka_bootstrap_servers,
                                  "DATABASE_URL": info.database_url, "SANCTIONS_SCHEDULER_INTERVAL_S": "3600",
                                  "AUTH_JWT_SECRET": secret, "INTAKE_PSEUDONYM_KEY": secrets.token_urlsafe(48),
                                  "INTAKE_IDENTITY_KEY": secrets.token_urlsafe(48)}
        (home / "logs").mkdir(exist_ok=True)
        pipeline = Pipeline(home, info.kafka_bootstrap_servers, info.database_url,
                            asyncio.run(_fault_key(info.database_url)), secret)
        for name in ("intake", "sanctions", "reporting"):
            pipeline.services[name] = Service(name, env, home / "logs")
            pipeline.services[name].start()
        yield pipeline
    finally:
        for service in [*locals().get("pipeline", Pipeline(home, "", "")).services.values(),
                        *locals().get("pipeline", Pipeline(home, "", "")).extra]:
            service.stop()
        stack.down(home)
        os.environ.update(env_backup)


async def _fault_key(dsn: str) -> str:
    conn = await asyncpg.connect(dsn)
    try:
        return await apikeys.create(conn, "fault suite", [f"fault-{seed}" for seed in range(10, 30)])
    finally:
        await conn.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print what was tried and what held, as a table."""
    if not ROWS:
        return
    widths = [max(len(str(row[i])) for row in [HEADER, *ROWS]) for i in range(len(HEADER))]
    line = lambda row: "| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths)) + " |"  # noqa: E731
    terminalreporter.section("fault suite: what was tried and what held")
    terminalreporter.write_line(line(HEADER))
    terminalreporter.write_line("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in ROWS:
        terminalreporter.write_line(line(row))
