"""The outbox producer's partitioning: the same hash and partition as Kafka's default for every key."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as reference
from hypothesis import given
from hypothesis import strategies as st

from vanda.runtime.outbox import keyed_partitioner, murmur2


@given(key=st.binary(min_size=0, max_size=64), count=st.integers(min_value=1, max_value=64))
def test_keyed_partitioner_agrees_with_the_default(key: bytes, count: int) -> None:
    partitions = list(range(count))
    assert keyed_partitioner(key, partitions, partitions) == DefaultPartitioner()(key, partitions, partitions)


@given(key=st.binary(min_size=0, max_size=80))
def test_murmur2_is_kafkas(key: bytes) -> None:
    assert murmur2(key) == reference(key)


def test_murmur2_known_values() -> None:
    # Every tail length (0 to 3 bytes after the last whole word), against the reference.
    for key in (b"", b"a", b"ab", b"abc", b"abcd", b"abcde", b"sub_0123456789abcdef"):
        assert murmur2(key) == reference(key)


def test_no_key_still_gets_a_partition() -> None:
    assert keyed_partitioner(None, [0, 1, 2], [1]) == 1
