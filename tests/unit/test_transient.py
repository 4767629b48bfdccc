"""What the consumers retry (an outage: the partition waits) and what they dead-letter (the
event's fault): a full disk or a failover must never send the stream to the dead letters."""

from __future__ import annotations

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

    records = [SimpleNamespace(topic="t", offset=n) for n in range(7)]
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
