"""Apply consumed events exactly once: inbox, state change and outbox in one transaction.

The offset is committed only after this returns (FastStream's ack), so a crash at any
point redelivers the batch and the inbox skips what was already applied. A message that
cannot be parsed, or that the domain rejects, goes to `<topic>.dlq` so its partition
moves on; an unreachable database is retried, never dead-lettered.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import asyncpg
from aiokafka import AIOKafkaProducer, ConsumerRecord
from aiokafka.errors import MessageSizeTooLargeError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    retry_if_exception_type,
    wait_exponential,
)

from schemas.envelope import CloudEvent
from schemas.events import decode, describe_error
from schemas.topics import dead_letter
from vanda.runtime import db, inbox, metrics, outbox
from vanda.runtime.db import is_transient

log = logging.getLogger(__name__)

class Connections(Protocol):
    """What a consumer needs from its service's runtime, available once started."""

    pool: asyncpg.Pool | None
    producer: AIOKafkaProducer | None
    dead_letters: AIOKafkaProducer | None
    relay: outbox.Relay | None


Apply = Callable[[asyncpg.Connection, CloudEvent[Any]], Awaitable[list[outbox.Outgoing]]]
# The same for a whole batch of new events, in order: the fast path (few statements per batch).
ApplyMany = Callable[[asyncpg.Connection, list[CloudEvent[Any]]], Awaitable[list[outbox.Outgoing]]]


@dataclass
class DeadLetter:
    record: ConsumerRecord
    reason: str
    error: str


@dataclass
class BatchResult:
    applied: Counter[str] = field(default_factory=Counter)
    duplicates: Counter[str] = field(default_factory=Counter)
    dead: list[DeadLetter] = field(default_factory=list)

    def merged(self, other: BatchResult) -> BatchResult:
        return BatchResult(self.applied + other.applied, self.duplicates + other.duplicates, self.dead + other.dead)

    def tallies(self) -> list[tuple[str, str, int]]:
        """(topic, outcome, count) rows for the consumed-events counter."""
        dead = Counter(d.record.topic for d in self.dead)
        return [(t, name, n) for name, c in (("applied", self.applied), ("duplicate", self.duplicates),
                                            ("dead_lettered", dead)) for t, n in c.items()]


OUTAGE = retry_if_exception(is_transient)
# A dead letter sent without the record's bytes (too large) says so, and where to read them.
VALUE_OMITTED = "vanda-dlq-value-omitted"
MAX_KEPT_KEY = 1024
SLOW_TRIES = 3


def _key(record: ConsumerRecord) -> tuple[str, int, int]:
    return record.topic, record.partition, record.offset


