"""Retries, dead letters and their replay, on the running pipeline."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from types import SimpleNamespace

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import ConsumerRecord
from prometheus_client import REGISTRY

from schemas.events import encode, envelope
from schemas.topics import dead_letter
from tests.conftest import ROOT, source_key
from tests.factories import incident, report
from tests.integration.kafka_reader import poll, read_until
from vanda import dlq
from vanda.runtime.consumer import EventConsumer

pytestmark = pytest.mark.integration


async def post(pipeline, body: dict, **headers) -> httpx.Response:
    headers |= source_key(pipeline)
    async with httpx.AsyncClient(base_url=pipeline["INTAKE_URL"], timeout=30) as client:
        return await client.post("/v1/incidents", json=body, headers=headers)


async def test_idempotency_key_retry_gets_the_original_answer(pipeline):
    body = report(perpetrator={"kind": "unknown"})
    first = await post(pipeline, body, **{"Idempotency-Key": "retry-key-1"})
    again = await post(pipeline, body, **{"Idempotency-Key": "retry-key-1"})
    assert first.status_code == again.status_code == 202 and first.json() == again.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    reused = await post(pipeline, report(perpetrator={"kind": "unknown"}), **{"Idempotency-Key": "retry-key-1"})
    assert reused.status_code == 422 and reused.json()["errors"][0]["field"] == "Idempotency-Key"
    # A ref used before, changed, under a key never used: the ref is in conflict, not the key.
    changed = await post(pipeline, body | {"harm": "severe"}, **{"Idempotency-Key": f"new-{uuid.uuid4().hex}"})
    assert changed.status_code == 409 and changed.json()["errors"][0]["field"] == "source_ref", changed.text


def vanda_cli(pipeline, *args: str) -> str:
    env = dict(os.environ) | {"KAFKA_BOOTSTRAP_SERVERS": pipeline["KAFKA_BOOTSTRAP_SERVERS"], "COLUMNS": "250"}
    result = subprocess.run([sys.executable, "-m", "vanda", *args], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


async def test_dead_letters_are_listed_and_replayed_after_a_fix(pipeline):
    bootstrap = pipeline["KAFKA_BOOTSTRAP_SERVERS"]
    # A valid event that an earlier, since-fixed version dead-lettered: replay must apply it.
    fixed = envelope(incident(subject="sub_" + "d" * 40), source="/test", subject="sub_" + "d" * 40)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait("vanda.incidents.v1.dlq", encode(fixed), key=b"sub_" + b"d" * 40, headers=[
            ("vanda-dlq-reason", b"rejected"), ("vanda-dlq-error", b"harm: a bug since fixed"),
            ("vanda-dlq-source-topic", b"vanda.incidents.v1"), ("vanda-dlq-source-partition", b"0"),
            ("vanda-dlq-source-offset", b"0")])
    finally:
        await producer.stop()
    listing = vanda_cli(pipeline, "dlq", "list", "--topic", "vanda.incidents.v1.dlq")
    assert "a bug since fixed" in listing and "rejected" in listing
    assert "replayed" in vanda_cli(pipeline, "dlq", "replay", "vanda.incidents.v1.dlq")
    cards = await read_until(bootstrap, "vanda.sanctions.v1", lambda r: r.key == b"sub_" + b"d" * 40, 1)
    assert json.loads(cards[0].value)["data"]["incident_id"] == str(fixed.data.incident_id)


async def test_a_replay_sends_each_letter_once_and_one_failing_again_comes_back_once(pipeline):
    bootstrap = pipeline["KAFKA_BOOTSTRAP_SERVERS"]
    source = await _source_with_dead_letters(bootstrap, "replay")
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(source, 1, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for n in range(3):
            await producer.send_and_wait(dead_letter(source), b"not json %d" % n, headers=[
                ("vanda-dlq-reason", b"unparseable"), ("vanda-dlq-source-topic", source.encode())])
    finally:
        await producer.stop()
    assert (await dlq.replay(bootstrap, dead_letter(source))).sent == 3
    # Nothing new: nothing sent, where before every run sent every letter again.
    second = await dlq.replay(bootstrap, dead_letter(source))
    assert (second.sent, second.already) == (0, 3)
    listed = await dlq.list_letters(bootstrap, [dead_letter(source)])
    assert [d.replayed for d in listed] == [True, True, True]
    # One fails again: a consumer dead-letters it anew, and only it goes next time.
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(dead_letter(source), b"not json 1", headers=[("vanda-dlq-reason", b"unparseable")])
    finally:
        await producer.stop()
    assert (await dlq.replay(bootstrap, dead_letter(source))).sent == 1
    assert (await dlq.replay(bootstrap, dead_letter(source), again=True)).sent == 4
    assert len(await read_until(bootstrap, source, lambda r: True, 8, timeout=30)) == 8
    # Named refs go whether or not sent before; one that is no letter is said.
    named = await dlq.replay(bootstrap, dead_letter(source), only={"0:0", "0:99"})
    assert (named.sent, named.unknown) == (1, ["0:99"])


async def test_the_command_line_names_a_topic_the_broker_lacks_and_lists_intake_s_dead_letters(pipeline):
    env = dict(os.environ) | {"KAFKA_BOOTSTRAP_SERVERS": pipeline["KAFKA_BOOTSTRAP_SERVERS"], "COLUMNS": "250"}
    typo = subprocess.run([sys.executable, "-m", "vanda", "dlq", "replay", "vanda.incidnets.v1.dlq"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert typo.returncode == 2 and "no topic vanda.incidnets.v1.dlq" in typo.stdout, typo.stdout + typo.stderr
    # A report intake refused is listed without naming its topic, as the alert's hint says.
    marker = f"harm: refused in test {uuid.uuid4().hex[:8]}"
    producer = AIOKafkaProducer(bootstrap_servers=pipeline["KAFKA_BOOTSTRAP_SERVERS"])
    await producer.start()
    try:
        await producer.send_and_wait("vanda.intake.submissions.v1.dlq", b"{}", headers=[
            ("vanda-dlq-reason", b"invalid"), ("vanda-dlq-error", marker.encode())])
    finally:
        await producer.stop()
    assert marker in vanda_cli(pipeline, "dlq", "list")


async def test_waiting_dead_letters_are_counted_until_replayed_or_dismissed(pipeline):
    bootstrap = pipeline["KAFKA_BOOTSTRAP_SERVERS"]
    source, five_days = f"test-waiting-{uuid.uuid4().hex[:8]}", 5 * 86400
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(source, 2, 1), NewTopic(
            dead_letter(source), 2, 1, topic_configs={"retention.ms": str(five_days * 1000)})])
    finally:
        await admin.close()

    async def letters(*partitions: int) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        try:
            for partition in partitions:
                await producer.send_and_wait(dead_letter(source), b"not json", partition=partition,
                                             headers=[("vanda-dlq-reason", b"unparseable")])
        finally:
            await producer.stop()

    before = time.time()
    await letters(0, 0, 0, 1)
    waiting = await dlq.waiting(bootstrap, dead_letter(source))
    assert (waiting.letters, waiting.retention_s) == (4, five_days)
    assert before - 1 <= waiting.oldest_at <= time.time()
    assert five_days - 60 < waiting.deleted_in(time.time()) <= five_days
    assert (await dlq.replay(bootstrap, dead_letter(source))).sent == 4
    replayed = await dlq.waiting(bootstrap, dead_letter(source))
    assert (replayed.letters, replayed.oldest_at, replayed.deleted_in(time.time())) == (0, None, float("inf"))
    # Letters no replay can fix: dismissed, they stop counting and no replay sends them.
    await letters(1, 1)
    assert (await dlq.waiting(bootstrap, dead_letter(source))).letters == 2
    assert "dismissed 2 waiting" in vanda_cli(pipeline, "dlq", "dismiss", dead_letter(source))
    assert (await dlq.waiting(bootstrap, dead_letter(source))).letters == 0
    assert (await dlq.replay(bootstrap, dead_letter(source))).sent == 0
    assert all(d.replayed for d in await dlq.list_letters(bootstrap, [dead_letter(source)]))
    assert (await dlq.replay(bootstrap, dead_letter(source), only={"1:2"})).sent == 1
    # A mark past the end is of a topic made again since: its letters there are waiting.
    await dlq._mark_replayed(bootstrap, dead_letter(source), {0: 999})
    assert (await dlq.waiting(bootstrap, dead_letter(source))).letters == 3


async def test_a_replay_mark_older_than_the_letters_below_it_is_of_an_earlier_topic(pipeline):
    # Deleted and made again, a topic's new letters reach past the old mark: the letter just
    # below the mark was written after it, so the mark did not pass it.
    bootstrap = pipeline["KAFKA_BOOTSTRAP_SERVERS"]
    source = await _source_with_dead_letters(bootstrap, "remade")
    await dlq._mark_replayed(bootstrap, dead_letter(source), {0: 2})
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        later = int((time.time() + 3600) * 1000)  # an hour after the mark, as if written since
        for _ in range(3):
            await producer.send_and_wait(dead_letter(source), b"not json", partition=0, timestamp_ms=later)
    finally:
        await producer.stop()
    assert (await dlq.waiting(bootstrap, dead_letter(source))).letters == 3
    assert not any(d.passed for d in await dlq.list_letters(bootstrap, [dead_letter(source)]))
    # A mark made after the letters below it stands: only the one past it waits.
    kept = await _source_with_dead_letters(bootstrap, "kept")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for _ in range(3):
            await producer.send_and_wait(dead_letter(kept), b"not json", partition=0)
    finally:
        await producer.stop()
    await dlq._mark_replayed(bootstrap, dead_letter(kept), {0: 2})
    assert (await dlq.waiting(bootstrap, dead_letter(kept))).letters == 1


async def test_a_replay_makes_its_marks_topic_like_the_dead_letters_before_sending_any(pipeline, monkeypatch):
    bootstrap = pipeline["KAFKA_BOOTSTRAP_SERVERS"]
    source = await _source_with_dead_letters(bootstrap, "marks")
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await admin.start()
    await producer.start()
    try:
        await admin.create_topics([NewTopic(source, 1, 1)])
        for _ in range(2):
            await producer.send_and_wait(dead_letter(source), b"not json", headers=[("vanda-dlq-reason", b"x")])
        # Unable to make the marks topic (no right to, say): nothing is sent, so a retry sends each once.
        monkeypatch.setattr(dlq, "MARKS_TOPIC", f"test-marks-{uuid.uuid4().hex[:8]}")
        monkeypatch.setattr(dlq, "_copies", _more_copies_than_brokers)
        with pytest.raises(Exception):  # noqa: B017 - whatever Kafka refuses it with
            await dlq.replay(bootstrap, dead_letter(source))
        assert await _ends(bootstrap, source) == 0
        # The shell's replication factor is not the deployment's: the marks topic copies the
        # dead letters' (here one broker: 1), where this shell's 3 would be refused.
        monkeypatch.undo()
        monkeypatch.setattr(dlq, "MARKS_TOPIC", marks := f"test-marks-{uuid.uuid4().hex[:8]}")
        monkeypatch.setenv("TOPIC_REPLICATION_FACTOR", "3")
        assert (await dlq.replay(bootstrap, dead_letter(source))).sent == 2
        [described] = await admin.describe_topics([marks])
        assert [len(p["replicas"]) for p in described["partitions"]] == [1]
        assert await _ends(bootstrap, source) == 2
    finally:
        await producer.stop()
        await admin.close()


async def _more_copies_than_brokers(bootstrap: str, topic: str) -> int:
    return 3


async def _ends(bootstrap: str, topic: str) -> int:
    """How many records the topic's partitions hold in all."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or {0}]
        return sum((await consumer.end_offsets(parts)).values())
    finally:
        await consumer.stop()


