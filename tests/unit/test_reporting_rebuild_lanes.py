"""The rebuild's lanes: every partition replayed once, one subject's two topics in one lane."""

from __future__ import annotations

from aiokafka import TopicPartition
from hypothesis import given
from hypothesis import strategies as st

from schemas.topics import INCIDENTS, SANCTIONS
from services.reporting.rebuild import lanes_of
from vanda.runtime.outbox import keyed_partitioner


@given(st.integers(1, 24), st.integers(1, 8))
def test_every_partition_is_in_exactly_one_lane_and_no_lane_is_empty(partitions: int, lanes: int) -> None:
    parts = [TopicPartition(t, p) for t in (INCIDENTS, SANCTIONS) for p in range(partitions)]
    split = lanes_of(parts, lanes)
    assert sorted(tp for lane in split for tp in lane) == sorted(parts)
    assert all(split) and len(split) == min(lanes, partitions)


@given(st.text(min_size=1, max_size=60), st.integers(1, 4))
def test_a_subjects_incidents_and_decisions_share_a_lane(subject: str, lanes: int) -> None:
    # Both topics are keyed by subject with the same partition count, so one lane holds both.
    parts = [TopicPartition(t, p) for t in (INCIDENTS, SANCTIONS) for p in range(6)]
    partition = keyed_partitioner(subject.encode(), list(range(6)), list(range(6)))
    homes = [i for i, lane in enumerate(lanes_of(parts, lanes))
             if TopicPartition(INCIDENTS, partition) in lane or TopicPartition(SANCTIONS, partition) in lane]
    assert len(homes) == 1