class BatchConsumer:
    """Handles batches of records: retried while a dependency is away, faulty records dead-lettered.

    Subclasses say how a batch is applied (`apply_batch`); this owns the guarantees.
    """

    def __init__(self, runtime: Connections) -> None:
        self._runtime = runtime
        # The calls retrying an outage now. Copies of one subscription share this consumer: one
        # copy's success must not hide another stuck retrying (a partition stalled, not ready).
        self._failing: set[object] = set()
        # Per record (topic, partition, offset) that timed out applied alone, how many times
        # running. Kept per record, not per partition: two slow records in one batch would
        # otherwise reset each other's count on every retry, and neither ever go.
        self._slow: dict[tuple[str, int, int], int] = {}

    @property
    def healthy(self) -> bool:
        return not self._failing

    async def apply_batch(self, records: Sequence[ConsumerRecord]) -> BatchResult:
        raise NotImplementedError

    async def handle(self, records: Sequence[ConsumerRecord]) -> BatchResult:
        """Apply a batch; returns only when every record is applied or dead-lettered."""
        started = time.perf_counter()
        result = await self._retrying("apply", lambda: self._apply_in_parts(records))
        for letter in result.dead:
            # Sent before the batch's offsets commit, however long that takes: any failure (the
            # broker away, a missing ACL) is retried with backoff, the consumer unhealthy
            # meanwhile. Raising would rewind the partition at once, in a tight loop, sending
            # the batch's earlier dead letters again each time.
            await self._retrying("dead_letter", lambda letter=letter: self._send_dead_letter(letter),
                                 retry=retry_if_exception_type(Exception), longest_wait=30)
        for record in records:  # done with, one way or the other
            self._slow.pop(_key(record), None)
        self._count(records, result, time.perf_counter() - started)
        if self._runtime.relay is not None:
            self._runtime.relay.wake()
        return result

    async def _apply_in_parts(self, records: Sequence[ConsumerRecord]) -> BatchResult:
        """The batch, or, if it outlasts the statement timeout, its halves one after the other:
        retried whole, a batch too large to apply in time would time out for ever, the partition
        stopped. A half already applied is skipped as duplicates when the batch is retried."""
        if len(records) == 1 and self._slow.get(_key(records[0]), 0) >= SLOW_TRIES:
            # Condemned on an earlier try whose batch a later slow record then failed: its dead
            # letter was never sent, and trying it once more would only spend another timeout.
            return self._dead_slow(records[0])
        try:
            result = await self.apply_batch(records)
        except TimeoutError:
            # A database that does not answer at all (a failover, a partition) times out too:
            # that is an outage, retried whole with backoff, not a batch to cut down.
            if not await self._database_answers():
                raise
            if len(records) == 1:
                return self._too_slow(records[0])
            if not records:
                raise
            log.warning("a batch of %d outlasted the statement timeout; applying it in halves", len(records),
                        extra={"count": len(records)})
            half = len(records) // 2
            return (await self._apply_in_parts(records[:half])).merged(await self._apply_in_parts(records[half:]))
        if len(records) == 1:
            self._applied_alone(records[0])
        return result

    def _applied_alone(self, record: ConsumerRecord) -> None:
        # Applied at last: its timeouts are no longer running.
        self._slow.pop(_key(record), None)

    def _too_slow(self, record: ConsumerRecord) -> BatchResult:
        """One record that outlasts the statement timeout on its own, while the database answers:
        retried (the database may be busy for a while), but dead-lettered once it has timed out
        SLOW_TRIES times running, or it would hold its partition for ever. The count stays
        until the batch is done with, so that a retry dead-letters it at once."""
        key = _key(record)  # copies of a subscription share this consumer: its own partitions
        self._slow[key] = self._slow.get(key, 0) + 1
        if self._slow[key] < SLOW_TRIES:
            raise TimeoutError
        log.error("a record outlasted the statement timeout %d times on its own; dead-lettered", SLOW_TRIES,
                  extra={"topic": record.topic})
        return self._dead_slow(record)

    @staticmethod
    def _dead_slow(record: ConsumerRecord) -> BatchResult:
        return BatchResult(dead=[DeadLetter(record, "rejected", f"(record) outlasted the statement timeout"
                                            f" {SLOW_TRIES} times on its own, with the database answering")])

    async def _database_answers(self) -> bool:
        pool = getattr(self._runtime, "pool", None)
        return pool is not None and await db.ping(pool)

    async def _send_dead_letter(self, letter: DeadLetter) -> None:
        record = letter.record
        own = [
            ("vanda-dlq-reason", letter.reason.encode()),
            ("vanda-dlq-error", letter.error[:2000].encode()),
            ("vanda-dlq-source-topic", record.topic.encode()),
            ("vanda-dlq-source-partition", str(record.partition).encode()),
            ("vanda-dlq-source-offset", str(record.offset).encode()),
        ]
        assert self._runtime.dead_letters is not None
        value = record.value
        try:
            sent = record.sent_headers if isinstance(record, CleanedRecord) else record.headers
            await self._runtime.dead_letters.send_and_wait(dead_letter(record.topic), value=value, key=record.key,
                                                           headers=list(sent or ()) + own)
        except MessageSizeTooLargeError:
            # A record the broker took compressed can be too large to send on as it is: the dead
            # letter then says where to read it, for as long as the source topic keeps it. Only
            # vanda's own headers go with it, and the key only if small: both came from upstream.
            omitted = f"{len(value or b'')} bytes, over the producer's limit: read it at the source offset"
            key = record.key if record.key is None or len(record.key) <= MAX_KEPT_KEY else None
            await self._runtime.dead_letters.send_and_wait(
                dead_letter(record.topic), value=None, key=key,
                headers=own + [(VALUE_OMITTED, omitted.encode())])
        metrics.DEAD_LETTERS.labels(record.topic, letter.reason).inc()

    async def _retrying(self, operation: str, call: Callable[[], Awaitable[Any]],
                        retry: Any = OUTAGE, longest_wait: float = 5) -> Any:
        """`call` until it succeeds, retrying what `retry` admits (an outage, by default) with
        backoff and the consumer unhealthy meanwhile; anything else is raised."""
        this = object()
        try:
            async for attempt in AsyncRetrying(
                retry=retry,
                wait=wait_exponential(multiplier=0.2, max=longest_wait),
                before_sleep=lambda state: self._note_retry(this, operation, state),
                reraise=True,
            ):
                with attempt:
                    value = await call()
        finally:
            self._failing.discard(this)
        return value

    def _note_retry(self, this: object, operation: str, state: RetryCallState) -> None:
        self._failing.add(this)
        metrics.TRANSIENT_RETRIES.labels(operation).inc()
        error = state.outcome.exception() if state.outcome else None
        log.warning("%s failed (%s); retrying", operation, type(error).__name__)

    @staticmethod
    def _count(records: Sequence[ConsumerRecord], result: BatchResult, seconds: float) -> None:
        # One label per topic a subscriber reads; reporting reads two in one batch.
        for topic in {r.topic for r in records}:
            metrics.CONSUMER_BATCH_SECONDS.labels(topic).observe(seconds)
        for topic, outcome, n in result.tallies():
            metrics.EVENTS_CONSUMED.labels(topic, outcome).inc(n)