async def _source_with_dead_letters(bootstrap: str, kind: str) -> str:
    """A source topic name of the test's own, with its dead-letter topic made (the source
    itself is never written: the consumer is handed its records directly)."""
    source = f"test-{kind}-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(dead_letter(source), 1, 1)])
    finally:
        await admin.close()
    return source


async def test_a_database_that_refuses_writes_holds_the_batch_rather_than_dead_lettering_it(pipeline):
    """A failover onto a standby (or a full disk) is an outage: the consumer holds the batch,
    retrying, and reports itself unhealthy; once the database takes writes again that same
    batch is applied, and not one event of the outage went to the dead letters."""
    bootstrap = pipeline["KAFKA_BOOTSTRAP_SERVERS"]
    source = await _source_with_dead_letters(bootstrap, "failover")
    event = envelope(incident(), source="/test", subject="sub_" + "d" * 40)
    records = [ConsumerRecord(source, 0, 1, 0, 0, b"k", encode(event), None, 1, len(encode(event)), [])]
    read_only = await asyncpg.create_pool(pipeline["DATABASE_URL"], min_size=1, max_size=1,
                                          server_settings={"default_transaction_read_only": "on"})
    writable = await asyncpg.create_pool(pipeline["DATABASE_URL"], min_size=1, max_size=1)
    dead_letters = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await dead_letters.start()
    applied: list[str] = []

    async def apply(conn, e):
        applied.append(e.id)
        return []

    def retries() -> float:
        return REGISTRY.get_sample_value("vanda_transient_retries_total", {"operation": "apply"}) or 0.0

    before = retries()
    runtime = SimpleNamespace(pool=read_only, producer=None, dead_letters=dead_letters, relay=None)
    consumer = EventConsumer(runtime, "sanctions", apply)
    held = asyncio.create_task(consumer.handle(records))
    try:
        await poll(lambda: asyncio.sleep(0.1, result=retries()), lambda n: n >= before + 2, timeout=30)
        assert not consumer.healthy and not held.done() and applied == []
        runtime.pool = writable  # the failover over: the next retry of the same batch writes
        result = await asyncio.wait_for(held, timeout=60)
    finally:
        held.cancel()
        await dead_letters.stop()
        await read_only.close()
        await writable.close()
    assert applied == [event.id] and result.dead == [] and consumer.healthy
    assert await read_until(bootstrap, dead_letter(source), lambda r: True, 1, timeout=3) == []


