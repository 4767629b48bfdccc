"""Read topics back with a real Kafka consumer, as a downstream subscriber would."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, ConsumerRecord


async def read_until(bootstrap: str, topic: str, match: Callable[[ConsumerRecord], bool], count: int,
                     timeout: float = 60) -> list[ConsumerRecord]:
    """Records of `topic` from the beginning that `match`, once `count` have arrived (or time runs out)."""
    # No group: every partition, from the earliest offset, nothing committed.
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    try:
        found: list[ConsumerRecord] = []
        deadline = time.monotonic() + timeout
        while len(found) < count and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            found += [r for records in batches.values() for r in records if match(r)]
        return found
    finally:
        await consumer.stop()


async def poll(fetch: Callable, done: Callable, timeout: float = 60, interval: float = 0.3):
    """Call async `fetch` until `done(result)`, and return that result; fail if time runs out
    first, so that no caller can take a timeout for the state it waited for."""
    deadline = time.monotonic() + timeout
    while True:
        result = await fetch()
        if done(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout:g} s; last: {str(result)[:500]}")
        await asyncio.sleep(interval)
