"""Lifecycle shared by the services: pool, topics, producer, relay, broker, readiness."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
from aiokafka import AIOKafkaProducer
from faststream.kafka import KafkaBroker

from schemas.envelope import CloudEvent
from vanda import dlq
from vanda.runtime import asyncapi, db, heap, logs, metrics
from vanda.runtime.consumer import Apply, ApplyMany, BatchConsumer, EventConsumer
from vanda.runtime.outbox import Outgoing, Relay, idempotent_producer
from vanda.runtime.settings import CommonSettings
from vanda.runtime.topics import Retention, ensure_topics
from vanda.runtime.transport import TransportSettings, faststream_security, kafka_options, postgres_ssl

log = logging.getLogger(__name__)
DEAD_LETTER_GAUGES = (metrics.DEAD_LETTERS_WAITING, metrics.DEAD_LETTERS_OLDEST_AGE, metrics.DEAD_LETTERS_DELETED_IN)
BatchConsumerT = TypeVar("BatchConsumerT", bound=BatchConsumer)


def correlated(apply: Apply) -> Apply:
    """Lines logged while an event is applied carry the event's id as their correlation id."""

    async def applying(conn: asyncpg.Connection, event: CloudEvent[Any]) -> list[Outgoing]:
        with logs.correlated(event.id):
            return await apply(conn, event)

    return applying