class EventConsumer(BatchConsumer):
    """Applies CloudEvents from the services' topics, each exactly once (inbox), for one service."""

    def __init__(self, runtime: Connections, schema: str, apply: Apply, apply_many: ApplyMany | None = None) -> None:
        super().__init__(runtime)
        self._schema, self._apply, self._apply_many = schema, apply, apply_many

    async def apply_batch(self, records: Sequence[ConsumerRecord]) -> BatchResult:
        decoded, dead = decode_all(records)
        result = await self._apply_together(decoded) if self._apply_many and decoded else None
        if result is None:
            result = await self._apply_decoded(decoded)
        result.dead[:0] = dead
        return result

    async def _apply_together(self, decoded: list[tuple[ConsumerRecord, CloudEvent[Any]]]) -> BatchResult | None:
        """The whole batch in one transaction; None if any event is refused, so that applying
        one event at a time (below) can find which, dead-letter it alone and apply the rest."""
        assert self._runtime.pool is not None and self._apply_many is not None
        try:
            async with self._runtime.pool.acquire() as conn, conn.transaction():
                return await claim_and_apply(conn, self._schema, decoded, self._apply_many)
        except Exception as exc:  # noqa: BLE001 - an outage propagates; anything else is an event's fault
            if is_transient(exc):
                raise
            log.warning("batch of %d refused as a whole (%s); applying one event at a time",
                        len(decoded), type(exc).__name__, extra={"count": len(decoded)})
            return None

    async def _apply_decoded(self, decoded: list[tuple[ConsumerRecord, CloudEvent[Any]]]) -> BatchResult:
        result = BatchResult()
        assert self._runtime.pool is not None
        async with self._runtime.pool.acquire() as conn, conn.transaction():
            for record, event in decoded:
                await self._apply_one(conn, record, event, result)
        return result

    async def _apply_one(self, conn: asyncpg.Connection, record: ConsumerRecord,
                         event: CloudEvent[Any], result: BatchResult) -> None:
        try:
            # A savepoint per event: a rejected event rolls back alone, not the batch.
            async with conn.transaction():
                if not await inbox.claim(conn, self._schema, event.id, record.topic):
                    result.duplicates[record.topic] += 1
                    return
                await outbox.stage(conn, self._schema, await self._apply(conn, event))
                result.applied[record.topic] += 1
        except Exception as exc:  # noqa: BLE001 - anything but an outage is this event's fault
            if is_transient(exc):
                raise
            # A bug or a rule violation must not stop the partition: dead-letter it and go on.
            log.error("event %s rejected: %s", event.id, type(exc).__name__,
                      extra={"event_id": event.id, "topic": record.topic})
            result.dead.append(DeadLetter(record, "rejected", describe_error(exc)))


