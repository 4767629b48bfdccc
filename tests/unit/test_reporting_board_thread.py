"""A board's figures are worked out off the event loop, and are the same as worked out on it."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta
from zoneinfo import ZoneInfo

from schemas.reporting import ReferralCriterion
from services.reporting import adapters, handlers
from services.reporting.domain import periods
from services.reporting.domain.board import Disclosure
from tests.unit.test_reporting_board import FEB, JAN
from tests.unit.test_reporting_metrics import decision, fact


PROJECTION = handlers.Projection(ZoneInfo("Europe/London"), frozenset(ReferralCriterion))
SCOPE = handlers.Scope(periods.span(JAN.date(), FEB.date()))


def returning(value):
    async def read(*_args, **_kwargs):
        return value
    return read


def stub_reads(monkeypatch, incidents=returning([]), decisions=returning([]), objectives=returning([])) -> None:
    """The board's reads, answered without a database."""
    monkeypatch.setattr(adapters, "incidents_between", incidents)
    monkeypatch.setattr(adapters, "decisions_before", decisions)
    monkeypatch.setattr(adapters, "incidents_by_id", returning({}))
    monkeypatch.setattr(adapters, "headcount", returning(({}, set())))
    monkeypatch.setattr(adapters, "objectives", objectives)


async def test_the_figures_are_computed_in_a_worker_thread_with_the_same_result(monkeypatch) -> None:
    incidents = [fact(occurred_at=JAN + timedelta(hours=n), category=("weapon", "verbal_abuse")[n % 2])
                 for n in range(40)] + [fact(occurred_at=FEB + timedelta(hours=n)) for n in range(7)]
    decisions = [decision("yellow_card_1", JAN + timedelta(days=2)) for _ in range(6)]
    stub_reads(monkeypatch, returning(incidents), returning(decisions))
    threads = []
    figures = handlers._figures

    def recording(*args):
        threads.append(threading.current_thread())
        return figures(*args)

    monkeypatch.setattr(handlers, "_figures", recording)
    body = await handlers.board(None, SCOPE, PROJECTION, Disclosure(5))

    assert threads and threads[0] is not threading.main_thread()
    assert body["totals"]["incidents"] == 47
    assert body["totals"]["breakdowns"]["incidents_by_category"] == {"weapon": 20, "verbal_abuse": 27}
    assert [m["incidents"] for m in body["months"]] == [40, 7]


async def test_boards_are_worked_out_one_at_a_time(monkeypatch) -> None:
    # Each board holds its period's facts in memory: two at once would double the peak.
    inside, most = 0, 0

    async def first_read(*_args, **_kwargs):
        nonlocal inside, most
        inside += 1
        most = max(most, inside)
        await asyncio.sleep(0.05)  # a long read: another request arrives meanwhile
        return []

    async def last_read(*_args, **_kwargs):
        nonlocal inside
        inside -= 1
        return []

    stub_reads(monkeypatch, incidents=first_read, objectives=last_read)
    bodies = await asyncio.gather(*(handlers.board(None, SCOPE, PROJECTION, Disclosure(5)) for _ in range(3)))
    assert [b["totals"]["incidents"] for b in bodies] == [0, 0, 0]
    assert most == handlers.BOARDS_AT_ONCE == 1