class Runtime:
    """Owns one service's connections; started and stopped by the app's lifespan."""

    def __init__(self, name: str, settings: CommonSettings, topics: list[str],
                 dead_letters: list[str] | None = None) -> None:
        self.name, self.settings, self.topics = name, settings, topics
        # The dead-letter topics this service writes, whose waiting letters it counts.
        self.dead_letter_topics = [t for t in topics if t.endswith(".dlq")] if dead_letters is None else dead_letters
        # Per-message "Received"/"Processed" lines go to DEBUG: at INFO they drown everything else.
        self.transport = TransportSettings()
        self.broker = KafkaBroker(settings.kafka_bootstrap_servers, client_id=f"vanda-{name}", logger=log,
                                  security=faststream_security(self.transport),
                                  log_level=logging.DEBUG, middlewares=[metrics.broker_middleware(name)])
        self.producer: AIOKafkaProducer | None = None  # aiokafka needs a running loop
        self.dead_letters: AIOKafkaProducer | None = None
        self.pool: asyncpg.Pool | None = None
        self.relay: Relay | None = None
        self._relay_task: asyncio.Task[None] | None = None
        self.consumers: list[BatchConsumer] = []
        self.refreshers: list[Callable[[], Awaitable[None]]] = []
        self._lag_labels: set[tuple[str, str, str]] = set()  # the partitions whose lag this replica reports
        self._background: list[asyncio.Task[None]] = []

    def background(self, work: Awaitable[None]) -> None:
        """Run a service's own timer (scheduler, purge, publisher) until the runtime stops."""
        self._background.append(asyncio.ensure_future(work))

    def every(self, round_: Callable[[], Awaitable[object]], every_s: float, failed: str,
              at_once: bool = True) -> None:
        """Run one round now (or after `every_s`, if not `at_once`) and every `every_s` seconds until
        the runtime stops; a failed round is logged as `failed` and tried again on the next."""
        self.background(every(round_, every_s, failed, at_once))

    def document(self, publishes: list[str]) -> None:
        """Name the topics this service publishes (through its outbox or dead letters) in its AsyncAPI document."""
        asyncapi.document(self.broker, publishes)

    def consumer(self, schema: str, apply: Apply, apply_many: ApplyMany | None = None) -> EventConsumer:
        """A consumer whose health counts towards this service's readiness.

        Lines logged while one event is applied carry its id; the batch path logs per batch."""
        return self.add_consumer(EventConsumer(self, schema, correlated(apply), apply_many))

    def add_consumer(self, consumer: BatchConsumerT) -> BatchConsumerT:
        """Count a consumer's health towards this service's readiness."""
        self.consumers.append(consumer)
        return consumer

    async def start(self, before_consuming: Callable[[], Awaitable[None] | None] = lambda: None) -> None:
        """Connect everything; the broker's subscribers start last, once state is reachable.

        `before_consuming` runs once the pool and producers exist, before the first batch
        can arrive: the place to build what the subscribers' handlers use, and to check what
        must hold before any is handled (an exception there fails the start).
        """
        s = self.settings
        self.pool = await db.create_pool(s.database_url, max_size=s.db_pool_max, wait_s=s.startup_wait_s,
                                         ssl=postgres_ssl(self.transport))
        kafka = kafka_options(self.transport)
        # Once the topics exist the broker is up, so the producers and consumers below start at once.
        await ensure_topics(s.kafka_bootstrap_servers, self.topics, partitions=s.topic_partitions,
                            replication=s.topic_replication_factor, wait_s=s.startup_wait_s,
                            retention=Retention(s.submissions_retention_days, s.dlq_retention_days), **kafka)
        self.producer = idempotent_producer(s.kafka_bootstrap_servers, f"vanda-{self.name}", **kafka)
        await self.producer.start()
        # Dead letters get their own producer: a lost request there must not corrupt the
        # idempotent sequence of the outbox relay's producer (a re-sent dead letter is harmless).
        self.dead_letters = AIOKafkaProducer(bootstrap_servers=s.kafka_bootstrap_servers, acks="all",
                                             client_id=f"vanda-{self.name}-dlq", request_timeout_ms=10_000,
                                             **kafka)
        await self.dead_letters.start()
        self.relay = Relay(self.pool, self.producer, self.name, batch=s.relay_batch, interval_s=s.relay_interval_s)
        self._relay_task = asyncio.create_task(self.relay.run(), name=f"{self.name}-relay")
        if inspect.isawaitable(prepared := before_consuming()):
            await prepared
        heap.tune()
        self.background(heap.releasing())
        self.every(self.count_dead_letters, s.dlq_watch_interval_s, "counting the waiting dead letters failed")
        await self.broker.start()

    async def stop(self) -> None:
        """Stop timers and consuming first, then drain the relay, then close connections."""
        for task in self._background:
            task.cancel()
        for task in self._background:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            await self.broker.stop()
        if self.relay and self._relay_task:
            self.relay.stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._relay_task, timeout=10)
        for producer in (self.producer, self.dead_letters):
            if producer:
                with contextlib.suppress(Exception):
                    await producer.stop()
        if self.pool:
            await self.pool.close()

    async def checks(self) -> dict[str, bool]:
        """Readiness: PostgreSQL answers a query and Kafka answers a metadata request."""
        postgres = self.pool is not None and await db.ping(self.pool)
        kafka = await self._kafka_ok()
        relay = self.relay is not None and self.relay.healthy
        consuming = all(c.healthy for c in self.consumers)
        return {"postgres": postgres, "kafka": kafka, "outbox_relay": relay, "consumers": consuming}

    async def serving(self) -> bool:
        """Whether the HTTP API can answer: PostgreSQL does (/readyz/http)."""
        return self.pool is not None and await db.ping(self.pool)

    async def _kafka_ok(self) -> bool:
        if self.producer is None:
            return False
        try:
            return bool(await asyncio.wait_for(self.producer.client.fetch_all_metadata(), timeout=3))
        except Exception:  # noqa: BLE001 - any failure means not ready
            return False

    async def refresh_gauges(self) -> None:
        """Update gauges that are cheaper to read at scrape time than to track: all at once, so
        that one held up (a busy pool, a slow count) does not use up the scrape's time for the rest."""
        await asyncio.gather(*(_quietly(step) for step in (
            self._outbox_gauges(), asyncio.wait_for(self._consumer_lag(), timeout=2),
            *(refresh() for refresh in self.refreshers))))

    async def _outbox_gauges(self) -> None:
        if self.relay is not None:
            pending, age = await self.relay.pending()
            metrics.OUTBOX_PENDING.labels(self.name).set(pending)
            metrics.OUTBOX_OLDEST_AGE.labels(self.name).set(age)

    async def count_dead_letters(self) -> None:
        """Gauge the letters waiting on this service's dead-letter topics. The alert comes from
        these, not from the dead-lettering: a letter left unreplayed is deleted with the topic's
        retention, and with it an incident or a decision nobody applied."""
        failed = []
        for topic in self.dead_letter_topics:
            try:
                waiting = await self._waiting(topic)
            except Exception:  # noqa: BLE001 - one topic's failure must not leave the others uncounted
                log.warning("counting the waiting dead letters on %s failed; its gauges are withdrawn until a"
                            " round succeeds", topic, exc_info=True)
                failed.append(topic)
                for gauge in DEAD_LETTER_GAUGES:
                    with contextlib.suppress(KeyError):
                        gauge.remove(topic)  # a last value kept would say nothing waits, silencing the alerts
                continue
            now = time.time()
            metrics.DEAD_LETTERS_WAITING.labels(topic).set(waiting.letters)
            metrics.DEAD_LETTERS_OLDEST_AGE.labels(topic).set(
                max(0.0, now - waiting.oldest_at) if waiting.oldest_at is not None else 0)
            metrics.DEAD_LETTERS_DELETED_IN.labels(topic).set(waiting.deleted_in(now))
        metrics.DEAD_LETTER_COUNT_FAILURES.set(len(failed))

    async def _waiting(self, topic: str, tries: int = 10) -> dlq.Waiting:
        # The service made its topics at start: one the cluster's metadata does not list yet is
        # still on its way there (the first round runs moments after), not missing.
        for _ in range(tries - 1):
            with contextlib.suppress(dlq.UnknownTopic):
                return await dlq.waiting(self.settings.kafka_bootstrap_servers, topic)
            await asyncio.sleep(1)
        return await dlq.waiting(self.settings.kafka_bootstrap_servers, topic)

    async def _consumer_lag(self) -> None:
        # The partition's end minus position for each partition this replica holds right now. A
        # partition it no longer holds (moved to another replica by a rebalance) is dropped: its
        # last lag would otherwise be exported, unchanging, until restart, and hold the lag alert up.
        held: set[tuple[str, str, str]] = set()
        for subscriber in self.broker.subscribers:
            consumer = getattr(subscriber, "consumer", None)
            if consumer is None:
                continue
            group = getattr(subscriber, "group_id", None) or "none"
            assigned = list(consumer.assignment())
            ends = await _ends(consumer, assigned)
            for tp in assigned:
                labels = (group, tp.topic, str(tp.partition))
                held.add(labels)
                end = ends.get(tp)
                if end is not None:
                    # Tracked as soon as set: a round cut short (a timeout, a rebalance under way)
                    # must not leave a label that no later round knows to drop.
                    self._lag_labels.add(labels)
                    metrics.CONSUMER_LAG.labels(*labels).set(max(0, end - await consumer.position(tp)))
        for labels in self._lag_labels - held:
            with contextlib.suppress(KeyError):
                metrics.CONSUMER_LAG.remove(*labels)
        self._lag_labels &= held


async def _quietly(step: Awaitable[None]) -> None:
    with contextlib.suppress(Exception):  # a gauge not refreshed keeps its value; the others still count
        await step


async def _ends(consumer: Any, assigned: list[Any]) -> dict[Any, int | None]:
    """Each partition's end as the broker has it now. The highwater a consumer keeps is its last
    fetch's: while a batch is stuck retrying it fetches nothing, the highwater stops, and the lag
    read from it would stay flat however far the partition moved on, silencing the lag alerts.
    Without an answer from the broker, the highwater it has."""
    try:
        return dict(await consumer.end_offsets(assigned)) if assigned else {}
    except Exception:  # noqa: BLE001 - a broker away: the last fetch's figures, better than none
        return {tp: consumer.highwater(tp) for tp in assigned}


async def every(round_: Callable[[], Awaitable[object]], every_s: float, failed: str,
                at_once: bool = True) -> None:
    """The timer behind `Runtime.every`, until cancelled."""
    if not at_once:
        await asyncio.sleep(every_s)
    while True:
        try:
            await round_()
        except Exception:  # noqa: BLE001 - a failed round is retried on the next tick
            log.warning("%s; the next round tries again", failed, exc_info=True)
        await asyncio.sleep(every_s)
