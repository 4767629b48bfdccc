"""What the consumers retry (an outage: the partition waits) and what they dead-letter (the
event's fault): a full disk or a failover must never send the stream to the dead letters."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from aiokafka.errors import KafkaConnectionError, UnknownTopicOrPartitionError

from vanda.runtime.db import is_transient

E = asyncpg.exceptions


@pytest.mark.parametrize("error", [
    E.DiskFullError, E.OutOfMemoryError, E.TooManyConnectionsError, E.ConfigurationLimitExceededError,
    E.ReadOnlySQLTransactionError, E.QueryCanceledError, E.AdminShutdownError, E.CrashShutdownError,
    E.CannotConnectNowError, E.ConnectionFailureError, E.PostgresIOError, E.SerializationError,
    E.DeadlockDetectedError, E.LockNotAvailableError, E.ConnectionDoesNotExistError,
    E.InsufficientPrivilegeError, E.UndefinedTableError,
])
def test_an_outage_of_the_database_is_retried(error):
    assert is_transient(error("away"))


@pytest.mark.parametrize("error", [
    E.UniqueViolationError, E.CheckViolationError, E.NotNullViolationError, E.InvalidTextRepresentationError,
    E.UndefinedColumnError, E.InternalServerError, E.DataError, E.CharacterNotInRepertoireError,
    asyncpg.exceptions._base.DataError, asyncpg.exceptions._base.InternalClientError,
])
def test_a_refusal_of_the_data_is_not_retried(error):
    assert not is_transient(error("bad"))


def test_kafka_being_away_is_retried_but_a_missing_topic_is_not():
    assert is_transient(KafkaConnectionError()) and not is_transient(UnknownTopicOrPartitionError())
    assert not is_transient(ValueError("a bug")) and is_transient(ConnectionRefusedError())


async def test_one_copy_stuck_retrying_keeps_the_consumer_unhealthy_whatever_the_other_copy_does():
    # Copies of one subscription share their consumer: the other copy's successes must not
    # report a stalled partition ready.
    import asyncio
    from types import SimpleNamespace

    from vanda.runtime.consumer import BatchConsumer

    consumer, outage = BatchConsumer(SimpleNamespace(relay=None)), asyncio.Event()
    tries = 0

    async def stuck():
        nonlocal tries
        tries += 1
        if not outage.is_set():
            raise ConnectionError("database away")
        return "applied"

    async def fine():
        return "applied"

    held = asyncio.create_task(consumer._retrying("apply", stuck))
    while tries < 2:
        await asyncio.sleep(0.05)
    for _ in range(3):
        assert await consumer._retrying("apply", fine) == "applied"
        assert not consumer.healthy
    outage.set()
    assert await asyncio.wait_for(held, timeout=10) == "applied" and consumer.healthy


async def test_a_batch_that_outlasts_the_statement_timeout_is_applied_in_halves_not_retried_for_ever():
    import asyncio
    from collections import Counter
    from types import SimpleNamespace

    from vanda.runtime.consumer import BatchConsumer, BatchResult

    sizes: list[int] = []

    class Slow(BatchConsumer):
        async def apply_batch(self, records):
            sizes.append(len(records))
            if len(records) > 2:  # more than two outlast the statement timeout
                raise TimeoutError
            return BatchResult(applied=Counter({"t": len(records)}))

    records = [SimpleNamespace(topic="t", partition=0, offset=n) for n in range(7)]
    consumer = Slow(SimpleNamespace(relay=None, pool=None))
    answers = True

    async def database_answers():
        return answers

    consumer._database_answers = database_answers
    result = await consumer.handle(records)
    assert result.applied == Counter({"t": 7}) and result.dead == []
    assert sizes == [7, 3, 1, 2, 4, 2, 2]
    # A database that does not answer at all is an outage: the batch is retried whole, not cut.
    answers, sizes[:] = False, []
    held = asyncio.create_task(consumer.handle(records))
    while len(sizes) < 3:
        await asyncio.sleep(0.05)
    held.cancel()
    assert set(sizes) == {7} and not consumer.healthy


def test_a_record_whose_decoding_raises_anything_is_dead_lettered_not_raised(monkeypatch):
    """Whatever a record's bytes make decoding raise, the record goes to the dead letters:
    raised, it would rewind the partition to the same record again and again."""
    from aiokafka import ConsumerRecord

    from vanda.runtime import consumer

    def record(offset: int, value: bytes) -> ConsumerRecord:
        return ConsumerRecord("vanda.incidents.v1", 0, offset, 0, 0, b"k", value, None, 1, len(value), [])

    deep_type = b'{"type": ' + b"[" * 1000 + b"]" * 1000 + b"}"
    decoded, dead = consumer.decode_all([record(1, deep_type), record(2, b"not json")])
    assert decoded == [] and [(d.record.offset, d.reason) for d in dead] == [(1, "unparseable"), (2, "unparseable")]
    assert "type" in dead[0].error and "not valid JSON" in dead[1].error

    def recursing(raw):
        raise RecursionError("maximum recursion depth exceeded")
    monkeypatch.setattr(consumer, "decode", recursing)
    _, dead = consumer.decode_all([record(3, b"{}")])
    assert [(d.record.offset, d.error) for d in dead] == [(3, "(event) could not be decoded: RecursionError")]


def test_the_dead_letter_list_names_only_a_string_type():
    from aiokafka import ConsumerRecord

    from vanda import dlq

    def letter(value: bytes) -> dlq.DeadLetter:
        return dlq._describe(ConsumerRecord("vanda.intake.submissions.v1.dlq", 0, 0, 0, 0, None, value, None, 1,
                                            len(value), [("vanda-dlq-reason", b"invalid")]))

    assert letter(b'{"type": ' + b"[" * 1000 + b"]" * 1000 + b"}").event_type == "(not a string)"
    assert letter(b'{"type": "uk.nhs.vanda.incident.reported.v1"}').event_type == "uk.nhs.vanda.incident.reported.v1"
    assert letter(b"[1").event_type == "(unparseable)"
    # A header whose value is null (Kafka allows it, and a dead letter carries it on as sent).
    null = dlq._describe(ConsumerRecord("vanda.incidents.v1.dlq", 0, 1, 0, 0, None, b"{}", None, 1, 2,
                                        [("trace", None), ("vanda-dlq-reason", b"unparseable")]))
    assert null.reason == "unparseable"


async def test_a_submission_the_database_refuses_is_dead_lettered_alone_and_the_rest_stored(monkeypatch):
    """Intake stores a batch of Kafka submissions in one transaction: a valid report the
    database refuses (a constraint, a bug) must not fail the batch every time it comes round."""
    import uuid
    from types import SimpleNamespace

    import orjson
    from aiokafka import ConsumerRecord

    from services.intake import bulk, handlers
    from services.intake.adapters import Receipt
    from tests.factories import report

    stored: list[str] = []

    async def submit_many(reports, store, keyring):
        if any(r.source_ref == "poison" for r in reports):
            raise E.CheckViolationError("new row violates check constraint")
        if any(r.source_ref == "away" for r in reports):
            raise E.CannotConnectNowError("starting up")
        stored.extend(r.source_ref for r in reports)
        return [handlers.Outcome("accepted", Receipt(uuid.uuid4(), None, "f")) for _ in reports]

    monkeypatch.setattr(handlers, "submit_many", submit_many)
    consumer = bulk.SubmissionConsumer(SimpleNamespace(relay=None), lambda: SimpleNamespace(
        store=None, keyring=None, wake_relay=lambda: None))

    def records(*refs: str) -> list[ConsumerRecord]:
        values = [orjson.dumps(report(source_ref=ref)) if ref != "bad" else b"{}" for ref in refs]
        return [ConsumerRecord("vanda.intake.submissions.v1", 0, n, 0, 0, None, v, None, 1, len(v), [])
                for n, v in enumerate(values)]

    result = await consumer.apply_batch(records("a", "poison", "bad", "b"))
    assert stored == ["a", "b"] and result.applied == {"vanda.intake.submissions.v1": 2}
    assert [(d.record.offset, d.reason) for d in result.dead] == [(1, "rejected"), (2, "invalid")]
    assert result.dead[0].error == "(report) could not be stored: CheckViolationError"
    # An outage is not a report's fault: the batch is raised, to be retried whole.
    with pytest.raises(E.CannotConnectNowError):
        await consumer.apply_batch(records("c", "away"))


async def test_a_dead_letter_carries_the_headers_as_sent_not_as_cleaned_for_faststream():
    """FastStream is handed header values made UTF-8; a dead letter (and so its replay) must
    still give the record back as it came."""
    from types import SimpleNamespace

    from aiokafka import ConsumerRecord

    from vanda.runtime.consumer import BatchConsumer, DeadLetter, tolerant_parser

    sent_as = [("content-type", b"\xb1\xff not utf-8"), ("trace", None), ("plain", b"ok")]
    record = ConsumerRecord("vanda.incidents.v1", 2, 40, 0, 0, b"k", b"{}", None, 1, 2, sent_as)

    async def same(msg):
        return msg

    [handed] = await tolerant_parser((record,), same)
    assert handed.headers == (("content-type", "\ufffd\ufffd not utf-8".encode()), ("trace", b""), ("plain", b"ok"))
    assert (handed.topic, handed.partition, handed.offset, handed.key, handed.value) == (
        "vanda.incidents.v1", 2, 40, b"k", b"{}")
    untouched = ConsumerRecord("vanda.incidents.v1", 2, 41, 0, 0, None, b"{}", None, 1, 2, [("plain", b"ok")])
    assert (await tolerant_parser(untouched, same)) is untouched  # nothing to clean: not copied

    letters = []

    async def send_and_wait(topic, value, key, headers):
        letters.append((topic, value, key, headers))

    consumer = BatchConsumer(SimpleNamespace(relay=None, dead_letters=SimpleNamespace(send_and_wait=send_and_wait)))
    await consumer._send_dead_letter(DeadLetter(handed, "unparseable", "x"))
    [(topic, value, key, headers)] = letters
    assert (topic, value, key) == ("vanda.incidents.v1.dlq", b"{}", b"k") and headers[:3] == sent_as


def _slow_at(*offsets: int):
    """A consumer whose batches time out whole and whose records at `offsets` time out alone too,
    the database answering; with how often each record was tried alone, the offsets of the dead
    letters sent, and five records of one partition to hand it."""
    from collections import Counter
    from types import SimpleNamespace

    from vanda.runtime.consumer import BatchConsumer, BatchResult

    tried: Counter[int] = Counter()
    letters: list[bytes] = []

    class Slow(BatchConsumer):
        async def apply_batch(self, records):
            if len(records) > 1 or records[0].offset in offsets:
                tried[records[0].offset] += len(records) == 1
                raise TimeoutError
            return BatchResult(applied=Counter({"t": 1}))

        async def _database_answers(self) -> bool:
            return True

    async def send_and_wait(topic, value, key, headers):
        letters.append(dict(headers)["vanda-dlq-source-offset"])

    consumer = Slow(SimpleNamespace(relay=None, pool=None, dead_letters=SimpleNamespace(send_and_wait=send_and_wait)))
    records = [SimpleNamespace(topic="t", partition=0, offset=n, key=None, value=b"{}", headers=()) for n in range(5)]
    return consumer, tried, letters, records


async def test_one_record_that_outlasts_the_statement_timeout_alone_is_dead_lettered_after_three_tries():
    """The database answers, the batch is cut down to the one slow record, and that record
    still times out: retried (the database may be busy a while), then dead-lettered, or it
    would hold its partition for ever."""
    from collections import Counter
    from types import SimpleNamespace

    from vanda.runtime.consumer import SLOW_TRIES

    consumer, tried, letters, records = _slow_at(3)
    result = await consumer.handle(records)
    assert tried[3] == SLOW_TRIES == 3 and letters == [b"3"] and consumer.healthy
    assert consumer._slow == {}
    # Timeouts that stop, once the record is applied, are not carried on to a later one.
    consumer._slow[("t", 0, 7)] = SLOW_TRIES - 1
    await consumer.handle([SimpleNamespace(topic="t", partition=0, offset=7, key=None, value=b"{}", headers=())])
    assert consumer._slow == {}
    assert result.applied == Counter({"t": 4}) and "outlasted the statement timeout 3 times" in result.dead[0].error


async def test_two_records_too_slow_alone_in_one_partition_are_both_dead_lettered(monkeypatch):
    """A later slow record failing the retry must not cost the first its count: each would
    reset the other's for ever, and the partition never move on (a heavy subject's events
    come together, and each loads the whole history)."""
    from collections import Counter

    from tenacity import wait_none

    import vanda.runtime.consumer as consumer_module
    from vanda.runtime.consumer import SLOW_TRIES

    monkeypatch.setattr(consumer_module, "wait_exponential", lambda **_: wait_none())
    consumer, tried, letters, records = _slow_at(1, 3)
    result = await asyncio.wait_for(consumer.handle(records), timeout=10)
    # Each timed out alone exactly SLOW_TRIES times: the first, once condemned, is not tried again.
    assert tried[1] == tried[3] == SLOW_TRIES and sorted(letters) == [b"1", b"3"] and consumer.healthy
    assert result.applied == Counter({"t": 3}) and consumer._slow == {}
