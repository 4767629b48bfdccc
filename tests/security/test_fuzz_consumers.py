"""Hostile messages on the topics: every one dead-lettered or legitimately applied, nothing stops.

Generated messages (tests/security/kafka_fuzz.py) go onto `vanda.incidents.v1` (read by
sanctions and reporting) and `vanda.sanctions.v1` (read by reporting), all under one key
per run, so they share a partition and come before a valid sentinel event sent last
under the same key. Then:

- the sentinel is processed: sanctions issues a card for its subject and both consumers
  record it in their inbox, so no message before it stopped the partition;
- each message is accounted for by each consumer: in its inbox (applied) or in
  `<topic>.dlq` (rejected), and a message the shared codec cannot parse is dead-lettered
  by every consumer of the topic;
- every service still answers `/readyz` with 200, and its process is the one `vanda up` started.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from schemas.events import encode, envelope
from schemas.topics import INCIDENTS, SANCTIONS, dead_letter
from tests.integration.kafka_reader import read_until
from tests.security import kafka_fuzz
from tests.security.helpers import alive, readiness, service_pids
from tests.security.kafka_fuzz import Message

pytestmark = pytest.mark.integration

CONSUMERS = {INCIDENTS: ("sanctions", "reporting"), SANCTIONS: ("reporting",)}
COUNTS = {INCIDENTS: 160, SANCTIONS: 60}
DEADLINE_S = 90  # generous: two cores, other suites running alongside


@dataclass(frozen=True)
class Sent:
    message: Message
    partition: int
    offset: int
    verdict: str

    def event_id(self) -> str | None:
        try:
            document = json.loads(self.message.value or b"")
        except (ValueError, RecursionError):
            return None
        return document.get("id") if isinstance(document, dict) and isinstance(document.get("id"), str) else None


async def produce(bootstrap: str, topic: str, key: bytes, messages: list[Message], last: bytes) -> list[Sent]:
    """Send the messages then the sentinel `last`, in order, on the key's partition."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        sent = []
        for message in messages:
            meta = await producer.send_and_wait(topic, message.value, key=key, headers=list(message.headers))
            sent.append(Sent(message, meta.partition, meta.offset, message.verdict()))
        await producer.send_and_wait(topic, last, key=key,
                                     headers=[("content-type", b"application/cloudevents+json")])
        return sent
    finally:
        await producer.stop()


async def in_inboxes(dsn: str, event_ids: list[str]) -> Counter[str]:
    """How many consumers' inboxes hold each event id."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT event_id FROM sanctions.inbox WHERE event_id = ANY($1::text[])"
                                " UNION ALL SELECT event_id FROM reporting.inbox WHERE event_id = ANY($1::text[])",
                                event_ids)
    finally:
        await conn.close()
    return Counter(r["event_id"] for r in rows)


async def inbox_of(dsn: str, service: str, event_id: str) -> bool:
    conn = await asyncpg.connect(dsn)
    try:
        return bool(await conn.fetchval(f"SELECT count(*) FROM {service}.inbox WHERE event_id = $1", event_id))
    finally:
        await conn.close()


async def dead_letters(bootstrap: str, topic: str, key: bytes) -> Counter[tuple[int, int]]:
    """Copies in `<topic>.dlq` of each (partition, offset) of the source topic sent under `key`."""
    records = await read_until(bootstrap, dead_letter(topic), lambda r: r.key == key, 10**6, timeout=8)
    copies: Counter[tuple[int, int]] = Counter()
    for record in records:
        headers = dict(record.headers or ())
        copies[(int(headers["vanda-dlq-source-partition"]), int(headers["vanda-dlq-source-offset"]))] += 1
    return copies


def unaccounted(topic: str, sent: list[Sent], inboxes: Counter[str], dlq: Counter[tuple[int, int]]) -> list[str]:
    """Messages some consumer neither applied nor dead-lettered (or did not dead-letter when it had to)."""
    need = len(CONSUMERS[topic])
    problems = []
    for index, s in enumerate(sent):
        copies = dlq[(s.partition, s.offset)]
        event_id = s.event_id()
        applied = inboxes[event_id] if event_id and s.verdict == "decodes" else 0
        if s.verdict == "unparseable" and copies < need:
            problems.append(f"#{index} {s.message.kind}: unparseable, dead-lettered {copies}/{need} times")
        elif s.verdict == "decodes" and applied + copies < need:
            problems.append(f"#{index} {s.message.kind}: applied by {applied}, dead-lettered {copies}, of {need}")
    return problems


async def settle(pipeline, topic: str, key: bytes, sent: list[Sent]) -> list[str]:
    """Wait until every message is accounted for, or the deadline passes; what is still missing."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        ids = [i for s in sent if (i := s.event_id())]
        problems = unaccounted(topic, sent, await in_inboxes(pipeline["DATABASE_URL"], ids),
                               await dead_letters(pipeline["KAFKA_BOOTSTRAP_SERVERS"], topic, key))
        if not problems or time.monotonic() > deadline:
            return problems
        await asyncio.sleep(1)


async def wait_for(check, timeout: float = DEADLINE_S) -> bool:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.5)
    return True


async def assert_services_healthy(pipeline) -> None:
    ready = await readiness(pipeline)
    assert set(ready.values()) == {200}, f"not ready after the fuzz: {ready}"
    pids = service_pids(pipeline)
    assert set(pids) == {"intake", "sanctions", "reporting"} and all(alive(p) for p in pids.values()), pids


