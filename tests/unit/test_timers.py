"""A service's own timers (purges, publishers, gauges) outlive a failed round and stop when
cancelled. The waits are counted, never timed: the rounds between them are what matters."""

from __future__ import annotations

import asyncio

import pytest

from vanda.runtime import service
from vanda.runtime.service import every


class Clock:
    """Stands in for asyncio.sleep inside the timer: records each wait, and stops the timer
    after `stop_after` of them, as cancelling the service's task would."""

    def __init__(self, stop_after: int) -> None:
        self.waits: list[float] = []
        self.stop_after = stop_after
        self.log: list[str] = []

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.log.append("wait")
        if len(self.waits) >= self.stop_after:
            raise asyncio.CancelledError


async def _run(monkeypatch, clock: Clock, round_, at_once: bool = True) -> None:
    monkeypatch.setattr(service.asyncio, "sleep", clock.sleep)
    with pytest.raises(asyncio.CancelledError):
        await every(round_, 5.0, "figures not refreshed", at_once)


async def test_runs_at_once_then_once_after_every_wait(monkeypatch) -> None:
    clock = Clock(stop_after=3)

    async def round_() -> None:
        clock.log.append("round")

    await _run(monkeypatch, clock, round_)
    assert clock.log == ["round", "wait", "round", "wait", "round", "wait"] and clock.waits == [5.0] * 3


async def test_not_at_once_waits_a_round_first(monkeypatch) -> None:
    clock = Clock(stop_after=2)

    async def round_() -> None:
        clock.log.append("round")

    await _run(monkeypatch, clock, round_, at_once=False)
    assert clock.log == ["wait", "round", "wait"]


async def test_a_failed_round_is_logged_and_the_next_one_still_runs(monkeypatch, caplog) -> None:
    clock = Clock(stop_after=2)

    async def round_() -> None:
        clock.log.append("round")
        if clock.log.count("round") == 1:
            raise ConnectionRefusedError("database away")

    await _run(monkeypatch, clock, round_)
    assert clock.log == ["round", "wait", "round", "wait"]
    assert "figures not refreshed; the next round tries again" in caplog.text
