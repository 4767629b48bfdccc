"""What each topic keeps, and for how long: the event log for ever, personal data briefly."""

from __future__ import annotations

import pytest

from schemas.topics import BOARD_METRICS, INCIDENTS, POLICE_REFERRALS, SANCTIONS, SUBMISSIONS, dead_letter
from vanda.runtime import asyncapi
from vanda.runtime.topics import DAY_MS, Retention, topic_configs

RETENTION = Retention(personal_days=3, dead_letter_days=20)


@pytest.mark.parametrize(("topic", "kept_ms"), [
    (INCIDENTS, "-1"),
    (SANCTIONS, "-1"),
    (POLICE_REFERRALS, "-1"),
    (BOARD_METRICS, "-1"),
    (SUBMISSIONS, str(3 * DAY_MS)),
    (dead_letter(SUBMISSIONS), str(3 * DAY_MS)),  # the same reports, so the same short life
    (dead_letter(INCIDENTS), str(20 * DAY_MS)),
    (dead_letter(SANCTIONS), str(20 * DAY_MS)),
])
def test_retention_by_topic(topic: str, kept_ms: str) -> None:
    assert topic_configs(topic, 1, RETENTION)["retention.ms"] == kept_ms


@pytest.mark.parametrize(("topic", "days", "segment_ms"), [
    (SUBMISSIONS, 3, str(DAY_MS)),
    (dead_letter(SUBMISSIONS), 3, str(DAY_MS)),
    (SUBMISSIONS, 7, str(DAY_MS)),
    (INCIDENTS, 3, None),  # the log is never deleted: Kafka's own segments
    (dead_letter(INCIDENTS), 3, None),
])
def test_personal_topics_roll_their_segments_daily_so_nothing_outstays_its_days(topic: str, days: int,
                                                                                 segment_ms: str | None) -> None:
    # A segment goes only once its newest record is past retention: a week-long one kept a report a week more.
    assert topic_configs(topic, 1, Retention(personal_days=days)).get("segment.ms") == segment_ms


@pytest.mark.parametrize(("replication", "min_insync"), [(1, "1"), (2, "1"), (3, "2"), (5, "2")])
def test_acks_all_waits_for_two_copies_when_there_are_replicas_to_spare(replication: int, min_insync: str) -> None:
    assert topic_configs(INCIDENTS, replication, RETENTION)["min.insync.replicas"] == min_insync


@pytest.mark.parametrize(("topic", "said"), [
    (INCIDENTS, "Kept for ever"), (BOARD_METRICS, "Kept for ever"),
    (dead_letter(SUBMISSIONS), "Kept 7 days"), (dead_letter(INCIDENTS), "Kept 28 days"),
])
def test_the_asyncapi_documents_tell_subscribers_how_long_a_topic_keeps_records(topic: str, said: str) -> None:
    assert said in asyncapi._description(topic)
