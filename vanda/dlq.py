"""Inspect and re-drive dead letters after a fix.

A dead letter keeps the original bytes and key; its headers say why it failed and where
it came from. Replaying publishes it back to its source topic: consumers dedupe by event
id, so replaying something already applied changes nothing. How far each dead-letter
partition has been replayed is kept on the topic `vanda.dlq-replays.v1`, so a
replay sends each letter once: one that fails again comes back as a new letter, replayed
by the next run, instead of every run sending every letter again. A letter nobody can
replay (a report intake refused waits for its source to send it again) is dismissed instead:
marked without being sent. The services count the letters still waiting, and how soon the
topic's retention may delete the oldest, so none is deleted unseen.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from schemas.topics import INCIDENTS, SANCTIONS, SUBMISSIONS, dead_letter
from vanda.runtime.consumer import VALUE_OMITTED
from vanda.runtime.topics import ensure_topics, retention_s
from vanda.runtime.transport import kafka_client_options

log = logging.getLogger(__name__)
DLQ_TOPICS = [dead_letter(SUBMISSIONS), dead_letter(INCIDENTS), dead_letter(SANCTIONS)]
DLQ_HEADER_PREFIX = "vanda-dlq-"
# How far each dead-letter partition was replayed: the latest record for "<topic>:<partition>"
# on this topic. Not a consumer group's committed offsets: those of a group with no members
# expire after a week (offsets.retention.minutes), before the letters (28 days).
MARKS_TOPIC = "vanda.dlq-replays.v1"
# A letter's time is its producer's clock, a mark's the operator's: allow them to disagree.
CLOCKS_APART_S = 300


class UnknownTopic(Exception):
    """A topic the broker does not have (it creates none by itself): a typo, most likely."""


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    reason: str
    error: str
    source: str
    event_type: str
    # Below the replay mark: replayed, dismissed, or (sent without its value) passed by a replay
    # that could send nothing and said so. What is not passed waits, and the gauges count it.
    passed: bool = False
    omitted: bool = False  # sent without its value (too large): nothing a replay can send

    @property
    def replayed(self) -> bool:
        """Sent back to its source topic by an earlier replay, or dismissed."""
        return self.passed and not self.omitted

    @property
    def ref(self) -> str:
        """How `replay --only` names this letter."""
        return f"{self.partition}:{self.offset}"


def _describe(record: ConsumerRecord, marks: dict[int, int] | None = None) -> DeadLetter:
    headers = {k: (v or b"").decode(errors="replace") for k, v in (record.headers or ())}  # a value may be null
    try:
        kind = orjson.loads(record.value or b"null").get("type", "?")
        # A letter can hold anything: only a string is shown, as anything else may be nested
        # deep enough that writing it out raises RecursionError, and one letter stop the list.
        event_type = kind[:200] if isinstance(kind, str) else "(not a string)"
    except (orjson.JSONDecodeError, AttributeError):
        event_type = "(unparseable)"
    source = f"{headers.get('vanda-dlq-source-topic', '?')}[{headers.get('vanda-dlq-source-partition', '?')}]" \
             f"@{headers.get('vanda-dlq-source-offset', '?')}"
    return DeadLetter(record.topic, record.partition, record.offset, headers.get("vanda-dlq-reason", "?"),
                      headers.get("vanda-dlq-error", ""), source, event_type,
                      record.offset < (marks or {}).get(record.partition, 0), _omitted(record))


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


async def _partitions(bootstrap: str, topic: str) -> tuple[list[int], bool]:
    """The topic's partitions, and whether the marks topic exists yet."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, **kafka_client_options())
    await consumer.start()
    try:
        # The consumer's own metadata covers only topics it was told of: ask the cluster's.
        cluster = await consumer._client.fetch_all_metadata()
    finally:
        await consumer.stop()
    partitions = cluster.partitions_for_topic(topic)
    if not partitions:
        raise UnknownTopic(topic)
    return sorted(partitions), MARKS_TOPIC in cluster.topics()


async def replayed_up_to(bootstrap: str, topic: str) -> dict[int, int]:
    """Per partition, the offset up to which letters were replayed (0: none yet): the latest
    mark for it on the marks topic, unless it is of an earlier topic of the same name."""
    partitions, kept = await _partitions(bootstrap, topic)
    marks = {p: 0 for p in partitions}
    made: dict[int, float] = {}  # when each mark was written
    for record in await read_all(bootstrap, MARKS_TOPIC) if kept else []:
        name, _, partition = (record.key or b"").decode().rpartition(":")
        if name == topic and record.value is not None and int(partition) in marks:
            marks[int(partition)], made[int(partition)] = int(record.value), record.timestamp / 1000
    return await _of_this_topic(bootstrap, topic, marks, made) if any(marks.values()) else marks


