"""Start-up waits for a broker or database that is not accepting connections yet, gives up in time,
and stops at once when asked to while it waits."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from urllib.parse import urlsplit

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError

from tests.unit.test_serve_stop import wait_for_line
from vanda.runtime.db import create_pool
from vanda.runtime.topics import ensure_topics
from vanda.stack.ports import free_port

pytestmark = pytest.mark.integration

LATE_S = 1.5  # how long the server "is still starting"


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


@contextlib.asynccontextmanager
async def _late_forwarder(target_host: str, target_port: int, after_s: float):
    """A port that refuses connections for `after_s`, then forwards them to the real server."""
    port = free_port()
    servers: list[asyncio.Server] = []

    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(target_host, target_port)
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    async def open_late() -> None:
        await asyncio.sleep(after_s)
        servers.append(await asyncio.start_server(forward, "127.0.0.1", port))

    opening = asyncio.create_task(open_late())
    try:
        yield port
    finally:
        opening.cancel()
        for server in servers:
            server.close()


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


async def test_topics_are_created_once_a_late_broker_accepts_connections(
        pipeline: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    bootstrap = pipeline["KAFKA_BOOTSTRAP_SERVERS"]
    topic = f"startup-wait-{uuid.uuid4().hex[:8]}"
    caplog.set_level(logging.WARNING, logger="vanda.runtime.startup")
    async with _late_forwarder(*_host_port(bootstrap), LATE_S) as port:
        started = time.monotonic()
        await ensure_topics(f"127.0.0.1:{port}", [topic], partitions=2, replication=1, wait_s=30)
        waited = time.monotonic() - started
    assert waited >= LATE_S
    assert any("Kafka is not reachable yet" in r.getMessage() for r in caplog.records)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
        assert len(described["partitions"]) == 2
        await admin.delete_topics([topic])
    finally:
        await admin.close()


async def test_a_pool_opens_once_a_late_database_accepts_connections(
        pipeline: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    dsn = urlsplit(pipeline["DATABASE_URL"])
    caplog.set_level(logging.WARNING, logger="vanda.runtime.startup")
    async with _late_forwarder(dsn.hostname, dsn.port, LATE_S) as port:
        started = time.monotonic()
        pool = await create_pool(dsn._replace(netloc=dsn.netloc.replace(f":{dsn.port}", f":{port}")).geturl(),
                                 max_size=1, wait_s=30)
        waited = time.monotonic() - started
        try:
            assert await pool.fetchval("SELECT 1") == 1
        finally:
            await pool.close()
    assert waited >= LATE_S
    assert any("PostgreSQL is not reachable yet" in r.getMessage() for r in caplog.records)


async def test_start_up_gives_up_on_a_broker_that_never_comes() -> None:
    started = time.monotonic()
    with pytest.raises(KafkaConnectionError):
        await ensure_topics(f"127.0.0.1:{free_port()}", ["never"], partitions=1, replication=1, wait_s=LATE_S)
    # It waited its time, and no retry began long after it.
    assert LATE_S <= time.monotonic() - started < LATE_S + 10


def test_a_stop_while_waiting_for_kafka_exits_cleanly(pipeline: dict[str, str]) -> None:
    env = os.environ | {"DATABASE_URL": pipeline["DATABASE_URL"], "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}"}
    proc = subprocess.Popen([sys.executable, "-m", "vanda", "serve", "sanctions", "--port", str(free_port())],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        lines = wait_for_line(proc, "Kafka is not reachable yet")
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=20)  # far less than the Kafka wait
        lines += proc.stdout.read().decode().splitlines() if proc.stdout else []
    finally:
        proc.kill()
        proc.wait()
    assert code == 0, lines
    assert any("stopped on request before start-up completed" in line for line in lines), lines