def must_decode_or_fail_cleanly(messages: list[Message]) -> None:
    # The consumer dead-letters what its codec rejects with ValueError; anything else
    # escapes the batch and stops the partition. Caught here, before it can poison the topic.
    escapes = [f"{m.kind}: {m.verdict()} on {m.value!r:.200}" for m in messages if m.verdict().startswith("raises")]
    assert not escapes, "the event codec escapes with an unexpected exception:\n" + "\n".join(escapes)


async def test_incident_consumers_dead_letter_hostile_messages_and_carry_on(pipeline):
    run = uuid.uuid4().hex[:12]
    key, subject = f"fuzz-key-{run}".encode(), f"sub_fuzz{run}"
    messages = kafka_fuzz.with_fresh_ids(kafka_fuzz.generate(kafka_fuzz.incident_templates(f"sub_fuzzother{run}"),
                                                             COUNTS[INCIDENTS]), run)
    must_decode_or_fail_cleanly(messages)
    sentinel = envelope(kafka_fuzz.reported(subject), source="/tests/security/fuzz", subject=subject)
    sent = await produce(pipeline["KAFKA_BOOTSTRAP_SERVERS"], INCIDENTS, key, messages, encode(sentinel))
    assert len({s.partition for s in sent}) == 1 and len(sent) >= 100

    cards = await read_until(pipeline["KAFKA_BOOTSTRAP_SERVERS"], SANCTIONS, lambda r: r.key == subject.encode(), 1,
                             timeout=DEADLINE_S)
    assert [json.loads(c.value)["type"] for c in cards] == ["uk.nhs.vanda.sanction.yellow_card_issued.v1"], \
        "the sentinel incident after the fuzz got no card: the partition stopped"
    assert await wait_for(lambda: inbox_of(pipeline["DATABASE_URL"], "reporting", sentinel.id)), \
        "reporting never applied the sentinel incident after the fuzz: the partition stopped"
    problems = await settle(pipeline, INCIDENTS, key, sent)
    assert not problems, f"{len(problems)} of {len(sent)} messages unaccounted for:\n" + "\n".join(problems)
    await assert_services_healthy(pipeline)


async def test_reporting_dead_letters_hostile_decisions_and_carries_on(pipeline):
    run = uuid.uuid4().hex[:12]
    key, subject = f"fuzz-key-{run}".encode(), f"sub_fuzz{run}"
    messages = kafka_fuzz.with_fresh_ids(kafka_fuzz.generate(kafka_fuzz.sanction_templates(subject),
                                                             COUNTS[SANCTIONS]), run)
    must_decode_or_fail_cleanly(messages)
    sentinel = envelope(kafka_fuzz.yellow_card(subject), source="/tests/security/fuzz", subject=subject)
    sent = await produce(pipeline["KAFKA_BOOTSTRAP_SERVERS"], SANCTIONS, key, messages, encode(sentinel))
    assert len({s.partition for s in sent}) == 1 and len(sent) >= 40

    assert await wait_for(lambda: inbox_of(pipeline["DATABASE_URL"], "reporting", sentinel.id)), \
        "reporting never applied the sentinel decision after the fuzz: the partition stopped"
    problems = await settle(pipeline, SANCTIONS, key, sent)
    assert not problems, f"{len(problems)} of {len(sent)} messages unaccounted for:\n" + "\n".join(problems)
    await assert_services_healthy(pipeline)


async def test_a_header_that_is_not_utf8_is_dead_lettered(pipeline):
    """A header value that is not UTF-8 must not lose the batch it arrives in (FastStream's parser once did)."""
    run = uuid.uuid4().hex[:12]
    key, subject = f"fuzz-key-{run}".encode(), f"sub_fuzz{run}"
    odd = Message("header not UTF-8", encode(envelope(kafka_fuzz.reported(f"sub_fuzzother{run}"),
                                                      source="/tests/security/fuzz", subject=None)),
                  (("content-type", b"\xb1\xff not utf-8"),))
    sentinel = envelope(kafka_fuzz.reported(subject), source="/tests/security/fuzz", subject=subject)
    sent = await produce(pipeline["KAFKA_BOOTSTRAP_SERVERS"], INCIDENTS, key, [odd], encode(sentinel))
    odd_id = sent[0].event_id()

    async def outcome() -> tuple[int, int, int]:
        applied = await in_inboxes(pipeline["DATABASE_URL"], [sentinel.id, odd_id])
        dlq = await dead_letters(pipeline["KAFKA_BOOTSTRAP_SERVERS"], INCIDENTS, key)
        return applied[sentinel.id], applied[odd_id], dlq[(sent[0].partition, sent[0].offset)]

    async def settled() -> bool:
        sentinel_applied, odd_applied, odd_dead = await outcome()
        return sentinel_applied == 2 and odd_applied + odd_dead >= 2

    # Processing takes seconds; the wait is long only so that a loaded machine does not fail it.
    await wait_for(settled, timeout=30)
    sentinel_applied, odd_applied, odd_dead = await outcome()
    assert odd_applied + odd_dead >= 2, (f"the message with a non-UTF-8 header was silently dropped: applied by"
                                         f" {odd_applied}, dead-lettered {odd_dead} times, of 2 consumers")
    assert sentinel_applied == 2, f"only {sentinel_applied} of 2 consumers applied the sentinel after it"
    await assert_services_healthy(pipeline)