async def _of_this_topic(bootstrap: str, topic: str, marks: dict[int, int], made: dict[int, float]) -> dict[int, int]:
    """The marks, those of a topic since deleted and made again counted from 0: a mark past its
    partition's end, or one older than the letter just below it (written after the mark was,
    so not a letter the mark passed). Counted as done, the letters now there would go unsent
    and unwatched."""
    parts = {p: TopicPartition(topic, p) for p, m in marks.items() if m}
    async with _reader(bootstrap) as consumer:
        starts, ends = await _bounds(consumer, list(parts.values()))
        stale = {p for p, tp in parts.items() if marks[p] > ends[tp]}
        # Below the mark, the last letter still kept (retention may have taken it: then nothing to compare).
        below = {tp: marks[p] - 1 for p, tp in parts.items() if p not in stale and marks[p] - 1 >= starts[tp]}
        written = await _timestamps_at(consumer, below)
    stale |= {tp.partition for tp, at in written.items() if at > made[tp.partition] + CLOCKS_APART_S}
    if stale:
        log.warning("replay marks of %s partitions %s are of an earlier topic of that name: counted from the start",
                    topic, sorted(stale))
    return {p: 0 if p in stale else m for p, m in marks.items()}


async def _marks_topic(bootstrap: str, topic: str) -> None:
    """Make the marks topic if missing, kept for ever like the event log (a few records per
    replay), with as many copies as the dead-letter topic it marks: the services made that one
    with the deployment's replication factor, which an operator's shell need not have. A
    replay makes it before sending anything: a refusal then (no right to create topics) sends
    nothing, where after sending, every retry would send every letter again."""
    await ensure_topics(bootstrap, [MARKS_TOPIC], partitions=1, replication=await _copies(bootstrap, topic),
                        **kafka_client_options())


async def _copies(bootstrap: str, topic: str) -> int:
    """How many replicas the topic's partitions have."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="vanda-dlq", **kafka_client_options())
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if described["error_code"] or not described["partitions"]:
        raise UnknownTopic(topic)
    return min(len(p["replicas"]) for p in described["partitions"])


async def _mark_replayed(bootstrap: str, topic: str, upto: dict[int, int]) -> None:
    await _marks_topic(bootstrap, topic)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all",
                                **kafka_client_options())
    await producer.start()
    try:
        for partition, offset in sorted(upto.items()):
            await producer.send_and_wait(MARKS_TOPIC, key=f"{topic}:{partition}".encode(), value=str(offset).encode())
    finally:
        await producer.stop()


async def list_letters(bootstrap: str, topics: list[str], missing_ok: bool = False) -> list[DeadLetter]:
    """Every letter on `topics`; a topic the broker lacks is skipped with `missing_ok` (the
    defaults, where a service not deployed has made none), else refused."""
    letters: list[DeadLetter] = []
    for topic in topics:
        try:
            marks = await replayed_up_to(bootstrap, topic)
        except UnknownTopic:
            if missing_ok:
                continue
            raise
        letters += [_describe(r, marks) for r in await read_all(bootstrap, topic)]
    return letters


@dataclass(frozen=True)
class Replay:
    sent: int  # letters published back to the source topic
    already: int  # letters an earlier replay sent, not sent again
    left: list[DeadLetter]  # letters sent without their value: nothing to publish, read them at their source
    unknown: list[str]  # `only` refs that are no letter on the topic


async def replay(bootstrap: str, topic: str, only: set[str] | None = None, again: bool = False) -> Replay:
    """Publish dead letters back to their source topic: those no earlier replay sent (all of
    them, `again`), or exactly the `only` refs. A letter sent without its value (too large)
    has nothing to publish again, only the source offset to read it at."""
    marks = await replayed_up_to(bootstrap, topic)
    records = await read_all(bootstrap, topic)
    sendable = [r for r in records if not _omitted(r)]
    if only is not None:
        chosen = [r for r in records if f"{r.partition}:{r.offset}" in only]
    else:
        chosen = [r for r in records if again or r.offset >= marks.get(r.partition, 0)]
    sent = [r for r in chosen if not _omitted(r)]
    await _marks_topic(bootstrap, topic)
    await _publish(bootstrap, topic.removesuffix(".dlq"), sent)
    if only is None and records:
        # Replayed up to the end read: a letter that fails again lands after it, a new one.
        ends = {p: max(r.offset for r in records if r.partition == p) + 1 for p in {r.partition for r in records}}
        await _mark_replayed(bootstrap, topic, {p: max(e, marks.get(p, 0)) for p, e in ends.items()})
    found = {f"{r.partition}:{r.offset}" for r in chosen}
    # Letters without their value are left every time, and said every time: none was ever sent.
    left = [r for r in (records if only is None else chosen) if _omitted(r)]
    return Replay(len(sent), len(sendable) - len(sent) if only is None else 0,
                  [_describe(r) for r in left], sorted((only or set()) - found))


def _omitted(record: ConsumerRecord) -> bool:
    return VALUE_OMITTED in dict(record.headers or ())


async def _publish(bootstrap: str, source: str, records: list[ConsumerRecord]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all",
                                **kafka_client_options())
    await producer.start()
    try:
        for record in records:
            headers = [(k, v) for k, v in (record.headers or ()) if not k.startswith(DLQ_HEADER_PREFIX)]
            headers.append(("vanda-replayed-from", f"{record.topic}:{record.partition}:{record.offset}".encode()))
            await producer.send_and_wait(source, value=record.value, key=record.key, headers=headers)
    finally:
        await producer.stop()


@dataclass(frozen=True)
class Waiting:
    """The letters on a dead-letter topic that no replay sent and nobody dismissed, still kept."""

    letters: int
    oldest_at: float | None  # when the oldest of them was dead-lettered (epoch seconds)
    retention_s: float | None  # how long the topic keeps a letter; None: for ever

    def deleted_in(self, now: float) -> float:
        """Seconds before retention may delete the oldest waiting letter (never sooner: Kafka
        deletes a segment once its newest record is past retention); infinite if none can go."""
        if self.oldest_at is None or self.retention_s is None:
            return float("inf")
        return self.oldest_at + self.retention_s - now


async def waiting(bootstrap: str, topic: str, *, wait_s: float = 10) -> Waiting:
    """Count the letters past each partition's replay mark that retention has not deleted, and
    read when the oldest of them was written."""
    marks = await replayed_up_to(bootstrap, topic)
    parts = [TopicPartition(topic, p) for p in sorted(marks)]
    async with _reader(bootstrap) as consumer:
        starts, ends = await _bounds(consumer, parts)
        firsts = {tp: min(ends[tp], max(starts[tp], marks[tp.partition])) for tp in parts}
        oldest = (await _timestamps_at(consumer, {tp: o for tp, o in firsts.items() if o < ends[tp]}, wait_s)).values()
    return Waiting(sum(ends[tp] - firsts[tp] for tp in parts), min(oldest, default=None),
                   await retention_s(bootstrap, topic, **kafka_client_options()))


@contextlib.asynccontextmanager
async def _reader(bootstrap: str) -> AsyncIterator[AIOKafkaConsumer]:
    """A consumer outside any group, for offsets and a few records; from the first record kept
    where the one sought was deleted by retention meanwhile."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest", **kafka_client_options())
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()