async def test_a_dead_letter_too_large_to_send_on_says_where_to_read_it_and_the_batch_goes_on(pipeline):
    """A 2 MiB record the broker took compressed is over the dead-letter producer's 1 MiB limit:
    it goes to the dead letters without its value, naming its source offset, and the next
    record of the batch is applied. Raising instead stopped the partition for good."""
    bootstrap = pipeline["KAFKA_BOOTSTRAP_SERVERS"]
    source = await _source_with_dead_letters(bootstrap, "oversized")
    event = envelope(incident(), source="/test", subject="sub_" + "e" * 40)
    huge = b"x" * (2 * 1024 * 1024)
    records = [ConsumerRecord(source, 0, 41, 0, 0, b"k", huge, None, 0, len(huge), []),
               ConsumerRecord(source, 0, 42, 0, 0, b"k", encode(event), None, 0, 10, [])]
    applied: list[str] = []

    async def apply(conn, e):
        applied.append(e.id)
        return []

    dead_letters = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    pool = await asyncpg.create_pool(pipeline["DATABASE_URL"], min_size=1, max_size=1)
    await dead_letters.start()
    try:
        consumer = EventConsumer(SimpleNamespace(pool=pool, producer=None, dead_letters=dead_letters, relay=None),
                                 "sanctions", apply)
        result = await asyncio.wait_for(consumer.handle(records), timeout=60)
    finally:
        await dead_letters.stop()
        await pool.close()
    assert applied == [event.id] and [d.reason for d in result.dead] == ["unparseable"]
    [letter] = await read_until(bootstrap, dead_letter(source), lambda r: True, 1, timeout=30)
    headers = dict(letter.headers)
    assert letter.value is None and headers["vanda-dlq-source-offset"] == b"41"
    assert headers["vanda-dlq-value-omitted"].startswith(str(len(huge)).encode())
    # A replay has nothing to publish for it: it is left, with where to read the record.
    done = await dlq.replay(bootstrap, dead_letter(source))
    assert done.sent == 0 and [(d.offset, d.source) for d in done.left] == [(letter.offset, f"{source}[0]@41")]
    # ...every time, and it is never listed as replayed: it was never sent.
    again = await dlq.replay(bootstrap, dead_letter(source))
    assert (again.sent, again.already, [d.offset for d in again.left]) == (0, 0, [letter.offset])
    assert [(d.replayed, d.passed) for d in await dlq.list_letters(bootstrap, [dead_letter(source)])] == [(False, True)]
    # Passed by a replay that said so, it no longer waits: the list and the gauge agree.
    assert (await dlq.waiting(bootstrap, dead_letter(source))).letters == 0