async def claim_and_apply(conn: asyncpg.Connection, schema: str, decoded: list[tuple[ConsumerRecord, CloudEvent[Any]]],
                          apply_many: ApplyMany) -> BatchResult:
    """Inbox-claim a batch in one statement, apply the new events together, stage what they cause."""
    result = BatchResult()
    new = await inbox.claim_many(conn, schema, [(event.id, record.topic) for record, event in decoded])
    todo = []
    for record, event in decoded:
        if event.id in new:
            new.discard(event.id)  # a second copy within the batch is a duplicate too
            todo.append(event)
            result.applied[record.topic] += 1
        else:
            result.duplicates[record.topic] += 1
    if todo:
        await outbox.stage(conn, schema, await apply_many(conn, todo))
    return result


def decode_all(records: Sequence[ConsumerRecord]) -> tuple[list[tuple[ConsumerRecord, CloudEvent[Any]]], list[DeadLetter]]:
    decoded, dead = [], []
    for record in records:
        try:
            decoded.append((record, decode(record.value or b"")))
        except Exception as exc:  # noqa: BLE001 - whatever a record's bytes make decoding raise, the record is at fault
            # ValueError covers JSON and validation errors; anything else (RecursionError, say)
            # raised here would rewind the partition to this record again and again.
            dead.append(DeadLetter(record, "unparseable", describe_error(exc) if isinstance(exc, ValueError)
                                   else f"(event) could not be decoded: {type(exc).__name__}"))
    return decoded, dead


async def tolerant_parser(msg: Any, original: Callable[[Any], Awaitable[Any]]) -> Any:
    """FastStream's parser decodes every header as UTF-8 and drops the whole batch if one is not:
    hand it records whose undecodable header values are replaced, so each event still reaches
    the inbox or the dead-letter topic."""
    records = msg if isinstance(msg, tuple) else (msg,)
    # Copied only when a header needs it: almost every record is left as it came.
    cleaned = tuple(r if _clean(r.headers) else _cleaned(r) for r in records)
    return await original(cleaned if isinstance(msg, tuple) else cleaned[0])


@dataclass
class CleanedRecord(ConsumerRecord):
    """A record whose header values were made UTF-8 for FastStream, with its headers as sent:
    a dead letter carries those on, so that a replay gives the record back as it came."""

    sent_headers: tuple[tuple[str, bytes | None], ...] = ()


def _cleaned(record: ConsumerRecord) -> CleanedRecord:
    fields = {f.name: getattr(record, f.name) for f in dataclasses.fields(ConsumerRecord)}
    return CleanedRecord(**fields | {"headers": _clean_headers(record.headers)},
                         sent_headers=tuple(record.headers or ()))


def _clean(headers: Sequence[tuple[str, bytes | None]] | None) -> bool:
    """True if every header value is present and UTF-8."""
    try:
        for _, value in headers or ():
            if value is None:
                return False
            value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _clean_headers(headers: Sequence[tuple[str, bytes | None]] | None) -> tuple[tuple[str, bytes], ...]:
    return tuple((key, (value or b"").decode("utf-8", errors="replace").encode()) for key, value in headers or ())


async def undecoded(msg: Any) -> None:
    """The handler decodes the raw records itself (decode_all), so FastStream's own JSON decoding
    of every body, whose result nothing reads, is skipped."""
    return None


def subscribe(broker: KafkaBroker, consumer: BatchConsumer, *topics: str, group_id: str, max_records: int,
              description: str, copies: int = 1) -> None:
    """Register batch subscribers whose offsets commit only after `consumer` has stored the batch.

    `copies` consumers join the same group, so the group shares the partitions among them
    and their batches overlap in time; each partition still has one consumer, in order.
    """
    for copy in range(copies):
        # Documented once: the copies are the same channel and operation.
        @broker.subscriber(*topics, group_id=group_id, batch=True, max_records=max_records,
                           auto_offset_reset="earliest", ack_policy=AckPolicy.NACK_ON_ERROR, parser=tolerant_parser,
                           decoder=undecoded, description=description, include_in_schema=copy == 0)
        async def on_batch(msg: KafkaMessage) -> None:
            records = msg.raw_message if isinstance(msg.raw_message, tuple) else (msg.raw_message,)
            await consumer.handle(records)