async def _bounds(consumer: AIOKafkaConsumer, parts: list[TopicPartition]) -> tuple[dict, dict]:
    """Each partition's first offset still kept, and its end."""
    return await consumer.beginning_offsets(parts), await consumer.end_offsets(parts)


async def _timestamps_at(consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int],
                        wait_s: float = 10) -> dict[TopicPartition, float]:
    """The timestamp of the record at each given offset (or the first kept after it), in seconds."""
    if not offsets:
        return {}
    consumer.assign(list(offsets))
    for tp, offset in offsets.items():
        consumer.seek(tp, offset)
    found: dict[TopicPartition, float] = {}
    deadline = asyncio.get_running_loop().time() + wait_s
    while len(found) < len(offsets) and asyncio.get_running_loop().time() < deadline:
        for tp, batch in (await consumer.getmany(*[t for t in offsets if t not in found], timeout_ms=500)).items():
            if batch:
                found.setdefault(tp, batch[0].timestamp / 1000)
    if len(found) < len(offsets):
        # Gauging none would say nothing is waiting, and silence the alert.
        raise TimeoutError(f"no letter read within {wait_s:g} s from {sorted(map(str, set(offsets) - set(found)))}")
    return found


async def dismiss(bootstrap: str, topic: str) -> int:
    """Mark every letter now on `topic` as dealt with, sending none; how many were waiting.
    `replay --only` or `--again` still sends a dismissed letter."""
    marks = await replayed_up_to(bootstrap, topic)
    parts = [TopicPartition(topic, p) for p in sorted(marks)]
    async with _reader(bootstrap) as consumer:
        starts, ends = await _bounds(consumer, parts)
    moved = {tp.partition: ends[tp] for tp in parts if ends[tp] > marks[tp.partition]}
    if moved:
        await _mark_replayed(bootstrap, topic, moved)
    return sum(ends[tp] - max(starts[tp], marks[tp.partition]) for tp in parts if tp.partition in moved)
