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
