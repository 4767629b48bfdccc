"""The limit: what the broker and the database do with the same payloads and no pipeline at all.

Raw aiokafka produce (acks=all, idempotent, as the relays publish) then consume of the
IncidentReported events on a bench topic created and deleted here, and one batched COPY of
the same incidents into a bench table.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from vanda.bench.stats import rate

LIMIT_TOPIC = "vanda.bench.limit.v1"
PARTITIONS = 6  # what the services' topics get by default
COPY_BATCH = 10_000
COLUMNS = ("incident_id", "subject_id", "occurred_at", "organisation", "site", "category", "harm",
           "perpetrator_kind", "event")
Progress = Callable[[int], None]


async def create_topic(bootstrap: str, topic: str, partitions: int = PARTITIONS) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="vanda-bench")
    await admin.start()
    try:
        if topic in set(await admin.list_topics()):
            await admin.delete_topics([topic])
            await _wait(admin, topic, present=False)
        await admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
        await _wait(admin, topic, present=True)
    finally:
        await admin.close()


async def delete_topic(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="vanda-bench")
    await admin.start()
    try:
        if topic in set(await admin.list_topics()):
            await admin.delete_topics([topic])
    finally:
        await admin.close()


async def _wait(admin: AIOKafkaAdminClient, topic: str, *, present: bool, timeout: float = 30) -> None:
    import asyncio

    deadline = time.monotonic() + timeout
    while (topic in set(await admin.list_topics())) != present:
        if time.monotonic() > deadline:
            raise TimeoutError(f"topic {topic} still {'absent' if present else 'present'}")
        await asyncio.sleep(0.2)


async def produce(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]],
                  progress: Progress = lambda n: None) -> float:
    """Send every (key, value) and wait for every acknowledgement; return the seconds taken."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                                linger_ms=5, max_batch_size=256 * 1024, compression_type=None)
    await producer.start()
    try:
        started = time.perf_counter()
        pending = []
        for n, (key, value) in enumerate(messages, 1):
            pending.append(await producer.send(topic, value=value, key=key))
            if len(pending) >= 5000:
                await _settle(pending)
                progress(len(pending))
                pending = []
        await _settle(pending)
        progress(len(pending))
        return time.perf_counter() - started
    finally:
        await producer.stop()


async def _settle(futures: list[Any]) -> None:
    import asyncio

    await asyncio.gather(*futures)


async def consume(bootstrap: str, topic: str, expected: int, progress: Progress = lambda n: None,
                  timeout: float = 300) -> tuple[int, float]:
    """Read the topic from the beginning until `expected` records; return (records, seconds)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest", max_partition_fetch_bytes=4 * 1024 * 1024)
    await consumer.start()
    try:
        parts = await topic_partitions(consumer, topic)
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        seen, started = 0, time.perf_counter()
        deadline = started + timeout
        while seen < expected and time.perf_counter() < deadline:
            batches = await consumer.getmany(timeout_ms=500, max_records=10_000)
            got = sum(len(records) for records in batches.values())
            seen += got
            progress(got)
        return seen, time.perf_counter() - started
    finally:
        await consumer.stop()


async def topic_partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    """Every partition of `topic`, refreshing metadata for a topic created a moment ago."""
    found = consumer.partitions_for_topic(topic)
    if not found:
        await consumer._client.force_metadata_update()  # noqa: SLF001 - aiokafka has no public refresh
        found = consumer.partitions_for_topic(topic)
    if not found:
        raise RuntimeError(f"topic {topic} has no partitions")
    return [TopicPartition(topic, p) for p in sorted(found)]


def copy_row(value: bytes) -> tuple[Any, ...]:
    """The bench table's row for one IncidentReported event (parsed as the consumers would)."""
    event = orjson.loads(value)
    data = event["data"]
    return (uuid.UUID(data["incident_id"]), data["subject_id"], datetime.fromisoformat(data["occurred_at"]),
            data["organisation"], data["site"], data["category"], data["harm"], data["perpetrator"]["kind"],
            orjson.dumps(data))


async def copy(dsn: str, values: list[bytes], progress: Progress = lambda n: None) -> float:
    """COPY every incident into bench.limit_incidents in batches; return the seconds taken."""
    conn = await asyncpg.connect(dsn)
    try:
        # Binary COPY needs jsonb in its binary form: a version byte, then the JSON text.
        await conn.set_type_codec("jsonb", schema="pg_catalog", format="binary",
                                  encoder=lambda raw: b"\x01" + raw, decoder=lambda raw: raw[1:])
        await conn.execute("CREATE SCHEMA IF NOT EXISTS bench")
        await conn.execute("DROP TABLE IF EXISTS bench.limit_incidents")
        await conn.execute(
            "CREATE TABLE bench.limit_incidents (incident_id uuid PRIMARY KEY, subject_id text,"
            " occurred_at timestamptz NOT NULL, organisation text NOT NULL, site text NOT NULL,"
            " category text NOT NULL, harm text NOT NULL, perpetrator_kind text NOT NULL, event jsonb NOT NULL)")
        started = time.perf_counter()
        for start in range(0, len(values), COPY_BATCH):
            rows = [copy_row(v) for v in values[start:start + COPY_BATCH]]
            async with conn.transaction():
                await conn.copy_records_to_table("limit_incidents", schema_name="bench", columns=COLUMNS,
                                                 records=rows)
            progress(len(rows))
        seconds = time.perf_counter() - started
        await conn.execute("DROP TABLE bench.limit_incidents")
        return seconds
    finally:
        await conn.close()


async def run(bootstrap: str, dsn: str, messages: list[tuple[bytes, bytes]],
              progress: Callable[[str, int | None], Progress]) -> dict[str, Any]:
    """All three limits on the same messages; the topic exists only for this phase."""
    await create_topic(bootstrap, LIMIT_TOPIC)
    try:
        produced = await produce(bootstrap, LIMIT_TOPIC, messages, progress("limit: Kafka produce", len(messages)))
        consumed, consume_s = await consume(bootstrap, LIMIT_TOPIC, len(messages),
                                            progress("limit: Kafka consume", len(messages)))
    finally:
        await delete_topic(bootstrap, LIMIT_TOPIC)
    if consumed < len(messages):
        raise RuntimeError(f"limit: consumed {consumed} of {len(messages)} records")
    copy_s = await copy(dsn, [v for _, v in messages], progress("limit: PostgreSQL COPY", len(messages)))
    return {"limit_produce_per_s": rate(len(messages), produced),
            "limit_consume_per_s": rate(consumed, consume_s),
            "limit_copy_per_s": rate(len(messages), copy_s)}
