"""How far a consumer group is from having applied everything written to its topics before a moment.

A service that publishes figures worked out from what it consumed (reporting's monthly board)
must not publish them while a backlog is still to be applied: after an outage the figures
would be short, and published once, they stay short. The group's committed offsets say what
it has applied (they commit only after the database does); the record timestamps say what
was written before the moment.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient


async def unapplied(bootstrap: str, group: str, topics: Sequence[str], before: datetime, **kafka: Any) -> int:
    """How many records written to `topics` before `before` the group has not yet committed past
    (0: it has applied all of them). A partition the group never committed is counted from its start."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id=f"{group}-progress", **kafka)
    await admin.start()
    try:
        described = await admin.describe_topics(list(topics))
        committed = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    parts = [TopicPartition(t["topic"], p["partition"]) for t in described for p in t["partitions"]]
    if not parts:
        return 0
    marks = await _offsets_before(bootstrap, parts, before, kafka)
    applied = {tp: meta.offset for tp, meta in committed.items() if meta.offset >= 0}
    # Below the first record still kept (deleted by retention) is nothing left to apply: the
    # consumer resumes from that first record, and an emptied partition gives it none to commit.
    return sum(max(0, mark - max(applied.get(tp, start), start)) for tp, (start, mark) in marks.items())


async def _offsets_before(bootstrap: str, parts: list[TopicPartition], before: datetime,
                          kafka: dict[str, Any]) -> dict[TopicPartition, tuple[int, int]]:
    """Per partition, its first offset and the offset of its first record written at or after
    `before` (its end if there is none): every record below that was written before."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                client_id="vanda-progress", **kafka)
    await consumer.start()
    try:
        starts = await consumer.beginning_offsets(parts)
        ends = await consumer.end_offsets(parts)
        found = await consumer.offsets_for_times({tp: int(before.timestamp() * 1000) for tp in parts})
    finally:
        await consumer.stop()
    return {tp: (starts[tp], found[tp].offset if found.get(tp) is not None else ends[tp]) for tp in parts}
