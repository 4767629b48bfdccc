"""The outbox producer's partitioning: the same partition as Kafka's default for every key."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from vanda.runtime.outbox import keyed_partitioner


@given(key=st.binary(min_size=0, max_size=64), count=st.integers(min_value=1, max_value=64))
def test_keyed_partitioner_agrees_with_the_default(key: bytes, count: int) -> None:
    partitions = list(range(count))
    assert keyed_partitioner(key, partitions, partitions) == DefaultPartitioner()(key, partitions, partitions)


def test_a_remembered_hash_still_follows_the_partition_count() -> None:
    key = b"sub_0123456789abcdef"
    six, twelve = list(range(6)), list(range(12))
    assert keyed_partitioner(key, six, six) == DefaultPartitioner()(key, six, six)
    assert keyed_partitioner(key, twelve, twelve) == DefaultPartitioner()(key, twelve, twelve)


def test_no_key_still_gets_a_partition() -> None:
    assert keyed_partitioner(None, [0, 1, 2], [1]) == 1
