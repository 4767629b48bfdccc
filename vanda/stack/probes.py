"""Readiness probes: real client round-trips against Kafka and PostgreSQL."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def run_sync(factory: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine from sync code, even when the caller already sits in an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())  # type: ignore[arg-type]
    # asyncio.run refuses to nest (e.g. up() called from an async pytest fixture): use a thread.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()  # type: ignore[arg-type]


async def _kafka_brokers(bootstrap: str, timeout: float) -> int:
    """Return how many brokers the cluster metadata lists (0 on any failure)."""
    from aiokafka.admin import AIOKafkaAdminClient

    from vanda.runtime.transport import kafka_client_options

    # Servers of one's own may ask for TLS and SASL: the probe goes as the services will.
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000), **kafka_client_options()
    )
    try:
        await asyncio.wait_for(admin.start(), timeout)
        info = await asyncio.wait_for(admin.describe_cluster(), timeout)
        return len(info.get("brokers") or [])
    except Exception:  # noqa: BLE001 - any failure just means "not ready yet"
        return 0
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


def kafka_answers(bootstrap: str, timeout: float = 5.0) -> bool:
    """Return True if a Kafka client can fetch cluster metadata listing at least one broker."""
    # aiokafka logs every refused connection at ERROR; silence it while we are only polling.
    logger = logging.getLogger("aiokafka")
    previous = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        return run_sync(lambda: _kafka_brokers(bootstrap, timeout)) > 0
    finally:
        logger.setLevel(previous)


async def _pg_select_one(url: str, timeout: float) -> bool:
    """Connect with asyncpg and run SELECT 1."""
    import asyncpg

    from vanda.runtime.transport import TransportSettings, postgres_ssl

    try:
        # As the services connect: DATABASE_SSL's checks, else what the URL says (never a silent plain-text try).
        conn = await asyncpg.connect(url, timeout=timeout, ssl=postgres_ssl(TransportSettings()) or None)
    except Exception:  # noqa: BLE001 - refused, starting up, auth not ready...
        return False
    try:
        return bool(await conn.fetchval("SELECT 1", timeout=timeout) == 1)
    except Exception:  # noqa: BLE001
        return False
    finally:
        await conn.close()


def postgres_answers(url: str, timeout: float = 5.0) -> bool:
    """Return True if ``SELECT 1`` succeeds against ``url``."""
    return run_sync(lambda: _pg_select_one(url, timeout))


async def _pg_create_database(admin_url: str, name: str) -> bool:
    """Create database ``name`` unless it exists; return True if it was created."""
    import asyncpg

    conn = await asyncpg.connect(admin_url, timeout=10)
    try:
        if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            return False
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        except asyncpg.DuplicateDatabaseError:
            return False  # a concurrent caller won the race; same outcome
        return True
    finally:
        await conn.close()


def postgres_create_database(admin_url: str, name: str) -> bool:
    """Create database ``name`` through ``admin_url`` if missing; return True if created."""
    return run_sync(lambda: _pg_create_database(admin_url, name))
