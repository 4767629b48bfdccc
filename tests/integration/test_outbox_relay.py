"""The outbox relay on real Kafka and PostgreSQL: batches larger than the producer's batch
size arrive whole, once each, on the key's partition, in the order they were stored."""

from __future__ import annotations

import uuid
from collections import defaultdict

import asyncpg
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.partitioner import DefaultPartitioner

from tests.integration.kafka_reader import read_until
from vanda.runtime.db import create_pool
from vanda.runtime.outbox import Relay, keyed_partitioner

pytestmark = pytest.mark.integration

PARTITIONS, KEYS, ROWS = 3, 10, 300
PAYLOAD_PAD = "x" * 3000  # 300 rows of 3 kB: many times the 16 KiB batches of the producer below


async def _topic(bootstrap: str) -> str:
    name = f"vanda.test.relay.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=PARTITIONS, replication_factor=1)])
    finally:
        await admin.close()
    return name


async def _outbox(pool: asyncpg.Pool, topic: str) -> str:
    schema = f"relay_{uuid.uuid4().hex[:8]}"
    await pool.execute(f"CREATE SCHEMA {schema}")
    await pool.execute(f"CREATE TABLE {schema}.outbox (LIKE intake.outbox INCLUDING ALL)")
    rows = [(str(uuid.uuid4()), topic, f"key-{i % KEYS}", "test.relay",
             orjson.dumps({"key": f"key-{i % KEYS}", "n": i // KEYS, "pad": PAYLOAD_PAD})) for i in range(ROWS)]
    await pool.executemany(f"INSERT INTO {schema}.outbox (event_id, topic, key, event_type, payload)"
                           " VALUES ($1, $2, $3, $4, $5)", rows)
    return schema


async def test_relay_sends_every_row_once_on_its_keys_partition_in_order(pipeline: dict[str, str]) -> None:
    bootstrap = pipeline["KAFKA_BOOTSTRAP_SERVERS"]
    topic = await _topic(bootstrap)
    pool = await create_pool(pipeline["DATABASE_URL"], max_size=2)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all",
                                max_batch_size=16 * 1024, partitioner=keyed_partitioner)
    await producer.start()
    try:
        schema = await _outbox(pool, topic)
        relay = Relay(pool, producer, schema, batch=ROWS * 2, interval_s=0.1)
        assert await relay.relay_once() == ROWS
        assert await pool.fetchval(f"SELECT count(*) FROM {schema}.outbox") == 0
        records = await read_until(bootstrap, topic, lambda r: True, ROWS)
    finally:
        await producer.stop()
        await pool.close()

    assert len(records) == ROWS
    by_key: dict[str, list[tuple[int, int]]] = defaultdict(list)
    partitions = list(range(PARTITIONS))
    for r in records:
        body = orjson.loads(r.value)
        assert r.key.decode() == body["key"]
        # The partition any Kafka client would pick for the key.
        assert r.partition == DefaultPartitioner()(r.key, partitions, partitions)
        assert dict(r.headers)["content-type"] == b"application/cloudevents+json"
        by_key[body["key"]].append((r.offset, body["n"]))
    assert len(by_key) == KEYS
    for sent in by_key.values():
        assert [n for _, n in sorted(sent)] == list(range(ROWS // KEYS))  # each once, in stored order
