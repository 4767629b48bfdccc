"""Garbage-collector and allocator settings for processes that work through large batches of events.

A consumed batch allocates hundreds of thousands of short-lived objects (validated events,
states, rows). With CPython's defaults (a young collection every 700 allocations) the
collector ran hundreds of times per batch, and its older-generation passes walked every
object the process built at start (modules, schemas, the web app): in a profile of event
decoding, about a third of the time. Freezing what exists once started takes those
objects out of every pass, and a larger young generation makes the passes rarer. Reference
cycles are still collected, just less often.

The C allocator keeps what a batch freed for reuse rather than giving it back, so the
resident size of a consumer ratchets up with the largest batches it has met (a profile
of sanctions found tens of MB free but held); `releasing` hands it back every few seconds.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import functools
import gc
from collections.abc import Callable

YOUNG_GENERATION = 20_000  # allocations between young collections (CPython's default: 700)


def tune() -> None:
    """Call once the process has built its long-lived objects (imports, app, connections)."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION, older, oldest)


RELEASE_EVERY_S = 5.0  # a trim walks the whole heap (a few ms): once in a while is enough


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    # Looked up on first use, not at import: finding the C library may run ldconfig.
    name = ctypes.util.find_library("c")
    return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None  # None: not glibc


def release() -> bool:
    """Return freed C-heap memory to the system (glibc's malloc_trim); False where there is none."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


async def releasing() -> None:
    """`release` every few seconds until cancelled: a service's background task."""
    while True:
        await asyncio.sleep(RELEASE_EVERY_S)
        release()
