"""The current month's gauges are kept fresh by a timer that outlives a failed round."""

from __future__ import annotations

import asyncio
import contextlib

from services.reporting.domain.objectives import HEADLINE
from services.reporting.gauges import NOT_LIVE, keep_fresh, live


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


def test_the_live_gauge_leaves_out_every_figure_about_people_s_characteristics() -> None:
    figures = live(dict.fromkeys(HEADLINE, 1.0))
    assert NOT_LIVE <= set(HEADLINE) and not NOT_LIVE & set(figures)
    assert {"incidents", "police_referral_rate", "sexual_safety_share", "active_bans_at_period_end"} <= set(figures)
