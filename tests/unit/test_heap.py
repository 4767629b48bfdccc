"""The collector settings a service applies once started."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from vanda.runtime import heap


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_tune_freezes_what_exists_and_widens_the_young_generation(restored_gc: None) -> None:
    older = gc.get_threshold()[1:]
    kept = [object() for _ in range(10)]  # long-lived objects of a started process
    heap.tune()
    assert gc.get_freeze_count() >= len(kept)
    assert gc.get_threshold() == (heap.YOUNG_GENERATION, *older)


def test_cycles_are_still_collected_after_tuning(restored_gc: None) -> None:
    heap.tune()

    class Node:
        pass

    a, b = Node(), Node()
    a.other, b.other = b, a
    count = sum(isinstance(o, Node) for o in gc.get_objects())
    del a, b
    gc.collect()
    assert sum(isinstance(o, Node) for o in gc.get_objects()) == count - 2
