"""Topics on the real broker carry the retention vanda sets: the event log is never cut short."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from schemas.topics import INCIDENTS, SANCTIONS, SUBMISSIONS, dead_letter
from vanda.runtime import topics
from vanda.runtime.topics import DAY_MS, TopicsRefused, ensure_topics

pytestmark = pytest.mark.integration


async def _retention(admin: AIOKafkaAdminClient, topics: list[str], key: str = "retention.ms") -> dict[str, str]:
    """A topic just created can be described before its configs reach the broker asked: the answer
    then carries an error and no entries, so ask again until every topic has its retention."""
    resources = [ConfigResource(ConfigResourceType.TOPIC, t, {key: None}) for t in topics]
    for _ in range(100):
        found = {}
        for response in await admin.describe_configs(resources):
            for _error, _message, _kind, topic, entries in response.resources:
                found.update((topic, value) for name, value, *_ in entries if name == key)
        if len(found) == len(topics):
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"retention of {sorted(set(topics) - set(found))} never described")


async def test_the_services_created_their_topics_with_vandas_retention(pipeline: dict[str, str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=pipeline["KAFKA_BOOTSTRAP_SERVERS"])
    await admin.start()
    try:
        kept = await _retention(admin, [INCIDENTS, SANCTIONS, SUBMISSIONS, dead_letter(INCIDENTS)])
        segments = await _retention(admin, [SUBMISSIONS, dead_letter(SUBMISSIONS)], "segment.ms")
    finally:
        await admin.close()
    assert kept == {INCIDENTS: "-1", SANCTIONS: "-1", SUBMISSIONS: str(7 * DAY_MS),
                    dead_letter(INCIDENTS): str(28 * DAY_MS)}
    # Reports as submitted go within a day of their 7: Kafka deletes whole segments.
    assert segments == {SUBMISSIONS: str(DAY_MS), dead_letter(SUBMISSIONS): str(DAY_MS)}


async def test_an_existing_event_topic_that_deletes_history_is_reported_not_changed(
        pipeline: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    bootstrap = pipeline["KAFKA_BOOTSTRAP_SERVERS"]
    week, kept_for_ever = f"older-{uuid.uuid4().hex[:8]}", f"newer-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        # As created before vanda set retention: Kafka's default of a week.
        await admin.create_topics([NewTopic(week, 1, 1, topic_configs={"retention.ms": str(7 * DAY_MS)})])
        caplog.set_level(logging.WARNING, logger="vanda.runtime.topics")
        await ensure_topics(bootstrap, [week, kept_for_ever], partitions=1, replication=1)
        kept = await _retention(admin, [week, kept_for_ever])
        await admin.delete_topics([week, kept_for_ever])
    finally:
        await admin.close()
    assert kept == {week: str(7 * DAY_MS), kept_for_ever: "-1"}  # the operator's topic is left as it was
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and week in warnings[0] and "retention.ms=-1" in warnings[0]


async def test_an_existing_submissions_topic_that_keeps_reports_longer_is_reported_not_changed(
        pipeline: dict[str, str], caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    bootstrap = pipeline["KAFKA_BOOTSTRAP_SERVERS"]
    weekly, monthly, daily = (f"reports-{uuid.uuid4().hex[:8]}" for _ in range(3))
    # Topics that hold reports as submitted, as intake's input does (its own name is taken).
    monkeypatch.setattr(topics, "PERSONAL", frozenset({weekly, monthly, daily}))
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        # As created before vanda set segments: Kafka's default of a week. And one made before
        # the retention was shortened to its 7 days.
        await admin.create_topics([
            NewTopic(weekly, 1, 1, topic_configs={"segment.ms": str(7 * DAY_MS), "retention.ms": str(7 * DAY_MS)}),
            NewTopic(monthly, 1, 1, topic_configs={"segment.ms": str(DAY_MS), "retention.ms": str(30 * DAY_MS)})])
        await _retention(admin, [weekly, monthly], "segment.ms")
        caplog.set_level(logging.WARNING, logger="vanda.runtime.topics")
        await ensure_topics(bootstrap, [weekly, monthly, daily], partitions=1, replication=1)
        segments = await _retention(admin, [weekly, monthly, daily], "segment.ms")
        kept = await _retention(admin, [weekly, monthly, daily])
        await admin.delete_topics([weekly, monthly, daily])
    finally:
        await admin.close()
    # The operator's topics are left as they were.
    assert segments == {weekly: str(7 * DAY_MS), monthly: str(DAY_MS), daily: str(DAY_MS)}
    assert kept == {weekly: str(7 * DAY_MS), monthly: str(30 * DAY_MS), daily: str(7 * DAY_MS)}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2, warnings
    assert monthly in warnings[0] and "for 30 days" in warnings[0] and f"retention.ms={7 * DAY_MS}" in warnings[0]
    assert weekly in warnings[1] and f"segment.ms={DAY_MS}" in warnings[1]


async def test_a_topic_kafka_refuses_to_create_is_said_not_taken_as_made(pipeline) -> None:
    # One broker cannot keep three copies: the client answers that, it does not raise it.
    bootstrap, refused = pipeline["KAFKA_BOOTSTRAP_SERVERS"], f"test-refused-{uuid.uuid4().hex[:8]}"
    with pytest.raises(TopicsRefused) as said:
        await ensure_topics(bootstrap, [refused], partitions=1, replication=3)
    assert f"{refused} (InvalidReplicationFactorError" in str(said.value)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        assert refused not in await admin.list_topics()
    finally:
        await admin.close()
    # Two replicas making the same topic at once: the second finds it made, which is no refusal.
    both = f"test-both-{uuid.uuid4().hex[:8]}"
    await asyncio.gather(*(ensure_topics(bootstrap, [both], partitions=1, replication=1) for _ in range(3)))
