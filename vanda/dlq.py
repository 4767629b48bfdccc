"""Inspect and re-drive dead letters after a fix.

A dead letter keeps the original bytes and key; its headers say why it failed and where
it came from. Replaying publishes it back to its source topic: consumers dedupe by event
id, so replaying something already applied changes nothing.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord

from schemas.topics import INCIDENTS, SANCTIONS, dead_letter
from vanda.runtime.consumer import VALUE_OMITTED
from vanda.runtime.transport import kafka_client_options

DLQ_TOPICS = [dead_letter(INCIDENTS), dead_letter(SANCTIONS)]
DLQ_HEADER_PREFIX = "vanda-dlq-"


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    reason: str
    error: str
    source: str
    event_type: str

    @property
    def ref(self) -> str:
        """How `replay --only` names this letter."""
        return f"{self.partition}:{self.offset}"


def _describe(record: ConsumerRecord) -> DeadLetter:
    headers = {k: v.decode(errors="replace") for k, v in (record.headers or ())}
    try:
        event_type = str(orjson.loads(record.value or b"null").get("type", "?"))
    except (orjson.JSONDecodeError, AttributeError):
        event_type = "(unparseable)"
    source = f"{headers.get('vanda-dlq-source-topic', '?')}[{headers.get('vanda-dlq-source-partition', '?')}]" \
             f"@{headers.get('vanda-dlq-source-offset', '?')}"
    return DeadLetter(record.topic, record.partition, record.offset, headers.get("vanda-dlq-reason", "?"),
                      headers.get("vanda-dlq-error", ""), source, event_type)


async def read_all(bootstrap: str, topic: str, *, wait_s: float = 10) -> list[ConsumerRecord]:
    """Every record currently on a topic, without joining a consumer group."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False, **kafka_client_options())
    await consumer.start()
    try:
        records: list[ConsumerRecord] = []
        deadline = asyncio.get_running_loop().time() + wait_s
        # Partitions are assigned on the first fetches; until then there is nothing to measure.
        while not consumer.assignment() and asyncio.get_running_loop().time() < deadline:
            records += _flatten(await consumer.getmany(timeout_ms=200))
        ends = await consumer.end_offsets(list(consumer.assignment()))
        while await _behind(consumer, ends):
            records += _flatten(await consumer.getmany(timeout_ms=1000))
        return records
    finally:
        await consumer.stop()


async def _behind(consumer: AIOKafkaConsumer, ends: dict) -> bool:
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return True
    return False


def _flatten(batches: dict) -> list[ConsumerRecord]:
    return [r for batch in batches.values() for r in batch]


async def list_letters(bootstrap: str, topics: list[str]) -> list[DeadLetter]:
    letters: list[DeadLetter] = []
    for topic in topics:
        letters += [_describe(r) for r in await read_all(bootstrap, topic)]
    return letters


async def replay(bootstrap: str, topic: str, only: set[str] | None = None) -> tuple[int, list[DeadLetter]]:
    """Publish dead letters back to their source topic; how many, and those left where they
    are: a letter sent without its value (too large) has nothing to publish again, only the
    source offset to read it at."""
    records = [r for r in await read_all(bootstrap, topic) if only is None or f"{r.partition}:{r.offset}" in only]
    omitted = [r for r in records if VALUE_OMITTED in dict(r.headers or ())]
    left = {(r.partition, r.offset) for r in omitted}
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all",
                                **kafka_client_options())
    await producer.start()
    try:
        for record in (r for r in records if (r.partition, r.offset) not in left):
            headers = [(k, v) for k, v in (record.headers or ()) if not k.startswith(DLQ_HEADER_PREFIX)]
            headers.append(("vanda-replayed-from", f"{record.topic}:{record.partition}:{record.offset}".encode()))
            source = topic.removesuffix(".dlq")
            await producer.send_and_wait(source, value=record.value, key=record.key, headers=headers)
    finally:
        await producer.stop()
    return len(records) - len(omitted), [_describe(r) for r in omitted]
