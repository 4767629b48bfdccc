"""vanda.stack against the real thing: a KRaft broker and PostgreSQL started in a tmp home."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import psutil
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

import vanda.stack as stack
from vanda.stack import state

pytestmark = pytest.mark.integration

TOPIC = f"stack-test-{uuid.uuid4().hex[:8]}"


def _alive(pid: int | None) -> bool:
    if not pid or not psutil.pid_exists(pid):
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A stack home with env overrides removed, always torn down at the end."""
    path = tmp_path_factory.mktemp("stack-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
        mp.delenv("DATABASE_URL", raising=False)
        try:
            yield path
        finally:
            stack.down(path)


async def _produce(bootstrap: str, value: bytes) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(TOPIC, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(TOPIC, value)
    finally:
        await producer.stop()


async def _consume_first(bootstrap: str) -> bytes:
    consumer = AIOKafkaConsumer(TOPIC, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    try:
        msg = await asyncio.wait_for(consumer.getone(), 30)
        return bytes(msg.value or b"")
    finally:
        await consumer.stop()


async def _sql(url: str, *statements: str) -> object:
    conn = await asyncpg.connect(url)
    try:
        result: object = None
        for sql in statements:
            result = await conn.fetchval(sql)
        return result
    finally:
        await conn.close()


def test_up_starts_kafka_and_postgres(home: Path) -> None:
    info = stack.up(home)
    assert info.kafka_bootstrap_servers.startswith("127.0.0.1:")
    assert info.database_url.startswith("postgresql://postgres@127.0.0.1:") and info.database_url.endswith("/vanda")
    asyncio.run(_produce(info.kafka_bootstrap_servers, b"hello"))
    assert asyncio.run(_consume_first(info.kafka_bootstrap_servers)) == b"hello"
    assert asyncio.run(_sql(info.database_url, "SELECT 1")) == 1
    st = stack.status(home)
    assert all(c["running"] and c["pid"] and not c["external"] for c in st.values())


def test_up_is_idempotent(home: Path) -> None:
    before = stack.status(home)
    info = stack.up(home)
    assert stack.status(home) == before
    assert info.kafka_bootstrap_servers == before["kafka"]["url"]


def test_kafka_restart_keeps_messages(home: Path) -> None:
    pid = stack.status(home)["kafka"]["pid"]
    assert stack.stop_component(home, "kafka") is True
    assert not _alive(pid) and stack.status(home)["kafka"]["running"] is False
    bootstrap = stack.start_component(home, "kafka")
    assert bootstrap == stack.status(home)["kafka"]["url"]  # same port
    assert asyncio.run(_consume_first(bootstrap)) == b"hello"


def test_postgres_restart_keeps_rows(home: Path) -> None:
    url = stack.status(home)["postgres"]["url"]
    asyncio.run(_sql(url, "CREATE TABLE kept (v text)", "INSERT INTO kept VALUES ('x')"))
    pid = stack.status(home)["postgres"]["pid"]
    assert stack.stop_component(home, "postgres") is True
    assert not _alive(pid)
    assert stack.start_component(home, "postgres") == url
    assert asyncio.run(_sql(url, "SELECT v FROM kept")) == "x"


def test_down_then_up_reuses_ports_and_data(home: Path) -> None:
    before = stack.status(home)
    pids = [c["pid"] for c in before.values()]
    stack.down(home)
    assert not any(_alive(p) for p in pids)
    assert all(c["pid"] is None for c in state.load(home).values())
    info = stack.up(home)
    assert (info.kafka_bootstrap_servers, info.database_url) == (before["kafka"]["url"], before["postgres"]["url"])
    assert asyncio.run(_sql(info.database_url, "SELECT v FROM kept")) == "x"
    assert asyncio.run(_consume_first(info.kafka_bootstrap_servers)) == b"hello"
    pids = [c["pid"] for c in stack.status(home).values()]
    stack.down(home)
    assert not any(_alive(p) for p in pids)
