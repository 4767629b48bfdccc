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


def test_release_trims_on_glibc() -> None:
    assert heap.release() is True  # this C library has malloc_trim


def test_release_gives_freed_memory_back() -> None:
    def resident_mb() -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096 / 2**20

    blocks = [bytearray(4000 + i % 3000) for i in range(40_000)]  # ~200 MB in the C heap
    del blocks[::2], blocks[-1]  # freed, but not from the heap's top: malloc keeps it
    held = resident_mb()
    assert heap.release() is True
    assert resident_mb() < held - 20


async def test_releasing_trims_every_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    calls: list[float | None] = []
    monkeypatch.setattr(heap, "RELEASE_EVERY_S", 0.01)
    monkeypatch.setattr(heap, "release", lambda: calls.append(None) or True)
    task = asyncio.create_task(heap.releasing())
    await asyncio.sleep(0.1)
    task.cancel()
    assert len(calls) >= 3
