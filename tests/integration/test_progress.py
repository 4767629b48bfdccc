"""A consumer group's backlog before a moment, read from a real broker's offsets and timestamps."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete

from vanda.runtime.progress import unapplied
from vanda.runtime.topics import ensure_topics

pytestmark = pytest.mark.integration


async def test_unapplied_counts_what_was_written_before_a_moment_past_the_group_s_commits(pipeline):
    bootstrap = pipeline["KAFKA_BOOTSTRAP_SERVERS"]
    topic, group = f"progress-{uuid.uuid4().hex[:8]}", f"progress-{uuid.uuid4().hex[:8]}"
    await ensure_topics(bootstrap, [topic], partitions=2, replication=1)
    now = datetime.now(UTC)
    earlier, later = now - timedelta(minutes=10), now - timedelta(minutes=1)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        # Partition 0: three written earlier, two later; partition 1: one earlier.
        for partition, when in [(0, earlier)] * 3 + [(0, later)] * 2 + [(1, earlier)]:
            await producer.send_and_wait(topic, b"{}", partition=partition, timestamp_ms=int(when.timestamp() * 1000))
    finally:
        await producer.stop()
    between, after = earlier + timedelta(minutes=5), now + timedelta(seconds=1)

    async def short(before: datetime) -> int:
        return await unapplied(bootstrap, group, [topic], before)

    # A group that never committed has applied nothing.
    assert (await short(between), await short(after)) == (4, 6)
    assert await short(earlier - timedelta(minutes=1)) == 0  # nothing was written before then
    await commit(bootstrap, group, {TopicPartition(topic, 0): 2, TopicPartition(topic, 1): 1})
    assert (await short(between), await short(after)) == (1, 3)
    await commit(bootstrap, group, {TopicPartition(topic, 0): 3})
    assert (await short(between), await short(after)) == (0, 2)
    await commit(bootstrap, group, {TopicPartition(topic, 0): 5})
    assert await short(after) == 0
    # Records deleted (retention) before the group applied them are nothing left to apply.
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_records({TopicPartition(topic, 1): RecordsToDelete(1)})
    finally:
        await admin.close()
    await commit(bootstrap, group, {TopicPartition(topic, 1): 0})
    assert await short(after) == 0


async def commit(bootstrap: str, group: str, offsets: dict[TopicPartition, int]) -> None:
    """Commit offsets for the group, as its consumer does once the database has the batch."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit(offsets)
    finally:
        await consumer.stop()
