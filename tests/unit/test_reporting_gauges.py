"""The current month's gauges are kept fresh by a timer that outlives a failed round."""

from __future__ import annotations

import asyncio
import contextlib

from services.reporting.gauges import keep_fresh


async def _run_for(seconds: float, compute, every_s: float) -> None:
    task = asyncio.create_task(keep_fresh(compute, every_s))
    await asyncio.sleep(seconds)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_computes_at_once_then_on_every_round() -> None:
    rounds = []

    async def compute() -> None:
        rounds.append(asyncio.get_running_loop().time())

    await _run_for(0.25, compute, every_s=0.05)
    assert len(rounds) >= 3
    assert all(b - a >= 0.045 for a, b in zip(rounds, rounds[1:], strict=False))


async def test_a_failed_round_is_logged_and_the_next_one_still_runs(caplog) -> None:
    calls = 0

    async def compute() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionRefusedError("database away")

    await _run_for(0.15, compute, every_s=0.03)
    assert calls >= 2
    assert "not refreshed" in caplog.text


async def test_cancelling_stops_it() -> None:
    calls = 0

    async def compute() -> None:
        nonlocal calls
        calls += 1

    await _run_for(0.05, compute, every_s=0.01)
    seen = calls
    await asyncio.sleep(0.05)
    assert calls == seen
