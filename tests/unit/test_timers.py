"""A service's own timers (purges, publishers, gauges) outlive a failed round and stop when cancelled."""

from __future__ import annotations

import asyncio
import contextlib

from vanda.runtime.service import every


async def _run_for(seconds: float, compute, every_s: float, at_once: bool = True) -> None:
    task = asyncio.create_task(every(compute, every_s, "figures not refreshed", at_once))
    await asyncio.sleep(seconds)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_runs_at_once_then_on_every_round() -> None:
    rounds = []
    start = asyncio.get_running_loop().time()

    async def compute() -> None:
        rounds.append(asyncio.get_running_loop().time())

    await _run_for(0.25, compute, every_s=0.05)
    assert len(rounds) >= 3 and rounds[0] - start < 0.04
    assert all(b - a >= 0.045 for a, b in zip(rounds, rounds[1:], strict=False))


async def test_not_at_once_waits_a_round_first() -> None:
    rounds = []
    start = asyncio.get_running_loop().time()

    async def compute() -> None:
        rounds.append(asyncio.get_running_loop().time())

    await _run_for(0.12, compute, every_s=0.05, at_once=False)
    assert rounds and rounds[0] - start >= 0.045


async def test_a_failed_round_is_logged_and_the_next_one_still_runs(caplog) -> None:
    calls = 0

    async def compute() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionRefusedError("database away")

    await _run_for(0.15, compute, every_s=0.03)
    assert calls >= 2
    assert "figures not refreshed; the next round tries again" in caplog.text


async def test_cancelling_stops_it() -> None:
    calls = 0

    async def compute() -> None:
        nonlocal calls
        calls += 1

    await _run_for(0.05, compute, every_s=0.01)
    seen = calls
    await asyncio.sleep(0.05)
    assert calls == seen
